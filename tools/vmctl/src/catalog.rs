//! `vmctl catalog import | validate | list`: the catalog file's checks (the JSON Schema
//! `data/catalog.schema.json`, then the consistency checks of the import use case) and the
//! stored catalog as a table.

use std::path::Path;

use clap::Subcommand;
use vmapi_core::catalog_problems;
use vmapi_models::{Catalog, Seed};

use crate::ctx::Ctx;
use crate::error::AnyError;
use crate::output::table;

/// The catalog file's JSON Schema (draft 2020-12), compiled into the tool.
pub const SCHEMA: &str = include_str!("../../../data/catalog.schema.json");

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Check a catalog file and write its cloud providers, providers, sizes and prices to the
    /// table (entries with the same `_id` are replaced; nothing is written when a check fails).
    /// A file's `teams` and `projects` are checked but not written (`vmctl load` writes them).
    Import {
        /// The catalog file (format: docs/catalog.md, data/catalog.schema.json).
        file: std::path::PathBuf,
    },
    /// Check a catalog file as `catalog import` does, writing nothing: the JSON Schema
    /// (data/catalog.schema.json), then references between entries (providers → cloud
    /// providers, sizes → providers and their locations, prices → sizes and images, image
    /// references → images) and ids given twice. Each problem is printed with its place.
    Validate {
        /// The catalog file.
        file: std::path::PathBuf,
    },
    /// Print the stored catalog: one row per size with its provider, cloud, location, price
    /// and images (entries written by `catalog import` or `load`).
    List {
        /// Print the catalog as JSON (the file format) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The problems of a catalog file, each as `place: what`; the file's catalog when none.
pub fn check_file(path: &Path) -> Result<Seed, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("reading {}: {e}", path.display())])?;
    check_text(&text)
}

/// [`check_file`] over the file's text.
pub fn check_text(text: &str) -> Result<Seed, Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| vec![format!("not JSON: {e}")])?;
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let mut problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/".into() } else { at })
        })
        .collect();
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(problems);
    }
    let seed: Seed = serde_json::from_value(value).map_err(|e| vec![e.to_string()])?;
    let mut problems: Vec<String> = catalog_problems(&seed.catalog())
        .into_iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect();
    let teams: Vec<_> = seed.teams.iter().map(|t| t.id).collect();
    for (i, p) in seed.projects.iter().enumerate() {
        if !teams.contains(&p.team) {
            problems.push(format!(
                "projects[{i}].team: {} is not a team of the file",
                p.team
            ));
        }
    }
    if problems.is_empty() {
        Ok(seed)
    } else {
        Err(problems)
    }
}

fn refused(path: &Path, problems: Vec<String>) -> AnyError {
    let mut msg = format!(
        "{} is not a valid catalog ({} problem{}):",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        msg.push_str("\n  ");
        msg.push_str(&p);
    }
    msg.into()
}

fn summary(c: &Catalog) -> String {
    format!(
        "{} cloud providers, {} providers, {} sizes, {} prices",
        c.cloud_providers.len(),
        c.providers.len(),
        c.sizes.len(),
        c.prices.len()
    )
}

pub async fn run(cmd: CatalogCommand, ctx: &Ctx) -> Result<(), AnyError> {
    match cmd {
        CatalogCommand::Validate { file } => {
            let seed = check_file(&file).map_err(|p| refused(&file, p))?;
            println!(
                "{} is a valid catalog: {}",
                file.display(),
                summary(&seed.catalog())
            );
        }
        CatalogCommand::Import { file } => {
            let seed = check_file(&file).map_err(|p| refused(&file, p))?;
            let catalog = seed.catalog();
            let n = ctx.accounts().await.import_catalog(&catalog).await?;
            println!(
                "imported {n} catalog entries from {}: {}",
                file.display(),
                summary(&catalog)
            );
            if !seed.teams.is_empty() || !seed.projects.is_empty() {
                println!(
                    "not imported: {} teams and {} projects of the file (vmctl load writes them; vmctl team create and project create make new ones)",
                    seed.teams.len(),
                    seed.projects.len()
                );
            }
        }
        CatalogCommand::List { json } => {
            let c = ctx.accounts().await.catalog().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            if c.is_empty() {
                println!("the catalog is empty (vmctl catalog import FILE writes one)");
                return Ok(());
            }
            print!("{}", catalog_table(&c));
        }
    }
    Ok(())
}

/// One row per size: where it is offered, what it costs, which images it runs.
fn catalog_table(c: &Catalog) -> String {
    let mut rows = Vec::new();
    for z in &c.sizes {
        let provider = c.providers.iter().find(|p| p.id == z.provider);
        let cloud = provider
            .and_then(|p| {
                c.cloud_providers
                    .iter()
                    .find(|cp| cp.id == p.cloud_provider)
            })
            .map(|cp| {
                if cp.is_disabled {
                    format!("{} (disabled)", cp.name)
                } else {
                    cp.name.clone()
                }
            })
            .unwrap_or_else(|| "?".into());
        let price = c
            .prices
            .iter()
            .find(|p| {
                p.provider == z.provider && p.size_name == z.name && p.location_name == z.location
            })
            .map(|p| format!("{} {}/h", p.price_per_hour, p.currency_code))
            .unwrap_or_else(|| "-".into());
        let images = provider
            .map(|p| {
                p.images
                    .iter()
                    .map(vmapi_models::ProviderRecord::image_key)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push(vec![
            cloud,
            z.provider.to_string(),
            z.location.clone(),
            z.name.clone(),
            z.vcpus.to_string(),
            z.memory_gb.to_string(),
            z.confidential.map_or("-", |t| t.name()).to_string(),
            price,
            images,
        ]);
    }
    rows.sort();
    table(
        &[
            "CLOUD",
            "PROVIDER",
            "LOCATION",
            "SIZE",
            "VCPUS",
            "MEMORY_GB",
            "CONFIDENTIAL",
            "PRICE",
            "IMAGES",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../data/demo.json")).unwrap()
    }

    #[test]
    fn demo_data_is_a_valid_catalog_under_the_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&demo())
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let seed = check_text(&demo().to_string()).unwrap();
        assert_eq!(seed.catalog().sizes.len(), 5);
    }

    #[test]
    fn a_broken_catalog_is_refused_naming_each_problem() {
        // Shape: a size without vCPUs and a misspelt field.
        let mut shape = demo();
        shape["sizes"][1].as_object_mut().unwrap().remove("vCPUs");
        shape["providers"][0]["isDisable"] = true.into();
        let problems = check_text(&shape.to_string()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("/sizes/1:") && p.contains("vCPUs")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("/providers/0:") && p.contains("isDisable")),
            "{problems:?}"
        );

        // Consistency: a size in a location its provider does not offer, a price for no size.
        let mut refs = demo();
        refs["sizes"][0]["location"] = "hamburg".into();
        refs["prices"][2]["sizeName"] = "m6a.huge".into();
        refs["providers"][1]["imageRefs"]["Debian/12"] = "ami-0123".into();
        let problems = check_text(&refs.to_string()).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("sizes[0].location:") && p.contains("hamburg")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("prices[2].sizeName:") && p.contains("m6a.huge")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("providers[1].imageRefs.Debian/12:")),
            "{problems:?}"
        );
        // The Berlin price now names a size that is in Hamburg.
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("prices[0].sizeName:")),
            "{problems:?}"
        );
    }
}

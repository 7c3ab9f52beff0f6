//! docs/configuration.md and the code agree: every variable in the table is read somewhere, and
//! every variable the non-test sources read (`var("X")`, `var_os("X")`, `env_set("X")`, or a
//! `const ...: &str = "X"` named `ENV`) is in the table, but for the few that are not settings.

use std::collections::BTreeSet;
use std::path::Path;

use vmapi_tests::{read, root};

/// Read by the code, but not settings of the service: set by Lambda or the SDK's own
/// credential chain, or used only by the tests' tooling.
const NOT_SETTINGS: &[&str] = &[
    "AWS_LAMBDA_FUNCTION_NAME", // set by Lambda: tells the code it runs there
    "AWS_LAMBDA_LOG_FORMAT",    // Lambda's logging controls (JSON or text)
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_REGION",            // the SDK's region, set by Lambda
    "AWS_ACCESS_KEY_ID",     // the SDK's credential chain, set by Lambda
    "AWS_SECRET_ACCESS_KEY", // the same
    "RUST_LOG",              // the log filter (docs/testing.md)
    "UPDATE_OPENAPI",        // rewrites the committed openapi.json (docs/openapi.md)
];

/// The non-test Rust sources of shared/, functions/ and tools/: `src/` only, each cut at its
/// first `#[cfg(test)]`.
fn sources() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
                out.push(text[..cut].to_string());
            }
        }
    }
    let mut out = Vec::new();
    for group in ["shared", "functions", "tools"] {
        for krate in std::fs::read_dir(root().join(group)).unwrap().flatten() {
            walk(&krate.path().join("src"), &mut out);
        }
    }
    assert!(out.len() > 50, "the sources were found");
    out
}

/// The variables of the table (first column).
fn documented() -> BTreeSet<String> {
    let row = regex::Regex::new(r"^\| `([A-Z][A-Z0-9_]+)`(?:, `([A-Z][A-Z0-9_]+)`)*").unwrap();
    let names = regex::Regex::new(r"`([A-Z][A-Z0-9_]{2,})`").unwrap();
    read("docs/configuration.md")
        .lines()
        .filter(|l| row.is_match(l))
        .flat_map(|l| {
            let first = l.split(" | ").next().unwrap().to_string();
            names
                .captures_iter(&first)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_configuration_table_and_the_code_name_the_same_variables() {
    let sources = sources();
    let documented = documented();
    assert!(
        documented.contains("TABLE_NAME") && documented.len() > 40,
        "{documented:?}"
    );
    // The SDK reads its `AWS_ENDPOINT_URL_<SERVICE>` variables itself, through the loader of
    // `vmapi_aws::endpoints` (which makes an empty one count as unset).
    let endpoints = read("shared/aws/src/endpoints.rs");
    for name in &documented {
        let quoted = format!("\"{name}\"");
        let by_the_sdk =
            name.starts_with("AWS_ENDPOINT_URL_") && endpoints.contains("impl LoadServiceConfig");
        assert!(
            by_the_sdk || sources.iter().any(|s| s.contains(&quoted)),
            "docs/configuration.md lists {name}, which no source reads"
        );
    }
    let read = regex::Regex::new(
        r#"(?:\bvar|\bvar_os|\benv_set)\("([A-Z][A-Z0-9_]{2,})"\)|const ENV: &str = "([A-Z][A-Z0-9_]{2,})""#,
    )
    .unwrap();
    let mut found = BTreeSet::new();
    for s in &sources {
        for c in read.captures_iter(s) {
            found.insert(c.get(1).or(c.get(2)).unwrap().as_str().to_string());
        }
    }
    assert!(
        found.contains("TABLE_NAME"),
        "the reads were found: {found:?}"
    );
    let missing: Vec<_> = found
        .iter()
        .filter(|n| !documented.contains(*n) && !NOT_SETTINGS.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "read by the code but not in docs/configuration.md: {missing:?}"
    );
}

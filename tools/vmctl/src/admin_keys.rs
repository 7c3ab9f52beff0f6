//! `vmctl admin-key`: the admin API's keys (stored as hashes; docs/admin-api.md), and the key
//! `vmctl dev` (`make run`) registers.

use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;
use vmapi_core::{AdminKeys, SystemClock};
use vmapi_models::AdminKeyName;
use vmapi_store_dynamodb::DynamoRepository;

use crate::ctx::Ctx;
use crate::error::AnyError;

#[derive(Subcommand)]
pub enum AdminKeyCommand {
    /// Make a key and print it (once: only its hash is stored).
    Create {
        /// Its name (1-64 lowercase letters, digits, '-'); the activity records its actions as
        /// `admin:{name}`.
        #[arg(long)]
        name: String,
    },
    /// The keys: name, created, revoked (never a key).
    List {
        /// JSON instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

fn keys(repo: Arc<DynamoRepository>) -> AdminKeys {
    AdminKeys::new(repo, Arc::new(SystemClock))
}

pub async fn run(cmd: AdminKeyCommand, ctx: &Ctx) -> Result<(), AnyError> {
    let keys = keys(ctx.repo().await);
    match cmd {
        AdminKeyCommand::Create { name } => {
            let (record, key) = keys.create(AdminKeyName::parse(&name)?, None).await?;
            eprintln!(
                "admin key '{}' (shown once; send it as 'Api-Key: <key>'):",
                record.name
            );
            println!("{key}");
        }
        AdminKeyCommand::List { json } => {
            let all = keys.list().await?;
            if json {
                let shown: Vec<_> = all
                    .iter()
                    .map(|k| {
                        serde_json::json!({"name": k.name, "createdAt": k.created_at, "revokedAt": k.revoked_at})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|k| {
                        vec![
                            k.name.to_string(),
                            k.created_at.to_string(),
                            k.revoked_at.map(|t| t.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    crate::output::table(&["NAME", "CREATED", "REVOKED"], &rows)
                );
            }
        }
        AdminKeyCommand::Revoke { name } => {
            let name = AdminKeyName::parse(&name)?;
            if keys.revoke(&name).await? {
                println!("revoked admin key '{name}'");
            } else {
                return Err(format!("no working admin key named '{name}'").into());
            }
        }
    }
    Ok(())
}

/// Registers the local run's admin key (`given`, from `ADMIN_API_KEY`, or a new one), writes
/// it to `file` and returns it. A key already registered (a kept table) is used as it is.
pub async fn local_key(
    repo: Arc<DynamoRepository>,
    given: Option<String>,
    file: &Path,
) -> Result<String, AnyError> {
    let keys = keys(repo);
    let key = match given {
        Some(key) if keys.verify(Some(&key)).await.is_ok() => key,
        given => {
            // Names stay taken after a revoke: a kept table gets the next free `local-N`.
            let taken: Vec<String> = keys
                .list()
                .await?
                .into_iter()
                .map(|k| k.name.to_string())
                .collect();
            let name = std::iter::once("local".to_string())
                .chain((2..).map(|n| format!("local-{n}")))
                .find(|n| !taken.contains(n))
                .expect("an unused name");
            keys.create(AdminKeyName::parse(&name)?, given).await?.1
        }
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, format!("{key}\n"))?;
    Ok(key)
}

//! `vmctl`: the operator tool of the VM API. `vmctl --help` is its reference.

mod admin;
mod admin_keys;
mod catalog;
mod ctx;
mod error;
mod output;
mod server;
mod stack;
mod team;
mod vms;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vmapi_aws::settings::TABLE_NAME;
use vmapi_http::auth::mint_local_token;
use vmapi_http::config::{Config, ADMIN_API_KEY, PORT};
use vmapi_http::state::dynamodb_client;
use vmapi_models::UserId;
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};

use crate::ctx::Ctx;
use crate::error::AnyError;
use crate::server::{
    ensure_table, load, local_secret, read_seed, serve_with_provisioner, StreamArgs,
};
use crate::stack::Settings;

/// Operator tool of the VM API: onboarding (teams, members, projects, the catalog), stuck and
/// stale VMs, tables and demo data, local tokens, the local server.
///
/// AWS is reached through the usual environment (AWS_REGION, credentials; AWS_ENDPOINT_URL_DYNAMODB
/// for DynamoDB Local, AWS_ENDPOINT_URL_CLOUDFORMATION for --stack against a stand-in).
#[derive(Parser)]
#[command(name = "vmctl", version)]
struct Cli {
    /// DynamoDB table.
    #[arg(long, global = true, env = TABLE_NAME.name, default_value = TABLE_NAME.default)]
    table: String,
    /// Take the table (output TableName) and the deployment id (output DeploymentId, as
    /// DEPLOYMENT_ID) from this deployed CloudFormation stack's outputs; overrides --table.
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Teams and their members (roles: owner, admin, member, viewer).
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// Projects of teams.
    #[command(subcommand)]
    Project(team::ProjectCommand),
    /// The catalog: clouds, providers, locations, images, sizes and prices (format:
    /// docs/catalog.md, data/catalog.schema.json).
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Stale and stuck VMs; re-arming a stuck operation.
    #[command(subcommand)]
    Vms(vms::VmsCommand),
    /// The admin API's keys (`Api-Key`): create, list, revoke.
    #[command(subcommand)]
    AdminKey(admin_keys::AdminKeyCommand),
    /// Create the table (keys, index, stream, TTL) unless it exists.
    CreateTable,
    /// Load a catalog / team / project file as it is (JSON, see data/demo.json), overwriting
    /// entries with the same ids and checking nothing beyond the JSON's shape; `catalog
    /// import`, `team create` and `project create` check what they write.
    Load {
        /// The file.
        file: PathBuf,
    },
    /// Print a local HS256 token for a user (LOCAL_JWT_SECRET, or the documented default).
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
    /// Serve every endpoint on one port (same routers as the Lambda functions).
    Serve {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port.
        #[arg(long, env = PORT.name, default_value = PORT.default)]
        port: u16,
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Print a VM record as stored (JSON), with its pending operation, cloud reference, login
    /// path and status reason; never a secret.
    Vm {
        /// The VM id.
        id: String,
    },
    /// Remove a team or project as the platform would: its record goes, and a tombstone makes
    /// the next cleanup run delete its VMs.
    Remove {
        /// `team` or `project`.
        #[arg(value_parser = ["team", "project"])]
        kind: String,
        /// Its id.
        id: String,
    },
    /// Block a VM: its users may still read, stop and delete it, nothing else (409 VM_BLOCKED);
    /// recorded in its activity as `vm.block` by `operator:vmctl`.
    Block {
        /// The VM id.
        id: String,
    },
    /// Lift a VM's block (`vm.unblock` in its activity).
    Unblock {
        /// The VM id.
        id: String,
    },
    /// Run the cleanup job once (as the scheduled function does) and print its summary.
    Cleanup {
        /// Report what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tag the logins and cloud resources made before deployment ids (only `managed-by`) whose
    /// VM or team is in this table with this deployment's id (DEPLOYMENT_ID), so cleanup and
    /// the IAM conditions reach them; prints one line each. Run once after upgrading.
    Adopt {
        /// Report what would be tagged; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Local run: create the table if needed, load the demo data, write a demo token, serve.
    Dev {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port.
        #[arg(long, env = PORT.name, default_value = PORT.default)]
        port: u16,
        /// Data file to load.
        #[arg(long, default_value = "data/demo.json")]
        data: PathBuf,
        /// User the demo token is for (the demo team's owner).
        #[arg(long, default_value = "6548a41138406c14db33b606")]
        user: String,
        /// Where the demo token is written.
        #[arg(long, default_value = ".local/demo-token")]
        token_file: PathBuf,
        /// Where the admin key is written (ADMIN_API_KEY, or a new one).
        #[arg(long, default_value = ".local/admin-key")]
        admin_key_file: PathBuf,
        #[command(flatten)]
        stream: StreamArgs,
    },
}

#[tokio::main]
async fn main() {
    vmapi_http::logging::init_local();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("vmctl: {}", error_text(e.as_ref()));
        std::process::exit(1);
    }
}

/// An error for the operator: a refused input lists each offending field.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<vmapi_core::Error>() {
        Some(vmapi_core::Error::Invalid { message, details }) if details.len() > 1 => {
            let mut text = message.clone();
            for d in details {
                text.push_str(&format!("\n  {}: {}", d.field, d.message));
            }
            text
        }
        Some(core) => vmapi_core::ErrorChain(core).to_string(),
        None => e.to_string(),
    }
}

async fn run(cli: Cli) -> Result<(), AnyError> {
    let settings = match &cli.stack {
        Some(name) => {
            let s = Settings::from_stack(name).await?;
            eprintln!(
                "stack {name}: table {}, deployment {}",
                s.table,
                s.env()
                    .get(&vmapi_aws::settings::DEPLOYMENT_ID)
                    .unwrap_or_else(|| "(no DeploymentId output)".into())
            );
            s
        }
        None => Settings::from_table(&cli.table),
    };
    let table = settings.table.clone();
    let ctx = Ctx::new(settings);
    let mut config = Config::from_env()?;
    config.table_name = table.clone();
    match cli.command {
        Command::Team(cmd) => team::run_team(cmd, &ctx).await?,
        Command::Project(cmd) => team::run_project(cmd, &ctx).await?,
        Command::Catalog(cmd) => catalog::run(cmd, &ctx).await?,
        Command::Vms(cmd) => vms::run(cmd, &ctx).await?,
        Command::AdminKey(cmd) => admin_keys::run(cmd, &ctx).await?,
        Command::CreateTable => {
            let client = dynamodb_client().await;
            if ensure_table(&client, &table).await? {
                println!("created table {table}");
            } else {
                println!("table {table} exists");
            }
        }
        Command::Load { file } => {
            let n = load(&*ctx.repo().await, &file).await?;
            println!("loaded {n} items from {} into {table}", file.display());
        }
        Command::Token { user, hours } => {
            let user = UserId::parse(&user)?;
            println!(
                "{}",
                mint_local_token(
                    &local_secret(&config)?,
                    &user,
                    Duration::from_secs(hours * 3600)
                )
            );
        }
        Command::Serve { host, port, stream } => {
            let repo = ctx.repo().await;
            serve_with_provisioner(&ctx.settings, &host, port, &config, repo, &stream, &[]).await?;
        }
        Command::Vm { id } => {
            use vmapi_core::Repository;
            let id = vmapi_models::VmId::parse(&id)?;
            match ctx.repo().await.get_vm(id).await? {
                Some(vm) => println!("{}", serde_json::to_string_pretty(&vm)?),
                None => return Err(format!("VM {id} not found in table {table}").into()),
            }
        }
        Command::Remove { kind, id } => {
            let gone = if kind == "team" {
                vmapi_core::Gone::Team(id.parse()?)
            } else {
                vmapi_core::Gone::Project(id.parse()?)
            };
            ctx.repo()
                .await
                .remove_owner(gone, vmapi_models::Timestamp::now())
                .await?;
            println!("removed {gone}; its VMs go with the next cleanup run");
        }
        Command::Block { id } => admin::block(&ctx, &id, true).await?,
        Command::Unblock { id } => admin::block(&ctx, &id, false).await?,
        Command::Cleanup { dry_run } => admin::cleanup(&ctx, dry_run).await?,
        Command::Adopt { dry_run } => admin::adopt(&ctx, dry_run).await?,
        Command::Dev {
            host,
            port,
            data,
            user,
            token_file,
            admin_key_file,
            stream,
        } => {
            config.check_builtin_secrets(
                &host,
                vmapi_config::Env::process()
                    .get(&vmapi_aws::settings::AWS_ENDPOINT_URL_DYNAMODB)
                    .as_deref(),
            )?;
            let client = dynamodb_client().await;
            ensure_table(&client, &table).await?;
            let repo = Arc::new(DynamoRepository::new(
                client,
                &table,
                RepositoryOptions::default(),
            ));
            let seed = read_seed(&data)?;
            let n = repo.load_seed(&seed).await?;
            let user = UserId::parse(&user)?;
            let token = mint_local_token(
                &local_secret(&config)?,
                &user,
                Duration::from_secs(12 * 3600),
            );
            if let Some(dir) = token_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&token_file, format!("{token}\n"))?;
            println!("loaded {n} demo items into table {table}");
            println!(
                "demo token for user {user} (valid 12 h, also in {}):",
                token_file.display()
            );
            println!("{token}");
            let admin_key = admin_keys::local_key(
                repo.clone(),
                vmapi_config::Env::process().get(&ADMIN_API_KEY),
                &admin_key_file,
            )
            .await?;
            println!(
                "admin key (send as 'Api-Key: <key>' to /admin/api/...; also in {}):",
                admin_key_file.display()
            );
            println!("{admin_key}");
            serve_with_provisioner(
                &ctx.settings,
                &host,
                port,
                &config,
                repo,
                &stream,
                &seed.demo_vms,
            )
            .await?;
        }
    }
    Ok(())
}

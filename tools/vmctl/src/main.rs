//! `vmctl`: the operator tool of the VM API. `vmctl --help` is its reference.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vmapi_http::auth::mint_local_token;
use vmapi_http::config::{Config, JwtMode};
use vmapi_http::state::dynamodb_client;
use vmapi_http::AppState;
use vmapi_models::{Seed, UserId};
use vmapi_secrets::{Backend, SecretsConfig};
use vmapi_store_dynamodb::{create_table, DynamoRepository, RepositoryOptions};

/// Operator tool of the VM API: tables, catalog and demo data, local tokens, the local server.
///
/// DynamoDB is reached through the usual AWS environment (AWS_REGION, credentials,
/// AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local).
#[derive(Parser)]
#[command(name = "vmctl", version)]
struct Cli {
    /// DynamoDB table.
    #[arg(long, global = true, env = "TABLE_NAME", default_value = "vm-api")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

/// Where the local stream consumer keeps its state (see docs/local-run.md).
#[derive(Args, Clone)]
struct StreamArgs {
    /// Checkpoint per shard; a restart against the same table resumes from it.
    #[arg(
        long,
        env = "STREAM_CHECKPOINT_FILE",
        default_value = ".local/stream-consumer.json"
    )]
    checkpoint_file: PathBuf,
    /// The on-failure destination: records given up on, one JSON line each.
    #[arg(
        long,
        env = "STREAM_FAILURE_FILE",
        default_value = ".local/stream-failures.jsonl"
    )]
    failure_file: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (keys, index, stream, TTL) unless it exists.
    CreateTable,
    /// Load a catalog / team / project file (JSON, see data/demo.json).
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
        #[arg(long, env = "PORT", default_value_t = 3000)]
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
        #[arg(long, env = "PORT", default_value_t = 3000)]
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
        #[command(flatten)]
        stream: StreamArgs,
    },
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    vmapi_http::logging::init_local();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("vmctl: {e}");
        std::process::exit(1);
    }
}

fn local_secret(config: &Config) -> Result<String, AnyError> {
    match &config.jwt.mode {
        JwtMode::LocalHs256 { secret } => Ok(secret.clone()),
        JwtMode::Jwks { .. } => {
            Err("JWKS_URL is set: local tokens are not accepted by such a deployment".into())
        }
    }
}

/// The secret-store settings, announced on standard output.
fn secrets_config() -> Result<SecretsConfig, AnyError> {
    let secrets = SecretsConfig::from_env()?;
    match &secrets.backend {
        Backend::SecretsManager(sm) => println!(
            "VM logins: AWS Secrets Manager{} (names {}<path>), {} scope",
            std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
                .map(|u| format!(" at {u}"))
                .unwrap_or_default(),
            sm.prefix,
            secrets.scope.path_kind()
        ),
        Backend::Vault(v) => println!(
            "VM logins: Vault KV v2 at {} (mount {}), {} scope",
            v.address,
            v.mount,
            secrets.scope.path_kind()
        ),
    }
    Ok(secrets)
}

async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<bool, AnyError> {
    let existing = client.list_tables().send().await?;
    if existing.table_names().iter().any(|t| t == table) {
        return Ok(false);
    }
    create_table(client, table).await?;
    Ok(true)
}

fn read_seed(file: &PathBuf) -> Result<Seed, AnyError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", file.display()))?)
}

async fn load(repo: &DynamoRepository, file: &PathBuf) -> Result<usize, AnyError> {
    Ok(repo.load_seed(&read_seed(file)?).await?)
}

/// Creates the demo VMs (`demoVms` of the data file) through the create use case, with their
/// fixed ids, unless they exist (a restart against the same table); prints one line each.
async fn create_demo_vms(state: &AppState, vms: &[vmapi_models::DemoVm]) -> Result<(), AnyError> {
    for demo in vms {
        match state.service.get(&demo.owner, demo.id).await {
            Ok(vm) => {
                println!(
                    "demo VM {} ({}) exists, status {:?}",
                    demo.id, vm.name, vm.status
                );
                continue;
            }
            Err(vmapi_core::Error::NotFound { .. }) => {}
            Err(e) => return Err(format!("reading demo VM {}: {e}", demo.id).into()),
        }
        let made = state
            .service
            .create_with_ids(
                &demo.owner,
                demo.request.clone(),
                &[(demo.id, demo.default_rule)],
            )
            .await
            .map_err(|e| format!("creating demo VM {}: {e}", demo.id))?;
        for vm in made {
            println!("demo VM {} ({}) created", vm.id, vm.name);
        }
    }
    Ok(())
}

async fn serve(host: &str, port: u16, state: AppState) -> Result<(), AnyError> {
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    println!("VM API listening on http://{}", listener.local_addr()?);
    vmapi_http::local::serve(listener, state, shutdown_signal()).await?;
    println!("VM API stopped");
    Ok(())
}

/// Serves every endpoint and runs the provisioner from the table's stream (as in AWS, where
/// the provisioner function consumes the stream), both until Ctrl-C or SIGTERM.
async fn serve_with_provisioner(
    host: &str,
    port: u16,
    config: &Config,
    repo: Arc<DynamoRepository>,
    stream: &StreamArgs,
    demo_vms: &[vmapi_models::DemoVm],
) -> Result<(), AnyError> {
    // The well-known local secrets only on loopback, in front of DynamoDB Local.
    config.check_builtin_secrets(
        host,
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok().as_deref(),
    )?;
    let secrets = secrets_config()?;
    let sdk = vmapi_aws::sdk_config().await;
    let store = vmapi_secrets::build(&secrets, &sdk);
    let state = AppState::new(repo.clone(), config).with_logins(store.clone(), secrets.scope);
    let provision = vmapi_provision::ProvisionConfig::from_env()?;
    let provisioner =
        vmapi_provision::provisioner(&provision, &secrets, &sdk, repo.clone(), store).await?;
    println!(
        "provisioner: {} (from the table's stream)",
        provision_summary(&provision)
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cleanup_every = std::env::var("CLEANUP_INTERVAL_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60);
    let policy = vmapi_provision::config::cleanup_policy_from_vars(|k| std::env::var(k).ok())?;
    let cleanup = vmapi_core::Cleanup::new(
        repo.clone(),
        Arc::new(vmapi_core::SystemClock),
        Some(provisioner.clone()),
        policy,
    );
    println!("cleanup job: every {cleanup_every} s (CLEANUP_INTERVAL_SECONDS)");
    let cleaner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(cleanup_every.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = vmapi_provision::cleanup::run_once(&cleanup).await {
                eprintln!("cleanup run failed: {e}");
            }
        }
    });
    // Positioned before the server listens, so no request's record is missed.
    let mut options = vmapi_provision::stream::ConsumerOptions::new(
        vmapi_provision::stream::Mapping::provisioner(),
    );
    options.checkpoints = vmapi_provision::stream::CheckpointStore::file(&stream.checkpoint_file);
    options.failures = Some(stream.failure_file.clone());
    let consumer = vmapi_provision::stream::provisioner_consumer(
        &sdk,
        repo.client(),
        repo.table(),
        provisioner,
        options,
    )
    .await?;
    println!(
        "stream consumer: as the template's event source mapping; checkpoints in {}, on-failure destination {}",
        stream.checkpoint_file.display(),
        stream.failure_file.display()
    );
    let poller = tokio::spawn(consumer.run(async {
        let _ = stop_rx.await;
    }));
    // After the consumer is positioned: the provisioner creates them on their clouds.
    let result = match create_demo_vms(&state, demo_vms).await {
        Ok(()) => serve(host, port, state).await,
        Err(e) => Err(e),
    };
    let _ = stop_tx.send(());
    let _ = poller.await;
    cleaner.abort();
    result
}

fn provision_summary(c: &vmapi_provision::ProvisionConfig) -> String {
    use vmapi_provision::Choice;
    let name = |choice: Choice, real: &str| match choice {
        Choice::Real => real.to_string(),
        Choice::Simulated => format!("SIMULATED ({} ms per step)", c.simulated_delay.as_millis()),
    };
    format!(
        "Kraud.Cloud {}, Azure {}, AWS {}",
        name(c.kraud, "kraud"),
        name(c.azure, "azure"),
        name(c.aws, "aws (AWS_ENDPOINT_URL_EC2 if set)")
    )
}

/// The table, the provisioner and the cleanup settings as the cleanup function builds them
/// (`vmctl cleanup`, `vmctl adopt`).
async fn operator_provisioner(
    table: &str,
) -> Result<
    (
        Arc<DynamoRepository>,
        vmapi_core::Provisioner,
        vmapi_core::CleanupPolicy,
    ),
    AnyError,
> {
    let repo = Arc::new(DynamoRepository::new(
        dynamodb_client().await,
        table,
        RepositoryOptions::default(),
    ));
    let policy = vmapi_provision::config::cleanup_policy_from_vars(|k| std::env::var(k).ok())?;
    let secrets = SecretsConfig::from_env()?;
    let sdk = vmapi_aws::sdk_config().await;
    let store = vmapi_secrets::build(&secrets, &sdk);
    let provision = vmapi_provision::ProvisionConfig::from_env()?;
    let provisioner =
        vmapi_provision::provisioner(&provision, &secrets, &sdk, repo.clone(), store).await?;
    Ok((repo, provisioner, policy))
}

/// `vmctl block` / `vmctl unblock`.
async fn block(table: &str, id: &str, blocked: bool) -> Result<(), AnyError> {
    let id = vmapi_models::VmId::parse(id)?;
    let repo = Arc::new(DynamoRepository::new(
        dynamodb_client().await,
        table,
        RepositoryOptions::default(),
    ));
    let service = vmapi_core::Service::new(repo, Arc::new(vmapi_core::SystemClock));
    let changed = service.set_blocked(id, blocked, "operator:vmctl").await?;
    let state = if blocked { "blocked" } else { "not blocked" };
    match changed {
        true => println!("virtual machine {id} is now {state}"),
        false => println!("virtual machine {id} was already {state}"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn run(cli: Cli) -> Result<(), AnyError> {
    let mut config = Config::from_env()?;
    config.table_name = cli.table.clone();
    match cli.command {
        Command::CreateTable => {
            let client = dynamodb_client().await;
            if ensure_table(&client, &cli.table).await? {
                println!("created table {}", cli.table);
            } else {
                println!("table {} exists", cli.table);
            }
        }
        Command::Load { file } => {
            let repo = DynamoRepository::new(
                dynamodb_client().await,
                &cli.table,
                RepositoryOptions::default(),
            );
            let n = load(&repo, &file).await?;
            println!(
                "loaded {n} items from {} into {}",
                file.display(),
                cli.table
            );
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
            let repo = Arc::new(DynamoRepository::new(
                dynamodb_client().await,
                &cli.table,
                RepositoryOptions::default(),
            ));
            serve_with_provisioner(&host, port, &config, repo, &stream, &[]).await?;
        }
        Command::Vm { id } => {
            use vmapi_core::Repository;
            let id = vmapi_models::VmId::parse(&id)?;
            let repo = DynamoRepository::new(
                dynamodb_client().await,
                &cli.table,
                RepositoryOptions::default(),
            );
            match repo.get_vm(id).await? {
                Some(vm) => println!("{}", serde_json::to_string_pretty(&vm)?),
                None => return Err(format!("VM {id} not found in table {}", cli.table).into()),
            }
        }
        Command::Remove { kind, id } => {
            let gone = if kind == "team" {
                vmapi_core::Gone::Team(id.parse()?)
            } else {
                vmapi_core::Gone::Project(id.parse()?)
            };
            let repo = DynamoRepository::new(
                dynamodb_client().await,
                &cli.table,
                RepositoryOptions::default(),
            );
            repo.remove_owner(gone, vmapi_models::Timestamp::now())
                .await?;
            println!("removed {gone}; its VMs go with the next cleanup run");
        }
        Command::Block { id } => block(&cli.table, &id, true).await?,
        Command::Unblock { id } => block(&cli.table, &id, false).await?,
        Command::Cleanup { dry_run } => {
            let (repo, provisioner, mut policy) = operator_provisioner(&cli.table).await?;
            policy.dry_run |= dry_run;
            let cleanup = vmapi_core::Cleanup::new(
                repo,
                Arc::new(vmapi_core::SystemClock),
                Some(provisioner),
                policy,
            );
            let summary = vmapi_provision::cleanup::run_once(&cleanup).await?;
            eprintln!(
                "cleanup{}: {} candidates, {} repaired, {} deleted, {} purged, {} failed, {} skipped, {} deferred, {} reconciled, {} untagged (reported, left alone; see vmctl adopt)",
                if summary.dry_run { " (dry run, nothing changed)" } else { "" },
                summary.candidates,
                summary.repaired,
                summary.deleted,
                summary.purged,
                summary.failed,
                summary.skipped,
                summary.deferred,
                summary.reconciled,
                summary.untagged
            );
        }
        Command::Adopt { dry_run } => {
            let (repo, provisioner, policy) = operator_provisioner(&cli.table).await?;
            let repo: Arc<dyn vmapi_core::Repository> = repo;
            let summary = vmapi_core::adopt::adopt(
                &repo,
                &provisioner,
                &policy.regions,
                &policy.deployment,
                dry_run,
            )
            .await;
            for line in &summary.actions {
                println!("{line}");
            }
            eprintln!(
                "adopt{} for deployment {}: {} tagged, {} left untagged (not this table's), {} failed",
                if dry_run { " (dry run, nothing changed)" } else { "" },
                policy.deployment,
                summary.adopted,
                summary.left,
                summary.failed
            );
            if summary.failed > 0 {
                return Err(format!("{} could not be tagged; run again", summary.failed).into());
            }
        }
        Command::Dev {
            host,
            port,
            data,
            user,
            token_file,
            stream,
        } => {
            config.check_builtin_secrets(
                &host,
                std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok().as_deref(),
            )?;
            let client = dynamodb_client().await;
            ensure_table(&client, &cli.table).await?;
            let repo = Arc::new(DynamoRepository::new(
                client,
                &cli.table,
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
            println!("loaded {n} demo items into table {}", cli.table);
            println!(
                "demo token for user {user} (valid 12 h, also in {}):",
                token_file.display()
            );
            println!("{token}");
            serve_with_provisioner(&host, port, &config, repo, &stream, &seed.demo_vms).await?;
        }
    }
    Ok(())
}

//! The local server (`vmctl serve`, `vmctl dev`): every endpoint on one port, the provisioner on
//! the table's stream and the cleanup job on an interval; and the table and data file helpers
//! they share with `create-table` and `load`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use vmapi_aws::settings::{AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SECRETS_MANAGER};
use vmapi_config::Env;
use vmapi_http::config::{Config, JwtMode};
use vmapi_http::AppState;
use vmapi_models::Seed;
use vmapi_provision::config::{STREAM_CHECKPOINT_FILE, STREAM_FAILURE_FILE};
use vmapi_secrets::{Backend, SecretsConfig};
use vmapi_store_dynamodb::{create_table, DynamoRepository};

use crate::error::AnyError;
use crate::stack::Settings;

/// Where the local stream consumer keeps its state (see docs/local-run.md).
#[derive(Args, Clone)]
pub struct StreamArgs {
    /// Checkpoint per shard; a restart against the same table resumes from it.
    #[arg(
        long,
        env = STREAM_CHECKPOINT_FILE.name,
        default_value = STREAM_CHECKPOINT_FILE.default
    )]
    pub checkpoint_file: PathBuf,
    /// The on-failure destination: records given up on, one JSON line each.
    #[arg(
        long,
        env = STREAM_FAILURE_FILE.name,
        default_value = STREAM_FAILURE_FILE.default
    )]
    pub failure_file: PathBuf,
}

pub fn local_secret(config: &Config) -> Result<String, AnyError> {
    match &config.jwt.mode {
        JwtMode::LocalHs256 { secret } => Ok(secret.clone()),
        JwtMode::Jwks { .. } => {
            Err("JWKS_URL is set: local tokens are not accepted by such a deployment".into())
        }
    }
}

/// The secret-store settings, announced on standard output.
pub fn secrets_config(settings: &Settings) -> Result<SecretsConfig, AnyError> {
    let secrets = SecretsConfig::read(&settings.env())?;
    match &secrets.backend {
        Backend::SecretsManager(sm) => println!(
            "VM logins: AWS Secrets Manager{} (names {}<path>), {} scope",
            Env::process()
                .get(&AWS_ENDPOINT_URL_SECRETS_MANAGER)
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

pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<bool, AnyError> {
    let existing = client.list_tables().send().await?;
    if existing.table_names().iter().any(|t| t == table) {
        return Ok(false);
    }
    create_table(client, table).await?;
    Ok(true)
}

pub fn read_seed(file: &PathBuf) -> Result<Seed, AnyError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", file.display()))?)
}

pub async fn load(repo: &DynamoRepository, file: &PathBuf) -> Result<usize, AnyError> {
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
pub async fn serve_with_provisioner(
    settings: &Settings,
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
        Env::process().get(&AWS_ENDPOINT_URL_DYNAMODB).as_deref(),
    )?;
    let secrets = secrets_config(settings)?;
    let sdk = vmapi_aws::sdk_config().await;
    let store = vmapi_secrets::build(&secrets, &sdk);
    let state = AppState::new(repo.clone(), config).with_logins(store.clone(), secrets.scope);
    let env = settings.env();
    let provision = vmapi_provision::ProvisionConfig::read(&env)?;
    let provisioner =
        vmapi_provision::provisioner(&provision, &secrets, &sdk, repo.clone(), store).await?;
    println!(
        "provisioner: {} (from the table's stream)",
        provision_summary(&provision)
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cleanup_every = vmapi_provision::config::cleanup_interval(&env).as_secs();
    let policy = vmapi_provision::config::cleanup_policy(&env)?;
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

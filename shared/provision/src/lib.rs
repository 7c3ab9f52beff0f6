//! Runs the provisioner: builds the drivers from configuration (real clouds, or the simulated
//! one where asked for, announced at start-up), and feeds it from the DynamoDB Stream, as a
//! Lambda handler or, locally, by polling DynamoDB Local's stream.

pub mod cleanup;
pub mod config;
pub mod lambda;
pub mod lazy;
#[cfg(feature = "local-stream")]
pub mod stream;

use std::sync::Arc;

use vmapi_core::cloud::{CloudDriver, DriverError, DriverKind};
use vmapi_core::{Drivers, Provisioner, Repository, SecretStore, SystemClock};
use vmapi_drivers::aws::AwsDriver;
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_drivers::SimulatedDriver;
use vmapi_models::{CloudKind, SecretPath, Sensitive};

pub use config::{Choice, ProvisionConfig, ProvisionConfigError};
pub use lazy::LazyDriver;

/// The Azure service principal as stored in the secret store (JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureCredentials {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    subscription_id: String,
    resource_group: String,
    #[serde(default)]
    management_base: Option<String>,
    #[serde(default)]
    login_base: Option<String>,
}

/// The Kraud.Cloud token as stored in the secret store (JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KraudCredentials {
    token: String,
    #[serde(default)]
    base_url: Option<String>,
}

/// Reads and parses a cloud-credential document; errors name the path, never the content. An
/// unreachable secret store is retryable; a missing or malformed document is not.
async fn read_credentials<T: serde::de::DeserializeOwned>(
    secrets: &Arc<dyn SecretStore>,
    path: &str,
) -> Result<T, DriverError> {
    let doc = match secrets.read_document(&SecretPath::from_text(path)).await {
        Ok(Some(doc)) => doc,
        Ok(None) => {
            return Err(DriverError::Unauthorized(format!(
                "cloud credentials {path} are not in the secret store"
            )))
        }
        Err(e @ vmapi_core::Error::Unavailable { .. }) => {
            return Err(DriverError::Unreachable(format!(
                "reading cloud credentials {path}: {e}"
            )))
        }
        Err(e) => {
            return Err(DriverError::Unauthorized(format!(
                "reading cloud credentials {path}: {e}"
            )))
        }
    };
    serde_json::from_str(doc.expose()).map_err(|e| {
        DriverError::Unauthorized(format!(
            "cloud credentials {path} are not the expected JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Builds the drivers the configuration names and logs which cloud is served by what. The Azure
/// and Kraud.Cloud drivers are built lazily (see [`LazyDriver`]): start-up does no network I/O,
/// and a cloud whose credentials cannot be read fails only its own VMs' operations, with a
/// reason, while every other cloud goes on.
pub fn drivers(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Drivers {
    let simulated = Arc::new(SimulatedDriver::new(config.simulated_delay));
    let mut drivers = Drivers::new();
    drivers = match config.aws {
        Choice::Real => drivers.with(CloudKind::Aws, Arc::new(AwsDriver::new(sdk.clone()))),
        Choice::Simulated => drivers.with(CloudKind::Aws, simulated.clone()),
    };
    drivers = match config.azure {
        Choice::Simulated => drivers.with(CloudKind::Azure, simulated.clone()),
        Choice::Real => {
            let (config, secrets) = (config.clone(), secrets.clone());
            let lazy = LazyDriver::new(
                DriverKind::Azure,
                AzureDriver::static_capabilities(),
                move || {
                    let (config, secrets) = (config.clone(), secrets.clone());
                    async move { logged(CloudKind::Azure, azure_driver(&config, &secrets).await) }
                },
            );
            drivers.with(CloudKind::Azure, Arc::new(lazy))
        }
    };
    drivers = match config.kraud {
        Choice::Simulated => drivers.with(CloudKind::Kraud, simulated),
        Choice::Real => {
            let (config, secrets) = (config.clone(), secrets.clone());
            let lazy = LazyDriver::new(
                DriverKind::Kraud,
                KraudDriver::static_capabilities(),
                move || {
                    let (config, secrets) = (config.clone(), secrets.clone());
                    async move { logged(CloudKind::Kraud, kraud_driver(&config, &secrets).await) }
                },
            );
            drivers.with(CloudKind::Kraud, Arc::new(lazy))
        }
    };
    tracing::info!(drivers = %drivers.describe(), "cloud drivers (simulated ones are for local development only; Azure and Kraud.Cloud read their credentials on first use)");
    drivers
}

/// Logs a failed driver build once per attempt (the operation's error carries only a generic
/// reason to users).
fn logged(
    cloud: CloudKind,
    built: Result<Arc<dyn CloudDriver>, DriverError>,
) -> Result<Arc<dyn CloudDriver>, DriverError> {
    if let Err(e) = &built {
        tracing::error!(cloud = ?cloud, error = %e, "cannot build the cloud driver; this cloud's VM operations fail until its credentials can be read");
    }
    built
}

async fn azure_driver(
    config: &ProvisionConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, DriverError> {
    let doc: AzureCredentials = read_credentials(secrets, &config.azure_credentials_secret).await?;
    let mut azure = AzureConfig::new(
        doc.tenant_id,
        doc.client_id,
        Sensitive::new(doc.client_secret),
        doc.subscription_id,
        doc.resource_group,
    );
    if let Some(base) = doc.management_base {
        azure.management_base = base;
    }
    if let Some(base) = doc.login_base {
        azure.login_base = base;
    }
    let driver = AzureDriver::new(azure)
        .map_err(|e| DriverError::Unauthorized(format!("Azure driver: {e}")))?;
    Ok(Arc::new(driver))
}

async fn kraud_driver(
    config: &ProvisionConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, DriverError> {
    let doc: KraudCredentials = read_credentials(secrets, &config.kraud_credentials_secret).await?;
    let mut kraud = KraudConfig::new(Sensitive::new(doc.token));
    if let Some(base) = doc.base_url {
        kraud.base_url = base;
    }
    let driver = KraudDriver::new(kraud)
        .map_err(|e| DriverError::Unauthorized(format!("Kraud.Cloud driver: {e}")))?;
    Ok(Arc::new(driver))
}

/// The provisioner over a repository and a secret store.
pub async fn provisioner(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    repo: Arc<dyn Repository>,
    secrets: Arc<dyn SecretStore>,
) -> Result<Provisioner, ProvisionConfigError> {
    let drivers = drivers(config, sdk, &secrets);
    Ok(Provisioner::new(
        repo,
        Arc::new(SystemClock),
        drivers,
        Some(secrets),
        config.options.clone(),
    ))
}

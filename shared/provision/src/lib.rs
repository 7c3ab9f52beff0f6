//! Runs the provisioner: builds the drivers from configuration (real clouds, or the simulated
//! one where asked for, announced at start-up), and feeds it from the DynamoDB Stream, as a
//! Lambda handler or, locally, by polling DynamoDB Local's stream.

pub mod cleanup;
pub mod config;
pub mod lambda;
pub mod stream;

use std::sync::Arc;

use vmapi_core::cloud::CloudDriver;
use vmapi_core::{Drivers, Provisioner, Repository, SecretStore, SystemClock};
use vmapi_drivers::aws::AwsDriver;
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_drivers::SimulatedDriver;
use vmapi_models::{CloudKind, SecretPath, Sensitive};

pub use config::{Choice, ProvisionConfig, ProvisionConfigError};

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

/// Reads and parses a cloud-credential document; errors name the path, never the content.
async fn read_credentials<T: serde::de::DeserializeOwned>(
    secrets: &Arc<dyn SecretStore>,
    path: &str,
) -> Result<T, ProvisionConfigError> {
    let doc = secrets
        .read_document(&SecretPath::from_text(path))
        .await
        .map_err(|e| ProvisionConfigError(format!("reading cloud credentials {path}: {e}")))?
        .ok_or_else(|| {
            ProvisionConfigError(format!(
                "cloud credentials {path} are not in the secret store"
            ))
        })?;
    serde_json::from_str(doc.expose()).map_err(|e| {
        ProvisionConfigError(format!(
            "cloud credentials {path} are not the expected JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Builds the drivers the configuration names; logs which cloud is served by what. A cloud
/// whose credentials cannot be read gets no driver (its VMs fail with a reason saying so) rather
/// than stopping every other cloud's provisioning.
pub async fn drivers(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Drivers, ProvisionConfigError> {
    let simulated = Arc::new(SimulatedDriver::new(config.simulated_delay));
    let mut drivers = Drivers::new();
    drivers = match config.aws {
        Choice::Real => drivers.with(CloudKind::Aws, Arc::new(AwsDriver::new(sdk.clone()))),
        Choice::Simulated => drivers.with(CloudKind::Aws, simulated.clone()),
    };
    // The two credential reads go out together (init pays one round trip, not two).
    let azure = async {
        match config.azure {
            Choice::Simulated => Ok(simulated.clone() as Arc<dyn CloudDriver>),
            Choice::Real => azure_driver(config, secrets).await,
        }
    };
    let kraud = async {
        match config.kraud {
            Choice::Simulated => Ok(simulated.clone() as Arc<dyn CloudDriver>),
            Choice::Real => kraud_driver(config, secrets).await,
        }
    };
    let (azure, kraud) = tokio::join!(azure, kraud);
    for (cloud, driver) in [(CloudKind::Azure, azure), (CloudKind::Kraud, kraud)] {
        match driver {
            Ok(d) => drivers = drivers.with(cloud, d),
            Err(e) => {
                tracing::error!(cloud = ?cloud, error = %e, "no driver for this cloud; its VMs will fail with a reason")
            }
        }
    }
    tracing::info!(drivers = %drivers.describe(), "cloud drivers (simulated ones are for local development only)");
    Ok(drivers)
}

async fn azure_driver(
    config: &ProvisionConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, ProvisionConfigError> {
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
    let driver =
        AzureDriver::new(azure).map_err(|e| ProvisionConfigError(format!("Azure driver: {e}")))?;
    Ok(Arc::new(driver))
}

async fn kraud_driver(
    config: &ProvisionConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, ProvisionConfigError> {
    let doc: KraudCredentials = read_credentials(secrets, &config.kraud_credentials_secret).await?;
    let mut kraud = KraudConfig::new(Sensitive::new(doc.token));
    if let Some(base) = doc.base_url {
        kraud.base_url = base;
    }
    let driver = KraudDriver::new(kraud)
        .map_err(|e| ProvisionConfigError(format!("Kraud.Cloud driver: {e}")))?;
    Ok(Arc::new(driver))
}

/// The provisioner over a repository and a secret store.
pub async fn provisioner(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    repo: Arc<dyn Repository>,
    secrets: Arc<dyn SecretStore>,
) -> Result<Provisioner, ProvisionConfigError> {
    let drivers = drivers(config, sdk, &secrets).await?;
    Ok(Provisioner::new(
        repo,
        Arc::new(SystemClock),
        drivers,
        Some(secrets),
        config.options.clone(),
    ))
}

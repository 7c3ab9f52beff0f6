//! Runs the provisioner: builds the drivers from configuration (real clouds, or the simulated
//! one where asked for, announced at start-up), and feeds it from the DynamoDB Stream, as a
//! Lambda handler or, locally, by polling DynamoDB Local's stream.

pub mod config;
pub mod lambda;
pub mod stream;

use std::sync::Arc;

use vmapi_core::{Drivers, Provisioner, Repository, SecretStore, SystemClock};
use vmapi_drivers::aws::AwsDriver;
use vmapi_drivers::SimulatedDriver;
use vmapi_models::CloudKind;

pub use config::{Choice, ProvisionConfig, ProvisionConfigError};

/// Builds the drivers the configuration names; logs which cloud is served by what.
pub async fn drivers(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    _secrets: &Arc<dyn SecretStore>,
) -> Result<Drivers, ProvisionConfigError> {
    let simulated = Arc::new(SimulatedDriver::new(config.simulated_delay));
    let mut drivers = Drivers::new();
    drivers = match config.aws {
        Choice::Real => drivers.with(CloudKind::Aws, Arc::new(AwsDriver::new(sdk.clone()))),
        Choice::Simulated => drivers.with(CloudKind::Aws, simulated.clone()),
    };
    for (cloud, choice) in [(CloudKind::Azure, config.azure), (CloudKind::Kraud, config.kraud)] {
        match choice {
            Choice::Simulated => drivers = drivers.with(cloud, simulated.clone()),
            Choice::Real => {
                return Err(ProvisionConfigError(format!(
                    "the {cloud:?} driver is not wired into the provisioner yet; set {}_DRIVER=simulated",
                    format!("{cloud:?}").to_uppercase()
                )))
            }
        }
    }
    tracing::info!(drivers = %drivers.describe(), "cloud drivers (simulated ones are for local development only)");
    Ok(drivers)
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

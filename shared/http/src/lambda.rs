//! The Lambda entry point shared by every function binary.
//!
//! The endpoint is a const parameter (its index in [`Endpoint::ALL`]) rather than a value, so
//! that each binary is compiled with its own handler only:
//! `run::<{ Endpoint::GetVm.index() }>()`.
//!
//! When the Runtime API closes the connection (the emulator of `sam local` stops the function
//! after its answer) the process ends quietly (`vmapi_aws::runtime`).

use vmapi_secrets::SecretsConfig;

use crate::config::Config;
use crate::routes::single_router;
#[cfg(doc)]
use crate::routes::Endpoint;
use crate::state::AppState;

/// Builds the state once per cold start and serves endpoint `E` until the runtime stops.
pub async fn run<const E: usize>() -> Result<(), lambda_http::Error> {
    crate::logging::init_lambda();
    let config = Config::from_env()?;
    let state = AppState::from_config(&config)
        .await
        .with_metrics(vmapi_aws::emf::Emf::from_env());
    vmapi_aws::runtime::quiet_on_close(lambda_http::run(single_router::<E>(state)).await)
}

/// Like [`run`], for the functions that keep or read VM logins (create, credentials): also
/// builds the secret store from its configuration.
pub async fn run_with_logins<const E: usize>() -> Result<(), lambda_http::Error> {
    crate::logging::init_lambda();
    let config = Config::from_env()?;
    let secrets = SecretsConfig::from_env()?;
    let state = AppState::from_config_with_logins(&config, &secrets)
        .await
        .with_metrics(vmapi_aws::emf::Emf::from_env());
    vmapi_aws::runtime::quiet_on_close(lambda_http::run(single_router::<E>(state)).await)
}

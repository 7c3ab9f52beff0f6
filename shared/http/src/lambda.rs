//! The Lambda entry point shared by every function binary.

use vmapi_secrets::SecretsConfig;

use crate::config::Config;
use crate::routes::{router, Endpoint};
use crate::state::AppState;

/// Builds the state once per cold start and serves `endpoint` until the runtime stops.
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    crate::logging::init_lambda();
    let config = Config::from_env()?;
    let state = AppState::from_config(&config).await;
    lambda_http::run(router(state, &[endpoint])).await
}

/// Like [`run`], for the functions that keep or read VM logins (create, delete, credentials):
/// also builds the secret store from its configuration.
pub async fn run_with_logins(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    crate::logging::init_lambda();
    let config = Config::from_env()?;
    let secrets = SecretsConfig::from_env()?;
    let state = AppState::from_config_with_logins(&config, &secrets).await;
    lambda_http::run(router(state, &[endpoint])).await
}

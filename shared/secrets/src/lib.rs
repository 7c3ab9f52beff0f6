//! Secret-store adapters of the VM API: HashiCorp Vault KV v2 and AWS Secrets Manager,
//! chosen by configuration, with reads cached per container.

pub mod config;
mod json_problem;
pub mod secretsmanager;
pub mod vault;

use std::sync::Arc;

use aws_config::SdkConfig;
use vmapi_core::{CachedSecretStore, SecretStore};

pub use config::{Backend, SecretsConfig, VaultAuth, VaultConfig};
pub(crate) use json_problem::json_problem;
pub use secretsmanager::SecretsManagerStore;
pub use vault::VaultStore;

/// Builds the configured store (no network I/O until first use).
pub fn build(config: &SecretsConfig, sdk: &SdkConfig) -> Arc<dyn SecretStore> {
    let store: Arc<dyn SecretStore> = match &config.backend {
        Backend::SecretsManager(sm) => Arc::new(SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            sm.clone(),
            config.deployment.clone(),
        )),
        Backend::Vault(v) => {
            let needs_aws = matches!(v.auth, VaultAuth::AwsIam { .. });
            Arc::new(VaultStore::new(
                v.clone(),
                needs_aws.then(|| sdk.clone()),
                config.deployment.clone(),
            ))
        }
    };
    if config.cache_ttl.is_zero() {
        store
    } else {
        Arc::new(CachedSecretStore::new(store, config.cache_ttl))
    }
}

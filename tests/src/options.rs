//! How a test app is started: where it keeps logins, its scope, quotas and clients.

use std::sync::Arc;
use std::time::Duration;

use vmapi_core::SecretStore;
use vmapi_models::CredentialScope;

/// Where a test app keeps VM logins.
pub enum Logins {
    /// Secrets Manager on moto, under a name prefix of its own.
    SecretsManager,
    /// Vault (OpenBao): its address, a token and the KV v2 mount.
    Vault {
        /// Address.
        address: String,
        /// Token.
        token: String,
        /// KV v2 mount.
        mount: String,
    },
    /// Any store (e.g. one that fails on purpose).
    Store(Arc<dyn SecretStore>),
}

/// How to start a test app.
pub struct Options {
    /// DynamoDB client (default: DynamoDB Local).
    pub client: Option<aws_sdk_dynamodb::Client>,
    /// Scope of new logins.
    pub scope: CredentialScope,
    /// The secret store.
    pub logins: Logins,
    /// Default quota limits of the server ([`GENEROUS_QUOTAS`] unless a test sets its own, so
    /// tests that make many VMs in the demo team are not refused).
    pub quotas: vmapi_core::QuotaLimits,
    /// How long the server caches login reads (`SECRETS_CACHE_SECONDS`; 300 s by default, zero
    /// sends every read to the store).
    pub login_cache: Duration,
}

/// The harness's default quota limits: far above what any test creates.
pub const GENEROUS_QUOTAS: vmapi_core::QuotaLimits = vmapi_core::QuotaLimits {
    max_active_vms: 100_000,
    max_vcpus: 1_000_000,
};

impl Default for Options {
    fn default() -> Self {
        Options {
            client: None,
            scope: CredentialScope::Team,
            login_cache: Duration::from_secs(300),
            logins: Logins::SecretsManager,
            quotas: GENEROUS_QUOTAS,
        }
    }
}

//! What every request needs, built once per cold start.

use std::sync::Arc;

use vmapi_aws::emf::Emf;
use vmapi_core::{IdempotencyStore, Repository, SecretStore, Service, SystemClock};
use vmapi_models::CredentialScope;
use vmapi_secrets::SecretsConfig;
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::cursor::CursorCodec;

/// Shared state of the routers: use cases, token verification, cursor signing.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Service,
    /// Token verification.
    pub auth: Authenticator,
    /// Cursor signing.
    pub cursors: CursorCodec,
    /// Idempotency records (`Idempotency-Key`).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Per-route request metrics (in Lambda; none locally).
    pub metrics: Option<Emf>,
}

impl AppState {
    /// Wires the state over the DynamoDB repository, which is also the idempotency store
    /// (tests, local server).
    pub fn new(repo: Arc<DynamoRepository>, config: &Config) -> Self {
        Self::over(repo.clone(), repo.clone(), config).with_admin_keys(repo)
    }

    /// Adds the admin keys the admin routes check.
    pub fn with_admin_keys(mut self, store: Arc<dyn vmapi_core::AdminKeyStore>) -> Self {
        self.service = self.service.with_admin_keys(store);
        self
    }

    /// Wires the state over any repository and idempotency store (e.g. the in-memory ports of
    /// `vmapi_core::memory`).
    pub fn over(
        repo: Arc<dyn Repository>,
        idempotency: Arc<dyn IdempotencyStore>,
        config: &Config,
    ) -> Self {
        AppState {
            service: Service::new(repo, Arc::new(SystemClock)).with_quotas(config.quotas),
            auth: Authenticator::new(config.jwt.clone()),
            cursors: CursorCodec::new(&config.cursor_secret),
            idempotency,
            metrics: None,
        }
    }

    /// Counts every answered request of a route (count, errors, latency) in `metrics`.
    pub fn with_metrics(mut self, metrics: Emf) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds the secret store (create, delete and credentials need it).
    pub fn with_logins(mut self, store: Arc<dyn SecretStore>, scope: CredentialScope) -> Self {
        self.service = self.service.with_logins(store, scope);
        self
    }

    /// Builds the DynamoDB client and the state. No network I/O: clients connect on first use.
    pub async fn from_config(config: &Config) -> Self {
        Self::from_sdk(config, &vmapi_aws::sdk_config().await)
    }

    /// The same, over a loaded SDK configuration.
    pub fn from_sdk(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        let repo = DynamoRepository::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table_name.clone(),
            RepositoryOptions {
                catalog_ttl: config.catalog_ttl,
            },
        );
        Self::new(Arc::new(repo), config)
    }

    /// The state plus the secret store configured by `secrets` (create, delete, credentials).
    pub async fn from_config_with_logins(config: &Config, secrets: &SecretsConfig) -> Self {
        let sdk = vmapi_aws::sdk_config().await;
        Self::from_sdk(config, &sdk).with_logins(vmapi_secrets::build(secrets, &sdk), secrets.scope)
    }
}

/// A DynamoDB client from the environment (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB
/// Local), with the shared timeouts.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&vmapi_aws::sdk_config().await)
}

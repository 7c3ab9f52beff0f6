//! What every request needs, built once per cold start.

use std::sync::Arc;

use vmapi_core::{SecretStore, Service, SystemClock};
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
}

impl AppState {
    /// Wires the state from parts (tests, local server).
    pub fn new(repo: Arc<DynamoRepository>, config: &Config) -> Self {
        AppState {
            service: Service::new(repo, Arc::new(SystemClock)),
            auth: Authenticator::new(config.jwt.clone()),
            cursors: CursorCodec::new(&config.cursor_secret),
        }
    }

    /// Adds the secret store (create, delete and credentials need it).
    pub fn with_logins(mut self, store: Arc<dyn SecretStore>, scope: CredentialScope) -> Self {
        self.service = self.service.with_logins(store, scope);
        self
    }

    /// Builds the DynamoDB client and the state, plus the secret store when `secrets` is
    /// given. No network I/O: clients connect on first use.
    pub async fn from_config(config: &Config, secrets: Option<&SecretsConfig>) -> Self {
        let sdk = vmapi_aws::sdk_config().await;
        let repo = DynamoRepository::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table_name.clone(),
            RepositoryOptions {
                catalog_ttl: config.catalog_ttl,
            },
        );
        let state = Self::new(Arc::new(repo), config);
        match secrets {
            Some(s) => state.with_logins(vmapi_secrets::build(s, &sdk), s.scope),
            None => state,
        }
    }
}

/// A DynamoDB client from the environment (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB
/// Local), with the shared timeouts.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&vmapi_aws::sdk_config().await)
}

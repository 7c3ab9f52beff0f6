//! What every request needs, built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use vmapi_core::{Service, SystemClock};
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

    /// Builds the DynamoDB client and the state. No network I/O: clients connect on first use.
    pub async fn from_config(config: &Config) -> Self {
        let client = dynamodb_client().await;
        let repo = DynamoRepository::new(
            client,
            config.table_name.clone(),
            RepositoryOptions {
                catalog_ttl: config.catalog_ttl,
            },
        );
        Self::new(Arc::new(repo), config)
    }
}

/// A DynamoDB client from the environment (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local),
/// with timeouts short enough to answer 503 rather than hang.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

//! What the AWS adapters share: one SDK configuration (with timeouts short enough to answer
//! 503 rather than hang) and one mapping of SDK errors to the core error.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use vmapi_core::{Error, ErrorChain};

/// The SDK configuration from the environment (`AWS_ENDPOINT_URL_<SERVICE>` points a service
/// at DynamoDB Local or moto). Loads nothing over the network: clients connect on first use.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}

/// Which dependency failed, for the client-facing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// DynamoDB.
    Database,
    /// Secrets Manager.
    SecretStore,
}

impl Dependency {
    fn service(self) -> &'static str {
        match self {
            Dependency::Database => "DynamoDB",
            Dependency::SecretStore => "Secrets Manager",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::SecretStore => "secret store",
        }
    }
}

const THROTTLING: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServiceError",
];

/// Maps an SDK error of operation `op`: unreachable, timed out or throttled is 503 with
/// `Retry-After`; anything else is internal. The cause goes to the logs only.
pub fn map_sdk<E, R>(dep: Dependency, op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            unavailable(dep, op, err)
        }
        SdkError::ServiceError(se) if se.err().code().is_some_and(|c| THROTTLING.contains(&c)) => {
            unavailable(dep, op, err)
        }
        _ => Error::internal(format!("{} {op}", dep.service()), err),
    }
}

/// A 503 naming the dependency, with the cause for the logs.
pub fn unavailable(
    dep: Dependency,
    op: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Unavailable {
        message: format!("the {} is unavailable or busy; retry shortly", dep.noun()),
        retry_after_secs: 2,
        source: Some(format!("{} {op}: {}", dep.service(), ErrorChain(&*err.into())).into()),
    }
}

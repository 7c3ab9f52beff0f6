//! SDK errors to the core error, through the shared AWS mapping.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use vmapi_aws::Dependency;
use vmapi_core::Error;

/// Maps an SDK error of DynamoDB operation `op`.
pub(crate) fn map_sdk<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    vmapi_aws::map_sdk(Dependency::Database, op, err)
}

/// A 503 about DynamoDB operation `op`.
pub(crate) fn unavailable(
    op: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    vmapi_aws::unavailable(Dependency::Database, op, err)
}

/// Whether `err` is DynamoDB refusing a write's condition (`ConditionalCheckFailedException`).
pub(crate) fn condition_refused<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

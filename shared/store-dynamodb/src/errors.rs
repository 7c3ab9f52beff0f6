//! SDK errors to the core error: unreachable or throttled is 503, the rest is internal.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use vmapi_core::{Error, ErrorChain};

const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// Maps an SDK error of operation `op`.
pub(crate) fn map_sdk<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            unavailable(op, err)
        }
        SdkError::ServiceError(se) if se.err().code().is_some_and(|c| THROTTLING.contains(&c)) => {
            unavailable(op, err)
        }
        _ => Error::internal(format!("DynamoDB {op}"), err),
    }
}

pub(crate) fn unavailable(
    op: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Unavailable {
        message: "the database is unavailable or busy; retry shortly".into(),
        retry_after_secs: 2,
        source: Some(format!("DynamoDB {op}: {}", ErrorChain(&*err.into())).into()),
    }
}

//! SDK errors mapped to [`DriverError`]s, keeping EC2's code and message or the real cause.

use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use vmapi_core::cloud::DriverError;
use vmapi_core::ErrorChain;

/// The error code of an SDK error, if EC2 answered one.
pub(super) fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(se) => se.err().code().map(str::to_string),
        _ => None,
    }
}

pub(super) const QUOTA: [&str; 5] = [
    "InsufficientInstanceCapacity",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "MaxSpotInstanceCountExceeded",
    "InsufficientCapacity",
];

/// Maps an SDK error to the driver taxonomy, keeping the real cause: a service error's code
/// and message; for a dispatch, timeout or response error (unreachable: never shown to users)
/// the whole source chain, down to the I/O, TLS or parse error, where the SDK's own text says
/// only "dispatch failure". A request the SDK could not even build (a bug of ours) keeps the
/// SDK's short text, which becomes the VM's status reason, and logs its cause here.
pub fn map_err<E, R>(e: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            DriverError::Unreachable(ErrorChain(&e).to_string())
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or("").to_string();
            match code.as_str() {
                "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => {
                    DriverError::Throttled {
                        retry_after: Duration::from_secs(2),
                    }
                }
                "AuthFailure" | "UnauthorizedOperation" | "Blocked" | "OptInRequired" => {
                    DriverError::Unauthorized(format!("{code}: {message}"))
                }
                c if QUOTA.contains(&c) => DriverError::Quota(format!("{code}: {message}")),
                "IncorrectInstanceState" | "IncorrectState" | "DependencyViolation" => {
                    DriverError::Conflict(format!("{code}: {message}"))
                }
                "InvalidGroup.NotFound" => DriverError::NotFound(message),
                c if c.starts_with("InvalidInstanceID") => DriverError::NotFound(message),
                c if c.starts_with("Invalid")
                    || c.starts_with("Unsupported")
                    || c == "IdempotentParameterMismatch"
                    || c == "IdempotentInstanceTerminated" =>
                {
                    DriverError::InvalidSpec(format!("{code}: {message}"))
                }
                _ => DriverError::Provider { code, message },
            }
        }
        _ => {
            tracing::error!(error = %ErrorChain(&e), "an EC2 request could not be built");
            DriverError::Provider {
                code: "SdkError".into(),
                message: e.to_string(),
            }
        }
    }
}

//! Resource Manager, operation and transport failures mapped to [`DriverError`]s.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use vmapi_core::cloud::DriverError;
use vmapi_core::ErrorChain;

use super::util::{retry_after, truncate};

/// Wait before a retry when a 429 names no `Retry-After`.
pub(super) const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(5);

/// Error codes that mean quota or capacity.
pub(super) fn is_quota_code(code: &str, message: &str) -> bool {
    const CODES: &[&str] = &[
        "QuotaExceeded",
        "SkuNotAvailable",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
        "PublicIPCountLimitReached",
    ];
    CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
        || code.to_ascii_lowercase().contains("quota")
        || (code.eq_ignore_ascii_case("OperationNotAllowed")
            && message.to_ascii_lowercase().contains("quota"))
}

/// Error codes that mean the request cannot succeed as given.
pub(super) fn is_invalid_code(code: &str) -> bool {
    const CODES: &[&str] = &[
        "InvalidParameter",
        "InvalidRequestContent",
        "InvalidRequestFormat",
        "BadRequest",
        "ImageNotFound",
        "PlatformImageNotFound",
        "InvalidApiVersionParameter",
        "LocationNotAvailableForResourceType",
        "NoRegisteredProviderFound",
        "InvalidResourceReference",
        "VMMarketplaceInvalidInput",
        "RequestDisallowedByPolicy",
        "PropertyChangeNotAllowed",
    ];
    CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

/// Maps an unsuccessful Resource Manager response to a driver error.
pub(super) fn arm_error(status: StatusCode, headers: &HeaderMap, body: &str) -> DriverError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let code = error["code"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("HTTPError")
                .replace(' ', "")
        });
    let message = truncate(error["message"].as_str().unwrap_or(""));
    let text = if message.is_empty() {
        format!("{code} (HTTP {})", status.as_u16())
    } else {
        format!("{code}: {message}")
    };
    match status.as_u16() {
        429 => DriverError::Throttled {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_THROTTLE_WAIT),
        },
        401 | 403 if !is_invalid_code(&code) => DriverError::Unauthorized(text),
        _ if is_quota_code(&code, &message) => DriverError::Quota(text),
        400 => DriverError::InvalidSpec(text),
        _ if is_invalid_code(&code) => DriverError::InvalidSpec(text),
        404 => DriverError::NotFound(text),
        409 => DriverError::Conflict(text),
        s if s >= 500 => {
            DriverError::Unreachable(format!("Resource Manager answered HTTP {s}: {text}"))
        }
        _ => DriverError::Provider { code, message },
    }
}

/// Maps a Failed or Canceled operation status to a driver error.
pub(super) fn operation_error(status: &str, error: &Value) -> DriverError {
    let code = error["code"].as_str().unwrap_or(status).to_string();
    let message = truncate(
        error["message"]
            .as_str()
            .unwrap_or("the operation did not succeed"),
    );
    if is_quota_code(&code, &message) {
        DriverError::Quota(format!("{code}: {message}"))
    } else if is_invalid_code(&code) {
        DriverError::InvalidSpec(format!("{code}: {message}"))
    } else {
        DriverError::Provider { code, message }
    }
}

pub(super) fn transport_error(service: &str, error: &reqwest::Error) -> DriverError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest errors name the URL (no secrets: the token travels in a header, the client
    // secret in the body); their own text ("error sending request") hides the cause in the
    // source chain (the connect, TLS or I/O error).
    DriverError::Unreachable(format!("{service} {kind}: {}", ErrorChain(error)))
}

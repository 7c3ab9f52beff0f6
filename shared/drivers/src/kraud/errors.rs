//! Transport failures and unsuccessful Kraud answers mapped to [`DriverError`]s.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::Response;
use vmapi_core::cloud::DriverError;
use vmapi_core::ErrorChain;

use super::config::MAX_MESSAGE;
use super::wire::ErrorBody;

/// Maps a transport failure. reqwest's own text ("error sending request") hides the cause in
/// its source chain (the connect, TLS or I/O error), so unreachable errors, which only the logs
/// show, carry the chain. An unreadable answer becomes the VM's status reason and keeps
/// reqwest's short text there; its cause is logged.
pub(super) fn transport_error(what: &str, e: reqwest::Error) -> DriverError {
    let e = e.without_url();
    if e.is_timeout() {
        DriverError::Unreachable(format!("{what}: timed out ({})", ErrorChain(&e)))
    } else if e.is_decode() || e.is_body() {
        tracing::warn!(call = what, error = %ErrorChain(&e), "the Kraud API's answer could not be read");
        DriverError::Provider {
            code: "invalid_response".into(),
            message: format!("{what}: {e}"),
        }
    } else {
        DriverError::Unreachable(format!("{what}: {}", ErrorChain(&e)))
    }
}

/// Maps an answer above 299 (`{"message": "..."}` per the API) to a [`DriverError`].
pub(super) async fn error_from_response(what: &str, resp: Response) -> DriverError {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| {
            if body.trim().is_empty() || body.trim_start().starts_with('<') {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                body.trim().to_string()
            }
        });
    let message = format!("{what}: {}", truncate(&message));
    match status.as_u16() {
        401 | 403 => DriverError::Unauthorized(message),
        404 => DriverError::NotFound(message),
        409 => DriverError::Conflict(message),
        429 => DriverError::Throttled {
            retry_after: Duration::from_secs(retry_after.unwrap_or(5).clamp(1, 300)),
        },
        402 => DriverError::Quota(message),
        400 | 422 => DriverError::InvalidSpec(message),
        500..=599 => DriverError::Unreachable(format!("{message} (HTTP {})", status.as_u16())),
        code => DriverError::Provider {
            code: code.to_string(),
            message,
        },
    }
}

pub(super) fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

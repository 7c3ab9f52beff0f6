//! Long-running operations: followed through `Azure-AsyncOperation` or else `Location`,
//! honouring `Retry-After`, for a bounded time, and only on the management origin.

use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use reqwest::Method;
use serde_json::Value;
use vmapi_core::cloud::DriverError;

use super::driver::AzureDriver;
use super::errors::{operation_error, DEFAULT_THROTTLE_WAIT};
use super::request::ArmResponse;
use super::util::{header_str, retry_after};

/// First poll interval of an operation without `Retry-After`; doubles up to the maximum.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Shortest wait between polls, even with `Retry-After: 0`.
const POLL_FLOOR: Duration = Duration::from_millis(50);
/// Longest operation URL followed (ARM: clients must accept 4 KB).
const MAX_OPERATION_URL: usize = 4096;

/// How an operation ended within the time given.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    StillRunning,
}

impl AzureDriver {
    /// Follows the operation `resp` started, for at most `limit`.
    pub(super) async fn wait_for(
        &self,
        resp: &ArmResponse,
        limit: Duration,
    ) -> Result<Outcome, DriverError> {
        if !is_async(resp) {
            return Ok(Outcome::Done);
        }
        let deadline = Instant::now() + limit;
        let async_url = header_str(&resp.headers, "azure-asyncoperation");
        let location = header_str(&resp.headers, LOCATION.as_str());
        let (url, via_status) = match (async_url, location) {
            (Some(url), _) => (url, true),
            (None, Some(url)) => (url, false),
            (None, None) => return Ok(Outcome::StillRunning),
        };
        if !self.followable(&url) {
            tracing::warn!("not following an operation URL outside the management endpoint");
            return Ok(Outcome::StillRunning);
        }
        let mut backoff = BACKOFF_START;
        let mut wait = retry_after(&resp.headers);
        loop {
            let delay = wait.take().unwrap_or_else(|| {
                let d = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                d
            });
            let now = Instant::now();
            if now >= deadline {
                return Ok(Outcome::StillRunning);
            }
            tokio::time::sleep(delay.max(POLL_FLOOR).min(deadline - now)).await;
            let poll = match self.call(Method::GET, &url, None).await {
                Ok(poll) => poll,
                Err(e) if e.is_retryable() => {
                    wait = Some(e.retry_after().min(BACKOFF_MAX));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if via_status {
                if !poll.status.is_success() {
                    let error = poll.error();
                    if error.is_retryable() {
                        wait = retry_after(&poll.headers);
                        continue;
                    }
                    return Err(error);
                }
                let status = poll.json()?;
                match status["status"].as_str().unwrap_or("") {
                    s if s.eq_ignore_ascii_case("Succeeded") => return Ok(Outcome::Done),
                    s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                        return Err(operation_error(s, &status["error"]));
                    }
                    _ => wait = retry_after(&poll.headers),
                }
            } else {
                match poll.status.as_u16() {
                    202 => wait = retry_after(&poll.headers),
                    200..=299 => return Ok(Outcome::Done),
                    429 => wait = Some(retry_after(&poll.headers).unwrap_or(DEFAULT_THROTTLE_WAIT)),
                    401 | 403 | 404 => return Err(poll.error()),
                    status => {
                        // The result of a failed operation is its error (ARM RPC); a 5xx
                        // without one is the gateway's and worth another poll.
                        let body: Value = serde_json::from_str(&poll.body).unwrap_or(Value::Null);
                        if body["error"]["code"].is_string() {
                            return Err(operation_error("Failed", &body["error"]));
                        }
                        if status < 500 {
                            return Err(poll.error());
                        }
                        wait = retry_after(&poll.headers);
                    }
                }
            }
        }
    }

    /// Whether an operation URL may be polled with the token: same management origin, sane size.
    pub(super) fn followable(&self, url: &str) -> bool {
        url.len() <= MAX_OPERATION_URL && url.starts_with(&format!("{}/", self.management_base))
    }
}

/// Whether a response starts an asynchronous operation.
pub(super) fn is_async(resp: &ArmResponse) -> bool {
    match resp.status.as_u16() {
        201 | 202 => true,
        200 => serde_json::from_str::<Value>(&resp.body)
            .ok()
            .and_then(|v| {
                v.pointer("/properties/provisioningState")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .is_some_and(|s| {
                !["succeeded", "failed", "canceled"].contains(&s.to_ascii_lowercase().as_str())
            }),
        _ => false,
    }
}

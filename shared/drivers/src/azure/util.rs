//! Small helpers of the Azure driver: headers, ARM ids and image URNs, URL paths, truncated
//! provider text and the token request's form body.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use vmapi_core::cloud::DriverError;

/// Longest provider text quoted in errors.
const MAX_MESSAGE: usize = 500;

/// `Retry-After` in seconds.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An ARM resource id we are willing to put into a URL path.
pub(super) fn safe_arm_id(id: &str) -> bool {
    id.starts_with("/subscriptions/")
        && !id.contains("..")
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '(' | ')'))
}

/// A VM resource id we are willing to put into a URL path.
pub(super) fn is_vm_resource_id(id: &str) -> bool {
    safe_arm_id(id)
        && id
            .to_ascii_lowercase()
            .contains("/providers/microsoft.compute/virtualmachines/")
}

/// `publisher:offer:sku:version`.
pub(super) fn parse_urn(urn: &str) -> Result<[String; 4], DriverError> {
    let parts: Vec<&str> = urn.split(':').map(str::trim).collect();
    match parts.as_slice() {
        [publisher, offer, sku, version] if parts.iter().all(|p| !p.is_empty()) => Ok([
            publisher.to_string(),
            offer.to_string(),
            sku.to_string(),
            version.to_string(),
        ]),
        _ => Err(DriverError::InvalidSpec(format!(
            "'{}' is not an Azure image URN (publisher:offer:sku:version)",
            truncate(urn)
        ))),
    }
}

pub(super) fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The path of a URL, for logs (no query).
pub(super) fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

pub(super) fn truncate(s: &str) -> String {
    vmapi_models::error::clip(s, MAX_MESSAGE)
}

/// What a form value keeps as it is: the unreserved characters of RFC 3986 (a space is `%20`).
const FORM_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `application/x-www-form-urlencoded` body.
pub(super) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(key, FORM_KEEP),
                utf8_percent_encode(value, FORM_KEEP)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

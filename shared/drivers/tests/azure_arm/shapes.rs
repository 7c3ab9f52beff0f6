//! Checks in code for the exchanges no vendored document describes:
//!
//! * the Microsoft Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`), against
//!   Microsoft's documented client-credentials request (form fields `client_id`, `scope` ending in
//!   `/.default`, `client_secret`, `grant_type=client_credentials`) and its success
//!   (`token_type: Bearer`, `expires_in`, `access_token`) and error (`error`,
//!   `error_description`) answers;
//! * the long-running-operation monitors of Resource Manager: a `GET` without body of the URL an
//!   `Azure-AsyncOperation` header gave (answer 200 with a `status`, and `error{code,message}`
//!   once `Failed` or `Canceled`) or a `Location` header gave (202 with `Location`, a 2xx when
//!   done, an ARM error body otherwise), and the operation headers of every answer
//!   (`Azure-AsyncOperation` and `Location` absolute URLs, `Retry-After` whole seconds).
//!
//! The Tags API (`Microsoft.Resources/tags`, used by `adopt`) is not vendored either: it is
//! skipped by the document check and its body is checked by the server itself (`merge_tags`).

use std::collections::BTreeMap;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::spec_check::Violations;

/// Paths the document check skips: checked here (token, operation monitors) or not at all
/// (the Tags API; see the module doc).
pub fn skip(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("/login/")
        || is_monitor(&lower)
        || lower.contains("/providers/microsoft.resources/tags/")
}

fn is_monitor(lower: &str) -> bool {
    let s: Vec<&str> = lower.trim_start_matches('/').split('/').collect();
    matches!(
        s.as_slice(),
        [
            "subscriptions",
            _,
            "providers",
            _,
            "locations",
            _,
            "operations" | "operationresults",
            _
        ]
    )
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    url_pairs(&String::from_utf8_lossy(body))
}

fn url_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Problems of a client-credentials token request (Microsoft identity platform v2.0).
pub fn token_request(method: &Method, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if *method != Method::POST {
        problems.push(format!(
            "token request with method {method} (POST expected)"
        ));
    }
    if !header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        problems.push("token request is not application/x-www-form-urlencoded".into());
    }
    let f = form(body);
    for key in f.keys() {
        if !["client_id", "scope", "client_secret", "grant_type"].contains(&key.as_str()) {
            problems.push(format!(
                "token request field {key} is not one of the documented ones"
            ));
        }
    }
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        problems.push("token request grant_type is not client_credentials".into());
    }
    for key in ["client_id", "client_secret"] {
        if f.get(key).is_none_or(|v| v.is_empty()) {
            problems.push(format!("token request without {key}"));
        }
    }
    if !f.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        problems.push("token request scope does not end in /.default".into());
    }
    problems
}

/// Problems of a token endpoint answer.
pub fn token_response(status: u16, body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    if status == 200 {
        if v["token_type"].as_str() != Some("Bearer") {
            problems.push("token answer without token_type Bearer".into());
        }
        if !v["expires_in"].is_u64() {
            problems.push("token answer without a whole expires_in".into());
        }
        if v["access_token"].as_str().is_none_or(|t| t.is_empty()) {
            problems.push("token answer without access_token".into());
        }
    } else if !(v["error"].is_string() && v["error_description"].is_string()) {
        problems.push(format!(
            "token error {status} without error and error_description"
        ));
    }
    problems
}

fn arm_error_body(v: &Value) -> bool {
    v["error"]["code"].is_string() && v["error"]["message"].is_string()
}

/// Problems of an operation monitor exchange.
pub fn monitor(
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    status: u16,
    headers: &HeaderMap,
    answer: &[u8],
) -> Vec<String> {
    let mut problems = Vec::new();
    if *method != Method::GET || !body.is_empty() {
        problems.push(format!(
            "operation monitor polled with {method} and {} body bytes (GET without body expected)",
            body.len()
        ));
    }
    if !url_pairs(query).contains_key("api-version") {
        problems.push("operation monitor URL without api-version".into());
    }
    let v: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    let lower = path.to_ascii_lowercase();
    if status >= 400 {
        if !arm_error_body(&v) {
            problems.push(format!(
                "operation monitor error {status} without error{{code,message}}"
            ));
        }
    } else if lower.contains("/operations/") {
        match v["status"].as_str() {
            None => problems.push("Azure-AsyncOperation answer without status".into()),
            Some(s)
                if ["failed", "canceled"].contains(&s.to_ascii_lowercase().as_str())
                    && !arm_error_body(&json_error(&v)) =>
            {
                problems.push(format!(
                    "Azure-AsyncOperation status {s} without error{{code,message}}"
                ))
            }
            Some(_) if status != 200 => problems.push(format!(
                "Azure-AsyncOperation answered {status} (200 expected)"
            )),
            Some(_) => {}
        }
    } else if status == 202 && header(headers, "location").is_none() {
        problems.push("Location monitor answered 202 without a Location".into());
    }
    problems
}

fn json_error(v: &Value) -> Value {
    serde_json::json!({ "error": v["error"] })
}

/// Problems of the operation headers of any answer.
pub fn operation_headers(headers: &HeaderMap) -> Vec<String> {
    let mut problems = Vec::new();
    for name in ["azure-asyncoperation", "location"] {
        if let Some(url) = header(headers, name) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(format!("{name} header {url} is not an absolute URL"));
            }
        }
    }
    if let Some(s) = header(headers, "retry-after") {
        if s.parse::<u64>().is_err() {
            problems.push(format!("Retry-After {s} is not whole seconds"));
        }
    }
    problems
}

/// Axum middleware: runs the checks above and records what they find.
pub async fn layer(State(violations): State<Violations>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let lower = path.to_ascii_lowercase();
    let mut problems = Vec::new();
    if lower.starts_with("/login/") {
        problems.extend(token_request(&parts.method, &parts.headers, &body));
    }
    let method = parts.method.clone();
    let response = next
        .run(Request::from_parts(parts, Body::from(body.clone())))
        .await;
    let (rparts, rbody) = response.into_parts();
    let rbody = to_bytes(rbody, 4 << 20).await.unwrap_or_default();
    let status = rparts.status.as_u16();
    if lower.starts_with("/login/") {
        problems.extend(token_response(status, &rbody));
    } else if is_monitor(&lower) {
        problems.extend(monitor(
            &method,
            &path,
            &query,
            &body,
            status,
            &rparts.headers,
            &rbody,
        ));
    }
    problems.extend(operation_headers(&rparts.headers));
    for p in problems {
        violations.push(format!(
            "{method} {path}: {p} (checked in code: azure_arm/shapes.rs)"
        ));
    }
    Response::from_parts(rparts, Body::from(rbody))
}

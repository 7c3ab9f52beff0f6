//! Sending a case and judging its answer: a 4xx in the API's one error shape, and what the
//! case wants.

use serde_json::Value;
use vmapi_tests::*;

use super::case::{Case, Payload, Want};

/// The documented status of every error code (`shared/http/src/error.rs`).
fn status_of_code(code: &str) -> Option<u16> {
    vmapi_http::error::ALL_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
}

/// Sends a case as OWNER; returns a problem, if any.
pub(super) async fn run(app: &TestApp, token: &str, c: &Case) -> Option<String> {
    let mut req = app
        .http
        .request(c.method.clone(), format!("{}{}", app.base, c.path))
        .bearer_auth(token);
    match &c.payload {
        Payload::Empty => {}
        Payload::Json(v) => req = req.json(v),
        Payload::Raw(bytes, ct) => {
            req = req.body(bytes.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", *ct);
            }
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("{}: no answer: {e}", c.label)),
    };
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let shown: String = text.chars().take(300).collect();
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            return Some(format!(
                "{}: {status} with a body that is not JSON: {shown:?}",
                c.label
            ))
        }
    };
    if !(400..500).contains(&status) {
        return Some(format!("{}: status {status}: {shown}", c.label));
    }
    let code = body["code"].as_str().unwrap_or("");
    if body["statusCode"] != status
        || status_of_code(code) != Some(status)
        || !body["error"].is_string()
        || !body["message"].is_string()
    {
        return Some(format!(
            "{}: not the error shape: {status} {shown}",
            c.label
        ));
    }
    match c.want {
        Want::Any => None,
        Want::Status(s) if s == status => None,
        Want::Code(s, want) if s == status && want == code => None,
        other => Some(format!(
            "{}: expected {other:?}, got {status} {code}: {shown}",
            c.label
        )),
    }
}

//! ARM's answers (errors, JSON bodies, `Retry-After`) and the reading of query strings and
//! forms.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::ids::RESOURCE_GROUP;
use super::state::Inner;

fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

pub(super) fn arm_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        error_body(code, message).to_string(),
    )
        .into_response()
}

pub(super) fn json_response(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
) -> Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    match body {
        Some(body) => {
            map.insert(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            (StatusCode::from_u16(status).unwrap(), map, body.to_string()).into_response()
        }
        None => (StatusCode::from_u16(status).unwrap(), map).into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub(super) fn parse_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(super) fn retry_header(inner: &Inner) -> Vec<(&'static str, String)> {
    inner
        .retry_after
        .map(|s| vec![("retry-after", s.to_string())])
        .unwrap_or_default()
}

pub(super) fn not_found(kind: &str, name: &str) -> Response {
    arm_error(
        404,
        "ResourceNotFound",
        &format!(
            "The Resource '{kind}/{name}' under resource group '{RESOURCE_GROUP}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

pub(super) fn invalid(target: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json; charset=utf-8")],
        json!({ "error": { "code": "InvalidParameter", "message": message, "target": target } })
            .to_string(),
    )
        .into_response()
}

pub(super) fn bad_api_version(version: &str) -> Response {
    arm_error(
        400,
        "InvalidApiVersionParameter",
        &format!("The api-version '{version}' is invalid."),
    )
}

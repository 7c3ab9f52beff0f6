//! The Entra ID client-credentials token endpoint.

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::json;

use super::ids::{CLIENT_ID, CLIENT_SECRET, TENANT};
use super::reply::{json_response, parse_pairs};
use super::state::Inner;

pub(super) fn token(
    inner: &mut Inner,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &str,
) -> Response {
    let aad = |status: u16, error: &str, description: &str| {
        json_response(
            status,
            vec![],
            Some(json!({
                "error": error,
                "error_description": format!("{description}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2025-01-01 00:00:00Z"),
                "error_codes": [7000215],
            })),
        )
    };
    if *method != Method::POST || rest != format!("{TENANT}/oauth2/v2.0/token") {
        return aad(
            400,
            "invalid_request",
            "AADSTS900144: bad token request path or tenant.",
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return aad(
            400,
            "invalid_request",
            "AADSTS900144: the request body must be a form.",
        );
    }
    let form = parse_pairs(body);
    inner.token_forms.push(
        form.iter()
            .filter(|(k, _)| k.as_str() != "client_secret")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad(
            400,
            "unsupported_grant_type",
            "AADSTS70003: unsupported grant type.",
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return aad(
            400,
            "unauthorized_client",
            "AADSTS700016: Application was not found in the directory.",
        );
    }
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return aad(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    if form.get("scope").map(String::as_str) != Some("https://management.azure.com/.default") {
        return aad(
            400,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        );
    }
    inner.token_requests += 1;
    let token = format!("eyJ0eXAiOiJKV1Qi.arm-token-{}", inner.token_requests);
    inner.valid_tokens.insert(token.clone());
    inner.issued_tokens.push(token.clone());
    json_response(
        200,
        vec![],
        Some(json!({
            "token_type": "Bearer",
            "expires_in": inner.token_expires_in,
            "ext_expires_in": inner.token_expires_in,
            "access_token": token,
        })),
    )
}

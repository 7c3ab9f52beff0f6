//! The `Idempotency-Key` header of the writes that create or act (every POST, PUT and DELETE
//! route: create and the VM actions), as a layer around their handlers.
//!
//! Without the header nothing changes. With it, the caller is authenticated, the key checked
//! (1-255 visible ASCII characters, else 400 `INVALID_PARAMETER`) and the request fingerprinted
//! (SHA-256 of method, path, `If-Match` and body bytes); the key, scoped to the caller, is then
//! taken in the [`IdempotencyStore`](vmapi_core::IdempotencyStore):
//!
//! - first use: the handler runs; its answer is kept for 24 h, except answers worth retrying
//!   (5xx, `CONCURRENT_MODIFICATION`) and malformed requests (400, 413, 415), which free the key;
//! - the same request again: the kept status, `ETag` and body, with `Idempotent-Replayed: true`;
//! - another request with the key: 422 `IDEMPOTENCY_KEY_REUSED`;
//! - the same key while its request runs: 409 `IDEMPOTENCY_IN_PROGRESS`.

use aws_lc_rs::digest;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vmapi_core::{Begin, ErrorChain, FieldError, IdempotencyKey, StoredResponse};
use vmapi_models::Timestamp;

use crate::error::ApiError;
use crate::extract::{Caller, MAX_BODY_BYTES};
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The header of replayed answers (`true`).
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// Response headers kept with an answer and replayed with it (besides the status and body).
const KEPT_HEADERS: [HeaderName; 1] = [header::ETAG];

/// The layer (`axum::middleware::from_fn_with_state`).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    match idempotent(state, req, next).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn bad_key(message: impl Into<String>) -> ApiError {
    ApiError::BadParameter(FieldError::new(IDEMPOTENCY_KEY, message))
}

fn key_of(parts: &Parts) -> Result<IdempotencyKey, ApiError> {
    let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(bad_key("must be given once"));
    };
    let text = value
        .to_str()
        .map_err(|_| bad_key("must consist of visible ASCII characters only (no spaces)"))?;
    IdempotencyKey::parse(text).map_err(bad_key)
}

/// SHA-256 (hex) of what makes the request: method, path and query, `If-Match`, body bytes.
fn fingerprint(parts: &Parts, body: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(parts.method.as_str().as_bytes());
    ctx.update(b"\n");
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| parts.uri.path());
    ctx.update(path.as_bytes());
    ctx.update(b"\n");
    for v in parts.headers.get_all(header::IF_MATCH) {
        ctx.update(v.as_bytes());
        ctx.update(b",");
    }
    ctx.update(b"\n");
    ctx.update(body);
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether an answer is kept for replays: not when a retry may succeed (5xx, a lost race) or
/// the request was malformed (nothing was attempted).
fn keeps(status: StatusCode, code: Option<&str>) -> bool {
    !status.is_server_error()
        && !matches!(status.as_u16(), 400 | 401 | 413 | 415 | 429)
        && code != Some("CONCURRENT_MODIFICATION")
}

async fn read_body(parts: &Parts, body: Body) -> Result<axum::body::Bytes, ApiError> {
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES)
    {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, stored.body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    resp
}

async fn idempotent(state: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    // Authenticate first (a bad token is a 401 whatever the key), once: the handler's
    // `Caller` takes the user from here.
    let Caller(user) = Caller::from_request_parts(&mut parts, &state).await?;
    parts.extensions.insert(Caller(user.clone()));
    let key = key_of(&parts)?;
    let body = read_body(&parts, body).await?;
    let hash = fingerprint(&parts, &body);
    let lease = match state
        .idempotency
        .begin(&user, &key, &hash, Timestamp::now())
        .await?
    {
        Begin::Started(lease) => lease,
        Begin::Replay(stored) => {
            tracing::info!(%key, status = stored.status, "idempotent replay");
            return Ok(replay(stored));
        }
        Begin::InFlight => return Err(ApiError::IdempotencyInProgress),
        Begin::Mismatch => return Err(ApiError::IdempotencyKeyReused),
    };

    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (resp_parts, resp_body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(resp_body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            if let Err(e) = state.idempotency.abandon(&user, &key, &lease).await {
                tracing::warn!(%key, error = %ErrorChain(&e), "freeing the idempotency key failed");
            }
            return Err(ApiError::Core(vmapi_core::Error::internal(
                "reading the answer",
                e,
            )));
        }
    };
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("code")?.as_str().map(str::to_string));
    let outcome = if keeps(resp_parts.status, code.as_deref()) {
        let stored = StoredResponse {
            status: resp_parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let v = resp_parts.headers.get(name)?.to_str().ok()?;
                    Some((name.as_str().to_string(), v.to_string()))
                })
                .collect(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        state.idempotency.finish(&user, &key, &lease, &stored).await
    } else {
        state.idempotency.abandon(&user, &key, &lease).await
    };
    // The work is done: answer it even if its record could not be written (the key stays
    // blocked until its lease runs out).
    if let Err(e) = outcome {
        tracing::error!(%key, error = %ErrorChain(&e), "storing the idempotent answer failed");
    }
    Ok(Response::from_parts(resp_parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_answers() {
        assert!(keeps(StatusCode::CREATED, None));
        assert!(keeps(StatusCode::OK, None));
        assert!(keeps(StatusCode::CONFLICT, Some("HOST_NAME_TAKEN")));
        assert!(keeps(StatusCode::NOT_FOUND, Some("VM_NOT_FOUND")));
        assert!(keeps(
            StatusCode::PRECONDITION_FAILED,
            Some("PRECONDITION_FAILED")
        ));
        assert!(!keeps(
            StatusCode::CONFLICT,
            Some("CONCURRENT_MODIFICATION")
        ));
        assert!(!keeps(StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")));
        assert!(!keeps(StatusCode::INTERNAL_SERVER_ERROR, None));
        assert!(!keeps(StatusCode::SERVICE_UNAVAILABLE, None));
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let parts = |method: &str, uri: &str, if_match: Option<&str>| {
            let mut b = Request::builder().method(method).uri(uri);
            if let Some(m) = if_match {
                b = b.header(header::IF_MATCH, m);
            }
            b.body(()).unwrap().into_parts().0
        };
        let a = fingerprint(&parts("POST", "/api/virtual-machines", None), b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint(&parts("POST", "/api/virtual-machines", None), b"{}")
        );
        for other in [
            fingerprint(&parts("POST", "/api/virtual-machines", None), b"{ }"),
            fingerprint(&parts("PUT", "/api/virtual-machines", None), b"{}"),
            fingerprint(&parts("POST", "/api/virtual-machines/x", None), b"{}"),
            fingerprint(
                &parts("POST", "/api/virtual-machines", Some("\"1\"")),
                b"{}",
            ),
        ] {
            assert_ne!(a, other);
        }
    }
}

//! Extractors that fail with the API's own error body, and the path-segment parsers the
//! handlers share.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vmapi_core::FieldError;
use vmapi_models::{UserId, VmId};

use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The authenticated caller (authenticated once per request: a layer that needed the caller
/// first, as the `Idempotency-Key` one does, leaves it in the request's extensions).
#[derive(Clone)]
pub struct Caller(pub UserId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let user = state.auth.authenticate(header).await?;
        tracing::Span::current().record("user", tracing::field::display(&user));
        Ok(Caller(user))
    }
}

/// The `{id}` path segment of a VM route, parsed (a bad or undecodable id is the API's 400).
pub struct VmPath(pub VmId);

impl FromRequestParts<AppState> for VmPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let raw = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::BadParameter(FieldError::new(
                    "id",
                    "is not a valid VM id (24 hexadecimal characters)",
                ))
            })?;
        vm_id(&raw.0).map(VmPath)
    }
}

/// The `If-Match` header: `*` or absent is no condition; otherwise the strong entity tags it
/// lists (`"7"`, the VM's version as GET's `ETag` gives it). Weak or malformed tags match nothing.
pub struct IfMatchHeader(pub vmapi_core::IfMatch);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        if values.is_empty() || values.iter().any(|v| v.trim() == "*") {
            return Ok(IfMatchHeader(vmapi_core::IfMatch::Any));
        }
        let versions = values
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        Ok(IfMatchHeader(vmapi_core::IfMatch::Versions(versions)))
    }
}

/// The `ETag` of a VM at `version`.
pub fn etag(version: u64) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// A JSON body of type `T`. `{"data": {...}}` is unwrapped when `WRAPPED` allows it.
pub struct JsonBody<T, const WRAPPED: bool = false>(pub T);

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads the body (at most 64 KiB) after checking it is JSON.
async fn read_json(req: Request<Body>) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_json(content_type) {
        let shown = if content_type.is_empty() {
            "none"
        } else {
            content_type
        };
        return Err(ApiError::UnsupportedMediaType(format!(
            "content type must be application/json, got {shown}"
        )));
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadBody {
            code: "INVALID_JSON",
            message: "request body is empty; a JSON object is required".into(),
            details: vec![],
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadBody {
        code: "INVALID_JSON",
        message: format!("request body is not valid JSON: {e}"),
        details: vec![],
    })
}

/// Refuses bodies that carry a plaintext password or private key, naming the fields but
/// never echoing their values.
fn reject_secret_fields(value: &Value) -> Result<(), ApiError> {
    let fields = vmapi_models::secret_fields(value);
    if fields.is_empty() {
        return Ok(());
    }
    let details: Vec<FieldError> = fields
        .iter()
        .map(|f| {
            FieldError::new(
                f.clone(),
                "plaintext passwords and private keys are not accepted: the service generates the login (authMethod 0 password, 1 SSH key), or give your own public key as access.sshPublicKey",
            )
        })
        .collect();
    Err(ApiError::BadBody {
        code: "VALIDATION_FAILED",
        message: format!(
            "{}: plaintext passwords and private keys are not accepted",
            fields.join(", ")
        ),
        details,
    })
}

/// Turns a JSON value into `T`, naming the offending field on failure.
pub fn parse_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::BadBody {
            code: "VALIDATION_FAILED",
            message: "request body must be a JSON object".into(),
            details: vec![FieldError::new("body", "expected a JSON object")],
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        let message = e.inner().to_string();
        ApiError::BadBody {
            code: "VALIDATION_FAILED",
            message: format!("{field}: {message}"),
            details: vec![FieldError::new(field, message)],
        }
    })
}

impl<T: DeserializeOwned, const WRAPPED: bool> FromRequest<AppState> for JsonBody<T, WRAPPED> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &AppState) -> Result<Self, Self::Rejection> {
        let mut value = read_json(req).await?;
        reject_secret_fields(&value)?;
        if WRAPPED {
            if let Value::Object(map) = &mut value {
                if map.len() == 1 && map.contains_key("data") {
                    value = map.remove("data").unwrap_or(Value::Null);
                }
            }
        }
        parse_value(value).map(JsonBody)
    }
}

/// Records `value` as `field` on the request's span.
pub(crate) fn record(field: &str, value: impl std::fmt::Display) {
    tracing::Span::current().record(field, tracing::field::display(value));
}

/// Parses a path segment; a bad one is a 400 naming `field`.
pub(crate) fn parse_id<T>(
    field: &str,
    raw: &str,
    parse: fn(&str) -> Result<T, vmapi_models::ParseError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::BadParameter(FieldError::new(field, e.0)))
}

/// Parses the `{id}` path segment and records it on the request's span.
pub(crate) fn vm_id(raw: &str) -> Result<VmId, ApiError> {
    let id = parse_id("id", raw, VmId::parse)?;
    record("vm", id);
    Ok(id)
}

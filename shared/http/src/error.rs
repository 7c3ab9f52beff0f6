//! The one mapping from errors to HTTP responses, used by every endpoint.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vmapi_core::{Error, ErrorChain, FieldError, NotFoundKind};

use crate::auth::AuthError;

tokio::task_local! {
    /// The id of the request being served (Lambda's request id, or a local one).
    pub static REQUEST_ID: String;
}

/// The current request id, if inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Every `code` an error answer can carry, with its HTTP status: exactly the codes
/// [`ApiError`]'s mapping below produces (the tests hold the two together). The OpenAPI
/// document lists its codes from here.
pub const ALL_CODES: &[(&str, u16)] = &[
    ("INVALID_JSON", 400),
    ("VALIDATION_FAILED", 400),
    ("INVALID_PARAMETER", 400),
    ("UNAUTHORIZED", 401),
    ("FORBIDDEN", 403),
    ("VM_NOT_FOUND", 404),
    ("TEAM_NOT_FOUND", 404),
    ("PROJECT_NOT_FOUND", 404),
    ("CREDENTIALS_NOT_FOUND", 404),
    ("SECURITY_RULE_NOT_FOUND", 404),
    ("CLOUD_PROVIDER_NOT_FOUND", 404),
    ("PROVIDER_NOT_FOUND", 404),
    ("LOCATION_NOT_FOUND", 404),
    ("IMAGE_NOT_FOUND", 404),
    ("ROUTE_NOT_FOUND", 404),
    ("METHOD_NOT_ALLOWED", 405),
    ("ILLEGAL_TRANSITION", 409),
    ("HOST_NAME_TAKEN", 409),
    ("DUPLICATE_HOST_NAME", 409),
    ("CONCURRENT_MODIFICATION", 409),
    ("IDEMPOTENCY_IN_PROGRESS", 409),
    ("QUOTA_EXCEEDED", 409),
    ("RULE_NAME_TAKEN", 409),
    ("PRIORITY_TAKEN", 409),
    ("RULE_LIMIT_REACHED", 409),
    ("VM_BLOCKED", 409),
    ("PRECONDITION_FAILED", 412),
    ("PAYLOAD_TOO_LARGE", 413),
    ("UNSUPPORTED_MEDIA_TYPE", 415),
    ("IDEMPOTENCY_KEY_REUSED", 422),
    ("UNSUPPORTED_BY_PROVIDER", 422),
    ("INTERNAL_ERROR", 500),
    ("SERVICE_UNAVAILABLE", 503),
];

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// From the use cases.
    #[error(transparent)]
    Core(#[from] Error),
    /// Authentication.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The body is not JSON, or not the expected shape.
    #[error("{message}")]
    BadBody {
        /// `INVALID_JSON` or `VALIDATION_FAILED`.
        code: &'static str,
        /// Summary.
        message: String,
        /// Offending fields.
        details: Vec<FieldError>,
    },
    /// A bad query parameter or path id.
    #[error("{}: {}", .0.field, .0.message)]
    BadParameter(FieldError),
    /// Body over the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No such route.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// Known path, other method.
    #[error("method {0} is not allowed on this path")]
    MethodNotAllowed(String),
    /// The `Idempotency-Key` was used with another request.
    #[error("this Idempotency-Key was used with a different request (method, path, If-Match or body); use a new key for a new request")]
    IdempotencyKeyReused,
    /// A request with the `Idempotency-Key` is still running.
    #[error(
        "a request with this Idempotency-Key is still in progress; retry once it has finished"
    )]
    IdempotencyInProgress,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status_code: u16,
    error: &'a str,
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    /// Status, stable code, client-safe message, details and `Retry-After`.
    fn parts(
        &self,
    ) -> (
        StatusCode,
        &'static str,
        String,
        Option<&[FieldError]>,
        Option<u32>,
    ) {
        use StatusCode as S;
        match self {
            ApiError::Core(e) => match e {
                Error::Invalid { message, details } => (
                    S::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    message.clone(),
                    Some(details),
                    None,
                ),
                Error::Unauthorized(m) => (S::UNAUTHORIZED, "UNAUTHORIZED", m.clone(), None, None),
                Error::Forbidden(m) => (S::FORBIDDEN, "FORBIDDEN", m.clone(), None, None),
                Error::NotFound { kind, .. } => {
                    let code = match kind {
                        NotFoundKind::Vm => "VM_NOT_FOUND",
                        NotFoundKind::Team => "TEAM_NOT_FOUND",
                        NotFoundKind::Project => "PROJECT_NOT_FOUND",
                        NotFoundKind::Credentials => "CREDENTIALS_NOT_FOUND",
                        NotFoundKind::SecurityRule => "SECURITY_RULE_NOT_FOUND",
                        NotFoundKind::CloudProvider => "CLOUD_PROVIDER_NOT_FOUND",
                        NotFoundKind::Provider => "PROVIDER_NOT_FOUND",
                        NotFoundKind::Location => "LOCATION_NOT_FOUND",
                        NotFoundKind::Image => "IMAGE_NOT_FOUND",
                    };
                    (S::NOT_FOUND, code, e.to_string(), None, None)
                }
                Error::Conflict { code, message } => {
                    (S::CONFLICT, code.as_str(), message.clone(), None, None)
                }
                Error::UnsupportedByProvider(m) => (
                    S::UNPROCESSABLE_ENTITY,
                    "UNSUPPORTED_BY_PROVIDER",
                    m.clone(),
                    None,
                    None,
                ),
                Error::PreconditionFailed(m) => (
                    S::PRECONDITION_FAILED,
                    "PRECONDITION_FAILED",
                    m.clone(),
                    None,
                    None,
                ),
                Error::VersionConflict => (
                    S::CONFLICT,
                    "CONCURRENT_MODIFICATION",
                    "the virtual machine was changed concurrently; retry the request".into(),
                    None,
                    None,
                ),
                Error::Unavailable {
                    message,
                    retry_after_secs,
                    ..
                } => (
                    S::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    message.clone(),
                    None,
                    Some(*retry_after_secs),
                ),
                Error::Internal { .. } => (
                    S::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "an unexpected error occurred; quote the requestId when reporting it".into(),
                    None,
                    None,
                ),
            },
            ApiError::Auth(AuthError::KeysUnavailable(_)) => (
                S::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                self.to_string(),
                None,
                Some(5),
            ),
            ApiError::Auth(a) => (S::UNAUTHORIZED, "UNAUTHORIZED", a.to_string(), None, None),
            ApiError::BadBody {
                code,
                message,
                details,
            } => (S::BAD_REQUEST, code, message.clone(), Some(details), None),
            ApiError::BadParameter(f) => (
                S::BAD_REQUEST,
                "INVALID_PARAMETER",
                format!("{}: {}", f.field, f.message),
                Some(std::slice::from_ref(f)),
                None,
            ),
            ApiError::PayloadTooLarge(_) => (
                S::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                self.to_string(),
                None,
                None,
            ),
            ApiError::UnsupportedMediaType(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                self.to_string(),
                None,
                None,
            ),
            ApiError::RouteNotFound(_) => (
                S::NOT_FOUND,
                "ROUTE_NOT_FOUND",
                self.to_string(),
                None,
                None,
            ),
            ApiError::MethodNotAllowed(_) => (
                S::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                self.to_string(),
                None,
                None,
            ),
            ApiError::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                self.to_string(),
                None,
                None,
            ),
            ApiError::IdempotencyInProgress => (
                S::CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
                self.to_string(),
                None,
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details, retry_after) = self.parts();
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, error = %ErrorChain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code, %message, "request refused");
        }
        let body = ErrorBody {
            status_code: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error"),
            code,
            message,
            details: details.filter(|d| !d.is_empty()),
            request_id: if status.is_server_error() {
                request_id
            } else {
                None
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge()),
            );
        }
        resp
    }
}

impl ApiError {
    /// The scheme a 401 asks for: an admin key (`Api-Key`, the admin routes) or a bearer token
    /// (every other route).
    fn challenge(&self) -> &'static str {
        match self {
            ApiError::Core(Error::Unauthorized(_)) => "Api-Key",
            _ => "Bearer",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use vmapi_aws::{map_sdk, Dependency};

    use super::*;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The answer's status and body, and what answering it logged.
    async fn answer(e: Error) -> (u16, String, String) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let resp =
            tracing::subscriber::with_default(subscriber, || ApiError::from(e).into_response());
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), logged)
    }

    #[tokio::test]
    async fn a_500_logs_the_whole_cause_and_answers_without_it() {
        let meta = ErrorMetadata::builder()
            .code("ValidationException")
            .message("One or more parameter values were invalid: Missing the key pk")
            .build();
        let sdk: SdkError<PutItemError, ()> =
            SdkError::service_error(PutItemError::generic(meta), ());
        let (status, body, logged) = answer(map_sdk(Dependency::Database, "PutItem", sdk)).await;
        assert_eq!(status, 500);
        assert!(logged.contains("request failed"), "{logged}");
        assert!(
            logged.contains("internal error: DynamoDB PutItem"),
            "{logged}"
        );
        assert!(logged.contains("ValidationException"), "{logged}");
        assert!(logged.contains("Missing the key pk"), "{logged}");
        assert!(body.contains("INTERNAL_ERROR"), "{body}");
        for internal in ["DynamoDB", "ValidationException", "Missing the key pk"] {
            assert!(!body.contains(internal), "{body}");
        }
    }

    #[tokio::test]
    async fn a_503_logs_the_connection_error_and_answers_without_it() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        );
        let sdk: SdkError<PutItemError, ()> =
            SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        let (status, body, logged) = answer(map_sdk(Dependency::Database, "GetItem", sdk)).await;
        assert_eq!(status, 503);
        assert!(
            logged.contains("DynamoDB GetItem: dispatch failure: io error: tcp connect error: Connection refused"),
            "{logged}"
        );
        assert!(
            body.contains("the database is unavailable or busy"),
            "{body}"
        );
        assert!(!body.contains("Connection refused"), "{body}");
    }
}

//! The gate every request passes (recorded, bearer token checked, injected faults played),
//! the fallback, and the `{"message"}` error answer.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::Shared;

pub(super) fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// Records the request, checks the bearer token, and plays injected faults.
pub(super) async fn gate(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let fault = {
        let mut st = s.lock().unwrap();
        let line = match req.uri().query() {
            Some(q) => format!("{} {}?{}", req.method(), req.uri().path(), q),
            None => format!("{} {}", req.method(), req.uri().path()),
        };
        st.requests.push(line);
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        st.authorizations.push(auth.clone());
        if auth != format!("Bearer {}", st.opts.token) {
            return error(401, "unauthorized: invalid or expired access token");
        }
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let found = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.method == method && path.starts_with(&f.path_prefix));
        found.map(|f| {
            f.remaining -= 1;
            f.clone()
        })
    };
    if let Some(f) = fault {
        let mut resp = error(f.status, f.message);
        if let Some(secs) = f.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    next.run(req).await
}

pub(super) async fn not_found() -> Response {
    error(404, "page not found")
}

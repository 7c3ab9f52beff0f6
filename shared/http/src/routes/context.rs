//! What runs around every request: its id, span and log line, its metrics, and the JSON
//! 404 and 405 answers.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::endpoints::Endpoint;
use crate::error::{ApiError, REQUEST_ID};

/// Counts the request in the route's metrics (`GET /api/virtual-machines/{id}`), once answered.
pub(super) async fn measured(
    State((metrics, endpoint)): State<(vmapi_aws::emf::Emf, Endpoint)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    let route = format!("{} {}", endpoint.method(), endpoint.path());
    metrics.request(&route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Sets the request id (Lambda's, else a new one), a span for the request's log lines, and
/// logs one line per response.
pub(super) async fn request_context(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(new_request_id);
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        user = tracing::field::Empty,
        team = tracing::field::Empty,
        vm = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut resp = REQUEST_ID
        .scope(request_id.clone(), next.run(req).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::info!(
            status = resp.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request completed"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn new_request_id() -> String {
    vmapi_models::ObjectId::new().to_string()
}

pub(super) async fn route_not_found(req: Request) -> ApiError {
    ApiError::RouteNotFound(format!("{} {}", req.method(), req.uri().path()))
}

pub(super) async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}

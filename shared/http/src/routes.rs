//! The route table and the handlers. Each Lambda function mounts its own endpoint(s);
//! the local server mounts all of them.

use std::time::Instant;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use serde::Deserialize;
use tracing::Instrument;
use vmapi_core::{Action, FieldError};
use vmapi_models::{
    CreateVmRequest, ProjectId, TeamId, UpdateVmRequest, UserId, VirtualMachine, VmCredentials,
    VmId,
};

use crate::error::{ApiError, REQUEST_ID};
use crate::extract::{etag, Caller, IfMatchHeader, JsonBody, VmPath};
use crate::state::AppState;

/// Every endpoint, with its function (binary) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /health`
    Health,
    /// `POST /api/virtual-machines`
    CreateVm,
    /// `GET /api/teams/{team}/projects/{project}/virtual-machines`
    ListVms,
    /// `GET /api/virtual-machines/{id}`
    GetVm,
    /// `PATCH /api/virtual-machines/{id}`
    UpdateVm,
    /// `PUT /api/virtual-machines/{id}/start`
    StartVm,
    /// `PUT /api/virtual-machines/{id}/stop`
    StopVm,
    /// `PUT /api/virtual-machines/{id}/reboot`
    RebootVm,
    /// `DELETE /api/virtual-machines/{id}`
    DeleteVm,
    /// `GET /api/virtual-machines/{id}/credentials`
    GetCredentials,
    /// `GET /api/virtual-machines/{id}/activity`
    GetActivity,
}

impl Endpoint {
    /// All endpoints.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::Health,
        Endpoint::CreateVm,
        Endpoint::ListVms,
        Endpoint::GetVm,
        Endpoint::UpdateVm,
        Endpoint::StartVm,
        Endpoint::StopVm,
        Endpoint::RebootVm,
        Endpoint::DeleteVm,
        Endpoint::GetCredentials,
        Endpoint::GetActivity,
    ];

    /// HTTP method.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Health
            | Endpoint::ListVms
            | Endpoint::GetVm
            | Endpoint::GetCredentials
            | Endpoint::GetActivity => Method::GET,
            Endpoint::CreateVm => Method::POST,
            Endpoint::UpdateVm => Method::PATCH,
            Endpoint::StartVm | Endpoint::StopVm | Endpoint::RebootVm => Method::PUT,
            Endpoint::DeleteVm => Method::DELETE,
        }
    }

    /// Path template (API Gateway and axum syntax).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Health => "/health",
            Endpoint::CreateVm => "/api/virtual-machines",
            Endpoint::ListVms => "/api/teams/{team}/projects/{project}/virtual-machines",
            Endpoint::GetVm | Endpoint::UpdateVm | Endpoint::DeleteVm => {
                "/api/virtual-machines/{id}"
            }
            Endpoint::StartVm => "/api/virtual-machines/{id}/start",
            Endpoint::StopVm => "/api/virtual-machines/{id}/stop",
            Endpoint::RebootVm => "/api/virtual-machines/{id}/reboot",
            Endpoint::GetCredentials => "/api/virtual-machines/{id}/credentials",
            Endpoint::GetActivity => "/api/virtual-machines/{id}/activity",
        }
    }

    /// The Lambda function (binary and crate) serving it.
    pub fn function(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::CreateVm => "create-vm",
            Endpoint::ListVms => "list-vms",
            Endpoint::GetVm => "get-vm",
            Endpoint::UpdateVm => "update-vm",
            Endpoint::StartVm => "start-vm",
            Endpoint::StopVm => "stop-vm",
            Endpoint::RebootVm => "reboot-vm",
            Endpoint::DeleteVm => "delete-vm",
            Endpoint::GetCredentials => "get-credentials",
            Endpoint::GetActivity => "get-activity",
        }
    }

    /// Whether the endpoint's function needs the secret store (create and credentials; the
    /// provisioner removes VM logins after a teardown).
    pub fn needs_logins(self) -> bool {
        matches!(self, Endpoint::CreateVm | Endpoint::GetCredentials)
    }

    /// Whether the endpoint honours `Idempotency-Key`: every write that creates or acts (POST,
    /// PUT, DELETE: create and the VM actions); see [`crate::idempotency`].
    pub fn idempotent(self) -> bool {
        matches!(self.method(), Method::POST | Method::PUT | Method::DELETE)
    }
}

/// A router serving `endpoints` over `state`, with JSON 404/405 fallbacks.
pub fn router(state: AppState, endpoints: &[Endpoint]) -> Router {
    let mut router = Router::new();
    for &endpoint in endpoints {
        let method_router = match endpoint {
            Endpoint::Health => on(MethodFilter::GET, health),
            Endpoint::CreateVm => on(MethodFilter::POST, create_vm),
            Endpoint::ListVms => on(MethodFilter::GET, list_vms),
            Endpoint::GetVm => on(MethodFilter::GET, get_vm),
            Endpoint::UpdateVm => on(MethodFilter::PATCH, update_vm),
            Endpoint::StartVm => on(MethodFilter::PUT, start_vm),
            Endpoint::StopVm => on(MethodFilter::PUT, stop_vm),
            Endpoint::RebootVm => on(MethodFilter::PUT, reboot_vm),
            Endpoint::DeleteVm => on(MethodFilter::DELETE, delete_vm),
            Endpoint::GetCredentials => on(MethodFilter::GET, get_credentials),
            Endpoint::GetActivity => on(MethodFilter::GET, get_activity),
        };
        let method_router = if endpoint.idempotent() {
            method_router.route_layer(middleware::from_fn_with_state(
                state.clone(),
                crate::idempotency::layer,
            ))
        } else {
            method_router
        };
        router = router.route(endpoint.path(), method_router);
    }
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(request_context))
}

/// Sets the request id (Lambda's, else a new one), a span for the request's log lines, and
/// logs one line per response.
async fn request_context(req: Request, next: Next) -> Response {
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

fn record(field: &str, value: impl std::fmt::Display) {
    tracing::Span::current().record(field, tracing::field::display(value));
}

fn parse_id<T>(
    field: &str,
    raw: &str,
    parse: fn(&str) -> Result<T, vmapi_models::ParseError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::BadParameter(FieldError::new(field, e.0)))
}

async fn route_not_found(req: Request) -> ApiError {
    ApiError::RouteNotFound(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn create_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    JsonBody(req): JsonBody<CreateVmRequest, true>,
) -> Result<(StatusCode, Json<Vec<VirtualMachine>>), ApiError> {
    record("team", req.team);
    let vms = state.service.create(&user, req).await?;
    Ok((StatusCode::CREATED, Json(vms)))
}

/// Default page size of the list.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size of the list.
pub const MAX_LIMIT: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// The `limit` and `cursor` of a paged list; anything else is a 400.
fn page_query(query: Option<&str>) -> Result<(ListQuery, usize), ApiError> {
    let q: ListQuery = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::BadParameter(FieldError::new("query", e.to_string())))?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::BadParameter(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, got '{raw}'"),
                ))
            })?,
    };
    Ok((q, limit))
}

/// Adds the next page's `Link` and `X-Next-Cursor` to a list answer.
fn link_next(resp: &mut Response, uri: &axum::http::Uri, limit: usize, cursor: &str) {
    let link = format!(
        "<{}?limit={limit}&cursor={cursor}>; rel=\"next\"",
        uri.path()
    );
    if let (Ok(link), Ok(cursor)) = (HeaderValue::from_str(&link), HeaderValue::from_str(cursor)) {
        resp.headers_mut().insert(header::LINK, link);
        resp.headers_mut().insert("x-next-cursor", cursor);
    }
}

async fn list_vms(
    State(state): State<AppState>,
    Caller(user): Caller,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let Path((team, project)) = path.map_err(|_| {
        ApiError::BadParameter(FieldError::new(
            "path",
            "team and project must be valid ids (24 hexadecimal characters)",
        ))
    })?;
    let team = parse_id("team", &team, TeamId::parse)?;
    let project = parse_id("project", &project, ProjectId::parse)?;
    record("team", team);
    let (q, limit) = page_query(query.as_deref())?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            state
                .cursors
                .decode(team, project, c)
                .map_err(|m| ApiError::BadParameter(FieldError::new("cursor", m)))?,
        ),
    };
    let page = state
        .service
        .list(&user, team, project, limit, after.as_ref())
        .await?;
    let mut resp = Json(page.items).into_response();
    if let Some(next) = page.next {
        let cursor = state.cursors.encode(team, project, &next);
        link_next(&mut resp, &uri, limit, &cursor);
    }
    Ok(resp)
}

async fn get_activity(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let (q, limit) = page_query(query.as_deref())?;
    let scope = format!("activity:{id}");
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            state
                .cursors
                .decode_position(&scope, c)
                .map_err(|m| ApiError::BadParameter(FieldError::new("cursor", m)))?,
        ),
    };
    let page = state
        .service
        .activity(&user, id, limit, after.as_deref())
        .await?;
    let mut resp = Json(page.items).into_response();
    if let Some(next) = page.next {
        let cursor = state.cursors.encode_position(&scope, &next);
        link_next(&mut resp, &uri, limit, &cursor);
    }
    Ok(resp)
}

/// Parses the `{id}` path segment and records it on the request's span.
pub(crate) fn vm_id(raw: &str) -> Result<VmId, ApiError> {
    let id = parse_id("id", raw, VmId::parse)?;
    record("vm", id);
    Ok(id)
}

async fn get_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
) -> Result<Response, ApiError> {
    let (vm, version) = state.service.get_versioned(&user, id).await?;
    Ok(([(header::ETAG, etag(version))], Json(vm)).into_response())
}

async fn update_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
    JsonBody(patch): JsonBody<UpdateVmRequest>,
) -> Result<Response, ApiError> {
    let (vm, version) = state.service.update_if(&user, id, patch, &if_match).await?;
    Ok(([(header::ETAG, etag(version))], Json(vm)).into_response())
}

async fn vm_action(
    state: &AppState,
    user: &UserId,
    id: VmId,
    action: Action,
    if_match: &vmapi_core::IfMatch,
) -> Result<Response, ApiError> {
    let (result, version) = state.service.act_if(user, id, action, if_match).await?;
    Ok(([(header::ETAG, etag(version))], Json(result)).into_response())
}

async fn start_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
) -> Result<Response, ApiError> {
    vm_action(&state, &user, id, Action::Start, &if_match).await
}

async fn stop_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
) -> Result<Response, ApiError> {
    vm_action(&state, &user, id, Action::Stop, &if_match).await
}

async fn reboot_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
) -> Result<Response, ApiError> {
    vm_action(&state, &user, id, Action::Reboot, &if_match).await
}

async fn delete_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
) -> Result<Response, ApiError> {
    vm_action(&state, &user, id, Action::Delete, &if_match).await
}

async fn get_credentials(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
) -> Result<Response, ApiError> {
    let credentials: VmCredentials = state.service.credentials(&user, id).await?;
    let mut resp = Json(credentials).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

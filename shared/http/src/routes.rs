//! The route table and the handlers. Each Lambda function mounts its own endpoint(s);
//! the local server mounts all of them.

use std::time::Instant;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use tracing::Instrument;
use vmapi_core::{Action, FieldError, VmFilter};
use vmapi_models::{
    CreateRuleRequest, CreateVmRequest, ProjectId, RuleDeleted, SecurityRuleId, SecurityRuleView,
    Tag, TeamId, UpdateVmRequest, UserId, VirtualMachine, VmCredentials, VmId, VmStatus,
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
    /// `POST /api/security-rules`
    CreateSecurityRule,
    /// `GET /api/virtual-machines/{id}/security-rules`
    ListSecurityRules,
    /// `DELETE /api/security-rules/{id}`
    DeleteSecurityRule,
}

impl Endpoint {
    /// All endpoints.
    pub const ALL: [Endpoint; 14] = [
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
        Endpoint::CreateSecurityRule,
        Endpoint::ListSecurityRules,
        Endpoint::DeleteSecurityRule,
    ];

    /// The index of the endpoint in [`Endpoint::ALL`] (the `E` of [`single_router`] and
    /// [`crate::lambda::run`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// HTTP method.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Health
            | Endpoint::ListVms
            | Endpoint::GetVm
            | Endpoint::GetCredentials
            | Endpoint::GetActivity
            | Endpoint::ListSecurityRules => Method::GET,
            Endpoint::CreateVm | Endpoint::CreateSecurityRule => Method::POST,
            Endpoint::UpdateVm => Method::PATCH,
            Endpoint::StartVm | Endpoint::StopVm | Endpoint::RebootVm => Method::PUT,
            Endpoint::DeleteVm | Endpoint::DeleteSecurityRule => Method::DELETE,
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
            Endpoint::CreateSecurityRule => "/api/security-rules",
            Endpoint::ListSecurityRules => "/api/virtual-machines/{id}/security-rules",
            Endpoint::DeleteSecurityRule => "/api/security-rules/{id}",
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
            Endpoint::CreateSecurityRule => "create-security-rule",
            Endpoint::ListSecurityRules => "list-security-rules",
            Endpoint::DeleteSecurityRule => "delete-security-rule",
        }
    }

    /// Whether the endpoint's function needs the secret store (create and credentials; the
    /// provisioner removes VM logins after a teardown).
    pub fn needs_logins(self) -> bool {
        matches!(self, Endpoint::CreateVm | Endpoint::GetCredentials)
    }

    /// Whether the endpoint honours `Idempotency-Key`: every write that creates or acts (POST,
    /// PUT, DELETE: create, the VM actions and the security-rule writes); see
    /// [`crate::idempotency`].
    pub fn idempotent(self) -> bool {
        matches!(self.method(), Method::POST | Method::PUT | Method::DELETE)
    }
}

/// A router serving `endpoints` over `state`, with JSON 404/405 fallbacks (the local server and
/// the tests mount every endpoint this way).
pub fn router(state: AppState, endpoints: &[Endpoint]) -> Router {
    let mut router = Router::new();
    for &endpoint in endpoints {
        router = router.route(endpoint.path(), endpoint_route(&state, endpoint));
    }
    finish(router, state)
}

/// The router of the one endpoint with index `E` in [`Endpoint::ALL`], chosen at compile time:
/// each Lambda binary links only its own handler, so the others' code, data and relocations stay
/// out of its executable (docs/performance.md, "Where the rest of init goes").
pub fn single_router<const E: usize>(state: AppState) -> Router {
    let endpoint = const { Endpoint::ALL[E] };
    let route = endpoint_route(&state, endpoint);
    finish(Router::new().route(endpoint.path(), route), state)
}

/// The fallbacks, the state and the request-context layer around the routes.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(request_context))
}

/// The method filter and handler of `endpoint`, with the idempotency layer where it applies.
/// Inlined so that a constant `endpoint` ([`single_router`]) keeps only its own arm.
#[inline(always)]
fn endpoint_route(state: &AppState, endpoint: Endpoint) -> MethodRouter<AppState> {
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
        Endpoint::CreateSecurityRule => on(MethodFilter::POST, create_security_rule),
        Endpoint::ListSecurityRules => on(MethodFilter::GET, list_security_rules),
        Endpoint::DeleteSecurityRule => on(MethodFilter::DELETE, delete_security_rule),
    };
    let method_router = if endpoint.idempotent() {
        method_router.route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
    } else {
        method_router
    };
    match &state.metrics {
        Some(metrics) => method_router.route_layer(middleware::from_fn_with_state(
            (metrics.clone(), endpoint),
            measured,
        )),
        None => method_router,
    }
}

/// Counts the request in the route's metrics (`GET /api/virtual-machines/{id}`), once answered.
async fn measured(
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

/// The query of a paged list: `limit`, `cursor` and, on the VM list, the filters.
struct PageParams {
    limit: usize,
    cursor: Option<String>,
    filter: VmFilter,
}

/// Parses a paged list's query; an unknown, repeated or malformed parameter is a 400 naming it.
/// `status` takes codes or names, several separated by commas or repeated (`status=3,7`,
/// `status=running&status=stopped`); `tag` one tag; `name` a host-name prefix.
fn page_params(query: Option<&str>, filters: bool) -> Result<PageParams, ApiError> {
    let bad =
        |field: &str, message: String| ApiError::BadParameter(FieldError::new(field, message));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| bad("query", e.to_string()))?;
    let mut p = PageParams {
        limit: DEFAULT_LIMIT,
        cursor: None,
        filter: VmFilter::default(),
    };
    let mut limit_seen = false;
    for (key, value) in pairs {
        let twice = || bad(&key, "is given twice".into());
        match key.as_str() {
            "limit" => {
                if std::mem::replace(&mut limit_seen, true) {
                    return Err(twice());
                }
                p.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}, got '{value}'"),
                        )
                    })?;
            }
            "cursor" if p.cursor.is_some() => return Err(twice()),
            "cursor" => p.cursor = Some(value),
            "status" if filters => {
                for part in value.split(',').map(str::trim) {
                    let status = part
                        .parse::<u64>()
                        .ok()
                        .and_then(VmStatus::from_code)
                        .or_else(|| VmStatus::ALL.iter().copied().find(|s| s.name() == part))
                        .ok_or_else(|| {
                            bad(
                                "status",
                                format!("'{part}' is not a status code (0-8) or name"),
                            )
                        })?;
                    if !status.is_active() {
                        return Err(bad(
                            "status",
                            format!(
                                "the list holds active VMs only; status {} ({}) is never in it",
                                status.code(),
                                status.name()
                            ),
                        ));
                    }
                    if !p.filter.statuses.contains(&status) {
                        p.filter.statuses.push(status);
                    }
                }
            }
            "tag" if filters && p.filter.tag.is_some() => return Err(twice()),
            "tag" if filters => {
                p.filter.tag = Some(Tag::parse(&value).map_err(|e| bad("tag", e.to_string()))?);
            }
            "name" if filters && p.filter.name_prefix.is_some() => return Err(twice()),
            "name" if filters => {
                let ok = (1..=63).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(bad(
                        "name",
                        "a host-name prefix is 1-63 lowercase letters, digits or hyphens".into(),
                    ));
                }
                p.filter.name_prefix = Some(value);
            }
            _ => {
                let known = if filters {
                    "`limit`, `cursor`, `status`, `tag` and `name`"
                } else {
                    "`limit` and `cursor`"
                };
                return Err(bad(
                    &key,
                    format!("is not a parameter of this list ({known})"),
                ));
            }
        }
    }
    Ok(p)
}

/// The filters as query parameters, for the next page's link.
fn filter_query(filter: &VmFilter) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !filter.statuses.is_empty() {
        let codes: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| s.code().to_string())
            .collect();
        pairs.push(("status", codes.join(",")));
    }
    if let Some(tag) = &filter.tag {
        pairs.push(("tag", tag.as_str().to_string()));
    }
    if let Some(name) = &filter.name_prefix {
        pairs.push(("name", name.clone()));
    }
    match serde_urlencoded::to_string(&pairs) {
        Ok(q) if !q.is_empty() => format!("&{q}"),
        _ => String::new(),
    }
}

/// Adds the next page's `Link` and `X-Next-Cursor` to a list answer.
fn link_next(resp: &mut Response, uri: &axum::http::Uri, limit: usize, cursor: &str, rest: &str) {
    let link = format!(
        "<{}?limit={limit}&cursor={cursor}{rest}>; rel=\"next\"",
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
    let q = page_params(query.as_deref(), true)?;
    let limit = q.limit;
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
        .list_filtered(&user, team, project, limit, after.as_ref(), &q.filter)
        .await?;
    let mut resp = Json(page.items).into_response();
    if let Some(next) = page.next {
        let cursor = state.cursors.encode(team, project, &next);
        link_next(&mut resp, &uri, limit, &cursor, &filter_query(&q.filter));
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
    let q = page_params(query.as_deref(), false)?;
    let limit = q.limit;
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
        link_next(&mut resp, &uri, limit, &cursor, "");
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

async fn create_security_rule(
    State(state): State<AppState>,
    Caller(user): Caller,
    JsonBody(req): JsonBody<CreateRuleRequest, true>,
) -> Result<(StatusCode, Json<SecurityRuleView>), ApiError> {
    if let Some(vm) = req.virtual_machine {
        record("vm", vm);
    }
    let rule = state.service.create_rule(&user, req).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn list_security_rules(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
) -> Result<Json<Vec<SecurityRuleView>>, ApiError> {
    Ok(Json(state.service.list_rules(&user, id).await?))
}

async fn delete_security_rule(
    State(state): State<AppState>,
    Caller(user): Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<RuleDeleted>, ApiError> {
    let bad = || {
        ApiError::BadParameter(FieldError::new(
            "id",
            "is not a valid security rule id (24 hexadecimal characters)",
        ))
    };
    let Path(raw) = path.map_err(|_| bad())?;
    let id = SecurityRuleId::parse(&raw).map_err(|_| bad())?;
    let deleted = state.service.delete_rule(&user, id).await?;
    record("vm", deleted.vm_id);
    Ok(Json(deleted))
}

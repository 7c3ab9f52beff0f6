//! The handlers of the VM endpoints (and health).

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use vmapi_core::{Action, FieldError};
use vmapi_models::{
    CreateVmRequest, ProjectId, ResizeVmRequest, TeamId, UpdateVmRequest, VirtualMachine,
    VmCredentials,
};

use super::paging::{filter_query, link_next, page_params};
use crate::error::ApiError;
use crate::extract::{etag, parse_id, record, Caller, IfMatchHeader, JsonBody, VmPath};
use crate::state::AppState;

pub(super) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub(super) async fn create_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    JsonBody(req): JsonBody<CreateVmRequest, true>,
) -> Result<(StatusCode, Json<Vec<VirtualMachine>>), ApiError> {
    record("team", req.team);
    let vms = state.service.create(&user, req).await?;
    Ok((StatusCode::CREATED, Json(vms)))
}

pub(super) async fn list_vms(
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

pub(super) async fn get_activity(
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

pub(super) async fn get_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
) -> Result<Response, ApiError> {
    let (vm, version) = state.service.get_versioned(&user, id).await?;
    Ok(([(header::ETAG, etag(version))], Json(vm)).into_response())
}

pub(super) async fn update_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
    JsonBody(patch): JsonBody<UpdateVmRequest>,
) -> Result<Response, ApiError> {
    let (vm, version) = state.service.update_if(&user, id, patch, &if_match).await?;
    Ok(([(header::ETAG, etag(version))], Json(vm)).into_response())
}

pub(super) async fn resize_vm(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
    IfMatchHeader(if_match): IfMatchHeader,
    JsonBody(req): JsonBody<ResizeVmRequest>,
) -> Result<Response, ApiError> {
    let (result, version) = state.service.resize_if(&user, id, &req, &if_match).await?;
    Ok(([(header::ETAG, etag(version))], Json(result)).into_response())
}

/// The route of a VM action (start, stop, reboot: `PUT`; delete: `DELETE`): one handler, with
/// its action.
pub(super) fn action(filter: MethodFilter, action: Action) -> MethodRouter<AppState> {
    on(
        filter,
        move |State(state): State<AppState>,
              Caller(user): Caller,
              VmPath(id): VmPath,
              IfMatchHeader(if_match): IfMatchHeader| async move {
            let (result, version) = state.service.act_if(&user, id, action, &if_match).await?;
            Ok::<_, ApiError>(([(header::ETAG, etag(version))], Json(result)).into_response())
        },
    )
}

pub(super) async fn get_credentials(
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

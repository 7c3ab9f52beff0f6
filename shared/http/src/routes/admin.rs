//! The handlers of the admin API: the `Api-Key` header goes to the use cases, which check it.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use vmapi_core::service::MAX_ADMIN_LIMIT;
use vmapi_core::FieldError;
use vmapi_models::{AdminResult, AdminVmPage, TeamId};

use crate::error::ApiError;
use crate::extract::{parse_id, record, VmPath};
use crate::state::AppState;

/// The header carrying an admin key.
pub const API_KEY: &str = "api-key";

/// Default page size of the admin list.
const DEFAULT_ADMIN_LIMIT: u64 = 10;

/// The `Api-Key` header's value, if any (two values are no key).
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(API_KEY).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// `page` (from 1) and `limit` (1-100); an unknown, repeated or malformed one is a 400 naming it.
fn page_and_limit(query: Option<&str>) -> Result<(u64, u64), ApiError> {
    let bad =
        |field: &str, message: String| ApiError::BadParameter(FieldError::new(field, message));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| bad("query", e.to_string()))?;
    let (mut page, mut limit) = (None, None);
    for (key, value) in pairs {
        let (slot, max) = match key.as_str() {
            "page" => (&mut page, u64::MAX),
            "limit" => (&mut limit, MAX_ADMIN_LIMIT),
            _ => {
                return Err(bad(
                    &key,
                    "is not a parameter of this list (page, limit)".into(),
                ))
            }
        };
        if slot.is_some() {
            return Err(bad(&key, "is given twice".into()));
        }
        *slot = Some(
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    bad(
                        &key,
                        if max == u64::MAX {
                            format!("must be a whole number from 1, got '{value}'")
                        } else {
                            format!("must be a whole number from 1 to {max}, got '{value}'")
                        },
                    )
                })?,
        );
    }
    Ok((page.unwrap_or(1), limit.unwrap_or(DEFAULT_ADMIN_LIMIT)))
}

pub(super) async fn admin_list_team_vms(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<AdminVmPage>, ApiError> {
    let Path(team) = path.map_err(|_| {
        ApiError::BadParameter(FieldError::new(
            "team",
            "must be a valid id (24 hexadecimal characters)",
        ))
    })?;
    let team = parse_id("team", &team, TeamId::parse)?;
    record("team", team);
    let (page, limit) = page_and_limit(query.as_deref())?;
    Ok(Json(
        state
            .service
            .admin_team_vms(api_key(&headers), team, page, limit)
            .await?,
    ))
}

pub(super) async fn admin_delete_vm(
    State(state): State<AppState>,
    headers: HeaderMap,
    VmPath(id): VmPath,
) -> Result<Json<AdminResult>, ApiError> {
    Ok(Json(
        state.service.admin_delete(api_key(&headers), id).await?,
    ))
}

/// The handler of `PUT /admin/api/virtual-machines/{id}/block` (`blocked`) or `/unblock`.
pub(super) fn admin_block(filter: MethodFilter, blocked: bool) -> MethodRouter<AppState> {
    on(
        filter,
        move |State(state): State<AppState>, headers: HeaderMap, VmPath(id): VmPath| async move {
            let result = state
                .service
                .admin_block(api_key(&headers), id, blocked)
                .await?;
            Ok::<_, ApiError>(Json(result))
        },
    )
}

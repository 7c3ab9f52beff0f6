//! The handlers of the security-rule endpoints.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use vmapi_core::FieldError;
use vmapi_models::{CreateRuleRequest, RuleDeleted, SecurityRuleId, SecurityRuleView};

use crate::error::ApiError;
use crate::extract::{record, Caller, JsonBody, VmPath};
use crate::state::AppState;

pub(super) async fn create_security_rule(
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

pub(super) async fn list_security_rules(
    State(state): State<AppState>,
    Caller(user): Caller,
    VmPath(id): VmPath,
) -> Result<Json<Vec<SecurityRuleView>>, ApiError> {
    Ok(Json(state.service.list_rules(&user, id).await?))
}

pub(super) async fn delete_security_rule(
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

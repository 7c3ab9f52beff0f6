//! The handler of a team's cost estimate.

use axum::extract::{Path, State};
use axum::Json;
use vmapi_core::FieldError;
use vmapi_models::{TeamCosts, TeamId};

use crate::error::ApiError;
use crate::extract::{parse_id, record, Caller};
use crate::state::AppState;

pub(super) async fn get_team_costs(
    State(state): State<AppState>,
    Caller(user): Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<TeamCosts>, ApiError> {
    let Path(team) = path.map_err(|_| {
        ApiError::BadParameter(FieldError::new(
            "team",
            "must be a valid id (24 hexadecimal characters)",
        ))
    })?;
    let team = parse_id("team", &team, TeamId::parse)?;
    record("team", team);
    Ok(Json(state.service.team_costs(&user, team).await?))
}

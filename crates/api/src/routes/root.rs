//! `/instances/{id}/root`: the datastore's superuser.

use super::agent_call::call;
use super::instances::find;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use coffer_bus::messages::AgentRequest;
use serde_json::{json, Value};

/// Enable root with a new generated password, shown this once.
pub async fn enable(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let password = call(&s, &i, AgentRequest::EnableRoot).await?;
    tracing::info!(instance = %i.id, "root enabled");
    Ok(Json(
        json!({"user": {"name": "root", "password": password}}),
    ))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let enabled = call(&s, &i, AgentRequest::RootStatus).await?;
    Ok(Json(
        json!({"rootEnabled": enabled.as_bool().unwrap_or(false)}),
    ))
}

pub async fn disable(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    call(&s, &i, AgentRequest::DisableRoot).await?;
    tracing::info!(instance = %i.id, "root disabled");
    Ok(StatusCode::NO_CONTENT)
}

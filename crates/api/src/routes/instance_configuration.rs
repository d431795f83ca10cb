//! An instance's configuration: attach or detach a group (`PUT`/`PATCH
//! /instances/{id}` with `configuration`), and the values in force
//! (`GET /instances/{id}/configuration`).

use super::instances::{find, wake};
use crate::body::JsonBody;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use coffer_bus::messages::AgentRequest;
use coffer_meta::MetaError;
use coffer_model::{Instance, InstanceStatus, Task, TaskKind};
use serde_json::{json, Value};

/// `PUT /instances/{id}` as Trove's v1 client sends it: `{"instance":
/// {"configuration": ID}}` attaches, `{"instance": {}}` (or a null
/// configuration) detaches.
pub async fn put(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let fields = instance_fields(&body)?;
    let target = fields.get("configuration").cloned().unwrap_or(Value::Null);
    set(&s, &project, &raw, &target).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PATCH /instances/{id}`: only the fields given change; `configuration`
/// null detaches.
pub async fn patch(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let fields = instance_fields(&body)?;
    let Some(target) = fields.get("configuration") else {
        return Err(ApiError::BadRequest(
            "nothing to change: only configuration can be changed here".into(),
        ));
    };
    set(&s, &project, &raw, target).await?;
    Ok(StatusCode::ACCEPTED)
}

fn instance_fields(body: &Value) -> Result<&serde_json::Map<String, Value>, ApiError> {
    let fields = body
        .get("instance")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::BadRequest("the body must be {\"instance\": {...}}".into()))?;
    if let Some(other) = fields.keys().find(|k| k.as_str() != "configuration") {
        return Err(ApiError::BadRequest(format!(
            "{other:?} cannot be changed here; only configuration can"
        )));
    }
    Ok(fields)
}

async fn set(s: &ApiState, project: &str, raw: &str, target: &Value) -> Result<(), ApiError> {
    let i = find(s, project, raw).await?;
    let group = match target {
        Value::Null => None,
        Value::String(id) => {
            let g = super::configurations::find(s, project, id).await?;
            if g.datastore != i.datastore || g.datastore_version != i.datastore_version {
                return Err(ApiError::Unprocessable(format!(
                    "configuration group {} is for {} {}, but instance {} runs {} {}",
                    g.id, g.datastore, g.datastore_version, i.id, i.datastore, i.datastore_version
                )));
            }
            Some(g.id)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "configuration must be a configuration group id or null".into(),
            ))
        }
    };
    if group.is_some() && i.configuration_id.is_some() && group != i.configuration_id {
        return Err(ApiError::BadRequest(format!(
            "instance {} already has configuration group {} attached; detach it first",
            i.id,
            i.configuration_id
                .map(|c| c.to_string())
                .unwrap_or_default()
        )));
    }
    if group.is_none() && i.configuration_id.is_none() {
        return Err(ApiError::BadRequest(format!(
            "instance {} has no configuration group attached",
            i.id
        )));
    }
    attach(s, &i, group).await
}

async fn attach(
    s: &ApiState,
    i: &Instance,
    group: Option<coffer_model::ConfigurationId>,
) -> Result<(), ApiError> {
    let configure = AgentRequest::Configure {
        overrides: Default::default(),
    };
    super::agent_call::agent_knows(i, &configure)?;
    let task = Task::pending(TaskKind::ApplyConfiguration, i.id, Value::Null);
    let serving = [InstanceStatus::Active, InstanceStatus::RestartRequired];
    s.store
        .set_instance_configuration(i.id, group, &serving, &task)
        .await
        .map_err(|e| match e {
            MetaError::Conflict(_) => ApiError::Unprocessable(format!(
                "Instance {} is not ready for a configuration change (status is {}).",
                i.id, i.status
            )),
            MetaError::NotFound { .. } => {
                ApiError::NotFound("the configuration group could not be found".into())
            }
            other => other.into(),
        })?;
    wake(s, task.id).await;
    match group {
        Some(g) => {
            tracing::info!(instance = %i.id, configuration = %g, "configuration attach accepted")
        }
        None => tracing::info!(instance = %i.id, "configuration detach accepted"),
    }
    Ok(())
}

/// The values the datastore runs with, as the agent reads them from it.
pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let values = super::agent_call::call(&s, &i, AgentRequest::GetConfiguration).await?;
    Ok(Json(json!({ "instance": { "configuration": values } })))
}

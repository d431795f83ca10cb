//! Quotas: `GET /limits` (the project's absolute limits, as Trove lists
//! them) and the admin's `GET`/`PUT /mgmt/quotas/{project}`.

use crate::body::JsonBody;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use coffer_model::{ProjectId, QuotaSet};
use serde_json::{json, Value};

pub async fn limits(
    State(s): State<ApiState>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let q = s
        .store
        .project_quotas(&ProjectId(project), &s.config.quotas)
        .await?;
    Ok(Json(json!({ "limits": [{
        "verb": "ABSOLUTE",
        "max_instances": q.instances,
        "max_volumes": q.volumes,
        "max_backups": q.backups,
    }]})))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((_admin, project)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = ProjectId(project);
    let limits = s.store.project_quotas(&p, &s.config.quotas).await?;
    let usage = s.store.quota_usage(&p).await?;
    let rows: Vec<Value> = QuotaSet::RESOURCES
        .iter()
        .map(|r| {
            json!({
                "resource": r,
                "in_use": usage.get(r),
                "reserved": 0,
                "limit": limits.get(r),
            })
        })
        .collect();
    Ok(Json(json!({ "quotas": rows })))
}

/// `{"quotas": {"instances": 10, ...}}`: each given limit is set (-1 =
/// unlimited); answers the limits set.
pub async fn update(
    State(s): State<ApiState>,
    Path((_admin, project)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let given = body
        .get("quotas")
        .and_then(Value::as_object)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest("the body must be {\"quotas\": {\"instances\": N, ...}}".into())
        })?;
    let mut checked = Vec::new();
    for (resource, raw) in given {
        if QuotaSet::default().get(resource).is_none() {
            return Err(ApiError::BadRequest(format!(
                "unknown quota resource {resource:?}; known: {}",
                QuotaSet::RESOURCES.join(", ")
            )));
        }
        let limit = raw.as_i64().filter(|&n| n >= -1).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the quota of {resource} must be a whole number, -1 for unlimited"
            ))
        })?;
        checked.push((resource.clone(), limit));
    }
    let p = ProjectId(project);
    for (resource, limit) in &checked {
        s.store.set_project_quota(&p, resource, *limit).await?;
    }
    tracing::info!(project = %p.0, quotas = ?checked, "quotas set");
    let out: serde_json::Map<String, Value> =
        checked.into_iter().map(|(r, l)| (r, json!(l))).collect();
    Ok(Json(json!({ "quotas": out })))
}

use crate::links::base_url;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use coffer_model::Datastore;
use serde_json::{json, Value};

/// A datastore by id or name.
pub async fn find_datastore(s: &ApiState, key: &str) -> Result<Datastore, ApiError> {
    s.store
        .list_datastores()
        .await?
        .into_iter()
        .find(|d| d.id.to_string() == key || d.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("Datastore '{key}' cannot be found.")))
}

/// The id of version `version` of datastore `name` (as the views name it).
pub fn version_id(
    all: &[Datastore],
    name: &str,
    version: &str,
) -> Option<coffer_model::DatastoreVersionId> {
    all.iter()
        .find(|d| d.name == name)
        .and_then(|d| d.version(Some(version)))
        .map(|v| v.id)
}

pub async fn list(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    let all: Vec<Value> = s
        .store
        .list_datastores()
        .await?
        .iter()
        .filter(|d| d.versions.iter().any(|v| v.active))
        .map(|d| views::datastore(&base, &project, d))
        .collect();
    Ok(Json(json!({ "datastores": all })))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let ds = find_datastore(&s, &key).await?;
    Ok(Json(
        json!({ "datastore": views::datastore(&base_url(&headers), &project, &ds) }),
    ))
}

pub async fn list_versions(
    State(s): State<ApiState>,
    Path((project, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let ds = find_datastore(&s, &key).await?;
    let base = base_url(&headers);
    let versions: Vec<Value> = ds
        .versions
        .iter()
        .filter(|v| v.active)
        .map(|v| views::version(&base, &project, &ds, v))
        .collect();
    Ok(Json(json!({ "versions": versions })))
}

pub async fn show_version(
    State(s): State<ApiState>,
    Path((project, key, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let ds = find_datastore(&s, &key).await?;
    let v = ds.version(Some(&version)).ok_or_else(|| {
        ApiError::NotFound(format!("Datastore version '{version}' cannot be found."))
    })?;
    Ok(Json(
        json!({ "version": views::version(&base_url(&headers), &project, &ds, v) }),
    ))
}

pub async fn show_version_by_id(
    State(s): State<ApiState>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let all = s.store.list_datastores().await?;
    let found = all.iter().find_map(|d| {
        d.versions
            .iter()
            .find(|v| v.id.to_string() == id)
            .map(|v| (d, v))
    });
    let (ds, v) = found
        .ok_or_else(|| ApiError::NotFound(format!("Datastore version '{id}' cannot be found.")))?;
    Ok(Json(
        json!({ "version": views::version(&base_url(&headers), &project, ds, v) }),
    ))
}

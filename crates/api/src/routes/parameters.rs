//! `/datastores/.../parameters`: what a configuration group may set on a
//! datastore version, as Trove serves its validation rules.

use super::datastores::find_datastore;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use coffer_model::{Datastore, DatastoreVersion, ParameterSchema};
use serde_json::{json, Value};

/// The schema of a datastore version; 404 naming it when it has none.
pub fn schema<'a>(
    s: &'a ApiState,
    ds: &Datastore,
    v: &DatastoreVersion,
) -> Result<&'a ParameterSchema, ApiError> {
    s.config.parameters.get(&ds.name, &v.name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "No configuration parameters are defined for datastore {} version {}.",
            ds.name, v.name
        ))
    })
}

async fn version_by_name(
    s: &ApiState,
    key: &str,
    version: &str,
) -> Result<(Datastore, DatastoreVersion), ApiError> {
    let ds = find_datastore(s, key).await?;
    let v = ds.version(Some(version)).cloned().ok_or_else(|| {
        ApiError::NotFound(format!("Datastore version '{version}' cannot be found."))
    })?;
    Ok((ds, v))
}

async fn version_by_id(s: &ApiState, id: &str) -> Result<(Datastore, DatastoreVersion), ApiError> {
    for ds in s.store.list_datastores().await? {
        if let Some(v) = ds.versions.iter().find(|v| v.id.to_string() == id).cloned() {
            return Ok((ds, v));
        }
    }
    Err(ApiError::NotFound(format!(
        "Datastore version '{id}' cannot be found."
    )))
}

fn list_of(s: &ApiState, ds: &Datastore, v: &DatastoreVersion) -> Result<Json<Value>, ApiError> {
    let all: Vec<Value> = schema(s, ds, v)?
        .parameters()
        .map(|p| views::parameter(p, v))
        .collect();
    Ok(Json(json!({ "configuration-parameters": all })))
}

fn one_of(
    s: &ApiState,
    ds: &Datastore,
    v: &DatastoreVersion,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    let p = schema(s, ds, v)?.get(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "No configuration parameter {name} is defined for datastore {} version {}.",
            ds.name, v.name
        ))
    })?;
    Ok(Json(views::parameter(p, v)))
}

pub async fn list(
    State(s): State<ApiState>,
    Path((_project, key, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ds, v) = version_by_name(&s, &key, &version).await?;
    list_of(&s, &ds, &v)
}

pub async fn show(
    State(s): State<ApiState>,
    Path((_project, key, version, name)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ds, v) = version_by_name(&s, &key, &version).await?;
    one_of(&s, &ds, &v, &name)
}

pub async fn list_by_version_id(
    State(s): State<ApiState>,
    Path((_project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ds, v) = version_by_id(&s, &id).await?;
    list_of(&s, &ds, &v)
}

pub async fn show_by_version_id(
    State(s): State<ApiState>,
    Path((_project, id, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ds, v) = version_by_id(&s, &id).await?;
    one_of(&s, &ds, &v, &name)
}

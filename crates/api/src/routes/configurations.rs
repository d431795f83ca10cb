//! `/configurations`: configuration groups — create, list, show, replace
//! (PUT) or merge (PATCH) values, delete, and the instances using one.

use super::datastores::find_datastore;
use super::instances::wake;
use crate::body::JsonBody;
use crate::links::base_url;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use coffer_meta::MetaError;
use coffer_model::{
    validate_name, ConfigValue, ConfigurationGroup, ConfigurationId, ProjectId, MAX_NAME_LEN,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

#[derive(Deserialize)]
pub struct Body {
    configuration: GroupRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRequest {
    name: Option<String>,
    description: Option<String>,
    values: Option<Map<String, Value>>,
    datastore: Option<DatastoreRequest>,
}

#[derive(Deserialize)]
struct DatastoreRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
}

const MAX_DESCRIPTION: usize = 255;

fn check_texts(req: &GroupRequest) -> Result<(), ApiError> {
    if let Some(name) = &req.name {
        validate_name("configuration name", name, MAX_NAME_LEN)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    if let Some(d) = &req.description {
        if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "description may hold at most {MAX_DESCRIPTION} characters and no control characters"
            )));
        }
    }
    Ok(())
}

/// `values` checked against the schema of the group's datastore version:
/// an unknown parameter or a bad value is a 422 naming the parameter.
fn checked(
    s: &ApiState,
    datastore: &str,
    version: &str,
    values: &Map<String, Value>,
) -> Result<BTreeMap<String, ConfigValue>, ApiError> {
    let schema = s.config.parameters.get(datastore, version).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "No configuration parameters are defined for datastore {datastore} version {version}."
        ))
    })?;
    schema
        .validate(values)
        .map_err(|e| ApiError::Unprocessable(e.message))
}

/// A group of this project by id; a name or another project's id is a 404.
pub(crate) async fn find(
    s: &ApiState,
    project: &str,
    raw: &str,
) -> Result<ConfigurationGroup, ApiError> {
    let not_found = || ApiError::NotFound(format!("Configuration group {raw} could not be found."));
    let id: ConfigurationId = raw.trim().parse().map_err(|_| not_found())?;
    match s.store.get_configuration(id).await {
        Ok(g) if g.project_id.0 == project => Ok(g),
        Ok(_) | Err(MetaError::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn view(s: &ApiState, base: &str, g: &ConfigurationGroup) -> Result<Value, ApiError> {
    let ds = find_datastore(s, &g.datastore).await?;
    let version_id = ds.version(Some(&g.datastore_version)).map(|v| v.id);
    let count = s.store.configuration_instances(g.id).await?.len();
    let mut out = views::configuration(base, g, version_id, true);
    out["instance_count"] = json!(count);
    Ok(out)
}

pub async fn create(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Body>,
) -> Result<Json<Value>, ApiError> {
    let req = body.configuration;
    check_texts(&req)?;
    let name = req
        .name
        .clone()
        .ok_or_else(|| ApiError::BadRequest("a configuration group needs a name".into()))?;
    let values = req
        .values
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("a configuration group needs values".into()))?;
    let (kind, version) = match &req.datastore {
        Some(d) => (d.kind.clone(), d.version.clone()),
        None => (None, None),
    };
    let ds = find_datastore(&s, kind.as_deref().unwrap_or(&s.config.default_datastore))
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let v = ds.version(version.as_deref()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Datastore version '{}' cannot be found.",
            version.clone().unwrap_or_default()
        ))
    })?;
    let values = checked(&s, &ds.name, &v.name, values)?;
    let now = chrono::Utc::now();
    let group = ConfigurationGroup {
        id: ConfigurationId::new(),
        project_id: ProjectId(project),
        name,
        description: req.description,
        datastore: ds.name.clone(),
        datastore_version: v.name.clone(),
        values,
        created: now,
        updated: now,
    };
    s.store.insert_configuration(&group).await?;
    tracing::info!(configuration = %group.id, name = %group.name, "configuration group created");
    let base = base_url(&headers);
    let mut out = views::configuration(&base, &group, Some(v.id), true);
    out["instance_count"] = json!(0);
    Ok(Json(json!({ "configuration": out })))
}

pub async fn list(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let limit = super::paging::limit(&q, s.config.default_page_size, s.config.max_page_size)?;
    let marker = super::paging::marker::<ConfigurationId>(&q, "a configuration id")?;
    let pid = ProjectId(project.clone());
    let mut page = s
        .store
        .list_configurations(Some(&pid), marker, limit + 1)
        .await
        .map_err(|e| {
            super::paging::bad_marker(e, || {
                format!(
                    "marker {} is not a configuration group of this project",
                    q["marker"]
                )
            })
        })?;
    let base = base_url(&headers);
    let links = super::paging::cut(&mut page, limit, |last| {
        format!(
            "{base}/v1.0/{project}/configurations?limit={limit}&marker={}",
            last.id
        )
    });
    let datastores = s.store.list_datastores().await?;
    let groups: Vec<Value> = page
        .iter()
        .map(|g| {
            let version_id =
                super::datastores::version_id(&datastores, &g.datastore, &g.datastore_version);
            views::configuration(&base, g, version_id, false)
        })
        .collect();
    let mut out = json!({ "configurations": groups });
    if let Some(links) = links {
        out["links"] = links;
    }
    Ok(Json(out))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let g = find(&s, &project, &raw).await?;
    Ok(Json(
        json!({ "configuration": view(&s, &base_url(&headers), &g).await? }),
    ))
}

/// PUT: `values` replace the group's values (name and description too,
/// when given). Attached instances get the new values.
pub async fn replace(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<Body>,
) -> Result<StatusCode, ApiError> {
    change(&s, &project, &raw, body.configuration, false).await?;
    Ok(StatusCode::ACCEPTED)
}

/// PATCH: `values` are merged into the group's values.
pub async fn merge(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<Body>,
) -> Result<StatusCode, ApiError> {
    change(&s, &project, &raw, body.configuration, true).await?;
    Ok(StatusCode::OK)
}

async fn change(
    s: &ApiState,
    project: &str,
    raw: &str,
    req: GroupRequest,
    merge: bool,
) -> Result<(), ApiError> {
    let mut g = find(s, project, raw).await?;
    check_texts(&req)?;
    if req.datastore.is_some() {
        return Err(ApiError::BadRequest(
            "the datastore of a configuration group cannot be changed".into(),
        ));
    }
    let values = req.values.as_ref().ok_or_else(|| {
        ApiError::BadRequest("values are required to update a configuration group".into())
    })?;
    let values = checked(s, &g.datastore, &g.datastore_version, values)?;
    if merge {
        g.values.extend(values);
    } else {
        g.values = values;
    }
    if let Some(name) = req.name {
        g.name = name;
    }
    if req.description.is_some() {
        g.description = req.description;
    }
    let tasks = s.store.update_configuration(&g).await?;
    tracing::info!(configuration = %g.id, instances = tasks.len(), "configuration group updated");
    for t in tasks {
        wake(s, t).await;
    }
    Ok(())
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let g = find(&s, &project, &raw).await?;
    s.store
        .delete_configuration(g.id)
        .await
        .map_err(|e| match e {
            MetaError::Conflict(m) => ApiError::BadRequest(m),
            other => other.into(),
        })?;
    tracing::info!(configuration = %g.id, "configuration group deleted");
    Ok(StatusCode::ACCEPTED)
}

pub async fn instances(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let g = find(&s, &project, &raw).await?;
    let base = base_url(&headers);
    let list: Vec<Value> = s
        .store
        .configuration_instances(g.id)
        .await?
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "name": i.name,
                "links": crate::links::links(&base, &project, &format!("instances/{}", i.id)),
            })
        })
        .collect();
    Ok(Json(json!({ "instances": list })))
}

//! `/backups` and `/instances/{id}/backups`: create, list, show, delete.
//!
//! Trove's shapes: create takes `instance`, `name`, `description`,
//! `incremental` (0/1 or a boolean: the parent is then the instance's
//! newest completed backup) or an explicit `parent_id`. Deleting a backup
//! also deletes the incrementals built on it, as Trove does.

use super::instances::{find as find_instance, wake};
use crate::body::JsonBody;
use crate::links::base_url;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use coffer_meta::MetaError;
use coffer_model::*;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct CreateBody {
    backup: CreateBackup,
}

#[derive(Deserialize)]
struct CreateBackup {
    name: String,
    instance: String,
    description: Option<String>,
    #[serde(default)]
    incremental: Value,
    parent_id: Option<String>,
}

/// Longest description kept.
const MAX_DESCRIPTION: usize = 1024;

fn truthy(v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) if matches!(s.as_str(), "0" | "false" | "False") => Ok(false),
        Value::String(s) if matches!(s.as_str(), "1" | "true" | "True") => Ok(true),
        other => Err(ApiError::BadRequest(format!(
            "incremental must be 0, 1, true or false, not {other}"
        ))),
    }
}

/// A backup of this project by id; anything else is a 404.
pub(crate) async fn find(s: &ApiState, project: &str, raw: &str) -> Result<Backup, ApiError> {
    let not_found = || ApiError::NotFound(format!("Backup {raw} could not be found."));
    let id: BackupId = raw.parse().map_err(|_| not_found())?;
    match s.store.get_backup(id).await {
        Ok(b) if b.project_id.0 == project => Ok(b),
        Ok(_) | Err(MetaError::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// A backup's view; `datastores` (the store's list, read once per
/// request) gives its version id.
async fn view(
    s: &ApiState,
    base: &str,
    b: &Backup,
    datastores: &[coffer_model::Datastore],
) -> Result<Value, ApiError> {
    let progress = if b.status.is_terminal() {
        None
    } else {
        s.store.get_progress(&b.id.to_string()).await?
    };
    let mut out = views::backup(base, b, progress.as_ref());
    out["datastore"]["version_id"] = json!(super::datastores::version_id(
        datastores,
        &b.datastore,
        &b.datastore_version
    ));
    Ok(out)
}

pub async fn create(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body.backup;
    validate_name("backup name", &req.name, MAX_NAME_LEN)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return Err(ApiError::BadRequest(format!(
            "description is longer than {MAX_DESCRIPTION} bytes"
        )));
    }
    let instance = find_instance(&s, &project, &req.instance).await?;
    let policy = s.config.backups.get(&instance.datastore).ok_or_else(|| {
        ApiError::NotImplemented(format!(
            "backups are not configured for datastore {}",
            instance.datastore
        ))
    })?;
    let parent = match (&req.parent_id, truthy(&req.incremental)?) {
        (Some(raw), _) => Some(find(&s, &project, raw).await.map_err(|_| {
            ApiError::BadRequest(format!("parent backup {raw} could not be found"))
        })?),
        (None, true) => {
            let all = s
                .store
                .list_backups(
                    Some(&instance.project_id),
                    Some(instance.id),
                    None,
                    usize::MAX,
                )
                .await?;
            let newest = all
                .into_iter()
                .rev()
                .find(|b| b.status == BackupStatus::Completed)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "instance {} has no completed backup to be incremental to",
                        instance.id
                    ))
                })?;
            Some(newest)
        }
        (None, false) => None,
    };
    if let Some(p) = &parent {
        if !policy.incremental {
            return Err(ApiError::BadRequest(format!(
                "the {} backup strategy of datastore {} takes no incremental backups",
                policy.strategy, instance.datastore
            )));
        }
        if p.instance_id != instance.id {
            return Err(ApiError::BadRequest(format!(
                "parent backup {} is of another instance",
                p.id
            )));
        }
        if p.status != BackupStatus::Completed {
            return Err(ApiError::BadRequest(format!(
                "parent backup {} is {}, not COMPLETED",
                p.id, p.status
            )));
        }
    }
    let now = chrono::Utc::now();
    let id = BackupId::new();
    let backup = Backup {
        id,
        project_id: instance.project_id.clone(),
        name: req.name,
        description: req.description,
        instance_id: instance.id,
        parent_id: parent.map(|p| p.id),
        status: BackupStatus::New,
        datastore: instance.datastore.clone(),
        datastore_version: instance.datastore_version.clone(),
        strategy: policy.strategy.clone(),
        location: None,
        object_key: format!("{id}.cbk"),
        plain_bytes: None,
        stored_bytes: None,
        checksum: None,
        // Chosen by the task manager, which holds the master key.
        wrapped_key: String::new(),
        key_id: String::new(),
        codec: String::new(),
        info: Value::Null,
        fault: None,
        created: now,
        updated: now,
    };
    let task = Task {
        id: TaskId::new(),
        kind: TaskKind::CreateBackup,
        instance_id: instance.id,
        state: TaskState::Pending,
        step: "accepted".into(),
        attempts: 0,
        payload: json!(BackupTaskPayload { backup_id: id }),
        error: None,
        created: now,
        updated: now,
    };
    s.store
        .start_backup(&backup, &task, Some(&s.config.quotas))
        .await
        .map_err(|e| match e {
            MetaError::Conflict(m) => ApiError::Unprocessable(format!(
                "Instance {} is not available for a backup: {m}",
                instance.id
            )),
            other => other.into(),
        })?;
    wake(&s, task.id).await;
    tracing::info!(backup = %id, instance = %instance.id, incremental = backup.parent_id.is_some(), "backup accepted");
    let base = base_url(&headers);
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "backup": view(&s, &base, &backup, &s.store.list_datastores().await?).await? }),
        ),
    ))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let b = find(&s, &project, &raw).await?;
    Ok(Json(
        json!({ "backup": view(&s, &base_url(&headers), &b, &s.store.list_datastores().await?).await? }),
    ))
}

pub async fn list(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let instance = match q.get("instance_id") {
        None => None,
        Some(raw) => Some(find_instance(&s, &project, raw).await?.id),
    };
    list_page(&s, &project, instance, &q, &headers, "backups").await
}

pub async fn list_of_instance(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let instance = find_instance(&s, &project, &raw).await?;
    let path = format!("instances/{}/backups", instance.id);
    list_page(&s, &project, Some(instance.id), &q, &headers, &path).await
}

async fn list_page(
    s: &ApiState,
    project: &str,
    instance: Option<InstanceId>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Json<Value>, ApiError> {
    let limit = super::paging::limit(q, s.config.default_page_size, s.config.max_page_size)?;
    let marker = super::paging::marker::<BackupId>(q, "a backup id")?;
    let pid = ProjectId(project.to_string());
    let mut page = s
        .store
        .list_backups(Some(&pid), instance, marker, limit + 1)
        .await
        .map_err(|e| {
            super::paging::bad_marker(e, || "marker is not a backup in this listing".into())
        })?;
    let base = base_url(headers);
    let links = super::paging::cut(&mut page, limit, |last| {
        format!(
            "{base}/v1.0/{project}/{path}?limit={limit}&marker={}",
            last.id
        )
    });
    let datastores = s.store.list_datastores().await?;
    let mut backups = Vec::with_capacity(page.len());
    for b in &page {
        backups.push(view(s, &base, b, &datastores).await?);
    }
    let mut out = json!({ "backups": backups });
    if let Some(links) = links {
        out["links"] = links;
    }
    Ok(Json(out))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let b = find(&s, &project, &raw).await?;
    if !b.status.is_terminal() {
        return Err(ApiError::Unprocessable(format!(
            "Backup {} is {} and cannot be deleted until it ends.",
            b.id, b.status
        )));
    }
    let now = chrono::Utc::now();
    let task = Task {
        id: TaskId::new(),
        kind: TaskKind::DeleteBackup,
        instance_id: b.instance_id,
        state: TaskState::Pending,
        step: "accepted".into(),
        attempts: 0,
        payload: json!(BackupTaskPayload { backup_id: b.id }),
        error: None,
        created: now,
        updated: now,
    };
    s.store.insert_task(&task).await?;
    wake(&s, task.id).await;
    tracing::info!(backup = %b.id, "backup delete accepted");
    Ok(StatusCode::ACCEPTED)
}

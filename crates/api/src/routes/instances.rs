//! `/instances`: create, list, show, delete, actions.

use super::datastores::find_datastore;
use super::flavors::parse_flavor_id;
use crate::body::JsonBody;
use crate::instance_view::{InstancePage, InstanceView, OneInstance};
use crate::links::base_url;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffer_bus::messages::TaskWakeup;
use coffer_bus::TASKMANAGER;
use coffer_meta::MetaError;
use coffer_model::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::Ipv4Addr;

#[derive(Deserialize)]
pub struct CreateBody {
    instance: CreateInstance,
}

#[derive(Deserialize)]
struct CreateInstance {
    name: String,
    #[serde(rename = "flavorRef")]
    flavor_ref: Value,
    volume: Option<VolumeRequest>,
    #[serde(default)]
    databases: Vec<DatabaseRequest>,
    #[serde(default)]
    users: Vec<UserRequest>,
    datastore: Option<DatastoreRequest>,
    #[serde(rename = "restorePoint")]
    restore_point: Option<RestorePoint>,
    /// A configuration group id, in force from the first start.
    configuration: Option<String>,
}

#[derive(Deserialize)]
struct RestorePoint {
    #[serde(rename = "backupRef")]
    backup_ref: String,
}

#[derive(Deserialize)]
struct VolumeRequest {
    size: Value,
}

#[derive(Deserialize)]
struct DatabaseRequest {
    name: String,
}

#[derive(Deserialize)]
struct UserRequest {
    name: String,
    password: String,
    host: Option<String>,
    #[serde(default)]
    databases: Vec<DatabaseRequest>,
}

#[derive(Deserialize)]
struct DatastoreRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
}

/// `flavorRef` may be an id (number or string) or a link ending in one.
pub(crate) fn flavor_ref(v: &Value) -> Result<FlavorId, ApiError> {
    let raw = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.rsplit('/').next().unwrap_or(s).to_string(),
        _ => return Err(ApiError::BadRequest("flavorRef must be a flavor id".into())),
    };
    parse_flavor_id(&raw)
}

fn volume_size(v: Option<&VolumeRequest>, max: i64) -> Result<i64, ApiError> {
    let v = v.ok_or_else(|| ApiError::BadRequest("Volume size was not specified.".into()))?;
    let size = match &v.size {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match size {
        Some(s) if (1..=max).contains(&s) => Ok(s),
        _ => Err(ApiError::BadRequest(format!(
            "Volume 'size' needs to be a positive integer value, at most {max} (GB); got {}",
            v.size
        ))),
    }
}

fn bad(e: impl ToString) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

/// The first address of the range, from host number `from` on (wrapping
/// around), that no live instance holds. Host numbers 0 and the last
/// (network and broadcast) are never given.
fn free_ip(range: (Ipv4Addr, u8), used: &[Ipv4Addr], from: u64) -> Option<Ipv4Addr> {
    let (net, prefix) = range;
    let size = 1u64 << (32 - u32::from(prefix.min(30)));
    let base = u32::from(net) & !((size - 1) as u32);
    let used: std::collections::HashSet<&Ipv4Addr> = used.iter().collect();
    let hosts = size - 2;
    let start = from.saturating_sub(1) % hosts;
    (0..hosts)
        .map(|i| Ipv4Addr::from(base + (1 + (start + i) % hosts) as u32))
        .find(|ip| !used.contains(ip))
}

pub async fn create(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let req = body.instance;
    validate_name("instance name", &req.name, MAX_NAME_LEN).map_err(bad)?;
    let size = volume_size(req.volume.as_ref(), s.config.max_volume_gb)?;
    let flavor = s
        .store
        .get_flavor(flavor_ref(&req.flavor_ref)?)
        .await
        .map_err(|e| match e {
            MetaError::NotFound { .. } => {
                ApiError::NotFound(format!("Flavor {} could not be found", req.flavor_ref))
            }
            other => other.into(),
        })?;
    let (mut ds_name, mut ds_version) = match &req.datastore {
        Some(d) => (d.kind.clone(), d.version.clone()),
        None => (None, None),
    };
    let restore = match &req.restore_point {
        None => None,
        Some(point) => {
            let backup = restorable(&s, &project, &point.backup_ref, size).await?;
            match &ds_name {
                Some(name) if *name != backup.datastore => {
                    return Err(ApiError::BadRequest(format!(
                        "backup {} is of datastore {}, not {name}",
                        backup.id, backup.datastore
                    )))
                }
                _ => ds_name = Some(backup.datastore.clone()),
            }
            ds_version.get_or_insert_with(|| backup.datastore_version.clone());
            Some(RestorePlan {
                backup_id: backup.id,
            })
        }
    };
    let ds = find_datastore(
        &s,
        ds_name.as_deref().unwrap_or(&s.config.default_datastore),
    )
    .await?;
    let version = ds.version(ds_version.as_deref()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Datastore version '{}' cannot be found.",
            ds_version.clone().unwrap_or_default()
        ))
    })?;
    if !version.active {
        return Err(ApiError::BadRequest(format!(
            "Datastore version '{}' is not active.",
            version.name
        )));
    }

    let configuration = match &req.configuration {
        None => None,
        Some(raw) => {
            let g = super::configurations::find(&s, &project, raw)
                .await
                .map_err(|_| {
                    ApiError::NotFound(format!("Configuration group {raw} could not be found."))
                })?;
            if g.datastore != ds.name || g.datastore_version != version.name {
                return Err(ApiError::Unprocessable(format!(
                    "configuration group {} is for {} {}, not {} {}",
                    g.id, g.datastore, g.datastore_version, ds.name, version.name
                )));
            }
            Some(g.id)
        }
    };

    let mut databases = Vec::new();
    for d in &req.databases {
        validate_identifier("database name", &d.name).map_err(ApiError::BadRequest)?;
        if !databases.iter().any(|x: &DatabaseSpec| x.name == d.name) {
            databases.push(DatabaseSpec {
                name: d.name.clone(),
            });
        }
    }
    let mut users = Vec::new();
    for u in &req.users {
        validate_identifier("user name", &u.name).map_err(ApiError::BadRequest)?;
        validate_password(&u.name, &u.password).map_err(ApiError::BadRequest)?;
        if users.iter().any(|x: &UserSpec| x.name == u.name) {
            return Err(ApiError::BadRequest(format!(
                "user {:?} is given twice",
                u.name
            )));
        }
        let host = u.host.clone().unwrap_or_else(|| "%".into());
        for d in &u.databases {
            validate_identifier("database name", &d.name).map_err(ApiError::BadRequest)?;
        }
        let dbs = u.databases.iter().map(|d| d.name.clone()).collect();
        users.push(UserSpec {
            name: u.name.clone(),
            password: u.password.clone(),
            host,
            databases: dbs,
        });
    }
    let users_sealed = if users.is_empty() {
        None
    } else {
        Some(
            s.sealer
                .seal(&serde_json::to_vec(&users).map_err(|e| ApiError::Internal(e.to_string()))?),
        )
    };
    let payload = CreateInstancePayload {
        manager: version.manager.clone(),
        ram_mb: flavor.ram_mb,
        vcpus: flavor.vcpus,
        databases,
        users_sealed,
        restore,
    };

    let now = chrono::Utc::now();
    let mut instance = Instance {
        id: InstanceId::new(),
        project_id: ProjectId(project),
        name: req.name,
        status: InstanceStatus::Build,
        operating_status: OperatingStatus::New,
        flavor_id: flavor.id,
        datastore: ds.name.clone(),
        datastore_version: version.name.clone(),
        volume_size_gb: size,
        volume_used_bytes: None,
        ip: None,
        fault: None,
        created: now,
        updated: now,
        last_heartbeat: None,
        configuration_id: configuration,
        agent_protocol: None,
    };
    let task = Task {
        id: TaskId::new(),
        kind: TaskKind::CreateInstance,
        instance_id: instance.id,
        state: TaskState::Pending,
        step: "accepted".into(),
        attempts: 0,
        payload: serde_json::to_value(&payload).map_err(|e| ApiError::Internal(e.to_string()))?,
        error: None,
        created: now,
        updated: now,
    };
    // Two creates may pick the same free address; the store refuses the
    // second, which then picks again.
    let mut tries = 0;
    loop {
        let used = s.store.used_ips().await?;
        // The lowest free address first; after a clash with a concurrent
        // create, a random starting point, so racing creates spread out.
        let from = if tries == 0 { 1 } else { rand::random::<u64>() };
        instance.ip = Some(free_ip(s.config.address_range, &used, from).ok_or_else(|| {
            ApiError::Conflict("no free instance address is left in the configured range".into())
        })?);
        match s
            .store
            .create_instance(&instance, &task, Some(&s.config.quotas))
            .await
        {
            Err(MetaError::Conflict(_)) if tries < 10 => tries += 1,
            other => break other?,
        }
    }
    wake(&s, task.id).await;
    tracing::info!(instance = %instance.id, name = %instance.name, datastore = %instance.datastore, "instance create accepted");
    let instance = InstanceView::new(&base_url(&headers), &instance, true, s.config.agent_silence);
    Ok(Json(OneInstance { instance }).into_response())
}

/// The backup `raw` names, if a new instance of `size_gb` can be restored
/// from it: this project's, COMPLETED, and not larger than the volume.
async fn restorable(
    s: &ApiState,
    project: &str,
    raw: &str,
    size_gb: i64,
) -> Result<Backup, ApiError> {
    let backup = super::backups::find(s, project, raw).await.map_err(|_| {
        ApiError::BadRequest(format!("backup {raw} to restore from could not be found"))
    })?;
    if backup.status != BackupStatus::Completed {
        return Err(ApiError::BadRequest(format!(
            "backup {} is {}; only a COMPLETED backup can be restored",
            backup.id, backup.status
        )));
    }
    let needed = backup.plain_bytes.unwrap_or(0);
    if needed > size_gb.saturating_mul(1 << 30) {
        return Err(ApiError::BadRequest(format!(
            "backup {} holds {needed} bytes, more than the {size_gb} GB volume",
            backup.id
        )));
    }
    Ok(backup)
}

/// Tell the task manager a task is ready. Losing this is harmless: the task
/// manager also polls for pending tasks.
pub(crate) async fn wake(s: &ApiState, task_id: TaskId) {
    let body = serde_json::to_value(TaskWakeup { task_id }).unwrap_or_default();
    if let Err(e) = s.bus.cast(TASKMANAGER, body).await {
        tracing::debug!("task manager not woken ({e}); it will find the task by polling");
    }
}

/// An instance of this project by id; a name or another project's id is a 404.
pub(crate) async fn find(s: &ApiState, project: &str, raw: &str) -> Result<Instance, ApiError> {
    let not_found = || ApiError::NotFound(format!("Instance {raw} could not be found."));
    let id: InstanceId = raw.parse().map_err(|_| not_found())?;
    match s.store.get_instance(id).await {
        Ok(i) if i.project_id.0 == project => Ok(i),
        Ok(_) | Err(MetaError::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let mut view = InstanceView::new(&base_url(&headers), &i, true, s.config.agent_silence);
    if let (Some(c), Some(r)) = (i.configuration_id, view.configuration.as_mut()) {
        if let Ok(g) = s.store.get_configuration(c).await {
            r.name = Some(g.name);
        }
    }
    if i.status == InstanceStatus::Build {
        if let Some(p) = s.store.get_progress(&i.id.to_string()).await? {
            view.progress = Some(views::progress_view(&p));
        }
    }
    Ok(Json(OneInstance { instance: view }).into_response())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = super::paging::limit(&q, s.config.default_page_size, s.config.max_page_size)?;
    let marker = super::paging::marker::<InstanceId>(&q, "an instance id")?;
    let pid = ProjectId(project.clone());
    let mut page = s
        .store
        .list_instances(Some(&pid), marker, limit + 1)
        .await
        .map_err(|e| {
            super::paging::bad_marker(e, || {
                format!("marker {} is not an instance of this project", q["marker"])
            })
        })?;
    let base = base_url(&headers);
    let links = super::paging::cut(&mut page, limit, |last| {
        format!(
            "{base}/v1.0/{project}/instances?limit={limit}&marker={}",
            last.id
        )
    });
    let instances = page
        .iter()
        .map(|i| InstanceView::new(&base, i, false, s.config.agent_silence))
        .collect();
    Ok(Json(InstancePage { instances, links }).into_response())
}

/// `GET /mgmt/instances` (admins): every project's live instances.
pub async fn list_all(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = super::paging::limit(&q, s.config.default_page_size, s.config.max_page_size)?;
    let marker = super::paging::marker::<InstanceId>(&q, "an instance id")?;
    let page = s.store.list_instances(None, marker, limit).await?;
    let base = base_url(&headers);
    let instances = page
        .iter()
        .map(|i| InstanceView::new(&base, i, true, s.config.agent_silence))
        .collect();
    Ok(Json(InstancePage {
        instances,
        links: None,
    })
    .into_response())
}

pub(crate) fn new_task(kind: TaskKind, instance_id: InstanceId) -> Task {
    let now = chrono::Utc::now();
    Task {
        id: TaskId::new(),
        kind,
        instance_id,
        state: TaskState::Pending,
        step: "accepted".into(),
        attempts: 0,
        payload: Value::Null,
        error: None,
        created: now,
        updated: now,
    }
}

/// Start `kind` on the instance if its status is one of `from`.
pub(crate) async fn start(
    s: &ApiState,
    i: &Instance,
    kind: TaskKind,
    from: &[InstanceStatus],
    to: InstanceStatus,
) -> Result<(), ApiError> {
    start_task(s, i, new_task(kind, i.id), from, to).await
}

/// Start `task` on the instance if its status is one of `from`.
pub(crate) async fn start_task(
    s: &ApiState,
    i: &Instance,
    task: Task,
    from: &[InstanceStatus],
    to: InstanceStatus,
) -> Result<(), ApiError> {
    s.store.start_instance_task(i.id, from, to, &task).await.map_err(|e| match e {
        MetaError::Conflict(_) => ApiError::Unprocessable(format!(
            "Instance {} is not currently available for an action to be performed (instance status was {}; this needs {}).",
            i.id,
            i.status,
            from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
        )),
        other => other.into(),
    })?;
    wake(s, task.id).await;
    Ok(())
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    start(
        &s,
        &i,
        TaskKind::DeleteInstance,
        &[
            InstanceStatus::Active,
            InstanceStatus::RestartRequired,
            InstanceStatus::Error,
        ],
        InstanceStatus::Shutdown,
    )
    .await?;
    tracing::info!(instance = %i.id, "instance delete accepted");
    Ok(StatusCode::ACCEPTED)
}

/// `POST /instances/{id}/action` with exactly one of `restart`, `reset_status`.
pub async fn action(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let obj = body.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        ApiError::BadRequest(
            "an action body holds exactly one action, e.g. {\"restart\": {}}".into(),
        )
    })?;
    match obj.keys().next().map(String::as_str) {
        Some("restart") => {
            start(
                &s,
                &i,
                TaskKind::RestartInstance,
                &[InstanceStatus::Active, InstanceStatus::RestartRequired],
                InstanceStatus::Reboot,
            )
            .await?;
        }
        Some("resize") => super::resize::resize(&s, &i, &obj["resize"]).await?,
        Some("reset_status") => {
            // Trove's escape hatch for an instance stuck in a transitional
            // status: put it in ERROR so it can be deleted or restarted.
            let fault = Fault {
                message: "status reset by request".into(),
                created: chrono::Utc::now(),
            };
            s.store
                .set_instance_status(i.id, InstanceStatus::Error, Some(&fault))
                .await?;
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown action {other:?}; known: restart, resize, reset_status"
            )))
        }
        None => unreachable!("one key checked above"),
    }
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn free_ip_skips_used_and_network_address() {
        let r = (Ipv4Addr::new(127, 10, 0, 0), 16);
        assert_eq!(free_ip(r, &[], 1), Some(Ipv4Addr::new(127, 10, 0, 1)));
        let used = [Ipv4Addr::new(127, 10, 0, 1), Ipv4Addr::new(127, 10, 0, 2)];
        assert_eq!(free_ip(r, &used, 1), Some(Ipv4Addr::new(127, 10, 0, 3)));
        let tiny = (Ipv4Addr::new(127, 11, 0, 0), 30);
        let both = [Ipv4Addr::new(127, 11, 0, 1), Ipv4Addr::new(127, 11, 0, 2)];
        assert_eq!(free_ip(tiny, &both, 1), None);
        // Any starting point wraps around and never gives the network or
        // broadcast address.
        let one = [Ipv4Addr::new(127, 11, 0, 1)];
        for from in [0, 1, 2, 3, 4, 99, u64::MAX] {
            assert_eq!(
                free_ip(tiny, &one, from),
                Some(Ipv4Addr::new(127, 11, 0, 2))
            );
        }
        assert_eq!(free_ip(r, &[], 300), Some(Ipv4Addr::new(127, 10, 1, 44)));
    }

    #[test]
    fn flavor_refs() {
        assert_eq!(flavor_ref(&json!(2)).unwrap(), FlavorId(2));
        assert_eq!(flavor_ref(&json!("3")).unwrap(), FlavorId(3));
        assert_eq!(
            flavor_ref(&json!("http://h/v1.0/p/flavors/4")).unwrap(),
            FlavorId(4)
        );
        assert!(flavor_ref(&json!("small")).is_err());
        assert!(flavor_ref(&json!(null)).is_err());
    }
}

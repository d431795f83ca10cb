//! What both SQL backends share below the queries: turning rows into model
//! types, timestamps to and from epoch milliseconds, and database errors into
//! [`MetaError`]s.
//!
//! Both schemas store the same column types (text, 64-bit integers, booleans,
//! epoch-millisecond timestamps), so one decoder per model type serves both.

use crate::MetaError;
use chrono::{DateTime, Utc};
use coffer_model::{
    ConfigurationGroup, Datastore, DatastoreId, DatastoreVersion, Fault, Flavor, FlavorId,
    Instance, InstanceStatus, OperatingStatus, ProjectId, Task, TaskKind, TaskState,
};
use sqlx::{ColumnIndex, Decode, Row, Type};
use std::fmt::Display;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Columns selected (in this order) wherever an [`Instance`] is read.
pub(crate) const INSTANCE_COLUMNS: &str = "id, project_id, name, status, operating_status, \
     flavor_id, datastore, datastore_version, volume_size_gb, volume_used_bytes, ip, \
     fault_message, fault_created, created, updated, last_heartbeat, configuration_id, \
     agent_protocol";

/// Columns selected wherever a [`ConfigurationGroup`] is read.
pub(crate) const CONFIGURATION_COLUMNS: &str = "id, project_id, name, description, datastore, \
     datastore_version, vals, created, updated";

/// Columns selected wherever a [`Task`] is read.
pub(crate) const TASK_COLUMNS: &str =
    "id, kind, instance_id, state, step, attempts, payload, error, created, updated";

/// Columns selected wherever a [`Flavor`] is read.
pub(crate) const FLAVOR_COLUMNS: &str = "id, name, ram_mb, vcpus, disk_gb";

/// Typed column access for any backend's row; the bounds are stated once here
/// so the decoders below need none.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> Result<String, MetaError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError>;
    fn int(&self, col: &str) -> Result<i64, MetaError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError>;
    fn flag(&self, col: &str) -> Result<bool, MetaError>;
}

impl<R> Columns for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, col: &str) -> Result<String, MetaError> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64, MetaError> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError> {
        Ok(self.try_get(col)?)
    }
    fn flag(&self, col: &str) -> Result<bool, MetaError> {
        Ok(self.try_get(col)?)
    }
}

/// A unique violation is a `Conflict` (its message is refined where the
/// caller knows which rule it was); anything else is a `Backend` error.
impl From<sqlx::Error> for MetaError {
    fn from(err: sqlx::Error) -> Self {
        match err.as_database_error() {
            Some(db) if db.is_unique_violation() => MetaError::Conflict(db.message().to_string()),
            _ => MetaError::Backend(err.into()),
        }
    }
}

/// Whether `err` is the violation of the "one live instance per ip" index.
pub(crate) fn is_ip_conflict(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| {
        db.is_unique_violation()
            && (db.constraint() == Some("instances_live_ip")
                || db.message().contains("instances.ip"))
    })
}

/// `err` as a `Conflict` saying `message` when it is a unique violation.
pub(crate) fn conflict_or_backend(err: sqlx::Error, message: impl FnOnce() -> String) -> MetaError {
    match err.as_database_error() {
        Some(db) if db.is_unique_violation() => MetaError::Conflict(message()),
        _ => err.into(),
    }
}

/// The row a lookup by `id` found, decoded; NotFound when there was none.
pub(crate) fn one<R, T>(
    found: Option<R>,
    decode: fn(&R) -> Result<T, MetaError>,
    what: &'static str,
    id: impl Display,
) -> Result<T, MetaError> {
    found.map_or_else(|| Err(MetaError::not_found(what, id)), |row| decode(&row))
}

/// NotFound when a statement that changes the row `id` changed none.
pub(crate) fn changed(
    rows_affected: u64,
    what: &'static str,
    id: impl Display,
) -> Result<(), MetaError> {
    if rows_affected == 0 {
        return Err(MetaError::not_found(what, id));
    }
    Ok(())
}

/// A timestamp as stored: epoch milliseconds (finer precision is dropped).
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn timestamp(ms: i64) -> Result<DateTime<Utc>, MetaError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("timestamp", ms))
}

fn corrupt(what: &str, value: impl Display) -> MetaError {
    MetaError::Backend(anyhow::anyhow!("stored {what} {value} cannot be read"))
}

fn parsed<T: FromStr>(what: &str, text: String) -> Result<T, MetaError> {
    text.parse().map_err(|_| corrupt(what, text))
}

fn with<T>(what: &str, text: String, parse: fn(&str) -> Option<T>) -> Result<T, MetaError> {
    parse(&text).ok_or_else(|| corrupt(what, text))
}

/// The instance status stored in column `col`.
pub(crate) fn instance_status(row: &impl Columns, col: &str) -> Result<InstanceStatus, MetaError> {
    with("instance status", row.text(col)?, InstanceStatus::parse)
}

/// The address in column `ip`.
pub(crate) fn ip(row: &impl Columns) -> Result<Ipv4Addr, MetaError> {
    parsed("ip", row.text("ip")?)
}

pub(crate) fn flavor(row: &impl Columns) -> Result<Flavor, MetaError> {
    Ok(Flavor {
        id: FlavorId(row.int("id")?),
        name: row.text("name")?,
        ram_mb: row.int("ram_mb")?,
        vcpus: row.int("vcpus")?,
        disk_gb: row.int("disk_gb")?,
    })
}

/// Datastores with their versions from the rows of
/// `datastores LEFT JOIN datastore_versions` ordered by datastore name, then
/// version name: the datastore's own columns are `id`, `name`,
/// `default_version`; the version's are `version_id`, `version_name`,
/// `version_manager`, `version_active` (NULL when it has none).
pub(crate) fn datastores<R: Columns>(found: &[R]) -> Result<Vec<Datastore>, MetaError> {
    let mut out: Vec<Datastore> = Vec::new();
    for row in found {
        let id: DatastoreId = parsed("datastore id", row.text("id")?)?;
        if out.last().map(|d| d.id) != Some(id) {
            out.push(Datastore {
                id,
                name: row.text("name")?,
                default_version: row
                    .opt_text("default_version")?
                    .map(|v| parsed("datastore version id", v))
                    .transpose()?,
                versions: Vec::new(),
            });
        }
        if let (Some(version_id), Some(datastore)) = (row.opt_text("version_id")?, out.last_mut()) {
            datastore.versions.push(DatastoreVersion {
                id: parsed("datastore version id", version_id)?,
                datastore_id: id,
                name: row.text("version_name")?,
                manager: row.text("version_manager")?,
                active: row.flag("version_active")?,
            });
        }
    }
    Ok(out)
}

pub(crate) fn instance(row: &impl Columns) -> Result<Instance, MetaError> {
    let fault = match (
        row.opt_text("fault_message")?,
        row.opt_int("fault_created")?,
    ) {
        (Some(message), Some(created)) => Some(Fault {
            message,
            created: timestamp(created)?,
        }),
        _ => None,
    };
    Ok(Instance {
        id: parsed("instance id", row.text("id")?)?,
        project_id: ProjectId(row.text("project_id")?),
        name: row.text("name")?,
        status: instance_status(row, "status")?,
        operating_status: with(
            "operating status",
            row.text("operating_status")?,
            OperatingStatus::parse,
        )?,
        flavor_id: FlavorId(row.int("flavor_id")?),
        datastore: row.text("datastore")?,
        datastore_version: row.text("datastore_version")?,
        volume_size_gb: row.int("volume_size_gb")?,
        volume_used_bytes: row.opt_int("volume_used_bytes")?,
        ip: row.opt_text("ip")?.map(|ip| parsed("ip", ip)).transpose()?,
        fault,
        created: timestamp(row.int("created")?)?,
        updated: timestamp(row.int("updated")?)?,
        last_heartbeat: row.opt_int("last_heartbeat")?.map(timestamp).transpose()?,
        configuration_id: row
            .opt_text("configuration_id")?
            .map(|c| parsed("configuration id", c))
            .transpose()?,
        agent_protocol: row
            .opt_int("agent_protocol")?
            .and_then(|v| u32::try_from(v).ok()),
    })
}

pub(crate) fn task(row: &impl Columns) -> Result<Task, MetaError> {
    let payload = row.text("payload")?;
    Ok(Task {
        id: parsed("task id", row.text("id")?)?,
        kind: with("task kind", row.text("kind")?, TaskKind::parse)?,
        instance_id: parsed("instance id", row.text("instance_id")?)?,
        state: with("task state", row.text("state")?, TaskState::parse)?,
        step: row.text("step")?,
        attempts: row.int("attempts")?,
        payload: serde_json::from_str(&payload).map_err(|e| {
            MetaError::Backend(anyhow::Error::new(e).context("stored task payload"))
        })?,
        error: row.opt_text("error")?,
        created: timestamp(row.int("created")?)?,
        updated: timestamp(row.int("updated")?)?,
    })
}

/// A task payload as stored: JSON text.
pub(crate) fn payload_text(task: &Task) -> Result<String, MetaError> {
    serde_json::to_string(&task.payload).map_err(|e| MetaError::Backend(e.into()))
}

/// Columns selected wherever a [`Backup`](coffer_model::Backup) is read.
pub(crate) const BACKUP_COLUMNS: &str = "id, project_id, name, description, instance_id, \
     parent_id, status, datastore, datastore_version, strategy, location, object_key, \
     plain_bytes, stored_bytes, checksum, wrapped_key, key_id, codec, info, fault, created, \
     updated";

pub(crate) fn backup(row: &impl Columns) -> Result<coffer_model::Backup, MetaError> {
    let info = row.text("info")?;
    Ok(coffer_model::Backup {
        id: parsed("backup id", row.text("id")?)?,
        project_id: ProjectId(row.text("project_id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        instance_id: parsed("instance id", row.text("instance_id")?)?,
        parent_id: row
            .opt_text("parent_id")?
            .map(|p| parsed("backup id", p))
            .transpose()?,
        status: with(
            "backup status",
            row.text("status")?,
            coffer_model::BackupStatus::parse,
        )?,
        datastore: row.text("datastore")?,
        datastore_version: row.text("datastore_version")?,
        strategy: row.text("strategy")?,
        location: row.opt_text("location")?,
        object_key: row.text("object_key")?,
        plain_bytes: row.opt_int("plain_bytes")?,
        stored_bytes: row.opt_int("stored_bytes")?,
        checksum: row.opt_text("checksum")?,
        wrapped_key: row.text("wrapped_key")?,
        key_id: row.text("key_id")?,
        codec: row.text("codec")?,
        info: serde_json::from_str(&info).map_err(|_| corrupt("backup info", &info))?,
        fault: row.opt_text("fault")?,
        created: timestamp(row.int("created")?)?,
        updated: timestamp(row.int("updated")?)?,
    })
}

pub(crate) fn progress(row: &impl Columns) -> Result<coffer_model::Progress, MetaError> {
    let count = |col: &str| -> Result<u64, MetaError> {
        let v = row.int(col)?;
        u64::try_from(v).map_err(|_| corrupt(col, v))
    };
    Ok(coffer_model::Progress {
        phase: row.text("phase")?,
        bytes_done: count("bytes_done")?,
        bytes_total: row
            .opt_int("bytes_total")?
            .map(|v| u64::try_from(v).map_err(|_| corrupt("bytes_total", v)))
            .transpose()?,
        bytes_per_second: count("bytes_per_second")?,
        stored_bytes: count("stored_bytes")?,
    })
}

/// A byte count as stored (SQL integers are signed).
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn configuration(row: &impl Columns) -> Result<ConfigurationGroup, MetaError> {
    let raw = row.text("vals")?;
    Ok(ConfigurationGroup {
        id: parsed("configuration id", row.text("id")?)?,
        project_id: ProjectId(row.text("project_id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        datastore: row.text("datastore")?,
        datastore_version: row.text("datastore_version")?,
        values: serde_json::from_str(&raw).map_err(|_| corrupt("configuration values", &raw))?,
        created: timestamp(row.int("created")?)?,
        updated: timestamp(row.int("updated")?)?,
    })
}

/// A configuration group's values as stored.
pub(crate) fn values_text(group: &ConfigurationGroup) -> Result<String, MetaError> {
    serde_json::to_string(&group.values).map_err(|e| MetaError::Backend(e.into()))
}

pub(crate) fn api_token(row: &impl Columns) -> Result<coffer_model::ApiToken, MetaError> {
    Ok(coffer_model::ApiToken {
        id: row.text("id")?,
        token_hash: row.text("token_hash")?,
        project_id: row.opt_text("project_id")?.map(ProjectId),
        is_admin: row.flag("is_admin")?,
        description: row.opt_text("description")?,
        created: timestamp(row.int("created")?)?,
    })
}

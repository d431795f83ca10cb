//! The trait and the factory.

use crate::MetaError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coffer_model::{
    Datastore, Fault, Flavor, FlavorId, Instance, InstanceId, InstanceStatus, OperatingStatus,
    ProjectId, QuotaSet, Task, TaskId, TaskState,
};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Control-plane state. Every method is one transaction: it either happens
/// whole or not at all. "Not found" is `MetaError::NotFound`; a deleted
/// instance is not found.
#[async_trait]
pub trait MetadataStore:
    crate::AuthStore
    + crate::BackupStore
    + crate::ConfigurationStore
    + crate::PlacementStore
    + crate::QuotaStore
    + crate::TaskLeaseStore
    + Send
    + Sync
    + 'static
{
    /// Bring the schema up to date (embedded migrations). Idempotent.
    async fn migrate(&self) -> Result<(), MetaError>;

    /// All flavors, ordered by id.
    async fn list_flavors(&self) -> Result<Vec<Flavor>, MetaError>;
    async fn get_flavor(&self, id: FlavorId) -> Result<Flavor, MetaError>;
    /// Insert or replace by id.
    async fn upsert_flavor(&self, flavor: &Flavor) -> Result<(), MetaError>;
    /// NotFound when absent; Conflict when a live instance uses it.
    async fn delete_flavor(&self, id: FlavorId) -> Result<(), MetaError>;

    /// All datastores with their versions, ordered by name (versions by name).
    async fn list_datastores(&self) -> Result<Vec<Datastore>, MetaError>;
    /// Insert or replace a datastore and all its versions (by id).
    async fn upsert_datastore(&self, datastore: &Datastore) -> Result<(), MetaError>;

    /// Insert a new instance and the task that builds it, atomically.
    /// Conflict when `instance.ip` is already taken by a live instance;
    /// with `quotas` (the configured defaults), QuotaExceeded when the
    /// project's instances or volume GB would pass its limits.
    async fn create_instance(
        &self,
        instance: &Instance,
        task: &Task,
        quotas: Option<&QuotaSet>,
    ) -> Result<(), MetaError>;
    async fn get_instance(&self, id: InstanceId) -> Result<Instance, MetaError>;
    /// Live instances in creation order, optionally of one project, starting
    /// after `marker` (exclusive), at most `limit`. NotFound if the marker is
    /// not a live instance visible in this listing.
    async fn list_instances(
        &self,
        project: Option<&ProjectId>,
        marker: Option<InstanceId>,
        limit: usize,
    ) -> Result<Vec<Instance>, MetaError>;
    /// Addresses held by live instances.
    async fn used_ips(&self) -> Result<Vec<Ipv4Addr>, MetaError>;
    /// Set the status (and fault: `Some` sets it, `None` clears it).
    async fn set_instance_status(
        &self,
        id: InstanceId,
        status: InstanceStatus,
        fault: Option<&Fault>,
    ) -> Result<(), MetaError>;
    /// Record a fault on a live instance whatever its status, leaving the
    /// status as it is (news from its agent, such as a datastore killed
    /// for its memory and restarted). NotFound if it is not live.
    async fn set_instance_fault(&self, id: InstanceId, fault: &Fault) -> Result<(), MetaError>;
    /// Atomically: if the instance's status is one of `from`, set it to `to`
    /// and insert `task`; otherwise Conflict naming the current status.
    async fn start_instance_task(
        &self,
        id: InstanceId,
        from: &[InstanceStatus],
        to: InstanceStatus,
        task: &Task,
    ) -> Result<(), MetaError>;
    /// Record an agent heartbeat (`None` measurements and protocol keep
    /// the last ones).
    async fn record_heartbeat(
        &self,
        id: InstanceId,
        status: OperatingStatus,
        volume_used_bytes: Option<i64>,
        agent_protocol: Option<u32>,
        at: DateTime<Utc>,
    ) -> Result<(), MetaError>;
    /// Mark deleted: it disappears from gets and lists and frees its ip.
    async fn mark_instance_deleted(&self, id: InstanceId) -> Result<(), MetaError>;

    async fn insert_task(&self, task: &Task) -> Result<(), MetaError>;
    async fn get_task(&self, id: TaskId) -> Result<Task, MetaError>;
    /// Persist progress: state, last completed step, attempts, error.
    async fn update_task(
        &self,
        id: TaskId,
        state: TaskState,
        step: &str,
        attempts: i64,
        error: Option<&str>,
    ) -> Result<(), MetaError>;
    /// Tasks in state pending or running, oldest first: what to resume.
    async fn unfinished_tasks(&self) -> Result<Vec<Task>, MetaError>;
}

/// The handle callers hold.
pub type Store = Arc<dyn MetadataStore>;

/// Open (and migrate) the store a URL names:
/// `sqlite://PATH` (created if missing; WAL mode) or `postgres://...` /
/// `postgresql://...`. Any other scheme is a `Config` error listing the
/// known ones.
pub async fn open(url: &str) -> Result<Store, MetaError> {
    let store: Store = if url.starts_with("sqlite:") {
        Arc::new(crate::sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(crate::postgres::PostgresStore::connect(url).await?)
    } else {
        return Err(MetaError::Config(format!(
            "unknown metadata store URL {url:?}; known schemes: sqlite://, postgres://"
        )));
    };
    store.migrate().await?;
    Ok(store)
}

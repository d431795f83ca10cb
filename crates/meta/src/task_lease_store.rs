//! The task-lease half of the metadata store: which task manager runs which
//! task. Several task managers may share one store; each claims a task
//! before it runs it, holding a lease (an owner and an expiry) that it
//! renews while the task runs. A task is claimable when it is unfinished
//! (pending or running) and its lease is free, expired, or already held by
//! the claimer. Expiry is decided by the database's clock, so task managers
//! on hosts whose clocks disagree still agree on who holds what. A
//! supertrait of [`MetadataStore`](crate::MetadataStore).

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::{Task, TaskId, TaskState};
use std::time::Duration;

#[async_trait]
pub trait TaskLeaseStore: Send + Sync + 'static {
    /// Atomically claim up to `limit` claimable tasks, oldest first: set
    /// their owner to `owner` and their lease to expire `lease` from now,
    /// and return them. Tasks `owner` already holds count towards `limit`
    /// (their leases are extended). Concurrent claimers never get the same
    /// task, and never wait for one another's rows (PostgreSQL skips rows
    /// another claimer has locked).
    async fn claim_tasks(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Task>, MetaError>;

    /// Claim the task `id` under the same rule as [`Self::claim_tasks`].
    /// `None` when it cannot be claimed: unknown, finished, or held by
    /// another owner whose lease has not expired.
    async fn claim_task(
        &self,
        id: TaskId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Task>, MetaError>;

    /// Extend the lease on `id` to `lease` from now if `owner` still holds
    /// it (even if it expired, as long as nobody claimed it since). False
    /// when `owner` lost it: the task belongs to someone else now.
    async fn renew_lease(
        &self,
        id: TaskId,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, MetaError>;

    /// Free the lease on `id` if `owner` holds it; otherwise do nothing.
    async fn release_task(&self, id: TaskId, owner: &str) -> Result<(), MetaError>;

    /// Record a task's progress (as `update_task`) only while `owner` holds
    /// its lease, in the same statement: a task manager that lost a task
    /// can never write over its new owner's progress. False when it did not
    /// hold it.
    async fn update_leased_task(
        &self,
        id: TaskId,
        owner: &str,
        state: TaskState,
        step: &str,
        attempts: i64,
        error: Option<&str>,
    ) -> Result<bool, MetaError>;
}

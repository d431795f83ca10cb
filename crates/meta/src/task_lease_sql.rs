//! [`TaskLeaseStore`](crate::TaskLeaseStore) over SQL, written once for
//! both backends. Besides `sql`, `begin_write` and the pool, it uses two
//! dialect constants of the backend type:
//!
//! - `SKIP_LOCKED`: the row-lock suffix of the claim's sub-select
//!   (`" FOR UPDATE SKIP LOCKED"` on PostgreSQL, so concurrent claimers
//!   neither wait on nor share a row; nothing on SQLite, whose writes are
//!   serialized);
//! - `NOW_MILLIS`: the database's clock in epoch milliseconds, so every
//!   task manager measures leases by the same clock.

/// Implements `TaskLeaseStore` for `$store`.
macro_rules! impl_task_lease_store {
    ($store:ty) => {
        const _: () = {
            use coffer_model::{Task, TaskId, TaskKind, TaskState};
            use std::time::Duration;
            use $crate::rows::{self, TASK_COLUMNS};
            use $crate::{MetaError, TaskLeaseStore};

            /// A lease as stored: milliseconds, bounded so that adding it
            /// to the clock cannot overflow.
            fn lease_millis(lease: Duration) -> i64 {
                i64::try_from(lease.as_millis())
                    .unwrap_or(i64::MAX)
                    .min(i64::MAX / 4)
            }

            impl $store {
                /// The condition that makes a task claimable by the owner
                /// bound to its one placeholder.
                /// Of the tasks that run in instance order, only the oldest
                /// unfinished one of an instance is claimable.
                fn claimable() -> String {
                    let now = Self::NOW_MILLIS;
                    let unfinished = format!(
                        "('{}', '{}')",
                        TaskState::Pending.as_str(),
                        TaskState::Running.as_str(),
                    );
                    let ordered = TaskKind::IN_INSTANCE_ORDER
                        .iter()
                        .map(|k| format!("'{}'", k.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "state IN {unfinished} AND (lease_owner IS NULL \
                         OR lease_expires <= {now} OR lease_owner = ?) \
                         AND (kind NOT IN ({ordered}) OR NOT EXISTS (\
                         SELECT 1 FROM tasks AS earlier \
                         WHERE earlier.instance_id = tasks.instance_id \
                         AND earlier.kind IN ({ordered}) \
                         AND earlier.state IN {unfinished} \
                         AND (earlier.created < tasks.created \
                         OR (earlier.created = tasks.created AND earlier.id < tasks.id))))",
                    )
                }
            }

            #[async_trait::async_trait]
            impl TaskLeaseStore for $store {
                async fn claim_tasks(
                    &self,
                    owner: &str,
                    lease: Duration,
                    limit: usize,
                ) -> Result<Vec<Task>, MetaError> {
                    // The sub-select picks (and on PostgreSQL locks, skipping
                    // rows other claimers hold) the tasks; MATERIALIZED makes
                    // it run exactly once, so no more than `limit` are taken.
                    let q = Self::sql(&format!(
                        "WITH picked AS MATERIALIZED (\
                         SELECT id FROM tasks WHERE {claimable} \
                         ORDER BY created, id LIMIT ?{skip}) \
                         UPDATE tasks SET lease_owner = ?, lease_expires = {now} + ? \
                         WHERE id IN (SELECT id FROM picked) \
                         RETURNING {TASK_COLUMNS}",
                        claimable = Self::claimable(),
                        skip = Self::SKIP_LOCKED,
                        now = Self::NOW_MILLIS,
                    ));
                    let mut tx = self.begin_write().await?;
                    let found = sqlx::query(&q)
                        .bind(owner)
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .bind(owner)
                        .bind(lease_millis(lease))
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    let mut tasks = found
                        .iter()
                        .map(rows::task)
                        .collect::<Result<Vec<_>, _>>()?;
                    // RETURNING keeps no order.
                    tasks.sort_by_key(|t| (t.created, t.id));
                    Ok(tasks)
                }

                async fn claim_task(
                    &self,
                    id: TaskId,
                    owner: &str,
                    lease: Duration,
                ) -> Result<Option<Task>, MetaError> {
                    let q = Self::sql(&format!(
                        "UPDATE tasks SET lease_owner = ?, lease_expires = {now} + ? \
                         WHERE id = ? AND {claimable} RETURNING {TASK_COLUMNS}",
                        now = Self::NOW_MILLIS,
                        claimable = Self::claimable(),
                    ));
                    let found = sqlx::query(&q)
                        .bind(owner)
                        .bind(lease_millis(lease))
                        .bind(id.to_string())
                        .bind(owner)
                        .fetch_optional(&self.pool)
                        .await?;
                    found.as_ref().map(rows::task).transpose()
                }

                async fn renew_lease(
                    &self,
                    id: TaskId,
                    owner: &str,
                    lease: Duration,
                ) -> Result<bool, MetaError> {
                    let q = Self::sql(&format!(
                        "UPDATE tasks SET lease_expires = {now} + ? \
                         WHERE id = ? AND lease_owner = ?",
                        now = Self::NOW_MILLIS,
                    ));
                    let done = sqlx::query(&q)
                        .bind(lease_millis(lease))
                        .bind(id.to_string())
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn update_leased_task(
                    &self,
                    id: TaskId,
                    owner: &str,
                    state: TaskState,
                    step: &str,
                    attempts: i64,
                    error: Option<&str>,
                ) -> Result<bool, MetaError> {
                    let q = Self::sql(
                        "UPDATE tasks SET state = ?, step = ?, attempts = ?, error = ?, updated = ? \
                         WHERE id = ? AND lease_owner = ?",
                    );
                    let done = sqlx::query(&q)
                        .bind(state.as_str())
                        .bind(step)
                        .bind(attempts)
                        .bind(error)
                        .bind(rows::millis(chrono::Utc::now()))
                        .bind(id.to_string())
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn release_task(&self, id: TaskId, owner: &str) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "UPDATE tasks SET lease_owner = NULL, lease_expires = NULL \
                         WHERE id = ? AND lease_owner = ?",
                    );
                    sqlx::query(&q)
                        .bind(id.to_string())
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use impl_task_lease_store;

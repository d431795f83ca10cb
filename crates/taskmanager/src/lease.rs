//! Keeping the lease on a running task: renewing it while the task runs,
//! noticing when another task manager took it over, and releasing it when
//! the task ends.

use crate::TaskManager;
use coffer_model::TaskId;
use std::time::Duration;

/// The shortest renewal period, whatever the configured lease.
const MIN_RENEWAL: Duration = Duration::from_millis(10);

impl TaskManager {
    /// Renew the lease on `id` every third of the lease, for as long as
    /// this future is polled; returns only once the lease is lost (it is
    /// then marked lost, so no further progress of the task is recorded).
    /// A renewal that fails (store unreachable) is retried at the next
    /// period: the lease may still be ours then.
    pub(crate) async fn keep_lease(&self, id: TaskId) {
        let lease = self.config.task_lease;
        let period = (lease / 3).max(MIN_RENEWAL);
        loop {
            tokio::time::sleep(period).await;
            match self.store.renew_lease(id, &self.owner, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    self.mark_lost(id);
                    return;
                }
                Err(e) => tracing::warn!(task = %id, "could not renew the task's lease: {e}"),
            }
        }
    }

    /// Whether this task manager still holds `id` (checked by renewing its
    /// lease); marks it lost if not. When the store cannot be asked, the
    /// lease is assumed held: the writes that follow will fail alike.
    pub(crate) async fn still_holds(&self, id: TaskId) -> bool {
        if self.lease_lost(id) {
            return false;
        }
        match self
            .store
            .renew_lease(id, &self.owner, self.config.task_lease)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                self.mark_lost(id);
                false
            }
            Err(e) => {
                tracing::warn!(task = %id, "could not confirm the task's lease: {e}");
                true
            }
        }
    }

    /// The task ended here: release its lease (unless it was lost) and
    /// forget that it was lost.
    pub(crate) async fn end_lease(&self, id: TaskId) {
        if self.lost.lock().expect("lock").remove(&id) {
            return;
        }
        if let Err(e) = self.store.release_task(id, &self.owner).await {
            tracing::warn!(task = %id, "could not release the task's lease (it will expire): {e}");
        }
    }

    /// Whether another task manager took `id` over while it ran here.
    pub(crate) fn lease_lost(&self, id: TaskId) -> bool {
        self.lost.lock().expect("lock").contains(&id)
    }

    pub(crate) fn mark_lost(&self, id: TaskId) {
        if self.lost.lock().expect("lock").insert(id) {
            tracing::error!(task = %id, owner = %self.owner,
                "lost the task's lease to another task manager; recording no further progress");
        }
    }
}

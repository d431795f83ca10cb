//! Task pickup, bookkeeping, crash recovery and agent supervision.

use coffer_bus::messages::TaskWakeup;
use coffer_bus::{Bus, TASKMANAGER};
use coffer_compute::ComputeDriver;
use coffer_meta::Store;
use coffer_model::{Fault, InstanceStatus, Task, TaskId, TaskKind, TaskState};
use coffer_secrets::Sealer;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Timeouts and limits of the workflows.
#[derive(Clone, Debug)]
pub struct TaskManagerConfig {
    /// How long a new agent may take to connect to the bus.
    pub agent_connect_timeout: Duration,
    /// How long the agent may take to prepare the datastore.
    pub prepare_timeout: Duration,
    /// How long a restart or stop may take.
    pub action_timeout: Duration,
    /// Runs of one task (first run plus resumptions) before it fails.
    pub max_attempts: i64,
    /// Agents heartbeat this often.
    pub heartbeat_interval: Duration,
    /// Where agents reach the local bus.
    pub bus_socket: PathBuf,
    /// How often to look for unfinished tasks and dead agents.
    pub poll_interval: Duration,
    /// How long a claimed task stays ours without a renewal; renewed every
    /// third of it while the task runs (30 s in the default configuration).
    pub task_lease: Duration,
    /// The name leases are held under; `None`: a fresh one per process.
    pub owner: Option<String>,
    /// Parameter schemas: which configuration values apply live.
    pub parameters: coffer_model::ParameterCatalog,
}

pub struct TaskManager {
    pub(crate) store: Store,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) compute: Arc<dyn ComputeDriver>,
    pub(crate) sealer: Sealer,
    pub(crate) config: TaskManagerConfig,
    pub(crate) backups: Option<Arc<crate::BackupSettings>>,
    /// This process's name on the leases it holds: a fresh uuid.
    pub(crate) owner: String,
    /// Tasks running in this process (so none runs twice here at once).
    running: Mutex<HashSet<TaskId>>,
    /// Tasks running here whose lease another task manager has taken.
    pub(crate) lost: Mutex<HashSet<TaskId>>,
}

/// The most tasks one claim takes (those already running here count).
const CLAIM_BATCH: usize = 64;

impl TaskManager {
    pub fn new(
        store: Store,
        bus: Arc<dyn Bus>,
        compute: Arc<dyn ComputeDriver>,
        sealer: Sealer,
        config: TaskManagerConfig,
        backups: Option<Arc<crate::BackupSettings>>,
    ) -> Arc<Self> {
        // A v4 uuid, minted through the model's id type, unless named.
        let owner = config
            .owner
            .clone()
            .unwrap_or_else(|| TaskId::new().0.to_string());
        Arc::new(Self {
            store,
            bus,
            compute,
            sealer,
            config,
            backups,
            owner,
            running: Mutex::new(HashSet::new()),
            lost: Mutex::new(HashSet::new()),
        })
    }

    /// The owner this task manager's leases are held under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Run until cancelled: recover, then take tasks as they are announced
    /// on the bus or found by polling, and keep live instances' agents up.
    /// Every task is claimed in the metadata store before it runs, so task
    /// managers sharing a store never run the same task.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(owner = %self.owner, "task manager starting");
        let mut wakeups = self.bus.subscribe(TASKMANAGER).await?;
        self.recover().await?;
        let mut tick = tokio::time::interval(self.config.poll_interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                msg = wakeups.next() => {
                    let Some(msg) = msg else { return Ok(()) };
                    match serde_json::from_value::<TaskWakeup>(msg.body) {
                        Ok(w) => match self.store.claim_task(w.task_id, &self.owner, self.config.task_lease).await {
                            Ok(Some(task)) => self.clone().spawn(task),
                            Ok(None) => tracing::debug!(task = %w.task_id, "woken for a task that is finished or claimed elsewhere"),
                            Err(e) => tracing::warn!(task = %w.task_id, "wake-up for a task that could not be claimed: {e}"),
                        },
                        Err(e) => tracing::warn!("bad wake-up message: {e}"),
                    }
                }
                _ = tick.tick() => {
                    self.clone().poll_tasks().await;
                    self.supervise().await;
                }
            }
        }
    }

    /// Resume unfinished work that no other task manager holds (or whose
    /// holder's lease expired) and clean up after a crash.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let tasks = self.claim().await?;
        if !tasks.is_empty() {
            tracing::info!(count = tasks.len(), "resuming unfinished tasks");
        }
        for task in tasks {
            self.clone().spawn(task);
        }
        self.remove_orphans().await;
        Ok(())
    }

    async fn poll_tasks(self: Arc<Self>) {
        match self.claim().await {
            Ok(tasks) => tasks.into_iter().for_each(|t| self.clone().spawn(t)),
            Err(e) => tracing::warn!("polling tasks: {e}"),
        }
    }

    /// Claim unfinished tasks nobody else holds, oldest first.
    async fn claim(&self) -> Result<Vec<Task>, coffer_meta::MetaError> {
        let lease = self.config.task_lease;
        self.store
            .claim_tasks(&self.owner, lease, CLAIM_BATCH)
            .await
    }

    /// Servers on this compute host that no live instance owns.
    async fn remove_orphans(&self) {
        let Ok(servers) = self.compute.list().await else {
            return;
        };
        for id in servers {
            if let Err(coffer_meta::MetaError::NotFound { .. }) = self.store.get_instance(id).await
            {
                tracing::warn!(instance = %id, "removing a server that belongs to no instance");
                if let Err(e) = self.compute.destroy(id).await {
                    tracing::error!(instance = %id, "could not remove orphan server: {e}");
                }
            }
        }
    }

    /// Start agents of live instances that died (unless the compute hosts
    /// do that themselves).
    async fn supervise(&self) {
        if self.compute.supervises_agents() {
            return;
        }
        let Ok(instances) = self.store.list_instances(None, None, usize::MAX).await else {
            return;
        };
        for inst in instances
            .iter()
            .filter(|i| matches!(i.status, InstanceStatus::Active | InstanceStatus::Backup))
        {
            if let Err(e) = self.compute.ensure_running(inst.id).await {
                tracing::warn!(instance = %inst.id, "agent supervision: {e}");
            }
        }
    }

    /// Run `task`, claimed by this task manager, unless it already runs
    /// here or is finished. Its lease is renewed while it runs and released
    /// when it ends.
    fn spawn(self: Arc<Self>, task: Task) {
        if task.state.is_terminal() || !self.running.lock().expect("lock").insert(task.id) {
            return;
        }
        tokio::spawn(async move {
            let id = task.id;
            let next_in_order = TaskKind::IN_INSTANCE_ORDER.contains(&task.kind);
            let run = self.run_task(task);
            tokio::pin!(run);
            tokio::select! {
                () = &mut run => {}
                // The lease was lost: let the task stop at its next save.
                () = self.keep_lease(id) => run.await,
            }
            // Released before leaving `running`, so a poll in between cannot
            // start the task here again under the same lease.
            self.end_lease(id).await;
            self.running.lock().expect("lock").remove(&id);
            // The instance's next datastore change became claimable.
            if next_in_order {
                self.clone().poll_tasks().await;
            }
        });
    }

    async fn run_task(&self, mut task: Task) {
        task.attempts += 1;
        if task.attempts > self.config.max_attempts {
            let msg = format!("gave up after {} attempts", task.attempts - 1);
            self.fail(&task, &msg).await;
            return;
        }
        if let Err(e) = self.save(&task, TaskState::Running).await {
            tracing::error!(task = %task.id, "could not record task start: {e}");
            return;
        }
        tracing::info!(task = %task.id, kind = task.kind.as_str(), instance = %task.instance_id, step = %task.step, attempt = task.attempts, "running task");
        let outcome = self.run_workflow(&mut task).await;
        if !self.still_holds(task.id).await {
            tracing::error!(task = %task.id, "the task's lease was lost while it ran; leaving its outcome to its new owner");
            return;
        }
        match outcome {
            Ok(()) => {
                if let Err(e) = self.save(&task, TaskState::Done).await {
                    tracing::error!(task = %task.id, "could not record task end: {e}");
                }
            }
            Err(e) => self.fail(&task, &format!("{e:#}")).await,
        }
    }

    /// Record that `step` completed.
    pub(crate) async fn step(&self, task: &mut Task, step: &str) -> anyhow::Result<()> {
        task.step = step.to_string();
        self.save(task, TaskState::Running).await?;
        Ok(())
    }

    /// Record the task's progress, unless its lease was lost (Conflict).
    async fn save(&self, task: &Task, state: TaskState) -> Result<(), coffer_meta::MetaError> {
        if self.lease_lost(task.id) {
            return Err(coffer_meta::MetaError::Conflict(format!(
                "task {} now belongs to another task manager",
                task.id
            )));
        }
        // Fenced: written only while this task manager holds the lease.
        let held = self
            .store
            .update_leased_task(
                task.id,
                &self.owner,
                state,
                &task.step,
                task.attempts,
                task.error.as_deref(),
            )
            .await?;
        if held {
            return Ok(());
        }
        self.mark_lost(task.id);
        Err(coffer_meta::MetaError::Conflict(format!(
            "task {} now belongs to another task manager",
            task.id
        )))
    }

    /// The workflow failed. An instance workflow leaves the instance in
    /// ERROR with the reason and its processes stopped (files kept for
    /// inspection until delete); a backup workflow fails only the backup;
    /// a configuration apply only records why (the agent put the old
    /// values back).
    async fn fail(&self, task: &Task, message: &str) {
        if self.lease_lost(task.id) {
            tracing::error!(task = %task.id, "task failed after its lease was lost (left to its new owner): {message}");
            return;
        }
        let recorded = self
            .store
            .update_leased_task(
                task.id,
                &self.owner,
                TaskState::Failed,
                &task.step,
                task.attempts,
                Some(message),
            )
            .await;
        if let Ok(false) = recorded {
            self.mark_lost(task.id);
            tracing::error!(task = %task.id, "task failed after its lease was lost (left to its new owner): {message}");
            return;
        }
        tracing::error!(task = %task.id, instance = %task.instance_id, "task failed: {message}");
        match task.kind {
            TaskKind::CreateBackup => return self.backup_failed(task, message).await,
            TaskKind::DeleteBackup => return self.backup_delete_failed(task, message).await,
            TaskKind::ApplyConfiguration => return self.configuration_failed(task, message).await,
            _ => {}
        }
        let fault = Fault {
            message: message.to_string(),
            created: chrono::Utc::now(),
        };
        if let Err(e) = self
            .store
            .set_instance_status(task.instance_id, InstanceStatus::Error, Some(&fault))
            .await
        {
            tracing::error!(instance = %task.instance_id, "could not record fault: {e}");
        }
        if let Err(e) = self.compute.stop(task.instance_id).await {
            tracing::error!(instance = %task.instance_id, "could not stop server: {e}");
        }
    }
}

use crate::{InstanceId, TaskId};
use serde::{Deserialize, Serialize};

/// The workflow a task row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    CreateInstance,
    DeleteInstance,
    RestartInstance,
    /// Take a backup of `instance_id` (payload: `BackupTaskPayload`).
    CreateBackup,
    /// Remove a backup and its incrementals (payload: `BackupTaskPayload`).
    DeleteBackup,
    /// Bring the instance's datastore to its configuration group's values
    /// (as they are when the task runs; no payload).
    ApplyConfiguration,
    /// Change the flavor or the volume size (payload: `ResizePayload`).
    ResizeInstance,
}

/// Where a task is. `Pending` and `Running` are resumed after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Running,
    Done,
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TaskState::Pending,
            "running" => TaskState::Running,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Failed)
    }
}

impl TaskKind {
    /// The workflows that change how an instance's datastore runs. Of
    /// these, one instance runs one at a time, oldest first: two applies
    /// (or an apply and a restart) at once could leave the datastore on
    /// the values of the one that finished last rather than the latest.
    pub const IN_INSTANCE_ORDER: [TaskKind; 3] = [
        TaskKind::RestartInstance,
        TaskKind::ApplyConfiguration,
        TaskKind::ResizeInstance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::CreateInstance => "create_instance",
            TaskKind::DeleteInstance => "delete_instance",
            TaskKind::RestartInstance => "restart_instance",
            TaskKind::CreateBackup => "create_backup",
            TaskKind::DeleteBackup => "delete_backup",
            TaskKind::ApplyConfiguration => "apply_configuration",
            TaskKind::ResizeInstance => "resize_instance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create_instance" => TaskKind::CreateInstance,
            "delete_instance" => TaskKind::DeleteInstance,
            "restart_instance" => TaskKind::RestartInstance,
            "create_backup" => TaskKind::CreateBackup,
            "delete_backup" => TaskKind::DeleteBackup,
            "apply_configuration" => TaskKind::ApplyConfiguration,
            "resize_instance" => TaskKind::ResizeInstance,
            _ => return None,
        })
    }
}

/// A durable workflow run. `step` is the last step that completed, so a
/// restarted task manager continues after it. `payload` holds the workflow's
/// input; secrets in it are sealed, never plain text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub instance_id: InstanceId,
    pub state: TaskState,
    pub step: String,
    pub attempts: i64,
    pub payload: serde_json::Value,
    pub error: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub updated: chrono::DateTime<chrono::Utc>,
}

impl Task {
    /// A new pending task of `kind` on `instance_id`.
    pub fn pending(kind: TaskKind, instance_id: InstanceId, payload: serde_json::Value) -> Self {
        let now = chrono::Utc::now();
        Task {
            id: TaskId::new(),
            kind,
            instance_id,
            state: TaskState::Pending,
            step: "accepted".into(),
            attempts: 0,
            payload,
            error: None,
            created: now,
            updated: now,
        }
    }
}

/// The input of a create-instance task, as stored in the task row.
/// `users_sealed` holds the initial users (with passwords) sealed by the
/// control plane's `Sealer`; nothing in a task row is a plain secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInstancePayload {
    /// Name of the `DatastoreManager` strategy.
    pub manager: String,
    pub ram_mb: i64,
    /// The flavor's vCPUs (0 in payloads written before it was carried:
    /// no CPU quota).
    #[serde(default)]
    pub vcpus: i64,
    pub databases: Vec<crate::DatabaseSpec>,
    pub users_sealed: Option<String>,
    /// Restore this backup (and its parents) instead of starting empty.
    #[serde(default)]
    pub restore: Option<crate::RestorePlan>,
}

/// The input of a resize task: exactly one of a new flavor or a new volume size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizePayload {
    Flavor {
        flavor_id: crate::FlavorId,
        ram_mb: i64,
        /// 0 in payloads written before it was carried: no CPU quota.
        #[serde(default)]
        vcpus: i64,
    },
    Volume {
        size_gb: i64,
    },
}

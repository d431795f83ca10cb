//! The typed messages on the bus. They travel as JSON, tagged by `method`.

use coffer_model::{
    BackupId, DatabaseSpec, InstanceId, OperatingStatus, Overrides, Progress, UserInfo, UserSpec,
    UserUpdate, VolumeUsage,
};
use serde::{Deserialize, Serialize};

/// The version of the agent protocol this build speaks. An agent announces
/// its own in every heartbeat (agents from before versioning announce
/// nothing: version 1); the control plane sends an agent only requests its
/// version has ([`AgentRequest::since`]), so it can be upgraded first and
/// keep serving the agents of the previous version.
///
/// 1: lifecycle, accounts, backup and restore. 2: configuration groups and
/// resize (`Configure`, `GetConfiguration`, `Resize`).
pub const PROTOCOL: u32 = 2;

/// The protocol of an agent that announced none.
pub fn first_protocol() -> u32 {
    1
}

/// What the control plane asks of a guest agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AgentRequest {
    /// Initialise the datastore, start it, create the initial databases and
    /// users. Idempotent: a repeat after a crash converges to the same state.
    Prepare {
        databases: Vec<DatabaseSpec>,
        users: Vec<UserSpec>,
        /// The configuration group's settings, in force from the first start.
        #[serde(default)]
        overrides: Overrides,
    },
    /// Restart the datastore process.
    Restart,
    /// Stop the datastore process (before delete).
    Stop,
    /// Report health now.
    Status,
    /// Tenant databases (`Vec<String>`).
    ListDatabases,
    /// Create databases; AlreadyExists if one exists (nothing is created then).
    CreateDatabases {
        databases: Vec<DatabaseSpec>,
    },
    DeleteDatabase {
        name: String,
    },
    /// Tenant users (`Vec<UserInfo>`).
    ListUsers,
    /// Create users; AlreadyExists if one exists (nothing is created then).
    CreateUsers {
        users: Vec<UserSpec>,
    },
    UpdateUser {
        name: String,
        host: String,
        update: UserUpdate,
    },
    DeleteUser {
        name: String,
        host: String,
    },
    GrantAccess {
        name: String,
        host: String,
        databases: Vec<String>,
    },
    RevokeAccess {
        name: String,
        host: String,
        database: String,
    },
    /// Enable the superuser; answers the new password (`String`).
    EnableRoot,
    DisableRoot,
    /// Whether the superuser is enabled (`bool`).
    RootStatus,
    /// Stream a backup of the running datastore into storage; answers a
    /// `BackupReport`. Asking again for a backup that runs waits for it.
    Backup(BackupOrder),
    /// Fill the new, never-prepared instance from backups, then create the
    /// databases and users as `Prepare` would. Answers an `AgentStatus`.
    Restore(RestoreOrder),
    /// Make `overrides` the instance's configuration: persisted, rendered,
    /// dynamic ones applied live. Answers a `ConfigureReport`.
    Configure {
        overrides: Overrides,
    },
    /// The server's running values of the parameters Coffer sets
    /// (`BTreeMap<String, String>`).
    GetConfiguration,
    /// New flavor memory and/or volume size; a memory change restarts the
    /// datastore. Answers an `AgentStatus`.
    Resize {
        ram_mb: i64,
        volume_size_gb: i64,
    },
}

impl AgentRequest {
    /// The first protocol version that has this request.
    pub fn since(&self) -> u32 {
        match self {
            AgentRequest::Configure { .. }
            | AgentRequest::GetConfiguration
            | AgentRequest::Resize { .. } => 2,
            _ => 1,
        }
    }

    /// The request's name on the wire (`method`).
    pub fn method(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v["method"].as_str().map(String::from))
            .unwrap_or_else(|| "request".into())
    }

    /// Refuse, before sending, a request the instance's agent cannot know:
    /// `agent_protocol` is what it announced (`None`: not heard yet, so
    /// assumed current).
    pub fn check_agent(&self, agent_protocol: Option<u32>) -> Result<(), AgentError> {
        match agent_protocol {
            Some(v) if v < self.since() => Err(AgentError {
                kind: AgentErrorKind::TooOld,
                message: format!(
                    "the instance's guest agent is too old for {}: it speaks agent protocol {v}, \
                     this needs {} (upgrade coffer-agent on the instance's host and restart the agent)",
                    self.method(),
                    self.since()
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The agent's answer to `Configure`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigureReport {
    /// Parameters whose new values wait for a restart (also those of an
    /// earlier `Configure` not yet restarted).
    pub restart_required: Vec<String>,
}

/// A value that must never reach a log line (keys, storage credentials).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(pub T);

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a backup needs: which strategy, where to store, with which key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupOrder {
    pub backup_id: BackupId,
    /// Name of the `BackupStrategy`.
    pub strategy: String,
    /// The storage configuration (the storage crate's `StorageConfig`).
    pub storage: Secret<serde_json::Value>,
    /// The object's key in that storage.
    pub object_key: String,
    /// The backup's data key (hex).
    pub data_key: Secret<String>,
    /// Compression, e.g. `zstd:3`, `gzip:6`, `none`.
    pub codec: String,
    pub chunk_size: usize,
    /// The parent's strategy report for an incremental; `None` for a full backup.
    pub parent_info: Option<serde_json::Value>,
}

/// The agent's answer to a `Backup`: the object is stored whole.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackupReport {
    pub location: String,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub sha256: String,
    /// What the strategy reported (LSNs...).
    pub info: serde_json::Value,
}

/// One stored backup to apply, full backup first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestorePiece {
    pub backup_id: BackupId,
    pub object_key: String,
    pub data_key: Secret<String>,
    pub sha256: String,
    pub plain_bytes: u64,
    pub info: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreOrder {
    /// Name of the `RestoreStrategy`.
    pub strategy: String,
    pub storage: Secret<serde_json::Value>,
    pub pieces: Vec<RestorePiece>,
    pub databases: Vec<DatabaseSpec>,
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub overrides: Overrides,
}

/// Why an agent refused or failed a request. Travels as the bus's error
/// string (JSON), so callers can tell a missing user from a broken server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentError {
    pub kind: AgentErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AgentErrorKind {
    InvalidInput,
    NotSupported,
    NotFound,
    AlreadyExists,
    /// The agent's protocol version lacks the request (said by the control
    /// plane, which refuses to send it).
    TooOld,
    /// Anything else: the datastore or the agent failed.
    Failed,
}

impl AgentError {
    /// The form that travels on the bus.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }

    /// Read an error string from the bus; one that is not an encoded
    /// `AgentError` (an older agent, a transport failure) is `Failed`.
    pub fn decode(raw: &str) -> Self {
        serde_json::from_str(raw).unwrap_or_else(|_| AgentError {
            kind: AgentErrorKind::Failed,
            message: raw.to_string(),
        })
    }
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A page of users, as `ListUsers` answers.
pub type UserList = Vec<UserInfo>;

/// The agent's answer to `Status`, `Prepare` and `Restart` (`Stop` answers `null`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgentStatus {
    pub status: OperatingStatus,
    pub volume: VolumeUsage,
    /// Processes of the datastore the kernel killed since the previous
    /// heartbeat for going past the flavor's memory (in its sandbox's
    /// cgroup). Absent from older agents: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_kills: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What agents tell the conductor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ConductorMessage {
    Heartbeat {
        instance_id: InstanceId,
        status: AgentStatus,
        /// The agent's protocol version ([`PROTOCOL`] of its build).
        #[serde(default = "first_protocol")]
        protocol: u32,
    },
    /// How far a backup (`backup_id`) or a restore into this instance has got.
    Progress {
        instance_id: InstanceId,
        backup_id: Option<BackupId>,
        progress: Progress,
    },
}

/// What the API tells the task manager: a task row is ready to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskWakeup {
    pub task_id: coffer_model::TaskId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape() {
        let r = AgentRequest::Prepare {
            databases: vec![DatabaseSpec { name: "app".into() }],
            users: vec![],
            overrides: Default::default(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["method"], "prepare");
        assert_eq!(v["databases"][0]["name"], "app");
        let back: AgentRequest = serde_json::from_value(v).unwrap();
        assert!(matches!(back, AgentRequest::Prepare { .. }));
        let s = serde_json::to_value(AgentRequest::Restart).unwrap();
        assert_eq!(s, serde_json::json!({"method": "restart"}));
        let r = AgentRequest::RevokeAccess {
            name: "u".into(),
            host: "%".into(),
            database: "d".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["method"], "revoke_access");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let order = BackupOrder {
            backup_id: BackupId::new(),
            strategy: "mariabackup".into(),
            storage: Secret(serde_json::json!({"kind": "swift", "key": "swordfish"})),
            object_key: "b.cbk".into(),
            data_key: Secret("00ff00ff".into()),
            codec: "zstd:3".into(),
            chunk_size: 1 << 20,
            parent_info: None,
        };
        let shown = format!("{:?}", AgentRequest::Backup(order.clone()));
        assert!(
            !shown.contains("swordfish") && !shown.contains("00ff00ff"),
            "{shown}"
        );
        let v = serde_json::to_value(AgentRequest::Backup(order)).unwrap();
        assert_eq!(v["method"], "backup");
        assert_eq!(v["data_key"], "00ff00ff");
        assert_eq!(v["storage"]["key"], "swordfish");
        let back: AgentRequest = serde_json::from_value(v).unwrap();
        assert!(matches!(back, AgentRequest::Backup(_)));
    }

    #[test]
    fn errors_round_trip() {
        let e = AgentError {
            kind: AgentErrorKind::NotFound,
            message: "no user x".into(),
        };
        assert_eq!(AgentError::decode(&e.encode()), e);
        let plain = AgentError::decode("connection reset");
        assert_eq!(plain.kind, AgentErrorKind::Failed);
        assert_eq!(plain.message, "connection reset");
    }
}

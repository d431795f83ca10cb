//! The typed messages on the bus. They travel as JSON, tagged by `method`.

use coffer_model::{
    DatabaseSpec, InstanceId, OperatingStatus, UserInfo, UserSpec, UserUpdate, VolumeUsage,
};
use serde::{Deserialize, Serialize};

/// What the control plane asks of a guest agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AgentRequest {
    /// Initialise the datastore, start it, create the initial databases and
    /// users. Idempotent: a repeat after a crash converges to the same state.
    Prepare {
        databases: Vec<DatabaseSpec>,
        users: Vec<UserSpec>,
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
}

/// What agents tell the conductor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ConductorMessage {
    Heartbeat {
        instance_id: InstanceId,
        status: AgentStatus,
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

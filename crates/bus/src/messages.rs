//! The typed messages on the bus. They travel as JSON, tagged by `method`.

use coffer_model::{DatabaseSpec, InstanceId, OperatingStatus, UserSpec, VolumeUsage};
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
}

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
    }
}

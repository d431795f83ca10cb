//! What the task manager and a `coffer compute` host daemon say to each
//! other over the bus: one request per [`ComputeDriver`](crate::ComputeDriver)
//! method, and its typed answer. A failure travels as the bus's remote
//! error (a message); "no such server" is an answer, not a failure, so the
//! caller can tell it from a host that broke.

use crate::ServerState;
use coffer_model::{AgentConfig, InstanceId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ComputeRequest {
    /// Holds the agent's broker URL (its credentials): never logged.
    Create {
        config: Box<AgentConfig>,
    },
    EnsureRunning {
        id: InstanceId,
    },
    State {
        id: InstanceId,
    },
    Stop {
        id: InstanceId,
    },
    Destroy {
        id: InstanceId,
    },
    Resize {
        id: InstanceId,
        ram_mb: i64,
        /// Absent from an older task manager: no CPU quota.
        #[serde(default)]
        vcpus: i64,
        volume_size_gb: i64,
    },
    List,
}

impl ComputeRequest {
    /// The method's name, for logs.
    pub fn method(&self) -> &'static str {
        match self {
            ComputeRequest::Create { .. } => "create",
            ComputeRequest::EnsureRunning { .. } => "ensure_running",
            ComputeRequest::State { .. } => "state",
            ComputeRequest::Stop { .. } => "stop",
            ComputeRequest::Destroy { .. } => "destroy",
            ComputeRequest::Resize { .. } => "resize",
            ComputeRequest::List => "list",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ComputeReply {
    Done,
    State {
        state: ServerState,
    },
    Servers {
        ids: Vec<InstanceId>,
    },
    /// The host has no server for this instance.
    NotFound,
}

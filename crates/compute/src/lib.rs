#![forbid(unsafe_code)]
//! Where an instance runs: the [`ComputeDriver`] trait; the local-process
//! driver, in which an instance is a directory plus a supervised guest-agent
//! process that owns the datastore server; and the remote driver, which
//! asks `coffer compute` daemons on other hosts (each running a
//! local-process driver, see [`host`]) over the bus.

pub mod host;
mod host_tools;
mod local_process;
mod procfs;
pub mod protocol;
mod remote;
mod sandbox;
mod volume;

pub use local_process::LocalProcessDriver;
pub use remote::{Placements, RemoteCompute};
pub use sandbox::SandboxSettings;
pub use volume::VolumeDriver;

use async_trait::async_trait;
use coffer_model::{AgentConfig, InstanceId};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ComputeError {
    #[error("server for instance {0} does not exist")]
    NotFound(InstanceId),
    #[error("compute: {0:#}")]
    Other(#[from] anyhow::Error),
}

/// Whether an instance's guest agent runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Running,
    Stopped,
    Missing,
}

/// Creates and destroys the "servers" instances run on. Every method is
/// idempotent, so a workflow resumed after a crash can simply repeat it.
#[async_trait]
pub trait ComputeDriver: Send + Sync + 'static {
    /// Create the server (if absent) and make sure its agent runs.
    /// The agent's bus token is generated here when the server is new;
    /// `config.token` is ignored.
    async fn create(&self, config: &AgentConfig) -> Result<(), ComputeError>;
    /// Start the agent again if it died. NotFound if the server was never created.
    async fn ensure_running(&self, id: InstanceId) -> Result<(), ComputeError>;
    async fn state(&self, id: InstanceId) -> Result<ServerState, ComputeError>;
    /// Stop every process of the server (agent and datastore), keep its files.
    async fn stop(&self, id: InstanceId) -> Result<(), ComputeError>;
    /// Stop every process and remove the server's files. Absent is fine.
    async fn destroy(&self, id: InstanceId) -> Result<(), ComputeError>;
    /// Give the server `ram_mb` of memory, `vcpus` of CPU and a volume of
    /// `volume_size_gb` (grow only; the caller checks). The agent is told
    /// separately; this makes the new sizes survive the agent's restart
    /// (and sets a sandboxed server's new limits). A volume grows offline:
    /// the caller stops the datastore first (a loop volume still in use is
    /// refused, and nothing changes).
    async fn resize(
        &self,
        id: InstanceId,
        ram_mb: i64,
        vcpus: i64,
        volume_size_gb: i64,
    ) -> Result<(), ComputeError>;
    /// Every server that exists on this compute host.
    async fn list(&self) -> Result<Vec<InstanceId>, ComputeError>;
    /// True when `token` is the bus token of `id`'s agent.
    fn verify_agent_token(&self, id: InstanceId, token: &str) -> bool;
    /// True when the driver's hosts restart dead agents themselves (the
    /// task manager then leaves supervision to them).
    fn supervises_agents(&self) -> bool {
        false
    }
}

use crate::{InstanceId, Sandbox};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What a guest agent is told about its instance. The compute driver writes
/// it into the instance (mode 0600: it holds the agent's bus token); the
/// agent reads it at start.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentConfig {
    pub instance_id: InstanceId,
    /// Name of the `DatastoreManager` strategy to run.
    pub manager: String,
    pub ip: Ipv4Addr,
    pub ram_mb: i64,
    /// The flavor's vCPUs: the sandbox's CPU quota (0 in configurations
    /// written before it was recorded: no quota).
    #[serde(default)]
    pub vcpus: i64,
    pub volume_size_gb: i64,
    /// Where the control plane's local bus listens.
    pub bus_socket: PathBuf,
    /// Proves this agent's identity on the bus.
    pub token: String,
    pub heartbeat_interval_ms: u64,
    /// The broker URL (with this agent's own credentials) when the control
    /// plane runs on RabbitMQ; absent: the local bus socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_url: Option<String>,
    /// How the datastore is confined; absent when the operator turned the
    /// sandbox off (`compute.sandbox.enabled = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("instance_id", &self.instance_id)
            .field("manager", &self.manager)
            .field("ip", &self.ip)
            .field("ram_mb", &self.ram_mb)
            .field("vcpus", &self.vcpus)
            .field("volume_size_gb", &self.volume_size_gb)
            .field("bus_socket", &self.bus_socket)
            .field("token", &"<redacted>")
            .field("bus_url", &self.bus_url.as_ref().map(|_| "<redacted>"))
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

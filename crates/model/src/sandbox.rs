use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How an instance's datastore is confined: what the compute driver
/// decided when it made the server, written into the agent's configuration.
/// The agent itself stays outside; every process of the datastore (the
/// server, its backup and restore tools, whatever they spawn) runs as
/// `uid`/`gid`, in the `cgroups`, in a mount namespace where the host is
/// read-only, the instance's own directories are the only writable ones,
/// and `hidden` paths are empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The instance's own unprivileged OS account (in /etc/passwd).
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// The cgroup directories (one per controller) its processes join;
    /// their limits come from the flavor.
    pub cgroups: Vec<PathBuf>,
    /// Paths covered by an empty tmpfs inside the sandbox: every
    /// instance's directory, the control plane's state.
    pub hidden: Vec<PathBuf>,
    /// Directories writable inside besides the instance's data, run and
    /// log directories: the agent adds its scratch space for backups and
    /// restores (not written into `agent.json`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<PathBuf>,
}

impl Sandbox {
    /// The memory cgroup's directory, if the datastore is in one.
    pub fn memory_cgroup(&self) -> Option<&PathBuf> {
        self.cgroups
            .iter()
            .find(|d| d.components().any(|c| c.as_os_str() == "memory"))
    }
}

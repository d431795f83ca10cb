//! What the compute tests share: a stand-in agent and its configuration.

use coffer_model::{AgentConfig, InstanceId};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A shell script in `dir` that runs until killed, standing in for the
/// agent so the process bookkeeping is tested apart from the real one.
pub fn fake_agent(dir: &Path) -> PathBuf {
    let exe = dir.join("fake-agent");
    std::fs::write(&exe, "#!/bin/sh\nwhile true; do sleep 0.2; done\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

pub fn config(id: InstanceId) -> AgentConfig {
    AgentConfig {
        instance_id: id,
        manager: "mariadb".into(),
        ip: "127.10.0.9".parse().unwrap(),
        ram_mb: 512,
        vcpus: 1,
        volume_size_gb: 1,
        bus_socket: "/nonexistent".into(),
        token: String::new(),
        heartbeat_interval_ms: 1000,
        bus_url: None,
        sandbox: None,
    }
}

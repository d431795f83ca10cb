//! Each instance's cgroups (v1: the memory, cpu and pids hierarchies, as
//! mounted on this kind of host), under `coffer/<instance id>` in each:
//! memory from the flavor's RAM (past it the kernel's OOM killer picks a
//! process of that instance only), CPU time from its vCPUs, and a cap on
//! processes and threads.

use anyhow::{bail, Context};
use coffer_model::InstanceId;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the v1 hierarchies are mounted.
const ROOT: &str = "/sys/fs/cgroup";
/// The controllers an instance is limited by.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// The CFS period the CPU quota is a multiple of.
const CPU_PERIOD_US: u64 = 100_000;

/// An instance's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory_bytes: u64,
    /// None: no CPU quota.
    pub cpus: Option<u32>,
    pub max_processes: u32,
}

pub(crate) struct Cgroups {
    /// `<ROOT>/<controller>/coffer`, one per controller.
    bases: Vec<PathBuf>,
}

impl Cgroups {
    /// Check the hierarchies are there and writable; make `coffer` in each.
    pub(crate) fn open() -> anyhow::Result<Self> {
        let mut bases = Vec::new();
        for c in CONTROLLERS {
            let mount = Path::new(ROOT).join(c);
            if !mount.join("cgroup.procs").exists() {
                bail!(
                    "the cgroup v1 {c} controller is not mounted at {} \
                     (hosts with cgroup v2 only are not supported yet)",
                    mount.display()
                );
            }
            let base = mount.join("coffer");
            std::fs::create_dir_all(&base)
                .with_context(|| format!("creating cgroup {}", base.display()))?;
            bases.push(base);
        }
        Ok(Self { bases })
    }

    /// The instance's cgroup directories.
    fn dirs(&self, id: InstanceId) -> Vec<PathBuf> {
        self.bases.iter().map(|b| b.join(id.to_string())).collect()
    }

    /// Make the instance's cgroups if missing and set `limits`; returns
    /// their directories.
    pub(crate) fn ensure(&self, id: InstanceId, limits: &Limits) -> anyhow::Result<Vec<PathBuf>> {
        let dirs = self.dirs(id);
        for d in &dirs {
            std::fs::create_dir_all(d)
                .with_context(|| format!("creating cgroup {}", d.display()))?;
        }
        let [memory, cpu, pids] = [&dirs[0], &dirs[1], &dirs[2]];
        set_memory(memory, limits.memory_bytes)?;
        write(cpu, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
        let quota = match limits.cpus {
            Some(n) => (u64::from(n) * CPU_PERIOD_US).to_string(),
            None => "-1".to_string(),
        };
        write(cpu, "cpu.cfs_quota_us", &quota)?;
        write(pids, "pids.max", &limits.max_processes.to_string())?;
        Ok(dirs)
    }

    /// SIGKILL every process in the instance's cgroups until none is left
    /// (a fork racing the kill is caught by the next round), for at most
    /// a few seconds.
    pub(crate) async fn kill_all(&self, id: InstanceId) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids: Vec<i32> = self.dirs(id).iter().flat_map(|d| procs(d)).collect();
            if pids.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                tracing::warn!(instance = %id, ?pids, "processes left in the instance's cgroups");
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Remove the instance's cgroups (empty ones only; absent is fine).
    pub(crate) fn remove(&self, id: InstanceId) -> anyhow::Result<()> {
        for d in self.dirs(id) {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing cgroup {}", d.display()))
                }
            }
        }
        Ok(())
    }
}

/// The memory limit, with memory+swap (where the kernel counts it) kept
/// equal so that swap is no way around it. The kernel wants
/// `limit <= memsw` at every step: raise memsw first when growing, the
/// limit first when shrinking. A shrink below what the instance uses now
/// may be refused (EBUSY): the old limit then stays until the next try.
fn set_memory(dir: &Path, bytes: u64) -> anyhow::Result<()> {
    let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    let current: u64 = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let value = bytes.to_string();
    let growing = bytes >= current;
    if memsw && growing {
        write(dir, "memory.memsw.limit_in_bytes", &value)?;
    }
    if let Err(e) = write(dir, "memory.limit_in_bytes", &value) {
        tracing::warn!("memory limit of {} not lowered yet: {e:#}", dir.display());
        return Ok(());
    }
    if memsw && !growing {
        write(dir, "memory.memsw.limit_in_bytes", &value)?;
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> anyhow::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// The pids in a cgroup.
fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

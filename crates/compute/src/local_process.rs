//! The local-process driver. Each instance is a directory under `root`:
//!
//! ```text
//! <root>/<instance id>/
//!   agent.json   the agent's configuration (0600: holds its bus token)
//!   agent.pid    the running agent's pid
//!   agent.log    the agent's log
//!   stopped      present while the server is stopped on purpose
//!   conf/ secret/                   the agent's
//!   data/ run/ log/ work/           the datastore's: on its volume
//!   volume.img volume/              a loop volume (see `volume.rs`)
//! ```
//!
//! The agent runs in its own process group, so it outlives a control-plane
//! crash; the datastore server is the agent's child in a group of its own.
//! Every process of an instance names the instance directory on its command
//! line, which is how `stop` finds them all, including orphans.

use crate::procfs::{is_alive, pids_mentioning, terminate};
use crate::sandbox::{SandboxSettings, Sandboxes};
use crate::volume::{Owner, VolumeDriver, Volumes};
use crate::{ComputeDriver, ComputeError, ServerState};
use anyhow::Context;
use async_trait::async_trait;
use coffer_model::{AgentConfig, InstanceId};
use rand::distributions::{Alphanumeric, DistString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const CONFIG_FILE: &str = "agent.json";
const PID_FILE: &str = "agent.pid";
const LOG_FILE: &str = "agent.log";
const STOPPED_FILE: &str = "stopped";

pub struct LocalProcessDriver {
    root: PathBuf,
    agent_exe: PathBuf,
    stop_grace: Duration,
    /// Orders [`Self::revive`]'s look-then-start against `stop` marking a
    /// server stopped, so a revive never starts an agent being stopped.
    marks: tokio::sync::Mutex<()>,
    /// The walls around each instance; `None`: instances run unconfined.
    sandboxes: Option<Sandboxes>,
    /// What new instances' volumes are.
    volumes: Volumes,
}

impl LocalProcessDriver {
    /// Servers live under `root`; agents run `agent_exe guest-agent --instance-dir DIR`.
    pub fn new(root: PathBuf, agent_exe: PathBuf) -> anyhow::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        Ok(Self {
            root,
            agent_exe,
            stop_grace: Duration::from_secs(20),
            marks: tokio::sync::Mutex::new(()),
            sandboxes: None,
            volumes: Volumes::directories(),
        })
    }

    /// Give new instances volumes of this kind (`loop` only where this
    /// host can loop-mount: else directories, and the log says why).
    pub fn with_volumes(mut self, driver: VolumeDriver) -> Self {
        self.volumes = Volumes::open(driver, &self.root);
        self
    }

    /// What new instances' volumes are.
    pub fn volume_driver(&self) -> VolumeDriver {
        self.volumes.driver()
    }

    /// Confine every instance created from now on as `settings` say
    /// (nothing changes when they say `enabled = false`). Fails, saying
    /// what is missing, when this host cannot.
    pub fn with_sandbox(mut self, settings: &SandboxSettings) -> anyhow::Result<Self> {
        if !settings.enabled {
            tracing::warn!(
                "the instance sandbox is off: datastores run as the host's root, unconfined"
            );
            return Ok(self);
        }
        // Each datastore's account reaches its own directories by path
        // (never lists them): the root and its parents need the search bit.
        crate::sandbox::allow_search(&self.root)?;
        self.sandboxes = Some(Sandboxes::open(settings, &self.root)?);
        Ok(self)
    }

    /// Whether instances created by this driver are confined.
    pub fn sandboxed(&self) -> bool {
        self.sandboxes.is_some()
    }

    /// Start the agents that died of every server not stopped on purpose
    /// (what a `coffer compute` host does by itself; the task manager does
    /// it for `coffer up` from the instances' states). The number started.
    pub async fn revive(&self) -> usize {
        let Ok(ids) = self.list().await else {
            return 0;
        };
        let mut started = 0;
        for id in ids {
            let _marks = self.marks.lock().await;
            let dir = self.instance_dir(id);
            let Some(config) = self.read_config(id) else {
                continue;
            };
            if dir.join(STOPPED_FILE).exists() {
                continue;
            }
            if self.agent_pid(id).is_none() {
                let started_agent = self
                    .prepare_host(id, &config)
                    .and_then(|()| self.spawn_agent(id));
                match started_agent {
                    Ok(()) => started += 1,
                    Err(e) => tracing::warn!(instance = %id, "could not restart the agent: {e:#}"),
                }
            }
        }
        started
    }

    /// The directory of one instance.
    pub fn instance_dir(&self, id: InstanceId) -> PathBuf {
        self.root.join(id.to_string())
    }

    fn read_config(&self, id: InstanceId) -> Option<AgentConfig> {
        let raw = fs::read(self.instance_dir(id).join(CONFIG_FILE)).ok()?;
        serde_json::from_slice(&raw).ok()
    }

    fn agent_pid(&self, id: InstanceId) -> Option<i32> {
        let raw = fs::read_to_string(self.instance_dir(id).join(PID_FILE)).ok()?;
        let pid: i32 = raw.trim().parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let mine =
            String::from_utf8_lossy(&cmdline).contains(&*self.instance_dir(id).to_string_lossy());
        (mine && is_alive(pid)).then_some(pid)
    }

    /// What the host must hold before the instance's agent starts, and
    /// loses at a reboot: its cgroups and its mounted volume (an agent
    /// started without it would find its directories' links dangling).
    fn prepare_host(&self, id: InstanceId, config: &AgentConfig) -> anyhow::Result<()> {
        if let (Some(sandboxes), Some(_)) = (&self.sandboxes, &config.sandbox) {
            sandboxes
                .resize(id, config.ram_mb, config.vcpus)
                .context("making the instance's cgroups")?;
        }
        self.volumes
            .ensure_mounted(&self.instance_dir(id), owner(config))
            .context("mounting the instance's volume")
    }

    fn spawn_agent(&self, id: InstanceId) -> anyhow::Result<()> {
        let dir = self.instance_dir(id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))?;
        let mut child = tokio::process::Command::new(&self.agent_exe)
            .arg("guest-agent")
            .arg("--instance-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .with_context(|| format!("starting agent {}", self.agent_exe.display()))?;
        let pid = child.id().context("agent exited at once")?;
        write_private(&dir.join(PID_FILE), pid.to_string().as_bytes())?;
        // Reap the agent when it exits, so it never lingers as a zombie.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        tracing::info!(instance = %id, pid, "guest agent started");
        Ok(())
    }
}

/// The account that owns the instance's volume: its sandbox's.
fn owner(config: &AgentConfig) -> Owner {
    config.sandbox.as_ref().map(|s| (s.uid, s.gid))
}

/// Write a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(tmp, path)
}

#[async_trait]
impl ComputeDriver for LocalProcessDriver {
    async fn create(&self, config: &AgentConfig) -> Result<(), ComputeError> {
        let id = config.instance_id;
        let dir = self.instance_dir(id);
        if self.read_config(id).is_none() {
            // Searchable (never listable) by others when sandboxed: the
            // datastore's account reaches its own subdirectories by path.
            let mode = if self.sandboxed() { 0o711 } else { 0o700 };
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .context("creating instance dir")?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .context("setting the instance dir's mode")?;
            let mut config = config.clone();
            config.token = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);
            if let Some(sandboxes) = &self.sandboxes {
                config.sandbox = Some(
                    sandboxes
                        .provision(id, &dir, config.ram_mb, config.vcpus)
                        .context("making the instance's sandbox")?,
                );
            }
            self.volumes
                .create(&dir, config.volume_size_gb, owner(&config))
                .context("making the instance's volume")?;
            let raw = serde_json::to_vec_pretty(&config).context("encoding agent config")?;
            write_private(&dir.join(CONFIG_FILE), &raw).context("writing agent config")?;
        }
        self.ensure_running(id).await
    }

    async fn ensure_running(&self, id: InstanceId) -> Result<(), ComputeError> {
        let Some(config) = self.read_config(id) else {
            return Err(ComputeError::NotFound(id));
        };
        self.prepare_host(id, &config)?;
        let _marks = self.marks.lock().await;
        match fs::remove_file(self.instance_dir(id).join(STOPPED_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e)
                    .context("clearing the stopped mark")
                    .into())
            }
            _ => {}
        }
        if self.agent_pid(id).is_none() {
            self.spawn_agent(id)?;
        }
        Ok(())
    }

    async fn state(&self, id: InstanceId) -> Result<ServerState, ComputeError> {
        Ok(match (self.read_config(id), self.agent_pid(id)) {
            (None, _) => ServerState::Missing,
            (Some(_), Some(_)) => ServerState::Running,
            (Some(_), None) => ServerState::Stopped,
        })
    }

    async fn stop(&self, id: InstanceId) -> Result<(), ComputeError> {
        let dir = self.instance_dir(id);
        let needle = dir.to_string_lossy();
        if self.read_config(id).is_some() {
            let _marks = self.marks.lock().await;
            write_private(&dir.join(STOPPED_FILE), b"").context("marking the server stopped")?;
        }
        // The agent first, so it cannot start the datastore again meanwhile.
        if let Some(pid) = self.agent_pid(id) {
            terminate(&[pid], self.stop_grace).await;
        }
        let rest = pids_mentioning(&needle);
        terminate(&rest, self.stop_grace).await;
        // What a tenant started inside (and renamed) goes too.
        if let Some(sandboxes) = &self.sandboxes {
            sandboxes.kill_leftovers(id).await;
        }
        let _ = fs::remove_file(dir.join(PID_FILE));
        Ok(())
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), ComputeError> {
        self.stop(id).await?;
        let dir = self.instance_dir(id);
        self.volumes
            .release(&dir)
            .context("unmounting the instance's volume")?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("removing {}", dir.display()))
                    .into())
            }
        }
        // After the directory: a claim whose directory is gone is free, so
        // a crash in between leaks nothing.
        if let Some(sandboxes) = &self.sandboxes {
            sandboxes.release(id, &dir).await?;
        }
        Ok(())
    }

    async fn resize(
        &self,
        id: InstanceId,
        ram_mb: i64,
        vcpus: i64,
        volume_size_gb: i64,
    ) -> Result<(), ComputeError> {
        // The volume is a directory whose size the agent enforces: the new
        // numbers in agent.json (and the cgroups' new limits) are the
        // whole resize here.
        let mut config = self.read_config(id).ok_or(ComputeError::NotFound(id))?;
        config.ram_mb = ram_mb;
        config.vcpus = vcpus;
        config.volume_size_gb = volume_size_gb;
        if let (Some(sandboxes), Some(_)) = (&self.sandboxes, &config.sandbox) {
            sandboxes
                .resize(id, ram_mb, vcpus)
                .context("setting the new flavor's limits")?;
        }
        self.volumes
            .grow(&self.instance_dir(id), volume_size_gb, owner(&config))
            .context("growing the instance's volume")?;
        let raw = serde_json::to_vec_pretty(&config).context("encoding agent config")?;
        write_private(&self.instance_dir(id).join(CONFIG_FILE), &raw)
            .context("writing agent config")?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceId>, ComputeError> {
        let entries = fs::read_dir(&self.root).context("listing instances")?;
        Ok(entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn verify_agent_token(&self, id: InstanceId, token: &str) -> bool {
        self.read_config(id)
            .is_some_and(|c| !c.token.is_empty() && c.token == token)
    }
}

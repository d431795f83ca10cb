//! The agent's request handlers and its heartbeat.

use crate::accounts::agent_error;
use crate::backup::BackupRun;
use crate::volume::{measure, should_be_full, Measure};
use anyhow::Context;
use coffer_bus::messages::{
    AgentError, AgentErrorKind, AgentRequest, AgentStatus, ConductorMessage, RestoreOrder,
};
use coffer_bus::{Bus, CONDUCTOR};
use coffer_model::{BackupId, OperatingStatus, VolumeUsage};
use coffer_strategy::{
    BackupStrategy, DatastoreManager, Health, InstanceContext, Registry, RestoreStrategy,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the datastore should be doing, kept on disk so a restarted agent
/// knows whether a stopped server crashed or was stopped on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Desired {
    /// Not prepared yet.
    New,
    Running,
    Stopped,
}

pub struct Agent {
    pub(crate) manager: Arc<dyn DatastoreManager>,
    /// Changes with a resize (memory, volume) and a configuration apply
    /// (overrides); read through `ctx()`.
    ctx: std::sync::RwLock<InstanceContext>,
    state_file: PathBuf,
    /// One lifecycle operation at a time (a repeated prepare waits for the first).
    pub(crate) op: Mutex<()>,
    full: AtomicBool,
    /// Where progress reports go (none in tests without a bus).
    pub(crate) bus: OnceLock<Arc<dyn Bus>>,
    pub(crate) backup_strategies: Registry<dyn BackupStrategy>,
    pub(crate) restore_strategies: Registry<dyn RestoreStrategy>,
    /// Backups started since the agent started, running or finished.
    pub(crate) backups: std::sync::Mutex<HashMap<BackupId, BackupRun>>,
    /// Scratch space for backups and restores, beside the data volume.
    pub(crate) work_root: PathBuf,
    /// The agent protocol version it announces and speaks.
    pub(crate) protocol: u32,
    /// Datastore processes killed for their memory, not yet reported.
    pub(crate) memory: crate::memory::MemoryWatch,
}

impl Agent {
    pub fn new(
        manager: Arc<dyn DatastoreManager>,
        mut ctx: InstanceContext,
        state_file: PathBuf,
    ) -> Self {
        ctx.overrides = crate::configuration::saved(&state_file).overrides;
        let work_root = state_file
            .parent()
            .map(|p| p.join("work"))
            .unwrap_or_else(|| PathBuf::from("work"));
        Self {
            manager,
            memory: crate::memory::MemoryWatch::new(&ctx),
            ctx: std::sync::RwLock::new(ctx),
            state_file,
            op: Mutex::new(()),
            full: AtomicBool::new(false),
            bus: OnceLock::new(),
            backup_strategies: coffer_datastores::backup_strategies(),
            restore_strategies: coffer_datastores::restore_strategies(),
            backups: std::sync::Mutex::new(HashMap::new()),
            work_root,
            protocol: coffer_bus::messages::PROTOCOL,
        }
    }

    /// Speak (and announce) an older protocol version, as an agent of an
    /// earlier release would: for version-skew tests and staged upgrades.
    pub fn with_protocol(mut self, version: u32) -> Self {
        self.protocol = version.clamp(1, coffer_bus::messages::PROTOCOL);
        self
    }

    /// The instance context as it is now.
    pub(crate) fn ctx(&self) -> InstanceContext {
        self.ctx.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Change the instance context (a resize, a configuration apply).
    pub(crate) fn update_ctx(&self, change: impl FnOnce(&mut InstanceContext)) {
        change(&mut self.ctx.write().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn state_file(&self) -> &std::path::Path {
        &self.state_file
    }

    /// Send progress reports over `bus`.
    pub fn attach_bus(&self, bus: Arc<dyn Bus>) {
        let _ = self.bus.set(bus);
    }

    fn desired(&self) -> Desired {
        match std::fs::read_to_string(&self.state_file)
            .as_deref()
            .map(str::trim)
        {
            Ok("running") => Desired::Running,
            Ok("stopped") => Desired::Stopped,
            _ => Desired::New,
        }
    }

    fn set_desired(&self, d: Desired) -> anyhow::Result<()> {
        let s = match d {
            Desired::New => "new",
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        };
        let tmp = self.state_file.with_extension("tmp");
        std::fs::write(&tmp, s)?;
        std::fs::rename(tmp, &self.state_file).context("saving agent state")
    }

    /// At agent start: keep a running server (adopt it), start one that
    /// should run but does not (it crashed while the agent was away).
    pub async fn adopt_or_restart(&self) {
        if self.desired() != Desired::Running {
            return;
        }
        if let Some(pid) = self.manager.pid(&self.ctx()) {
            tracing::info!(pid, "adopted the running datastore");
            return;
        }
        let _guard = self.op.lock().await;
        if let Err(e) = self.start().await {
            tracing::error!("could not restart the datastore: {e:#}");
        }
    }

    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        let ctx = self.ctx();
        self.manager.render_config(&ctx).await?;
        self.manager.start(&ctx, START_TIMEOUT).await?;
        // Whatever waited for a restart is in force now.
        self.started_with_configuration()?;
        // Read-only mode does not survive a server restart: apply it again.
        if self.full.load(Ordering::SeqCst) {
            self.manager.set_read_only(&self.ctx(), true).await?;
        }
        Ok(())
    }

    /// Handle one request from the control plane.
    pub async fn handle(self: &Arc<Self>, body: Value) -> Result<Value, AgentError> {
        let request: AgentRequest = serde_json::from_value(body).map_err(|e| AgentError {
            kind: AgentErrorKind::InvalidInput,
            message: format!("bad request: {e}"),
        })?;
        // An agent announcing an older protocol acts as one: it does not
        // know the newer requests.
        if request.since() > self.protocol {
            return Err(AgentError {
                kind: AgentErrorKind::InvalidInput,
                message: format!("bad request: unknown method {}", request.method()),
            });
        }
        if let Some(result) = self.handle_account(&request).await {
            return result;
        }
        match request {
            AgentRequest::Backup(order) => {
                let report = self.backup(order).await.map_err(agent_error)?;
                serde_json::to_value(report).map_err(|e| agent_error(e.into()))
            }
            AgentRequest::Restore(order) => {
                self.restore_and_prepare(order).await.map_err(agent_error)
            }
            other => self.handle_lifecycle(other).await.map_err(agent_error),
        }
    }

    /// A new instance from backups: restore, then the create request's
    /// databases and users, as `Prepare` would.
    async fn restore_and_prepare(self: &Arc<Self>, order: RestoreOrder) -> anyhow::Result<Value> {
        let _guard = self.op.lock().await;
        if self.desired() == Desired::Running {
            // A repeated request after the restore finished.
            return Ok(serde_json::to_value(self.status().await)?);
        }
        for d in &order.databases {
            self.manager.validate_database_name(&d.name)?;
        }
        for u in &order.users {
            self.manager.validate_user(u)?;
        }
        tracing::info!(pieces = order.pieces.len(), strategy = %order.strategy, "restore");
        self.set_overrides(order.overrides.clone())?;
        // A half-done earlier attempt leaves a server behind: stop it first.
        self.manager.stop(&self.ctx(), STOP_TIMEOUT).await?;
        let (databases, users) = (order.databases.clone(), order.users.clone());
        self.restore(order).await?;
        self.manager
            .create_databases(&self.ctx(), &databases)
            .await?;
        self.manager.create_users(&self.ctx(), &users).await?;
        self.set_desired(Desired::Running)?;
        tracing::info!("restored");
        Ok(serde_json::to_value(self.status().await)?)
    }

    async fn handle_lifecycle(&self, request: AgentRequest) -> anyhow::Result<Value> {
        match request {
            AgentRequest::Prepare {
                databases,
                users,
                overrides,
            } => {
                let _guard = self.op.lock().await;
                tracing::info!(databases = databases.len(), users = users.len(), "prepare");
                for d in &databases {
                    self.manager.validate_database_name(&d.name)?;
                }
                for u in &users {
                    self.manager.validate_user(u)?;
                }
                self.set_overrides(overrides)?;
                self.manager.initialize(&self.ctx()).await?;
                self.start().await?;
                self.manager
                    .create_databases(&self.ctx(), &databases)
                    .await?;
                self.manager.create_users(&self.ctx(), &users).await?;
                self.set_desired(Desired::Running)?;
                tracing::info!("prepared");
                Ok(serde_json::to_value(self.status().await)?)
            }
            AgentRequest::Restart => {
                let _guard = self.op.lock().await;
                tracing::info!("restart");
                self.restart().await
            }
            AgentRequest::Configure { overrides } => {
                let report = self.configure(overrides).await?;
                Ok(serde_json::to_value(report)?)
            }
            AgentRequest::GetConfiguration => {
                let values = self.manager.effective_configuration(&self.ctx()).await?;
                Ok(serde_json::to_value(values)?)
            }
            AgentRequest::Resize {
                ram_mb,
                volume_size_gb,
            } => {
                let _guard = self.op.lock().await;
                let before = self.ctx();
                tracing::info!(ram_mb, volume_size_gb, "resize");
                self.update_ctx(|ctx| {
                    ctx.ram_mb = ram_mb;
                    ctx.volume_size_bytes = (volume_size_gb.max(0) as u64) << 30;
                });
                if before.ram_mb != ram_mb {
                    return self.restart().await;
                }
                Ok(serde_json::to_value(self.status().await)?)
            }
            AgentRequest::Stop => {
                let _guard = self.op.lock().await;
                tracing::info!("stop");
                self.set_desired(Desired::Stopped)?;
                self.manager.stop(&self.ctx(), STOP_TIMEOUT).await?;
                Ok(Value::Null)
            }
            AgentRequest::Status => Ok(serde_json::to_value(self.status().await)?),
            other => anyhow::bail!("{other:?} is not a lifecycle request"),
        }
    }

    /// Stop and start the datastore (the caller holds `op`).
    async fn restart(&self) -> anyhow::Result<Value> {
        self.manager.stop(&self.ctx(), STOP_TIMEOUT).await?;
        self.start().await?;
        self.set_desired(Desired::Running)?;
        Ok(serde_json::to_value(self.status().await)?)
    }

    /// Probe the datastore and the volume; enforce the volume size.
    pub async fn status(&self) -> AgentStatus {
        let ctx = self.ctx();
        let health = self.manager.health(&ctx).await;
        let status = match (health, self.desired()) {
            (Health::Healthy, _) => OperatingStatus::Healthy,
            (Health::Running, _) => OperatingStatus::Running,
            (Health::Stopped, Desired::New) => OperatingStatus::New,
            (Health::Stopped, Desired::Stopped) => OperatingStatus::Shutdown,
            (Health::Stopped, Desired::Running) => OperatingStatus::Crashed,
        };
        let Measure { used, size, .. } = measure(&ctx.data_dir, ctx.volume_size_bytes);
        let was_full = self.full.load(Ordering::SeqCst);
        let full = should_be_full(used, size, was_full);
        if full != was_full && health == Health::Healthy {
            match self.manager.set_read_only(&ctx, full).await {
                Ok(()) => {
                    self.full.store(full, Ordering::SeqCst);
                    if full {
                        tracing::warn!(used, size, "volume full: datastore set read-only");
                    } else {
                        tracing::info!(used, size, "volume has room again: writes allowed");
                    }
                }
                Err(e) => tracing::error!("could not change read-only mode: {e:#}"),
            }
        }
        let volume = VolumeUsage {
            used_bytes: used,
            size_bytes: ctx.volume_size_bytes,
            full: self.full.load(Ordering::SeqCst),
        };
        AgentStatus {
            status,
            volume,
            memory_kills: 0,
        }
    }
}

/// Report status to the conductor every `every`, and restart a datastore
/// that should run but died.
pub async fn heartbeat_loop(
    agent: Arc<Agent>,
    bus: Arc<dyn Bus>,
    every: Duration,
    cancel: CancellationToken,
) {
    let instance_id = agent.ctx().instance_id;
    loop {
        // While a lifecycle operation runs (a restart stops the server for
        // a moment) the probe would report a crash that is not one, and
        // could reach the conductor after the operation's own answer: skip.
        let probed = match agent.op.try_lock() {
            Ok(_guard) => Some(agent.status().await),
            Err(_) => None,
        };
        if let Some(mut status) = probed {
            status.memory_kills = agent.memory.take_new_kills();
            if status.memory_kills > 0 {
                tracing::warn!(
                    kills = status.memory_kills,
                    "the kernel killed datastore processes that went past the flavor's memory"
                );
            }
            if status.status == OperatingStatus::Crashed {
                tracing::warn!("datastore is down; starting it again");
                agent.adopt_or_restart().await;
            }
            let msg = ConductorMessage::Heartbeat {
                instance_id,
                status,
                protocol: agent.protocol,
            };
            if let Ok(body) = serde_json::to_value(&msg) {
                if let Err(e) = bus.cast(CONDUCTOR, body).await {
                    tracing::debug!("heartbeat not sent: {e}");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

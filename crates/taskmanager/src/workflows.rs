//! The workflows. Each is a list of idempotent steps; the task row records
//! the last completed one, so a resumed task repeats at most one step.

use crate::TaskManager;
use anyhow::{anyhow, bail, Context};
use coffer_bus::messages::{AgentRequest, AgentStatus};
use coffer_bus::{agent_topic, BusError};
use coffer_compute::ServerState;
use coffer_model::{
    AgentConfig, CreateInstancePayload, InstanceId, InstanceStatus, Task, TaskKind, UserSpec,
};
use serde_json::Value;
use std::time::{Duration, Instant};

impl TaskManager {
    pub(crate) async fn run_workflow(&self, task: &mut Task) -> anyhow::Result<()> {
        match task.kind {
            TaskKind::CreateInstance => self.create_instance(task).await,
            TaskKind::DeleteInstance => self.delete_instance(task).await,
            TaskKind::RestartInstance => self.restart_instance(task).await,
            TaskKind::CreateBackup => self.create_backup(task).await,
            TaskKind::DeleteBackup => self.delete_backup(task).await,
            TaskKind::ApplyConfiguration => self.apply_configuration(task).await,
            TaskKind::ResizeInstance => self.resize_instance(task).await,
        }
    }

    async fn create_instance(&self, task: &mut Task) -> anyhow::Result<()> {
        let payload: CreateInstancePayload = serde_json::from_value(task.payload.clone())
            .context("create task payload is unreadable")?;
        let instance = self.store.get_instance(task.instance_id).await?;
        if instance.status != InstanceStatus::Build {
            bail!("instance is {} and no longer being built", instance.status);
        }
        if task.step.is_empty() || task.step == "accepted" {
            let ip = instance
                .ip
                .ok_or_else(|| anyhow!("instance has no address"))?;
            let bus_url = self
                .bus
                .register_agent(instance.id)
                .await
                .context("giving the agent its place on the bus")?;
            let config = AgentConfig {
                instance_id: instance.id,
                manager: payload.manager.clone(),
                ip,
                ram_mb: payload.ram_mb,
                vcpus: payload.vcpus,
                volume_size_gb: instance.volume_size_gb,
                bus_socket: self.config.bus_socket.clone(),
                token: String::new(),
                heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
                bus_url,
                sandbox: None,
            };
            self.compute
                .create(&config)
                .await
                .context("creating the server")?;
            self.step(task, "server_created").await?;
        }
        if task.step == "server_created" {
            let users: Vec<UserSpec> = match &payload.users_sealed {
                None => Vec::new(),
                Some(sealed) => {
                    let plain = self.sealer.open(sealed).context("initial users")?;
                    serde_json::from_slice(&plain).context("initial users are unreadable")?
                }
            };
            let overrides = self.instance_overrides(&instance).await?;
            let status = match &payload.restore {
                None => {
                    let request = AgentRequest::Prepare {
                        databases: payload.databases.clone(),
                        users,
                        overrides,
                    };
                    self.call_agent(instance.id, &request, self.config.prepare_timeout)
                        .await
                        .context("preparing the datastore")?
                }
                Some(plan) => {
                    let mut order = self
                        .restore_order(plan.backup_id, payload.databases.clone(), users)
                        .await
                        .context("restoring")?;
                    order.overrides = overrides;
                    let timeout = self.config.prepare_timeout + self.backup_settings()?.timeout;
                    let reply = self
                        .call_agent(instance.id, &AgentRequest::Restore(order), timeout)
                        .await
                        .context("restoring from backup");
                    let _ = self.store.clear_progress(&instance.id.to_string()).await;
                    reply?
                }
            };
            self.record_status(instance.id, status).await;
            self.step(task, "prepared").await?;
        }
        self.store
            .set_instance_status(instance.id, InstanceStatus::Active, None)
            .await?;
        Ok(())
    }

    async fn delete_instance(&self, task: &mut Task) -> anyhow::Result<()> {
        let id = task.instance_id;
        if task.step.is_empty() || task.step == "accepted" {
            // A graceful stop first, when an agent runs to ask (on the
            // broker a request to an agent that never came up would wait
            // out the whole timeout); the rest is stopped by force below.
            match self.compute.state(id).await {
                Ok(ServerState::Running) => {
                    if let Err(e) = self
                        .call_agent_once(id, &AgentRequest::Stop, self.config.action_timeout)
                        .await
                    {
                        tracing::warn!(instance = %id, "graceful stop skipped: {e}");
                    }
                }
                Ok(state) => {
                    tracing::info!(instance = %id, ?state, "no agent runs; nothing to stop gracefully")
                }
                // Its host does not answer: neither stop nor remove can be
                // done now; the delete fails with the reason and can be
                // asked for again.
                Err(e) => return Err(e).context("asking the compute host about the server"),
            }
            self.step(task, "stopped").await?;
        }
        self.compute
            .destroy(id)
            .await
            .context("removing the server")?;
        self.bus
            .unregister_agent(id)
            .await
            .context("removing the agent from the bus")?;
        match self.store.mark_instance_deleted(id).await {
            Ok(()) | Err(coffer_meta::MetaError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn restart_instance(&self, task: &mut Task) -> anyhow::Result<()> {
        let id = task.instance_id;
        self.compute.ensure_running(id).await?;
        let status = self
            .call_agent(id, &AgentRequest::Restart, self.config.action_timeout)
            .await
            .context("restarting the datastore")?;
        self.record_status(id, status).await;
        self.store
            .set_instance_status(id, InstanceStatus::Active, None)
            .await?;
        Ok(())
    }

    /// Record the health an agent reported in a reply, so the instance shows
    /// it at once rather than at the next heartbeat.
    pub(crate) async fn record_status(&self, id: InstanceId, reply: Value) {
        if let Ok(s) = serde_json::from_value::<AgentStatus>(reply) {
            let used = i64::try_from(s.volume.used_bytes).ok();
            if let Err(e) = self
                .store
                .record_heartbeat(id, s.status, used, None, chrono::Utc::now())
                .await
            {
                tracing::warn!(instance = %id, "recording agent status: {e}");
            }
        }
    }

    /// Call the agent, waiting for it to connect first (a new or restarted
    /// agent needs a moment to reach the bus).
    pub(crate) async fn call_agent(
        &self,
        id: InstanceId,
        request: &AgentRequest,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + self.config.agent_connect_timeout;
        loop {
            match self.call_agent_once(id, request, timeout).await {
                Err(BusError::NoRoute(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(BusError::NoRoute(_)) => {
                    bail!(
                        "the guest agent did not connect within {:?}",
                        self.config.agent_connect_timeout
                    )
                }
                // An agent's own error travels encoded: show its message.
                Err(BusError::Remote(raw)) => {
                    bail!("{}", coffer_bus::messages::AgentError::decode(&raw).message)
                }
                other => return Ok(other?),
            }
        }
    }

    async fn call_agent_once(
        &self,
        id: InstanceId,
        request: &AgentRequest,
        timeout: Duration,
    ) -> Result<Value, BusError> {
        // Never send what the agent cannot know: an old agent would answer
        // "bad request", or a hang-prone nothing.
        let announced = match self.store.get_instance(id).await {
            Ok(i) => i.agent_protocol,
            Err(_) => None,
        };
        request
            .check_agent(announced)
            .map_err(|e| BusError::Remote(e.encode()))?;
        let body = serde_json::to_value(request).map_err(|e| BusError::Codec(e.to_string()))?;
        self.bus.call(&agent_topic(id), body, timeout).await
    }
}

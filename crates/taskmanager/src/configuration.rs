//! Configuration groups and resizes: the workflows that change how an
//! instance's datastore runs without rebuilding it.

use crate::TaskManager;
use anyhow::{anyhow, Context};
use coffer_bus::messages::{AgentRequest, ConfigureReport};
use coffer_model::{Fault, Instance, InstanceStatus, Overrides, ResizePayload, Task};

impl TaskManager {
    /// The settings of the instance's configuration group (none without one).
    pub(crate) async fn instance_overrides(
        &self,
        instance: &Instance,
    ) -> anyhow::Result<Overrides> {
        let Some(id) = instance.configuration_id else {
            return Ok(Overrides::new());
        };
        let group = self
            .store
            .get_configuration(id)
            .await
            .with_context(|| format!("reading configuration {id}"))?;
        let schema = self
            .config
            .parameters
            .get(&instance.datastore, &instance.datastore_version)
            .ok_or_else(|| {
                anyhow!(
                    "no configuration parameters are defined for {} {}",
                    instance.datastore,
                    instance.datastore_version
                )
            })?;
        Ok(schema.settings(&group.values))
    }

    /// Bring the datastore to the group's values as they are now. Restart-
    /// required changes leave the instance in RESTART_REQUIRED.
    pub(crate) async fn apply_configuration(&self, task: &mut Task) -> anyhow::Result<()> {
        let instance = self.store.get_instance(task.instance_id).await?;
        if matches!(
            instance.status,
            InstanceStatus::Build | InstanceStatus::Shutdown | InstanceStatus::Error
        ) {
            // A build reads the group itself; nothing runs to configure otherwise.
            tracing::info!(instance = %instance.id, status = %instance.status, "configuration apply skipped");
            return Ok(());
        }
        let overrides = self.instance_overrides(&instance).await?;
        let reply = self
            .call_agent(
                instance.id,
                &AgentRequest::Configure { overrides },
                self.config.action_timeout,
            )
            .await
            .context("applying the configuration")?;
        let report: ConfigureReport =
            serde_json::from_value(reply).context("the agent's configure report")?;
        let id = instance.id;
        if report.restart_required.is_empty() {
            let from = [InstanceStatus::RestartRequired];
            self.store
                .transition_instance(id, &from, InstanceStatus::Active)
                .await?;
        } else {
            tracing::info!(instance = %id, waiting = ?report.restart_required, "configuration waits for a restart");
            let from = [InstanceStatus::Active];
            self.store
                .transition_instance(id, &from, InstanceStatus::RestartRequired)
                .await?;
        }
        Ok(())
    }

    /// A failed apply keeps the instance serving with its old values (the
    /// agent put them back) and says why in its fault.
    pub(crate) async fn configuration_failed(&self, task: &Task, message: &str) {
        let Ok(instance) = self.store.get_instance(task.instance_id).await else {
            return;
        };
        let fault = Fault {
            message: format!("configuration not applied: {message}"),
            created: chrono::Utc::now(),
        };
        if let Err(e) = self
            .store
            .set_instance_status(instance.id, instance.status, Some(&fault))
            .await
        {
            tracing::error!(instance = %instance.id, "could not record fault: {e}");
        }
    }

    /// A new flavor (the datastore restarts with settings sized for it) or
    /// a larger volume (the agent enforces the new limit at once).
    pub(crate) async fn resize_instance(&self, task: &mut Task) -> anyhow::Result<()> {
        let payload: ResizePayload = serde_json::from_value(task.payload.clone())
            .context("resize task payload is unreadable")?;
        let instance = self.store.get_instance(task.instance_id).await?;
        let current = self.store.get_flavor(instance.flavor_id).await?;
        let (flavor_id, ram_mb, vcpus, volume_size_gb) = match payload {
            ResizePayload::Flavor {
                flavor_id,
                ram_mb,
                vcpus,
            } => (flavor_id, ram_mb, vcpus, instance.volume_size_gb),
            ResizePayload::Volume { size_gb } => {
                (instance.flavor_id, current.ram_mb, current.vcpus, size_gb)
            }
        };
        let id = instance.id;
        // A volume grows offline, as a Trove volume does: the datastore
        // stops, the volume is unmounted, grown and mounted again, and the
        // datastore starts. (Repeated as a whole when the task resumes.)
        let growing = volume_size_gb > instance.volume_size_gb;
        if growing {
            self.call_agent(id, &AgentRequest::Stop, self.config.action_timeout)
                .await
                .context("stopping the datastore to grow its volume")?;
        }
        if let Err(e) = self.compute.resize(id, ram_mb, vcpus, volume_size_gb).await {
            if growing {
                // Serving on the old volume beats not serving.
                let restart = AgentRequest::Restart;
                if let Err(again) = self
                    .call_agent(id, &restart, self.config.action_timeout)
                    .await
                {
                    tracing::warn!(instance = %id, "starting the datastore again: {again:#}");
                }
            }
            return Err(anyhow::Error::new(e).context("resizing the server"));
        }
        self.compute.ensure_running(id).await?;
        let request = AgentRequest::Resize {
            ram_mb,
            volume_size_gb,
        };
        let mut status = self
            .call_agent(id, &request, self.config.action_timeout)
            .await
            .context("resizing the datastore")?;
        if growing {
            status = self
                .call_agent(id, &AgentRequest::Restart, self.config.action_timeout)
                .await
                .context("starting the datastore on its grown volume")?;
        }
        self.record_status(id, status).await;
        self.store
            .set_instance_resources(id, flavor_id, volume_size_gb)
            .await?;
        self.store
            .set_instance_status(id, InstanceStatus::Active, None)
            .await?;
        tracing::info!(instance = %id, ram_mb, volume_size_gb, "resized");
        Ok(())
    }
}

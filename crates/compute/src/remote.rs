//! The remote driver: servers live on other hosts, each run by a
//! `coffer compute` daemon (see [`crate::host`]) that the task manager asks
//! over the bus. Which host holds an instance is the hosts' own answer
//! (they list their servers), remembered here once known; a new server
//! goes to the answering host with the fewest. When a host does not answer,
//! nothing is concluded about what it holds: the operation fails with a
//! message naming the host, never "not found".

use crate::protocol::{ComputeReply, ComputeRequest};
use crate::{ComputeDriver, ComputeError, ServerState};
use anyhow::anyhow;
use async_trait::async_trait;
use coffer_bus::{compute_topic, Bus};
use coffer_model::{AgentConfig, InstanceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a host may take to list its servers or answer a quick request.
const QUICK: Duration = Duration::from_secs(10);
/// How long a host may take to stop or remove a server (the local driver
/// waits up to 20 s for each of its processes).
const SLOW: Duration = Duration::from_secs(75);

pub struct RemoteCompute {
    bus: Arc<dyn Bus>,
    hosts: Vec<String>,
    /// Where each known server lives.
    placed: Mutex<HashMap<InstanceId, String>>,
}

/// What asking every host for its servers gave.
struct Survey {
    servers: Vec<(String, Vec<InstanceId>)>,
    silent: Vec<(String, ComputeError)>,
}

impl RemoteCompute {
    /// Servers go to `hosts` (names of `coffer compute` daemons).
    pub fn new(bus: Arc<dyn Bus>, hosts: Vec<String>) -> anyhow::Result<Self> {
        if hosts.is_empty() {
            anyhow::bail!("the remote compute driver needs at least one host");
        }
        Ok(Self {
            bus,
            hosts,
            placed: Mutex::new(HashMap::new()),
        })
    }

    async fn ask(
        &self,
        host: &str,
        request: &ComputeRequest,
        timeout: Duration,
    ) -> Result<ComputeReply, ComputeError> {
        let body = serde_json::to_value(request).map_err(anyhow::Error::new)?;
        let reply = self
            .bus
            .call(&compute_topic(host), body, timeout)
            .await
            .map_err(|e| anyhow!("compute host {host} ({}): {e}", request.method()))?;
        serde_json::from_value(reply)
            .map_err(|e| anyhow!("compute host {host} answered {}: {e}", request.method()).into())
    }

    async fn survey(&self) -> Survey {
        let asks = self.hosts.iter().map(|h| async move {
            let reply = self.ask(h, &ComputeRequest::List, QUICK).await;
            (h.clone(), reply)
        });
        let mut survey = Survey {
            servers: Vec::new(),
            silent: Vec::new(),
        };
        for (host, reply) in futures::future::join_all(asks).await {
            match reply {
                Ok(ComputeReply::Servers { ids }) => survey.servers.push((host, ids)),
                Ok(other) => survey
                    .silent
                    .push((host, anyhow!("unexpected answer {other:?}").into())),
                Err(e) => survey.silent.push((host, e)),
            }
        }
        let mut placed = self.placed.lock().expect("placed lock");
        for (host, ids) in &survey.servers {
            for id in ids {
                placed.insert(*id, host.clone());
            }
        }
        survey
    }

    /// The host holding `id`: `None` only when every host answered and
    /// none has it.
    async fn host_of(&self, id: InstanceId) -> Result<Option<String>, ComputeError> {
        if let Some(h) = self.placed.lock().expect("placed lock").get(&id) {
            return Ok(Some(h.clone()));
        }
        let survey = self.survey().await;
        if let Some((host, _)) = survey.servers.iter().find(|(_, ids)| ids.contains(&id)) {
            return Ok(Some(host.clone()));
        }
        match survey.silent.into_iter().next() {
            None => Ok(None),
            Some((host, e)) => Err(anyhow!(
                "cannot tell where instance {id} runs: compute host {host} does not answer ({e})"
            )
            .into()),
        }
    }

    /// Ask the host holding `id`; `Ok(None)` when no host has it.
    async fn ask_holder(
        &self,
        id: InstanceId,
        request: ComputeRequest,
        timeout: Duration,
    ) -> Result<Option<ComputeReply>, ComputeError> {
        let Some(host) = self.host_of(id).await? else {
            return Ok(None);
        };
        match self.ask(&host, &request, timeout).await? {
            ComputeReply::NotFound => {
                self.placed.lock().expect("placed lock").remove(&id);
                Ok(None)
            }
            reply => Ok(Some(reply)),
        }
    }
}

fn done(reply: ComputeReply) -> Result<(), ComputeError> {
    match reply {
        ComputeReply::Done => Ok(()),
        other => Err(anyhow!("unexpected answer {other:?}").into()),
    }
}

#[async_trait]
impl ComputeDriver for RemoteCompute {
    async fn create(&self, config: &AgentConfig) -> Result<(), ComputeError> {
        let id = config.instance_id;
        let host = match self.host_of(id).await {
            Ok(Some(host)) => host,
            // Somewhere new: the answering host with the fewest servers.
            // A silent host may hold it already only if this create ran
            // before and that host went quiet; then wait for it instead.
            Ok(None) => {
                let survey = self.survey().await;
                let host = survey
                    .servers
                    .iter()
                    .min_by_key(|(_, ids)| ids.len())
                    .map(|(h, _)| h.clone())
                    .ok_or_else(|| anyhow!("no compute host answers"))?;
                tracing::info!(instance = %id, %host, "placing the server");
                host
            }
            Err(e) => return Err(e),
        };
        let request = ComputeRequest::Create {
            config: config.clone(),
        };
        done(self.ask(&host, &request, QUICK).await?)?;
        self.placed.lock().expect("placed lock").insert(id, host);
        Ok(())
    }

    async fn ensure_running(&self, id: InstanceId) -> Result<(), ComputeError> {
        let reply = self
            .ask_holder(id, ComputeRequest::EnsureRunning { id }, QUICK)
            .await?;
        done(reply.ok_or(ComputeError::NotFound(id))?)
    }

    async fn state(&self, id: InstanceId) -> Result<ServerState, ComputeError> {
        match self
            .ask_holder(id, ComputeRequest::State { id }, QUICK)
            .await?
        {
            None => Ok(ServerState::Missing),
            Some(ComputeReply::State { state }) => Ok(state),
            Some(other) => Err(anyhow!("unexpected answer {other:?}").into()),
        }
    }

    async fn stop(&self, id: InstanceId) -> Result<(), ComputeError> {
        match self
            .ask_holder(id, ComputeRequest::Stop { id }, SLOW)
            .await?
        {
            None => Ok(()),
            Some(reply) => done(reply),
        }
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), ComputeError> {
        match self
            .ask_holder(id, ComputeRequest::Destroy { id }, SLOW)
            .await?
        {
            None => Ok(()),
            Some(reply) => {
                done(reply)?;
                self.placed.lock().expect("placed lock").remove(&id);
                Ok(())
            }
        }
    }

    async fn resize(
        &self,
        id: InstanceId,
        ram_mb: i64,
        volume_size_gb: i64,
    ) -> Result<(), ComputeError> {
        let request = ComputeRequest::Resize {
            id,
            ram_mb,
            volume_size_gb,
        };
        let reply = self.ask_holder(id, request, QUICK).await?;
        done(reply.ok_or(ComputeError::NotFound(id))?)
    }

    /// Every host's servers; fails when a host does not answer (a partial
    /// list would make the others' servers look like orphans).
    async fn list(&self) -> Result<Vec<InstanceId>, ComputeError> {
        let survey = self.survey().await;
        if let Some((host, e)) = survey.silent.into_iter().next() {
            return Err(anyhow!("compute host {host} does not answer: {e}").into());
        }
        Ok(survey
            .servers
            .into_iter()
            .flat_map(|(_, ids)| ids)
            .collect())
    }

    /// Remote agents log in to the broker with their own users; no tokens.
    fn verify_agent_token(&self, _id: InstanceId, _token: &str) -> bool {
        false
    }

    fn supervises_agents(&self) -> bool {
        true
    }
}

//! The remote driver: servers live on other hosts, each run by a
//! `coffer compute` daemon (see [`crate::host`]) that the task manager asks
//! over the bus. A new server goes to the answering host with the fewest
//! servers; that choice is recorded durably ([`Placements`]) before the
//! host is asked, so a create resumed after a crash goes to the same host
//! and every later request goes straight to it. A host that does not
//! answer fails the requests for its own servers, naming it; it is never
//! taken to hold nothing, and it does not stop new servers going elsewhere.

use crate::protocol::{ComputeReply, ComputeRequest};
use crate::{ComputeDriver, ComputeError, ServerState};
use anyhow::anyhow;
use async_trait::async_trait;
use coffer_bus::{compute_topic, Bus};
use coffer_model::{AgentConfig, InstanceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a host may take to list its servers or answer a quick request.
const QUICK: Duration = Duration::from_secs(10);
/// How long a host may take to stop or remove a server (the local driver
/// waits up to 20 s for each of its processes).
const SLOW: Duration = Duration::from_secs(75);
/// How long a host that did not answer is left out of placement, so that
/// one dead host does not make every create wait for it.
const SKIP_SILENT: Duration = Duration::from_secs(30);

/// Where servers were placed, kept durably by the control plane (the
/// metadata store).
#[async_trait]
pub trait Placements: Send + Sync + 'static {
    /// The host instance `id`'s server was placed on; `None`: never placed.
    async fn host_of(&self, id: InstanceId) -> anyhow::Result<Option<String>>;
    /// Record `host` for `id` unless a host is recorded already; the
    /// recorded one.
    async fn place(&self, id: InstanceId, host: &str) -> anyhow::Result<String>;
}

pub struct RemoteCompute {
    bus: Arc<dyn Bus>,
    hosts: Vec<String>,
    placements: Arc<dyn Placements>,
    /// When each host last failed to answer a survey.
    silent_since: Mutex<HashMap<String, Instant>>,
}

/// What asking every host for its servers gave.
struct Survey {
    servers: Vec<(String, Vec<InstanceId>)>,
    silent: Vec<(String, ComputeError)>,
}

impl RemoteCompute {
    /// New servers go to `hosts` (names of `coffer compute` daemons);
    /// where each went is kept in `placements`.
    pub fn new(
        bus: Arc<dyn Bus>,
        hosts: Vec<String>,
        placements: Arc<dyn Placements>,
    ) -> anyhow::Result<Self> {
        if hosts.is_empty() {
            anyhow::bail!("the remote compute driver needs at least one host");
        }
        Ok(Self {
            bus,
            hosts,
            placements,
            silent_since: Mutex::new(HashMap::new()),
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

    /// Ask `hosts` for their servers.
    async fn survey(&self, hosts: &[String]) -> Survey {
        let asks = hosts.iter().map(|h| async move {
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
        let mut silent = self.silent_since.lock().expect("silent lock");
        for (host, _) in &survey.servers {
            silent.remove(host);
        }
        for (host, _) in &survey.silent {
            silent.insert(host.clone(), Instant::now());
        }
        survey
    }

    /// Ask the host `id` was placed on; `Ok(None)` when it was never
    /// placed, or its host has no such server.
    async fn ask_holder(
        &self,
        id: InstanceId,
        request: ComputeRequest,
        timeout: Duration,
    ) -> Result<Option<ComputeReply>, ComputeError> {
        let Some(host) = self.placements.host_of(id).await? else {
            return Ok(None);
        };
        match self.ask(&host, &request, timeout).await? {
            ComputeReply::NotFound => Ok(None),
            reply => Ok(Some(reply)),
        }
    }

    /// The answering host with the fewest servers. Hosts that did not
    /// answer lately are not asked (unless no other is left).
    async fn choose_host(&self) -> Result<String, ComputeError> {
        let candidates: Vec<String> = {
            let silent = self.silent_since.lock().expect("silent lock");
            self.hosts
                .iter()
                .filter(|h| silent.get(*h).is_none_or(|t| t.elapsed() > SKIP_SILENT))
                .cloned()
                .collect()
        };
        let ask = if candidates.is_empty() {
            &self.hosts
        } else {
            &candidates
        };
        let survey = self.survey(ask).await;
        if let Some((host, _)) = survey.servers.iter().min_by_key(|(_, ids)| ids.len()) {
            return Ok(host.clone());
        }
        let why: Vec<String> = survey
            .silent
            .iter()
            .map(|(host, e)| format!("{host}: {e}"))
            .collect();
        Err(anyhow!("no compute host answers ({})", why.join("; ")).into())
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
        let host = match self.placements.host_of(id).await? {
            // Placed before (a resumed create): the same host, answering or not.
            Some(host) => host,
            None => {
                let chosen = self.choose_host().await?;
                let host = self.placements.place(id, &chosen).await?;
                tracing::info!(instance = %id, %host, "server placed");
                host
            }
        };
        let request = ComputeRequest::Create {
            config: Box::new(config.clone()),
        };
        done(self.ask(&host, &request, QUICK).await?)
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
            Some(reply) => done(reply),
        }
    }

    async fn resize(
        &self,
        id: InstanceId,
        ram_mb: i64,
        vcpus: i64,
        volume_size_gb: i64,
    ) -> Result<(), ComputeError> {
        let request = ComputeRequest::Resize {
            id,
            ram_mb,
            vcpus,
            volume_size_gb,
        };
        let reply = self.ask_holder(id, request, QUICK).await?;
        done(reply.ok_or(ComputeError::NotFound(id))?)
    }

    /// Every host's servers; fails when a host does not answer (a partial
    /// list would make the others' servers look like orphans).
    async fn list(&self) -> Result<Vec<InstanceId>, ComputeError> {
        let survey = self.survey(&self.hosts).await;
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

//! The `coffer compute` daemon's work: answer the task manager's requests
//! for this host's servers (run by a local driver), and keep their agents
//! running without being asked.

use crate::protocol::{ComputeReply, ComputeRequest};
use crate::{ComputeDriver, ComputeError, LocalProcessDriver};
use coffer_bus::{compute_topic, Bus, Incoming};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Serve host `host` until cancelled: requests arrive on its bus topic,
/// each handled on its own (a slow stop does not hold up a create), and
/// every `supervise_every` dead agents of servers not stopped on purpose
/// are started again.
pub async fn serve(
    driver: Arc<LocalProcessDriver>,
    bus: Arc<dyn Bus>,
    host: &str,
    supervise_every: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut requests = bus.subscribe(&compute_topic(host)).await?;
    let revived = driver.revive().await;
    tracing::info!(%host, revived, "compute host serving");
    let mut tick = tokio::time::interval(supervise_every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            msg = requests.next() => {
                let Some(msg) = msg else { return Ok(()) };
                tokio::spawn(handle(driver.clone(), msg));
            }
            _ = tick.tick() => {
                let started = driver.revive().await;
                if started > 0 {
                    tracing::info!(started, "restarted agents that had died");
                }
            }
        }
    }
}

async fn handle(driver: Arc<LocalProcessDriver>, msg: Incoming) {
    let request: ComputeRequest = match serde_json::from_value(msg.body.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("refused an unreadable compute request: {e}");
            msg.reply(Err(format!("unreadable compute request: {e}")));
            return;
        }
    };
    let method = request.method();
    let answer = match answer(&driver, request).await {
        Ok(reply) => serde_json::to_value(reply).map_err(|e| e.to_string()),
        Err(e) => {
            tracing::warn!(method, "compute request failed: {e}");
            Err(e.to_string())
        }
    };
    tracing::debug!(method, "compute request answered");
    msg.reply(answer);
}

async fn answer(
    driver: &LocalProcessDriver,
    request: ComputeRequest,
) -> Result<ComputeReply, ComputeError> {
    let outcome = match request {
        ComputeRequest::Create { config } => {
            tracing::info!(instance = %config.instance_id, "creating a server");
            driver.create(&config).await
        }
        ComputeRequest::EnsureRunning { id } => driver.ensure_running(id).await,
        ComputeRequest::State { id } => {
            return driver
                .state(id)
                .await
                .map(|state| ComputeReply::State { state })
        }
        ComputeRequest::Stop { id } => {
            tracing::info!(instance = %id, "stopping a server");
            driver.stop(id).await
        }
        ComputeRequest::Destroy { id } => {
            tracing::info!(instance = %id, "removing a server");
            driver.destroy(id).await
        }
        ComputeRequest::Resize {
            id,
            ram_mb,
            vcpus,
            volume_size_gb,
        } => driver.resize(id, ram_mb, vcpus, volume_size_gb).await,
        ComputeRequest::List => {
            return driver.list().await.map(|ids| ComputeReply::Servers { ids });
        }
    };
    match outcome {
        Ok(()) => Ok(ComputeReply::Done),
        Err(ComputeError::NotFound(_)) => Ok(ComputeReply::NotFound),
        Err(e) => Err(e),
    }
}

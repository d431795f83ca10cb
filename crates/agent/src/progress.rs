//! Progress of a backup or restore, sent to the conductor twice a second.

use crate::handler::Agent;
use coffer_bus::messages::ConductorMessage;
use coffer_bus::CONDUCTOR;
use coffer_model::{BackupId, Progress};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(500);

pub(crate) struct Reporter {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Report `counters` for `backup` (or, for `None`, this instance's
    /// restore) until stopped; a final report is sent at the stop.
    pub(crate) fn start(
        agent: &Arc<Agent>,
        backup: Option<BackupId>,
        phase: &str,
        total: Option<u64>,
        counters: &coffer_pipeline::Progress,
    ) -> Self {
        let stop = CancellationToken::new();
        let Some(bus) = agent.bus.get().cloned() else {
            return Self { stop, task: None };
        };
        let (agent, counters, phase, s) = (
            agent.clone(),
            counters.clone(),
            phase.to_string(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                let finished = tokio::select! {
                    _ = s.cancelled() => true,
                    _ = tokio::time::sleep(EVERY) => false,
                };
                let done = counters.plain_bytes();
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let progress = Progress {
                    phase: phase.clone(),
                    bytes_done: done,
                    bytes_total: total,
                    bytes_per_second: (done as f64 / secs) as u64,
                    stored_bytes: counters.stored_bytes(),
                };
                let msg = ConductorMessage::Progress {
                    instance_id: agent.ctx().instance_id,
                    backup_id: backup,
                    progress,
                };
                if let Ok(body) = serde_json::to_value(&msg) {
                    let _ = bus.cast(CONDUCTOR, body).await;
                }
                if finished {
                    return;
                }
            }
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

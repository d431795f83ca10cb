//! The conductor: the only way an agent's news reaches the metadata store.

use coffer_bus::messages::ConductorMessage;
use coffer_bus::{agent_topic, Bus, CONDUCTOR};
use coffer_meta::{MetaError, Store};
use coffer_model::Fault;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Consume the conductor topic until cancelled.
pub async fn run_conductor(
    store: Store,
    bus: Arc<dyn Bus>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut inbox = bus.subscribe(CONDUCTOR).await?;
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            msg = inbox.next() => match msg { Some(m) => m, None => return Ok(()) },
        };
        let news: ConductorMessage = match serde_json::from_value(msg.body) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(from = %msg.from, "unreadable message for the conductor: {e}");
                continue;
            }
        };
        match news {
            ConductorMessage::Heartbeat {
                instance_id,
                status,
                protocol,
            } => {
                // An agent may speak only for its own instance.
                if msg.from != agent_topic(instance_id) {
                    tracing::warn!(from = %msg.from, %instance_id, "heartbeat for another instance refused");
                    continue;
                }
                let used = i64::try_from(status.volume.used_bytes).ok();
                match store
                    .record_heartbeat(
                        instance_id,
                        status.status,
                        used,
                        Some(protocol),
                        chrono::Utc::now(),
                    )
                    .await
                {
                    Ok(()) | Err(MetaError::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(%instance_id, "recording heartbeat: {e}"),
                }
                if status.memory_kills > 0 {
                    let fault = Fault {
                        message: format!(
                            "the datastore went past the flavor's memory: the kernel killed {} of its processes (the agent restarts a killed server)",
                            status.memory_kills
                        ),
                        created: chrono::Utc::now(),
                    };
                    tracing::warn!(%instance_id, "{}", fault.message);
                    match store.set_instance_fault(instance_id, &fault).await {
                        Ok(()) | Err(MetaError::NotFound { .. }) => {}
                        Err(e) => tracing::warn!(%instance_id, "recording a fault: {e}"),
                    }
                }
            }
            ConductorMessage::Progress {
                instance_id,
                backup_id,
                progress,
            } => {
                if msg.from != agent_topic(instance_id) {
                    tracing::warn!(from = %msg.from, %instance_id, "progress for another instance refused");
                    continue;
                }
                let subject = match backup_id {
                    None => instance_id.to_string(),
                    // Only a backup of this very instance.
                    Some(b) => match store.get_backup(b).await {
                        Ok(backup) if backup.instance_id == instance_id => b.to_string(),
                        _ => {
                            tracing::warn!(from = %msg.from, backup = %b, "progress for a backup of another instance refused");
                            continue;
                        }
                    },
                };
                if let Err(e) = store.set_progress(&subject, &progress).await {
                    tracing::warn!(%subject, "recording progress: {e}");
                }
            }
        }
    }
}

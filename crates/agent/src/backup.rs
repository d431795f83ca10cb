//! Backups and restores: a strategy's byte stream through the pipeline
//! (compress, encrypt, hash) into object storage, and back.
//!
//! A backup that is asked for again while it runs (the control plane
//! restarted and resumed its task) is joined, not started twice; one that
//! finished is answered from memory. A failed backup leaves no object.

use crate::handler::Agent;
use crate::progress::Reporter;
use anyhow::{anyhow, bail, Context};
use coffer_bus::messages::{BackupOrder, BackupReport, RestoreOrder};
use coffer_model::BackupId;
use coffer_pipeline::{Codec, DataKey, EncodeOptions};
use coffer_storage::{Storage, StorageConfig};
use futures::future::{BoxFuture, FutureExt, Shared};
use std::path::PathBuf;
use std::sync::Arc;

/// Finished backup runs remembered (to answer a repeated request).
const KEEP_FINISHED: usize = 16;

/// A backup run shared by everyone who asks for it.
pub(crate) type BackupRun = Shared<BoxFuture<'static, Result<BackupReport, String>>>;

impl Agent {
    /// Run (or join) the backup `order` names.
    pub(crate) async fn backup(
        self: &Arc<Self>,
        order: BackupOrder,
    ) -> anyhow::Result<BackupReport> {
        let run = {
            let mut runs = self.backups.lock().expect("backup runs lock");
            // Finished runs are kept to answer a repeated request; a few suffice.
            if runs.len() >= KEEP_FINISHED {
                runs.retain(|id, run| *id == order.backup_id || run.peek().is_none());
            }
            runs.entry(order.backup_id)
                .or_insert_with(|| {
                    let agent = self.clone();
                    let id = order.backup_id;
                    let run =
                        async move { agent.run_backup(order).await.map_err(|e| format!("{e:#}")) }
                            .boxed()
                            .shared();
                    in_background(run, id)
                })
                .clone()
        };
        run.await.map_err(|e| anyhow!(e))
    }

    async fn run_backup(self: Arc<Self>, order: BackupOrder) -> anyhow::Result<BackupReport> {
        let strategy = self.backup_strategies.get(&order.strategy)?;
        if order.parent_info.is_some() && !strategy.supports_incremental() {
            bail!(
                "the {} backup strategy takes no incremental backups",
                order.strategy
            );
        }
        let key = data_key(&order.data_key.0)?;
        let codec: Codec = order
            .codec
            .parse()
            .map_err(|e| anyhow!("codec {:?}: {e}", order.codec))?;
        let storage = connect(&order.storage.0).await?;
        let work = self.scratch(&format!("backup-{}", order.backup_id))?;
        tracing::info!(backup = %order.backup_id, strategy = %order.strategy, incremental = order.parent_info.is_some(), "backup starting");

        let source = strategy
            .start(&self.ctx(), &work.0, order.parent_info.as_ref())
            .await?;
        let mut writer = storage.writer(&order.object_key).await?;
        let progress = coffer_pipeline::Progress::default();
        let reporter = Reporter::start(&self, Some(order.backup_id), "backup", None, &progress);
        let opts = EncodeOptions {
            codec,
            chunk_size: order.chunk_size,
            ..EncodeOptions::default()
        };
        let encoded =
            coffer_pipeline::encode(source.reader, &mut writer, &key, &opts, &progress).await;
        reporter.stop().await;
        let summary = match encoded {
            Ok(s) => s,
            Err(e) => {
                // Nothing of a failed backup stays in storage, and the tool
                // (if still running) is stopped by dropping `done`.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!("discarding the partial object: {abort}");
                }
                let _ = storage.delete(&order.object_key).await;
                return Err(anyhow::Error::new(e).context("backup stream"));
            }
        };
        let info = match source.done.await {
            Ok(info) => info,
            Err(e) => {
                // The tool failed after its output was stored: that output
                // is not a backup.
                let _ = storage.delete(&order.object_key).await;
                return Err(anyhow::Error::new(e).context(format!("{} failed", order.strategy)));
            }
        };
        tracing::info!(backup = %order.backup_id, bytes = summary.plain_bytes, stored = summary.stored_bytes, "backup stored");
        Ok(BackupReport {
            location: storage.location(&order.object_key),
            plain_bytes: summary.plain_bytes,
            stored_bytes: summary.stored_bytes,
            sha256: summary.sha256,
            info,
        })
    }

    /// Fill this never-prepared instance from the pieces, full backup first.
    pub(crate) async fn restore(self: &Arc<Self>, order: RestoreOrder) -> anyhow::Result<()> {
        let strategy = self.restore_strategies.get(&order.strategy)?;
        if order.pieces.is_empty() {
            bail!("a restore needs at least one backup");
        }
        let storage = connect(&order.storage.0).await?;
        let work = self.scratch("restore")?;
        let total: u64 = order.pieces.iter().map(|p| p.plain_bytes).sum();
        let progress = coffer_pipeline::Progress::default();
        let reporter = Reporter::start(self, None, "restore", Some(total), &progress);
        let result = async {
            strategy.begin(&self.ctx(), &work.0).await?;
            for (index, piece) in order.pieces.iter().enumerate() {
                tracing::info!(backup = %piece.backup_id, index, "restoring");
                let key = data_key(&piece.data_key.0)?;
                let reader = storage
                    .reader(&piece.object_key)
                    .await
                    .with_context(|| format!("reading backup {}", piece.backup_id))?;
                let sink = strategy
                    .piece(&self.ctx(), &work.0, index, &piece.info)
                    .await?;
                let expected = (!piece.sha256.is_empty()).then_some(piece.sha256.as_str());
                coffer_pipeline::decode(reader, sink.writer, &key, expected, &progress)
                    .await
                    .with_context(|| format!("restoring backup {}", piece.backup_id))?;
                sink.done
                    .await
                    .with_context(|| format!("applying backup {}", piece.backup_id))?;
            }
            strategy
                .finish(&self.ctx(), &work.0, order.pieces.len())
                .await?;
            anyhow::Ok(())
        }
        .await;
        reporter.stop().await;
        result
    }

    /// A fresh private scratch directory under the instance dir (not on
    /// the data volume), removed when the guard drops.
    fn scratch(&self, name: &str) -> anyhow::Result<Scratch> {
        let dir = self.work_root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Scratch(dir))
    }
}

/// Removes its directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data_key(hex_key: &str) -> anyhow::Result<DataKey> {
    let bytes = hex::decode(hex_key).context("the data key is not hex")?;
    Ok(DataKey::from_bytes(&bytes)?)
}

async fn connect(raw: &serde_json::Value) -> anyhow::Result<Storage> {
    let config: StorageConfig =
        serde_json::from_value(raw.clone()).context("the storage configuration is unreadable")?;
    Storage::connect(&config)
        .await
        .with_context(|| format!("connecting to backup storage {}", config.describe()))
}

/// Drive `run` to completion in the background too, so a backup goes on
/// even when the caller who started it goes away; returns it to be awaited.
fn in_background(run: BackupRun, id: BackupId) -> BackupRun {
    let driven = run.clone();
    tokio::spawn(async move {
        if let Err(e) = driven.await {
            tracing::error!(backup = %id, "backup failed: {e}");
        }
    });
    run
}

//! The backup workflows: take a backup through the instance's agent, delete
//! a backup with its incrementals, and gather what a restore needs.
//!
//! Keys: each backup has its own data key, generated here, stored only
//! wrapped by the master key, and handed to the agent in the request (over
//! the agent's own authenticated channel) for just that backup or restore.

use crate::TaskManager;
use anyhow::{anyhow, bail, Context};
use coffer_bus::messages::{
    AgentRequest, BackupOrder, BackupReport, RestoreOrder, RestorePiece, Secret,
};
use coffer_meta::MetaError;
use coffer_model::{
    Backup, BackupId, BackupStatus, BackupTaskPayload, DatabaseSpec, InstanceStatus, Task, UserSpec,
};
use coffer_pipeline::{unwrap_key, wrap_key, DataKey, MasterKey};
use coffer_storage::{Storage, StorageConfig};
use std::time::Duration;

/// How backups are made and kept; `None` in the task manager means backups
/// are switched off.
#[derive(Debug)]
pub struct BackupSettings {
    pub master_key: MasterKey,
    pub storage: StorageConfig,
    /// Compression, e.g. `zstd:3`.
    pub codec: String,
    pub chunk_size: usize,
    /// How long one backup or restore may take.
    pub timeout: Duration,
}

/// Most incrementals on one full backup; a deeper chain is refused (and
/// a corrupt parent loop cannot make a restore walk forever).
pub const MAX_CHAIN: usize = 100;

impl TaskManager {
    pub(crate) fn backup_settings(&self) -> anyhow::Result<&BackupSettings> {
        self.backups
            .as_deref()
            .ok_or_else(|| anyhow!("backups are not configured"))
    }

    pub(crate) async fn create_backup(&self, task: &mut Task) -> anyhow::Result<()> {
        let settings = self.backup_settings()?;
        let payload: BackupTaskPayload = serde_json::from_value(task.payload.clone())
            .context("backup task payload is unreadable")?;
        let mut backup = self.store.get_backup(payload.backup_id).await?;
        if backup.status.is_terminal() {
            return self.backup_over(&backup).await;
        }
        if task.step.is_empty() || task.step == "accepted" {
            // The key is stored (wrapped) before any byte is written, so
            // whatever reaches storage can be read back.
            let key = DataKey::generate();
            backup.wrapped_key = wrap_key(&settings.master_key, &key);
            backup.key_id = settings.master_key.fingerprint();
            backup.codec = settings.codec.clone();
            backup.status = BackupStatus::Building;
            self.store.update_backup(&backup).await?;
            self.step(task, "keyed").await?;
        }
        let parent_info = match backup.parent_id {
            None => None,
            Some(parent) => {
                let parent = self
                    .store
                    .get_backup(parent)
                    .await
                    .context("parent backup")?;
                if parent.status != BackupStatus::Completed {
                    bail!("parent backup {} is {}", parent.id, parent.status);
                }
                Some(parent.info)
            }
        };
        let key = unwrap_key(&settings.master_key, &backup.wrapped_key)?;
        let order = BackupOrder {
            backup_id: backup.id,
            strategy: backup.strategy.clone(),
            storage: Secret(serde_json::to_value(&settings.storage)?),
            object_key: backup.object_key.clone(),
            data_key: Secret(hex::encode(key.as_bytes())),
            codec: backup.codec.clone(),
            chunk_size: settings.chunk_size,
            parent_info,
        };
        tracing::info!(backup = %backup.id, instance = %backup.instance_id, strategy = %backup.strategy, "backup running");
        let reply = self
            .call_agent(
                backup.instance_id,
                &AgentRequest::Backup(order),
                settings.timeout,
            )
            .await
            .context("backup failed")?;
        let report: BackupReport =
            serde_json::from_value(reply).context("the agent's backup report is unreadable")?;
        backup.status = BackupStatus::Completed;
        backup.location = Some(report.location);
        backup.plain_bytes = Some(count(report.plain_bytes));
        backup.stored_bytes = Some(count(report.stored_bytes));
        backup.checksum = Some(report.sha256);
        backup.info = report.info;
        backup.fault = None;
        self.store.update_backup(&backup).await?;
        tracing::info!(backup = %backup.id, bytes = report.plain_bytes, stored = report.stored_bytes, "backup completed");
        self.backup_over(&backup).await
    }

    /// A backup ended (either way): forget its progress and give the
    /// instance back.
    async fn backup_over(&self, backup: &Backup) -> anyhow::Result<()> {
        let _ = self.store.clear_progress(&backup.id.to_string()).await;
        match self.store.get_instance(backup.instance_id).await {
            Ok(i) if i.status == InstanceStatus::Backup => {
                self.store
                    .set_instance_status(i.id, InstanceStatus::Active, None)
                    .await?;
            }
            Ok(_) | Err(MetaError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The backup task failed: the backup is FAILED with the reason, the
    /// instance (which kept serving) is ACTIVE again.
    pub(crate) async fn backup_failed(&self, task: &Task, message: &str) {
        let Ok(payload) = serde_json::from_value::<BackupTaskPayload>(task.payload.clone()) else {
            return;
        };
        match self.store.get_backup(payload.backup_id).await {
            Ok(mut backup) => {
                backup.status = BackupStatus::Failed;
                backup.fault = Some(message.to_string());
                if let Err(e) = self.store.update_backup(&backup).await {
                    tracing::error!(backup = %backup.id, "could not record the failure: {e}");
                }
                if let Err(e) = self.backup_over(&backup).await {
                    tracing::error!(backup = %backup.id, "could not release the instance: {e}");
                }
            }
            Err(e) => {
                tracing::error!(backup = %payload.backup_id, "backup failed and is unreadable: {e}")
            }
        }
    }

    /// Delete a backup and, first, every incremental that depends on it
    /// (as Trove does). Objects go before records, so a record never
    /// points at nothing... and an object without a record is retried.
    pub(crate) async fn delete_backup(&self, task: &mut Task) -> anyhow::Result<()> {
        let settings = self.backup_settings()?;
        let payload: BackupTaskPayload = serde_json::from_value(task.payload.clone())
            .context("delete task payload is unreadable")?;
        let storage = Storage::connect(&settings.storage)
            .await
            .context("connecting to backup storage")?;
        let mut order = Vec::new();
        self.descendants(payload.backup_id, &mut order, 0).await?;
        // Children before parents.
        for backup in order.iter().rev() {
            if matches!(backup.status, BackupStatus::New | BackupStatus::Building) {
                bail!(
                    "backup {} is {} and cannot be deleted now",
                    backup.id,
                    backup.status
                );
            }
        }
        for backup in order.iter().rev() {
            storage
                .delete(&backup.object_key)
                .await
                .with_context(|| format!("deleting the stored object of backup {}", backup.id))?;
            match self.store.mark_backup_deleted(backup.id).await {
                Ok(()) | Err(MetaError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(backup = %backup.id, "backup deleted");
        }
        Ok(())
    }

    async fn descendants(
        &self,
        id: BackupId,
        out: &mut Vec<Backup>,
        depth: usize,
    ) -> anyhow::Result<()> {
        if depth > MAX_CHAIN {
            bail!("backup {id} has more than {MAX_CHAIN} generations of incrementals");
        }
        let backup = match self.store.get_backup(id).await {
            Ok(b) => b,
            // Deleted by an earlier run of this task.
            Err(MetaError::NotFound { .. }) if depth == 0 => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        out.push(backup);
        for child in self.store.child_backups(id).await? {
            Box::pin(self.descendants(child.id, out, depth + 1)).await?;
        }
        Ok(())
    }

    /// The delete failed: the backup shows DELETE_FAILED; deleting again retries.
    pub(crate) async fn backup_delete_failed(&self, task: &Task, message: &str) {
        let Ok(payload) = serde_json::from_value::<BackupTaskPayload>(task.payload.clone()) else {
            return;
        };
        if let Ok(mut backup) = self.store.get_backup(payload.backup_id).await {
            if backup.status.is_terminal() {
                backup.status = BackupStatus::DeleteFailed;
                backup.fault = Some(message.to_string());
                let _ = self.store.update_backup(&backup).await;
            }
        }
    }

    /// What the agent needs to restore `backup_id` and its parents.
    pub(crate) async fn restore_order(
        &self,
        backup_id: BackupId,
        databases: Vec<DatabaseSpec>,
        users: Vec<UserSpec>,
    ) -> anyhow::Result<RestoreOrder> {
        let settings = self.backup_settings()?;
        let mut chain = Vec::new();
        let mut next = Some(backup_id);
        while let Some(id) = next {
            if chain.len() > MAX_CHAIN {
                bail!("backup {backup_id} has more than {MAX_CHAIN} parents");
            }
            let backup = self
                .store
                .get_backup(id)
                .await
                .with_context(|| format!("backup {id} to restore from"))?;
            if backup.status != BackupStatus::Completed {
                bail!("backup {id} is {}, not COMPLETED", backup.status);
            }
            next = backup.parent_id;
            chain.push(backup);
        }
        chain.reverse();
        let strategy = chain[0].strategy.clone();
        let mut pieces = Vec::with_capacity(chain.len());
        for backup in chain {
            let key = unwrap_key(&settings.master_key, &backup.wrapped_key)
                .with_context(|| format!("backup {}", backup.id))?;
            pieces.push(RestorePiece {
                backup_id: backup.id,
                object_key: backup.object_key,
                data_key: Secret(hex::encode(key.as_bytes())),
                sha256: backup.checksum.unwrap_or_default(),
                plain_bytes: backup.plain_bytes.unwrap_or(0).max(0) as u64,
                info: backup.info,
            });
        }
        Ok(RestoreOrder {
            strategy,
            storage: Secret(serde_json::to_value(&settings.storage)?),
            pieces,
            databases,
            users,
            overrides: Default::default(),
        })
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

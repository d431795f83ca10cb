//! The backup half of the metadata store: backup records and the progress
//! of long operations. A supertrait of [`MetadataStore`](crate::MetadataStore),
//! so every store holds both.

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::{Backup, BackupId, InstanceId, Progress, ProjectId, Task};

#[async_trait]
pub trait BackupStore: Send + Sync + 'static {
    /// Atomically: if the instance is ACTIVE, set it to BACKUP, insert
    /// `backup` and the `task` that takes it; otherwise Conflict naming the
    /// instance's status. With `quotas` (the configured defaults),
    /// QuotaExceeded when the project holds its limit of backups.
    async fn start_backup(
        &self,
        backup: &Backup,
        task: &Task,
        quotas: Option<&coffer_model::QuotaSet>,
    ) -> Result<(), MetaError>;

    /// Insert a backup record as it is (used by tests and imports).
    async fn insert_backup(&self, backup: &Backup) -> Result<(), MetaError>;

    async fn get_backup(&self, id: BackupId) -> Result<Backup, MetaError>;

    /// Live backups in creation order, optionally of one project and/or one
    /// instance, after `marker` (exclusive), at most `limit`. NotFound if
    /// the marker is not in this listing.
    async fn list_backups(
        &self,
        project: Option<&ProjectId>,
        instance: Option<InstanceId>,
        marker: Option<BackupId>,
        limit: usize,
    ) -> Result<Vec<Backup>, MetaError>;

    /// Save what changes as a backup runs: status, location, sizes,
    /// checksum, info, fault, and the key and codec chosen when it starts.
    async fn update_backup(&self, backup: &Backup) -> Result<(), MetaError>;

    /// Live backups whose parent is `id`.
    async fn child_backups(&self, id: BackupId) -> Result<Vec<Backup>, MetaError>;

    /// It disappears from gets and lists.
    async fn mark_backup_deleted(&self, id: BackupId) -> Result<(), MetaError>;

    /// Record how far the operation on `subject` (a backup or instance id) is.
    async fn set_progress(&self, subject: &str, progress: &Progress) -> Result<(), MetaError>;

    async fn get_progress(&self, subject: &str) -> Result<Option<Progress>, MetaError>;

    /// The operation ended: forget its progress. Absent is fine.
    async fn clear_progress(&self, subject: &str) -> Result<(), MetaError>;
}

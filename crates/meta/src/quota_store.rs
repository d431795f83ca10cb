//! The quota half of the metadata store: per-project limits that differ
//! from the configured defaults, and what a project uses. The checks
//! themselves run inside `create_instance` and `start_backup`, in the
//! transaction that adds the resource, so two requests cannot both take
//! the last unit. A supertrait of [`MetadataStore`](crate::MetadataStore).

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::{ProjectId, QuotaSet};

#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// The project's limits: `defaults` with its own overrides on top.
    async fn project_quotas(
        &self,
        project: &ProjectId,
        defaults: &QuotaSet,
    ) -> Result<QuotaSet, MetaError>;

    /// Set one limit of a project (`resource` as `QuotaSet::RESOURCES`
    /// names it; -1 = unlimited).
    async fn set_project_quota(
        &self,
        project: &ProjectId,
        resource: &str,
        limit: i64,
    ) -> Result<(), MetaError>;

    /// What the project holds: live instances, their volume GB, live backups.
    async fn quota_usage(&self, project: &ProjectId) -> Result<QuotaSet, MetaError>;
}

//! The built-in-authentication half of the metadata store: projects and
//! hashed API tokens. A supertrait of [`MetadataStore`](crate::MetadataStore).

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::{ApiToken, ProjectId};

#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Conflict if it exists.
    async fn create_project(&self, id: &ProjectId) -> Result<(), MetaError>;
    /// Every project, by id.
    async fn list_projects(&self) -> Result<Vec<ProjectId>, MetaError>;
    /// NotFound if its project does not exist; Conflict on a repeated id or hash.
    async fn insert_token(&self, token: &ApiToken) -> Result<(), MetaError>;
    /// The token with this hash, if any.
    async fn find_token(&self, token_hash: &str) -> Result<Option<ApiToken>, MetaError>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, MetaError>;
    /// NotFound if absent.
    async fn delete_token(&self, id: &str) -> Result<(), MetaError>;
}

//! Built-in authentication records: projects and API tokens.

use crate::ProjectId;
use serde::{Deserialize, Serialize};

/// An API token as stored: never the token itself, only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// A short public id, to list and revoke it by.
    pub id: String,
    /// Lower-case hex SHA-256 of the token.
    pub token_hash: String,
    /// The project it acts in; `None` for a cloud-admin token.
    pub project_id: Option<ProjectId>,
    /// May use the admin-only endpoints (and any project).
    pub is_admin: bool,
    pub description: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
}

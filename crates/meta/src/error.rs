use thiserror::Error;

/// What a caller of the metadata store can branch on.
#[derive(Debug, Error)]
pub enum MetaError {
    /// The row does not exist (or was deleted).
    #[error("{what} {id} could not be found")]
    NotFound { what: &'static str, id: String },
    /// A uniqueness rule or a compare-and-set precondition failed.
    #[error("{0}")]
    Conflict(String),
    /// The project's quota does not allow it; the resources over it.
    #[error("Quota exceeded for resources: {0:?}.")]
    QuotaExceeded(Vec<String>),
    /// The URL names no known backend, or the store could not be opened.
    #[error("metadata store configuration: {0}")]
    Config(String),
    /// Anything the database itself reported.
    #[error("metadata store: {0}")]
    Backend(#[source] anyhow::Error),
}

impl MetaError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        MetaError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// True when trying again may succeed (connection lost, busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, MetaError::Backend(_))
    }
}

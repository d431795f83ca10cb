use thiserror::Error;

#[derive(Debug, Error)]
pub enum BusError {
    /// Nobody listens on the topic (e.g. the agent is not connected).
    #[error("no route to {0}")]
    NoRoute(String),
    #[error("no reply from {0} within {1:?}")]
    Timeout(String, std::time::Duration),
    /// The receiver answered with an error.
    #[error("{0}")]
    Remote(String),
    /// A message could not be encoded or decoded.
    #[error("bad message: {0}")]
    Codec(String),
    #[error("bus: {0}")]
    Io(#[from] std::io::Error),
    /// The peer refused (bad token, forbidden topic).
    #[error("refused: {0}")]
    Refused(String),
}

impl BusError {
    /// True when sending again later may work.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BusError::NoRoute(_) | BusError::Timeout(..) | BusError::Io(_)
        )
    }
}

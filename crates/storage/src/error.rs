//! Storage failures, by what a caller can do about them.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("object {0} does not exist")]
    NotFound(String),
    /// The service cannot be reached or answers with a server error.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// No space or quota left.
    #[error("storage full: {0}")]
    Full(String),
    #[error("storage access denied: {0}")]
    Denied(String),
    /// The configuration cannot work (bad URL, missing bucket...).
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Other(String),
}

impl StorageError {
    /// Classify an OpenDAL error; `key` names the object for NotFound.
    pub(crate) fn from_dal(e: opendal::Error, key: &str) -> Self {
        use opendal::ErrorKind as K;
        let text = format!("{e:#}");
        if is_full(&text) {
            return StorageError::Full(text);
        }
        match e.kind() {
            K::NotFound => StorageError::NotFound(key.to_string()),
            K::PermissionDenied => StorageError::Denied(text),
            K::ConfigInvalid => StorageError::Config(text),
            K::RateLimited => StorageError::Unavailable(text),
            _ if e.is_temporary() || is_unreachable(&text) => StorageError::Unavailable(text),
            _ => StorageError::Other(text),
        }
    }

    pub(crate) fn from_http(e: reqwest::Error) -> Self {
        StorageError::Unavailable(format!("{e:#}"))
    }

    /// The form an `AsyncWrite`/`AsyncRead` caller sees: an io error whose
    /// message starts with the cause ("storage full: ...").
    pub fn into_io(self) -> std::io::Error {
        let kind = match &self {
            StorageError::NotFound(_) => std::io::ErrorKind::NotFound,
            StorageError::Full(_) => std::io::ErrorKind::StorageFull,
            StorageError::Denied(_) => std::io::ErrorKind::PermissionDenied,
            StorageError::Unavailable(_) => std::io::ErrorKind::ConnectionAborted,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, self.to_string())
    }
}

/// Out of space: ENOSPC, Swift's 413 / quota, S3's EntityTooLarge.
fn is_full(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("no space left")
        || t.contains("quota")
        || t.contains("entitytoolarge")
        || t.contains("entity too large")
        || t.contains("413")
        || t.contains("disk quota exceeded")
}

fn is_unreachable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "error sending request",
        "broken pipe",
        "timed out",
        "connect error",
        "unexpected eof",
        "incompletemessage",
        "connection closed",
        "503",
        "502",
        "500 internal",
    ]
    .iter()
    .any(|n| t.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        let e = opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "write failed: No space left on device (os error 28)",
        );
        assert!(matches!(
            StorageError::from_dal(e, "k"),
            StorageError::Full(_)
        ));
        let e = opendal::Error::new(opendal::ErrorKind::NotFound, "gone");
        assert!(matches!(StorageError::from_dal(e, "k"), StorageError::NotFound(k) if k == "k"));
        let e = opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "error sending request: connection refused",
        );
        assert!(matches!(
            StorageError::from_dal(e, "k"),
            StorageError::Unavailable(_)
        ));
        let io = StorageError::Full("x".into()).into_io();
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert!(io.to_string().starts_with("storage full"));
    }
}

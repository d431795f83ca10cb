//! Storage failures, by what a caller can do about them: wait and retry
//! (`Unavailable`), free space or raise a quota (`Full`), fix credentials
//! (`Denied`) or configuration (`Config`).

use std::error::Error as _;
use std::io;
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The object (or, for `connect`, the container) does not exist.
    #[error("object {0} does not exist")]
    NotFound(String),
    /// The service cannot be reached, cut the connection, or answered with
    /// a server error (5xx), including its authentication service.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// No space or quota left: ENOSPC / EDQUOT on a filesystem, 413, 507,
    /// `EntityTooLarge` or `QuotaExceeded` from an object store.
    #[error("storage full: {0}")]
    Full(String),
    /// The credentials were refused, or do not allow the operation.
    #[error("storage access denied: {0}")]
    Denied(String),
    /// The configuration cannot work (bad URL, missing bucket, bad key).
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Other(String),
}

impl StorageError {
    /// Whether trying the same thing again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// Classify an OpenDAL error; `key` names the object for NotFound.
    pub(crate) fn from_dal(e: &opendal::Error, key: &str) -> Self {
        use opendal::ErrorKind as K;
        let text = with_causes(e);
        let io = source_io(e);
        if is_full(&text) || io.is_some_and(io_is_full) {
            return StorageError::Full(text);
        }
        if io.is_some_and(io_is_unreachable) {
            return StorageError::Unavailable(text);
        }
        match (e.kind(), http_status(&text)) {
            (K::NotFound, _) => StorageError::NotFound(key.to_string()),
            (K::PermissionDenied, _) => StorageError::Denied(text),
            (K::ConfigInvalid, _) => StorageError::Config(text),
            (K::RateLimited, _) => StorageError::Unavailable(text),
            (_, Some(500..=599)) => StorageError::Unavailable(text),
            _ if e.is_temporary() || is_unreachable(&text) => StorageError::Unavailable(text),
            _ => StorageError::Other(text),
        }
    }

    /// Recover the cause from an io error that a reader, a writer or the
    /// pipeline above them returned: the `StorageError` or OpenDAL error it
    /// carries, else its kind.
    pub fn from_io(e: &io::Error) -> Self {
        if let Some(inner) = e.get_ref() {
            if let Some(s) = inner.downcast_ref::<StorageError>() {
                return s.clone();
            }
            if let Some(d) = inner.downcast_ref::<opendal::Error>() {
                return StorageError::from_dal(d, "");
            }
        }
        let text = e.to_string();
        if io_is_full(e) || is_full(&text) {
            return StorageError::Full(text);
        }
        match e.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound(text),
            io::ErrorKind::PermissionDenied => StorageError::Denied(text),
            _ if io_is_unreachable(e) || is_unreachable(&text) => StorageError::Unavailable(text),
            _ => StorageError::Other(text),
        }
    }

    /// The form an `AsyncWrite`/`AsyncRead` caller sees: an io error whose
    /// message starts with the cause ("storage full: ...") and which
    /// [`StorageError::from_io`] turns back into this error.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            StorageError::NotFound(_) => io::ErrorKind::NotFound,
            StorageError::Full(_) => io::ErrorKind::StorageFull,
            StorageError::Denied(_) => io::ErrorKind::PermissionDenied,
            StorageError::Unavailable(_) => io::ErrorKind::ConnectionAborted,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }

    /// Back into OpenDAL's terms, for errors raised inside its HTTP
    /// transport (a failed re-login) so that they keep their kind.
    pub(crate) fn into_dal(self) -> opendal::Error {
        use opendal::ErrorKind as K;
        let (kind, temporary) = match &self {
            StorageError::NotFound(_) => (K::NotFound, false),
            StorageError::Denied(_) => (K::PermissionDenied, false),
            StorageError::Config(_) => (K::ConfigInvalid, false),
            StorageError::Unavailable(_) => (K::Unexpected, true),
            StorageError::Full(_) | StorageError::Other(_) => (K::Unexpected, false),
        };
        let e = opendal::Error::new(kind, self.to_string());
        if temporary {
            e.set_temporary()
        } else {
            e
        }
    }
}

/// OpenDAL's message, then the causes under its source, which it leaves
/// out ("error decoding response body" says nothing of the connection
/// that closed).
fn with_causes(e: &opendal::Error) -> String {
    let mut text = format!("{e:#}");
    let mut cause = e.source().and_then(|s| s.source());
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The io error under an OpenDAL error (the fs backend keeps it).
fn source_io(e: &opendal::Error) -> Option<&io::Error> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

fn io_is_unreachable(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
    )
}

fn io_is_full(e: &io::Error) -> bool {
    // ENOSPC 28, EDQUOT 122 on Linux.
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28 | 122))
}

/// The HTTP status OpenDAL puts in an error's context
/// (`response: Parts { status: 413, ... }`).
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status: ")? + "status: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// Out of space or quota, as object stores and filesystems say it.
fn is_full(text: &str) -> bool {
    if matches!(http_status(text), Some(413 | 507)) {
        return true;
    }
    let t = text.to_ascii_lowercase();
    [
        "no space left",
        "disk quota exceeded",
        "entitytoolarge",
        "quotaexceeded",
        "upload exceeds quota",
        "storage full",
    ]
    .iter()
    .any(|n| t.contains(n))
}

fn is_unreachable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "connection closed",
        "connection aborted",
        "error sending request",
        "broken pipe",
        "timed out",
        "operation timed out",
        "connect error",
        "unexpected eof",
        "incompletemessage",
        "closed before message completed",
        "error decoding response body",
        "storage unavailable",
    ]
    .iter()
    .any(|n| t.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendal::ErrorKind as K;

    fn dal(kind: K, text: &str) -> StorageError {
        StorageError::from_dal(&opendal::Error::new(kind, text), "k")
    }

    #[test]
    fn classifies_opendal_errors() {
        let full = dal(
            K::Unexpected,
            "write: No space left on device (os error 28)",
        );
        assert!(matches!(full, StorageError::Full(_)), "{full:?}");
        let quota = dal(
            K::Unexpected,
            "Upload exceeds quota. response: Parts { status: 413, version: HTTP/1.1 }",
        );
        assert!(matches!(quota, StorageError::Full(_)), "{quota:?}");
        let s3 = dal(K::Unexpected, "S3Error { code: \"EntityTooLarge\" }");
        assert!(matches!(s3, StorageError::Full(_)), "{s3:?}");
        assert_eq!(dal(K::NotFound, "gone"), StorageError::NotFound("k".into()));
        let refused = dal(K::Unexpected, "error sending request: connection refused");
        assert!(matches!(refused, StorageError::Unavailable(_)));
        let busy = dal(
            K::Unexpected,
            "response: Parts { status: 503, version: HTTP/1.1 }",
        );
        assert!(matches!(busy, StorageError::Unavailable(_)), "{busy:?}");
        let denied = dal(K::PermissionDenied, "401");
        assert!(matches!(denied, StorageError::Denied(_)));
        // A byte count that happens to contain 413 is not a 413.
        let other = dal(K::Unexpected, "wrote 41300 bytes, then a bad checksum");
        assert!(matches!(other, StorageError::Other(_)), "{other:?}");
    }

    #[test]
    fn io_errors_carry_the_cause_both_ways() {
        let io = StorageError::Full("x".into()).into_io();
        assert_eq!(io.kind(), io::ErrorKind::StorageFull);
        assert!(io.to_string().starts_with("storage full"), "{io}");
        assert_eq!(StorageError::from_io(&io), StorageError::Full("x".into()));

        let enospc = io::Error::from_raw_os_error(28);
        assert!(matches!(
            StorageError::from_io(&enospc),
            StorageError::Full(_)
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(StorageError::from_io(&reset).is_retryable());
        let wrapped = io::Error::other(opendal::Error::new(K::NotFound, "gone"));
        assert!(matches!(
            StorageError::from_io(&wrapped),
            StorageError::NotFound(_)
        ));
    }
}

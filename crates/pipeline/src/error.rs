//! The one error type of the pipeline.
//!
//! Callers branch on the kind: a `Source` failure is the backup tool's (or
//! the stored object's reader's) fault, a `Sink` failure is storage or disk,
//! `Integrity` means the stored bytes cannot be trusted, and the key errors
//! point at configuration. The messages are written to be shown to an
//! operator as they are.

use std::io;

/// Everything that can go wrong in a backup or restore stream, or with keys.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Reading the input stream failed: the backup tool died, or the stored
    /// object could not be read.
    #[error("reading the input stream failed: {0}")]
    Source(#[source] io::Error),

    /// Writing the output stream failed (storage down, disk full, the
    /// restore tool exited). The message carries the io error's text so
    /// "No space left on device" reaches the operator.
    #[error("writing the output stream failed: {0}")]
    Sink(#[source] io::Error),

    /// The stored bytes are not what was written: tampered, truncated,
    /// reordered, opened with the wrong data key, a bad header, or a
    /// checksum mismatch. Nothing of a chunk that failed reaches the output.
    #[error("backup integrity check failed: {0}")]
    Integrity(String),

    /// The master key in use did not wrap this data key.
    #[error(
        "the configured backup master key cannot open this backup's data key (wrong master key?)"
    )]
    WrongMasterKey,

    /// A data key, master key or wrapped key of the wrong shape.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// The master key file could not be read, written, or holds no key.
    #[error("backup master key file {path}: {reason}")]
    KeyFile { path: String, reason: String },

    /// A format version or codec this build does not know.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Options that cannot work (zero chunk size, out-of-range level...).
    #[error("invalid pipeline options: {0}")]
    InvalidOptions(String),

    /// A compression or encryption worker panicked or was cancelled: a bug,
    /// not a property of the data.
    #[error("a pipeline worker failed: {0}")]
    Worker(String),
}

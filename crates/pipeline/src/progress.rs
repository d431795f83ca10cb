//! Counters that another task reads while a stream runs (the agent reports
//! them once a second), and the totals of a finished one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes done so far, shared: clones count into the same totals, and reads
/// are a relaxed atomic load, cheap from any task.
///
/// Both counters move when a chunk reaches the writer, not when it is read,
/// so they never run ahead of what is really stored (backup) or restored.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    plain: Arc<AtomicU64>,
    stored: Arc<AtomicU64>,
}

impl Progress {
    /// Datastore bytes: read from the tool in a backup, written out in a
    /// restore.
    pub fn plain_bytes(&self) -> u64 {
        self.plain.load(Ordering::Relaxed)
    }

    /// Stored-object bytes (header and frames): written in a backup, read
    /// and verified in a restore.
    pub fn stored_bytes(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, plain: u64, stored: u64) {
        self.plain.fetch_add(plain, Ordering::Relaxed);
        self.stored.fetch_add(stored, Ordering::Relaxed);
    }
}

/// What a finished encode or decode moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Datastore bytes in (backup) or out (restore).
    pub plain_bytes: u64,
    /// Size of the stored object.
    pub stored_bytes: u64,
    /// SHA-256 of the stored object, lowercase hex: what the backup record
    /// keeps, and what a restore checks before it reports success.
    pub sha256: String,
}

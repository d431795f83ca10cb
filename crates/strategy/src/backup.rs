//! `BackupStrategy` and `RestoreStrategy`: how a datastore's data becomes
//! a byte stream and how such a stream becomes a data directory again.
//!
//! A strategy only produces or consumes plain bytes. Compression,
//! encryption, checksums and object storage are the pipeline's business,
//! so a new datastore needs nothing but these two implementations.

use crate::{DatastoreError, InstanceContext};
use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::Value;
use std::path::Path;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// A backup being produced: read `reader` to the end, then await `done`,
/// which checks the tool's exit status and answers what a later
/// incremental backup or the restore needs to know (LSNs, WAL positions),
/// as JSON. A stream whose `done` fails is not a backup.
pub struct BackupSource {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    pub done: BoxFuture<'static, Result<Value, DatastoreError>>,
}

/// Where one piece of a restore goes: write the piece's bytes into
/// `writer`, shut it down, then await `done`, which fails if the consuming
/// tool did.
pub struct RestoreSink {
    pub writer: Pin<Box<dyn AsyncWrite + Send>>,
    pub done: BoxFuture<'static, Result<(), DatastoreError>>,
}

#[async_trait]
pub trait BackupStrategy: Send + Sync + 'static {
    /// Whether `start` accepts a parent (incremental backups).
    fn supports_incremental(&self) -> bool {
        false
    }

    /// Start a backup of the running server. `work_dir` is an empty,
    /// private scratch directory that lives until `done` resolves.
    /// `parent` is the `done` value of the backup this one is incremental
    /// to; `None` means a full backup. Secrets never go on a command line.
    async fn start(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        parent: Option<&Value>,
    ) -> Result<BackupSource, DatastoreError>;
}

#[async_trait]
pub trait RestoreStrategy: Send + Sync + 'static {
    /// Prepare to receive pieces: a physical strategy requires the server
    /// stopped and `data_dir` empty (or absent); a logical one initialises
    /// and starts a fresh server. `work_dir` is an empty, private scratch
    /// directory that lives until `finish` returns.
    async fn begin(&self, ctx: &InstanceContext, work_dir: &Path) -> Result<(), DatastoreError>;

    /// A sink for piece `index`: 0 is the full backup, then each incremental
    /// in order. `info` is that backup's `BackupSource::done` value.
    async fn piece(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        index: usize,
        info: &Value,
    ) -> Result<RestoreSink, DatastoreError>;

    /// After the last of `pieces` pieces: make the data directory usable,
    /// give the agent's admin account this instance's own credentials (the
    /// restored data carries the source instance's), and leave the server
    /// running and healthy.
    async fn finish(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        pieces: usize,
    ) -> Result<(), DatastoreError>;
}

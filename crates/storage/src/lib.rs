#![forbid(unsafe_code)]
//! Backup object storage through Apache OpenDAL: the local filesystem (the
//! default), OpenStack Swift and S3, one backend per file. Objects are
//! streamed in both directions (memory stays bounded), appear under their
//! key only once complete, leave nothing behind when an upload fails, and
//! failures are typed: not found, unavailable, full, denied.

mod config;
mod direct;
mod error;
mod fs;
mod http;
mod key;
mod reader;
mod s3;
mod swift;
mod writer;

pub use config::StorageConfig;
pub use error::StorageError;
pub use reader::ObjectReader;
pub use writer::ObjectWriter;

use futures::TryStreamExt;
use opendal::Operator;
use std::fmt;
use std::sync::Arc;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// Bytes fetched per read request, and requests ahead of the reader.
const READ_CHUNK: usize = 8 << 20;
const READ_CONCURRENT: usize = 2;

/// Object stores: big parts (S3's smallest is 5 MiB, and each part is a
/// request), several in flight to fill the link. Memory per upload is
/// about (2 + REMOTE_CONCURRENT) parts.
const REMOTE_PART: usize = 8 << 20;
const REMOTE_CONCURRENT: usize = 2;
/// A local disk gains nothing from big parts or concurrency, and every
/// part in flight is memory.
const LOCAL_PART: usize = 2 << 20;

/// A connected storage backend. Cheap to clone; clones share the
/// connection and, for Swift, the login.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    op: Operator,
    place: String,
    backend: Backend,
    /// Upload part size and parts in flight.
    part: usize,
    concurrent: usize,
}

enum Backend {
    /// Written with direct I/O under `root` (`direct.rs`), read through OpenDAL.
    Fs {
        root: std::path::PathBuf,
    },
    Swift(swift::Swift),
    S3,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("place", &self.inner.place)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Connect: for Swift log in and create the container if it is
    /// missing; for S3 check that the bucket exists (`Config` if not); for
    /// fs create the directory.
    pub async fn connect(config: &StorageConfig) -> Result<Storage, StorageError> {
        let (op, backend) = match config {
            StorageConfig::Fs { root } => (fs::operator(root)?, Backend::Fs { root: root.clone() }),
            StorageConfig::Swift {
                auth_url,
                user,
                key,
                container,
                prefix,
            } => {
                let (op, swift) = swift::connect(auth_url, user, key, container, prefix).await?;
                (op, Backend::Swift(swift))
            }
            StorageConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                prefix,
            } => {
                let op = s3::connect(
                    endpoint,
                    bucket,
                    region,
                    access_key_id,
                    secret_access_key,
                    prefix,
                )
                .await?;
                (op, Backend::S3)
            }
        };
        let (part, concurrent) = match backend {
            Backend::Fs { .. } => (LOCAL_PART, 1),
            _ => (REMOTE_PART, REMOTE_CONCURRENT),
        };
        Ok(Storage {
            inner: Arc::new(Inner {
                op,
                place: config.describe(),
                backend,
                part,
                concurrent,
            }),
        })
    }

    /// The object's address, credentials left out (e.g. `swift://c/p/k`).
    pub fn location(&self, key: &str) -> String {
        format!("{}/{}", self.inner.place.trim_end_matches('/'), key)
    }

    /// Start uploading `key`; see [`ObjectWriter`]. An existing object
    /// under `key` is replaced when the upload is committed (on Swift, the
    /// segments of a replaced large object stay behind: keys are meant to
    /// be written once; delete first to reuse one).
    pub async fn writer(&self, key: &str) -> Result<ObjectWriter, StorageError> {
        key::check(key)?;
        // Each upload counts its own requests, so that discarding it can
        // wait for its parts in flight (see http.rs).
        let (op, tracked) = match &self.inner.backend {
            Backend::Fs { root } => {
                let file = direct::DirectFile::create(root, key, self.inner.part).await?;
                return Ok(ObjectWriter::new(
                    writer::Sink::File(file),
                    key,
                    self.inner.part,
                    None,
                ));
            }
            _ => {
                let tracked =
                    http::Tracked::new(self.inner.op.base_context().http_transport().clone());
                let transport = opendal::HttpTransporter::new(tracked.clone());
                (
                    http::with_transport(&self.inner.op, transport),
                    Some(tracked),
                )
            }
        };
        let w = op
            .writer_with(key)
            // ObjectWriter hands over whole parts already: no second buffer.
            .concurrent(self.inner.concurrent)
            .await
            .map_err(|e| StorageError::from_dal(&e, key))?;
        Ok(ObjectWriter::new(
            writer::Sink::Dal(w),
            key,
            self.inner.part,
            tracked,
        ))
    }

    /// Stream `key` from the start, reading ahead a few chunks.
    pub async fn reader(&self, key: &str) -> Result<ObjectReader, StorageError> {
        let size = self.size(key).await?;
        let dal = |e: opendal::Error| StorageError::from_dal(&e, key);
        let r = self
            .inner
            .op
            .reader_with(key)
            .chunk(READ_CHUNK)
            .concurrent(READ_CONCURRENT)
            .await
            .map_err(dal)?
            .into_futures_async_read(0..size)
            .await
            .map_err(dal)?;
        Ok(ObjectReader::new(Box::pin(r.compat()), key))
    }

    /// The object's size; NotFound if it does not exist.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        key::check(key)?;
        let meta = self
            .inner
            .op
            .stat(key)
            .await
            .map_err(|e| StorageError::from_dal(&e, key))?;
        Ok(meta.content_length())
    }

    /// Remove `key`, all of it (a Swift large object's segments too); an
    /// absent object is fine.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        key::check(key)?;
        if let Backend::Swift(swift) = &self.inner.backend {
            return swift.delete(key).await;
        }
        match self.inner.op.delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::from_dal(&e, key)),
        }
    }

    /// Keys of the objects whose key starts with `prefix` (`""` for all),
    /// sorted. Pieces of unfinished uploads are not objects and not listed.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        key::check_prefix(prefix)?;
        let dal = |e: opendal::Error| StorageError::from_dal(&e, prefix);
        let mut lister = match self
            .inner
            .op
            .lister_with(key::dir_of(prefix))
            .recursive(true)
            .await
        {
            Ok(l) => l,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(dal(e)),
        };
        let mut keys = Vec::new();
        while let Some(entry) = lister.try_next().await.map_err(dal)? {
            let path = entry.path();
            if !entry.metadata().is_dir() && path.starts_with(prefix) && !key::is_hidden(path) {
                keys.push(path.to_string());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    /// Callers hold these across awaits in spawned tasks and pin them on
    /// the stack.
    #[test]
    fn streams_are_send_and_unpin() {
        fn send_unpin<T: Send + Unpin + 'static>() {}
        send_unpin::<super::ObjectWriter>();
        send_unpin::<super::ObjectReader>();
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<super::Storage>();
        send_sync::<super::StorageError>();
    }
}

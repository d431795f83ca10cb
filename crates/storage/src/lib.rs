#![forbid(unsafe_code)]
//! Backup object storage through Apache OpenDAL: the local filesystem (the
//! default), OpenStack Swift and S3, one backend per file. Objects are
//! streamed in both directions (memory stays bounded), appear under their
//! key only once complete, and failures are typed: not found, unavailable,
//! full, denied.

mod config;
mod error;
mod fs;
mod s3;
mod swift;
mod writer;

pub use config::StorageConfig;
pub use error::StorageError;
pub use writer::ObjectWriter;

use futures::TryStreamExt;
use opendal::Operator;
use std::pin::Pin;
use tokio::io::AsyncRead;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// A stored object being read, as a tokio `AsyncRead`.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// Bytes read ahead per request, and requests in flight, when reading.
const READ_CHUNK: usize = 8 << 20;
const READ_CONCURRENT: usize = 2;
/// Where OpenDAL keeps the segments of a large Swift object.
const SEGMENTS: &str = ".segments/";

/// A connected storage backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    op: Operator,
    place: String,
    /// Upload part size and parts in flight: object stores want big parts
    /// sent concurrently; a local disk gains nothing from either, and
    /// every part in flight is memory.
    part: usize,
    concurrent: usize,
}

/// Object stores: S3's smallest part is 5 MiB.
const REMOTE_PART: usize = 8 << 20;
const REMOTE_CONCURRENT: usize = 2;
const LOCAL_PART: usize = 2 << 20;

impl Storage {
    /// Connect: log in (Swift), make sure the container or directory exists
    /// (a missing S3 bucket is a `Config` error).
    pub async fn connect(config: &StorageConfig) -> Result<Storage, StorageError> {
        // OpenDAL's HTTP services need a transport installed once per
        // process (its automatic installer comes only with its default
        // features, which would also build a TLS provider we do not need).
        static TRANSPORT: std::sync::Once = std::sync::Once::new();
        TRANSPORT.call_once(|| {
            // reqwest builds a TLS config even for plain HTTP: give it ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            opendal::HttpTransporter::install_default(
                opendal_http_transport_reqwest::ReqwestTransport::default(),
            )
        });
        let op = match config {
            StorageConfig::Fs { root } => fs::operator(root)?,
            StorageConfig::Swift {
                auth_url,
                user,
                key,
                container,
                prefix,
            } => swift::operator(auth_url, user, key, container, prefix).await?,
            StorageConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                prefix,
            } => {
                s3::operator(
                    endpoint,
                    bucket,
                    region,
                    access_key_id,
                    secret_access_key,
                    prefix,
                )
                .await?
            }
        };
        let (part, concurrent) = match config {
            StorageConfig::Fs { .. } => (LOCAL_PART, 1),
            _ => (REMOTE_PART, REMOTE_CONCURRENT),
        };
        Ok(Storage {
            op,
            place: config.describe(),
            part,
            concurrent,
        })
    }

    /// The object's address, credentials left out (e.g. `swift://c/k`).
    pub fn location(&self, key: &str) -> String {
        format!("{}/{}", self.place.trim_end_matches('/'), key)
    }

    /// Start uploading `key`; see [`ObjectWriter`].
    pub async fn writer(&self, key: &str) -> Result<ObjectWriter, StorageError> {
        let w = self
            .op
            .writer_with(key)
            // ObjectWriter hands over whole parts already: no second buffer.
            .concurrent(self.concurrent)
            .await
            .map_err(|e| StorageError::from_dal(e, key))?;
        Ok(ObjectWriter::new(w, key, self.part))
    }

    /// Stream `key` from the start, reading ahead a few chunks.
    pub async fn reader(&self, key: &str) -> Result<ObjectReader, StorageError> {
        let size = self.size(key).await?;
        let r = self
            .op
            .reader_with(key)
            .chunk(READ_CHUNK)
            .concurrent(READ_CONCURRENT)
            .await
            .map_err(|e| StorageError::from_dal(e, key))?;
        let r = r
            .into_futures_async_read(0..size)
            .await
            .map_err(|e| StorageError::from_dal(e, key))?;
        Ok(Box::pin(r.compat()))
    }

    /// The object's size; NotFound if it does not exist.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        let meta = self
            .op
            .stat(key)
            .await
            .map_err(|e| StorageError::from_dal(e, key))?;
        Ok(meta.content_length())
    }

    /// Remove `key`; an absent object is fine. On Swift, a large object is
    /// a manifest plus segments under `.segments/<key>...`: those go too.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.op.delete(key).await {
            Ok(()) => {}
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::from_dal(e, key)),
        }
        let segments = format!("{SEGMENTS}{key}");
        let mut lister = match self.op.lister_with(&segments).recursive(true).await {
            Ok(l) => l,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::from_dal(e, key)),
        };
        while let Some(entry) = lister
            .try_next()
            .await
            .map_err(|e| StorageError::from_dal(e, key))?
        {
            if !entry.metadata().is_dir() {
                match self.op.delete(entry.path()).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::from_dal(e, key)),
                }
            }
        }
        Ok(())
    }

    /// Keys of the objects under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut lister = self
            .op
            .lister_with(prefix)
            .recursive(true)
            .await
            .map_err(|e| StorageError::from_dal(e, prefix))?;
        let mut keys = Vec::new();
        while let Some(entry) = lister
            .try_next()
            .await
            .map_err(|e| StorageError::from_dal(e, prefix))?
        {
            let path = entry.path();
            if entry.metadata().is_dir()
                || path.starts_with(fs::PARTIAL_DIR)
                || path.starts_with(SEGMENTS)
            {
                continue;
            }
            keys.push(path.to_string());
        }
        keys.sort();
        Ok(keys)
    }
}

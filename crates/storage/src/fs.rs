//! The local filesystem backend: OpenDAL reads, lists and deletes; objects
//! are written by `direct.rs`, under `.partial/` and renamed into place when
//! complete, so a half-written object is never seen under its key.

use crate::StorageError;
use opendal::Operator;
use std::path::Path;

/// Where incomplete objects live, inside the root (same filesystem, so the
/// final rename is atomic). Listings skip it.
pub(crate) const PARTIAL_DIR: &str = ".partial";

pub(crate) fn operator(root: &Path) -> Result<Operator, StorageError> {
    let partial = root.join(PARTIAL_DIR);
    std::fs::create_dir_all(&partial).map_err(|e| {
        let text = format!("creating {}: {e}", partial.display());
        match e.kind() {
            std::io::ErrorKind::StorageFull => StorageError::Full(text),
            std::io::ErrorKind::PermissionDenied => StorageError::Denied(text),
            _ => StorageError::Config(text),
        }
    })?;
    let root = root
        .to_str()
        .ok_or_else(|| StorageError::Config(format!("{} is not UTF-8", root.display())))?;
    let builder = opendal::services::Fs::default().root(root);
    // No retry layer: OpenDAL calls every unknown io error temporary,
    // ENOSPC included, and a local disk has no transient failures worth
    // waiting for.
    Operator::new(builder).map_err(|e| StorageError::Config(e.to_string()))
}

//! Local uploads written with direct I/O.
//!
//! A backup written through the page cache costs the agent a kernel copy of
//! every stored byte into freshly allocated cache pages (on a virtual
//! machine whose free memory goes back to the host, each of those pages is
//! faulted in anew: 1-2.5 CPU-s per GB measured here, more than the
//! compression), and it pushes the datastore's own cached pages out of
//! memory. So the filesystem backend writes objects itself, with
//! `O_DIRECT`: the disk reads the parts straight from one reused, aligned
//! buffer. Everything else on the filesystem (reads, listings, deletes)
//! stays with OpenDAL, and the layout is OpenDAL's: the object is written
//! under `.partial/` and renamed to its key once synced, so a half-written
//! object is never seen under its key.
//!
//! Where direct I/O is refused (a filesystem without it) the file is
//! written through the cache instead; a tail that is not a whole number of
//! blocks is written through the cache after the direct part.

use crate::fs::PARTIAL_DIR;
use crate::StorageError;
use bytes::Bytes;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Direct I/O wants buffers, offsets and lengths in whole logical blocks
/// (512 or 4096 bytes): 4096 serves both.
const ALIGN: usize = 4096;

/// An object being written under `.partial/`; see the module documentation.
pub(crate) struct DirectFile {
    /// `None` only while a write runs on the blocking pool, or once closed.
    file: Option<File>,
    buf: Vec<u8>,
    partial: PathBuf,
    target: PathBuf,
    direct: bool,
    committed: bool,
    key: String,
}

impl DirectFile {
    /// Start writing `key` under `root`, in parts of up to `part` bytes.
    pub async fn create(root: &Path, key: &str, part: usize) -> Result<Self, StorageError> {
        // The random part keeps two uploads of one key (a retried backup)
        // apart.
        let partial = root.join(PARTIAL_DIR).join(format!(
            "{}.{:016x}",
            key.replace('/', "_"),
            rand::random::<u64>()
        ));
        let target = root.join(key);
        let (k, p) = (key.to_string(), partial.clone());
        let (file, direct) = blocking(key, move || open(&p))
            .await
            .map_err(|e| io_error(&k, "creating", e))?;
        Ok(DirectFile {
            file: Some(file),
            buf: if direct {
                vec![0; part + ALIGN]
            } else {
                Vec::new()
            },
            partial,
            target,
            direct,
            committed: false,
            key: key.to_string(),
        })
    }

    /// Whether the writes so far went around the page cache.
    #[cfg(test)]
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Append `part`.
    pub async fn write(&mut self, part: Bytes) -> Result<(), StorageError> {
        let mut file = self.file.take().ok_or_else(|| self.closed())?;
        let mut buf = std::mem::take(&mut self.buf);
        let mut direct = self.direct;
        let (file, buf, direct, result) = blocking(&self.key, move || {
            let r = write_part(&mut file, &mut buf, &mut direct, &part);
            Ok((file, buf, direct, r))
        })
        .await
        .map_err(|e| io_error(&self.key, "writing", e))?;
        (self.file, self.buf, self.direct) = (Some(file), buf, direct);
        result.map_err(|e| io_error(&self.key, "writing", e))
    }

    /// Sync the data, then put the object under its key.
    pub async fn commit(&mut self) -> Result<(), StorageError> {
        let file = self.file.take().ok_or_else(|| self.closed())?;
        let (partial, target) = (self.partial.clone(), self.target.clone());
        blocking(&self.key, move || {
            file.sync_all()?;
            drop(file);
            let dir = target.parent().expect("a key is a path under the root");
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&partial, &target)?;
            File::open(dir)?.sync_all()
        })
        .await
        .map_err(|e| io_error(&self.key, "storing", e))?;
        self.committed = true;
        Ok(())
    }

    fn closed(&self) -> StorageError {
        StorageError::Other(format!("the upload of {} is closed", self.key))
    }
}

impl Drop for DirectFile {
    /// An object not committed leaves nothing behind.
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            if let Err(e) = std::fs::remove_file(&self.partial) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.partial.display(), "removing a discarded upload: {e}");
                }
            }
        }
    }
}

fn open(path: &Path) -> io::Result<(File, bool)> {
    // Made at connect; made again if something removed it since.
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let options = |flags: i32| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(flags)
            .open(path)
    };
    match options(OFlag::O_DIRECT.bits()) {
        Ok(f) => Ok((f, true)),
        // EINVAL: this filesystem does not do direct I/O.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => Ok((options(0)?, false)),
        Err(e) => Err(e),
    }
}

/// Write `part` at the end of `file`: its whole blocks straight from the
/// aligned window of `buf`, a remainder (the object's last bytes) through
/// the cache, after which `direct` is off.
fn write_part(file: &mut File, buf: &mut [u8], direct: &mut bool, part: &[u8]) -> io::Result<()> {
    let whole = if *direct {
        part.len() / ALIGN * ALIGN
    } else {
        0
    };
    if whole > 0 {
        let start = buf.as_ptr().align_offset(ALIGN);
        let window = buf
            .get_mut(start..)
            .filter(|w| w.len() >= ALIGN)
            .ok_or_else(|| io::Error::other("no aligned buffer for direct I/O"))?;
        let window_len = window.len() / ALIGN * ALIGN;
        let mut done = 0;
        while done < whole {
            let piece = &part[done..whole.min(done + window_len)];
            window[..piece.len()].copy_from_slice(piece);
            match file.write(&window[..piece.len()]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The filesystem opened the file for direct I/O but will
                // not write it that way: the rest goes through the cache.
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        if done < whole {
            buffered(file, direct)?;
            file.write_all(&part[done..whole])?;
        }
    }
    if whole < part.len() {
        buffered(file, direct)?;
        file.write_all(&part[whole..])?;
    }
    Ok(())
}

/// Write through the page cache from now on.
fn buffered(file: &File, direct: &mut bool) -> io::Result<()> {
    if *direct {
        let flags = OFlag::from_bits_truncate(fcntl(file.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(
            file.as_raw_fd(),
            FcntlArg::F_SETFL(flags.difference(OFlag::O_DIRECT)),
        )?;
        *direct = false;
    }
    Ok(())
}

/// Run file work on the blocking pool.
async fn blocking<T, F>(key: &str, f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(io::Error::other(format!(
            "the file work for {key} stopped: {e}"
        )))
    })
}

fn io_error(key: &str, doing: &str, e: io::Error) -> StorageError {
    let e = io::Error::new(e.kind(), format!("{doing} {key}: {e}"));
    StorageError::from_io(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn whole_blocks_go_direct_and_any_tail_follows() {
        // /var/tmp: a disk filesystem, as a backup root is (tmpfs may
        // or may not do direct I/O).
        let root = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir_all(root.path().join(PARTIAL_DIR)).unwrap();
        let part = 64 << 10;
        for (key, sizes) in [
            ("a/one", vec![part, part, 100]),
            ("b", vec![part, 3 * ALIGN]),
            ("c", vec![10]),
            ("d", vec![]),
        ] {
            let mut f = DirectFile::create(root.path(), key, part).await.unwrap();
            let mut want = Vec::new();
            for (i, len) in sizes.iter().enumerate() {
                let data = bytes(*len, i as u8);
                want.extend_from_slice(&data);
                f.write(Bytes::from(data)).await.unwrap();
                let tail = len % ALIGN != 0;
                assert_eq!(f.is_direct(), !tail, "{key} after a part of {len}");
            }
            assert!(!root.path().join(key).exists(), "visible before commit");
            f.commit().await.unwrap();
            drop(f);
            assert_eq!(std::fs::read(root.path().join(key)).unwrap(), want, "{key}");
        }
        let left: Vec<_> = std::fs::read_dir(root.path().join(PARTIAL_DIR))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn an_upload_dropped_before_commit_leaves_nothing() {
        let root = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir_all(root.path().join(PARTIAL_DIR)).unwrap();
        let mut f = DirectFile::create(root.path(), "x", 8192).await.unwrap();
        f.write(Bytes::from(bytes(8192, 1))).await.unwrap();
        drop(f);
        assert!(!root.path().join("x").exists());
        assert_eq!(
            std::fs::read_dir(root.path().join(PARTIAL_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}

//! File helpers shared by the datastore managers: private (0600) files for
//! secrets, atomic replacement of configuration files, moving files across
//! filesystems.

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `dir` (and its parents) if missing and make it mode 0700.
pub(crate) fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Replace `path` atomically with `contents`, created with `mode` (the
/// temporary file has that mode from its creation, so a secret is never
/// readable by others, not even for a moment; set again after, since the
/// process's umask may have taken bits away).
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("coffer-tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.set_permissions(Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
}

/// Where `path` leads when it is a link the host made: a symlink in a
/// directory only root can change (an instance directory's links to its
/// volume) is followed; anything else, a link a datastore could have
/// planted included, is `path` itself.
pub(crate) fn trusted_target(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let parent_is_roots = path
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    if is_link && parent_is_roots {
        if let Ok(target) = path.canonicalize() {
            return target;
        }
    }
    path.to_path_buf()
}

/// Remove everything inside `dir`, keeping `dir` itself (it may be a mount
/// point).
pub(crate) fn clear_dir(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Removes a file when dropped, so a secret written for a tool does not
/// outlive the call even when the call fails.
pub(crate) struct RemoveOnDrop<'a>(pub(crate) &'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.0.display());
            }
        }
    }
}

/// A 0600 file holding a secret for a tool (a defaults file, a password
/// file), under a name of its own so that concurrent operations on one
/// instance never share or delete each other's. Removed when dropped, so
/// it lives exactly as long as the operation that owns it.
#[derive(Debug)]
pub(crate) struct SecretFile(PathBuf);

impl SecretFile {
    /// Write `contents` to a new file `dir/<stem>.<random>.<ext>`; `dir`
    /// is created 0700 if missing.
    pub(crate) fn create(
        dir: &Path,
        stem: &str,
        ext: &str,
        contents: &[u8],
    ) -> anyhow::Result<Self> {
        ensure_private_dir(dir)?;
        let suffix = Alphanumeric.sample_string(&mut rand::thread_rng(), 10);
        let path = dir.join(format!("{stem}.{suffix}.{ext}"));
        write_atomic(&path, contents, 0o600)?;
        Ok(SecretFile(path))
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        drop(RemoveOnDrop(&self.0));
    }
}

/// Move the file `from` to `to`: a rename, or a copy (synced) and a removal
/// when they are on different filesystems (a scratch directory need not be
/// on the instance's volume).
pub(crate) fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {}
        Err(e) => {
            return Err(e).with_context(|| format!("moving {} to {}", from.display(), to.display()))
        }
    }
    std::fs::copy(from, to)
        .and_then(|_| std::fs::File::open(to)?.sync_all())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::remove_file(from).with_context(|| format!("removing {}", from.display()))
}

/// Whether `dir` is absent or an empty directory: where a restore may put
/// a data directory.
pub(crate) fn absent_or_empty(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("listing {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn private_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("a/secrets");
        ensure_private_dir(&secrets).unwrap();
        assert_eq!(std::fs::metadata(&secrets).unwrap().mode() & 0o777, 0o700);
        let file = secrets.join("pw");
        write_atomic(&file, b"one", 0o600).unwrap();
        write_atomic(&file, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        {
            let _guard = RemoveOnDrop(&file);
        }
        assert!(!file.exists());
        std::fs::create_dir(secrets.join("sub")).unwrap();
        std::fs::write(secrets.join("sub/x"), b"x").unwrap();
        clear_dir(dir.path()).unwrap();
        assert!(dir.path().exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(absent_or_empty(dir.path()).unwrap());
        assert!(absent_or_empty(&dir.path().join("nothing")).unwrap());
    }

    #[test]
    fn secret_files_are_private_unique_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secret");
        let a = SecretFile::create(&secrets, "tool", "cnf", b"pw").unwrap();
        let b = SecretFile::create(&secrets, "tool", "cnf", b"pw").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(std::fs::metadata(a.path()).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&secrets).unwrap().mode() & 0o777, 0o700);
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        assert!(b.path().exists());
        assert!(!absent_or_empty(&secrets).unwrap());
    }

    #[test]
    fn move_file_renames() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&from, b"x").unwrap();
        move_file(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(std::fs::read(&to).unwrap(), b"x");
        assert!(move_file(&from, &to).is_err());
    }
}

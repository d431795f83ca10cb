//! The master key's file: created once with a random key, readable by its
//! owner only, and refused when it does not hold exactly one key.
//!
//! A new file holds the key as 64 hex digits and a newline, so an operator
//! can copy it into a password manager; a file of 32 raw bytes is read too.

use crate::keys::{MasterKey, KEY_LEN};
use crate::PipelineError;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

impl MasterKey {
    /// Load the master key in `path`, or, if there is no such file, create
    /// one (mode 0600, parent directories as needed) with a new random key.
    ///
    /// The new file appears complete or not at all (written aside, then
    /// linked into place), and two processes starting at once end up with
    /// the same key: the second link fails and that process reads the
    /// first one's file. A file that does not hold exactly one key is an
    /// error, never replaced: it may be the only copy of an operator's key.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, PipelineError> {
        match fs::read(path) {
            Ok(contents) => parse(path, &Zeroizing::new(contents)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(path),
            Err(e) => Err(file_error(path, e)),
        }
    }
}

fn parse(path: &Path, contents: &[u8]) -> Result<MasterKey, PipelineError> {
    if contents.len() == KEY_LEN {
        return MasterKey::from_bytes(contents);
    }
    let text = contents.trim_ascii();
    if text.len() == 2 * KEY_LEN {
        if let Ok(bytes) = hex::decode(text) {
            return MasterKey::from_bytes(&Zeroizing::new(bytes));
        }
    }
    Err(PipelineError::KeyFile {
        path: path.display().to_string(),
        reason: format!(
            "holds {} bytes; a master key file holds {} hex digits or {KEY_LEN} raw bytes",
            contents.len(),
            2 * KEY_LEN
        ),
    })
}

fn create(path: &Path) -> Result<MasterKey, PipelineError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let key = MasterKey::generate();
    let mut text = Zeroizing::new(hex::encode(key.as_bytes()));
    text.push('\n');

    let staging = path.with_extension(format!("new-{}", std::process::id()));
    let written = write_private(&staging, text.as_bytes());
    let linked = written.and_then(|()| fs::hard_link(&staging, path));
    let _ = fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::load_or_create(path),
        Err(e) => Err(file_error(path, e)),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file; a stale one from a crash is
    // made private too before the key goes in.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

fn file_error(path: &Path, e: io::Error) -> PipelineError {
    PipelineError::KeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_file_and_loads_the_same_key_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/backup-master.key");
        let first = MasterKey::load_or_create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 65, "64 hex digits and a newline");
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(again.fingerprint(), first.fingerprint());
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no staging file is left behind");
    }

    #[test]
    fn reads_raw_and_hex_keys() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.key");
        fs::write(&raw, [7u8; 32]).unwrap();
        let hex_file = dir.path().join("hex.key");
        fs::write(&hex_file, format!("  {}\r\n", hex::encode([7u8; 32]))).unwrap();
        let a = MasterKey::load_or_create(&raw).unwrap();
        let b = MasterKey::load_or_create(&hex_file).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            MasterKey::from_bytes(&[7; 32]).unwrap().fingerprint()
        );
    }

    #[test]
    fn refuses_and_keeps_a_file_of_the_wrong_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for contents in [&b"short"[..], &[0u8; 31], &[b'g'; 64], &[0u8; 0]] {
            fs::write(&path, contents).unwrap();
            let e = MasterKey::load_or_create(&path).unwrap_err();
            assert!(matches!(e, PipelineError::KeyFile { .. }), "{e}");
            assert!(e.to_string().contains("master.key"), "{e}");
            assert_eq!(
                fs::read(&path).unwrap(),
                contents,
                "the file is left as it was"
            );
        }
    }

    #[test]
    fn an_unreadable_path_is_a_key_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = MasterKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, PipelineError::KeyFile { .. }), "{e}");
    }
}

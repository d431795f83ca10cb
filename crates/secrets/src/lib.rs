#![forbid(unsafe_code)]
//! Secrets at rest. Whatever the control plane must keep that holds a
//! secret (create-time user passwords waiting in a durable task row) is
//! sealed with AES-256-GCM under a key that lives in its own 0600 file,
//! never in the metadata store.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use thiserror::Error;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, Error)]
pub enum SealError {
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("secret key file {0} does not hold a {KEY_LEN}-byte key")]
    BadKey(String),
    #[error("sealed secret is damaged or was sealed under another key")]
    Open,
}

/// The 32-byte secret in `path`, made (random, mode 0600) if the file does
/// not exist. Control-plane hosts that must agree share the file. Roles
/// starting at once on one state dir agree too: the new key is written
/// whole under a private name and hard-linked into place, which fails if
/// another process linked its key first, and then that one is read.
pub fn key_file(path: &Path) -> Result<Vec<u8>, SealError> {
    let err = |source| SealError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(path) {
        Ok(k) => Ok(k),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; KEY_LEN];
            rand::thread_rng().fill_bytes(&mut key);
            let staging = path.with_extension(format!(
                "new-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            let written = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&staging)
                .and_then(|mut f| f.write_all(&key).and_then(|_| f.sync_all()));
            let linked = written.and_then(|()| std::fs::hard_link(&staging, path));
            let _ = std::fs::remove_file(&staging);
            match linked {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read(path).map_err(err)
                }
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

/// Seals and opens secrets under one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    /// Load the key from `path`, creating a new random one (mode 0600) if
    /// the file does not exist.
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let key = key_file(path)?;
        Self::from_key(&key).ok_or_else(|| SealError::BadKey(path.display().to_string()))
    }

    /// A sealer over a raw 32-byte key.
    pub fn from_key(key: &[u8]) -> Option<Self> {
        (key.len() == KEY_LEN).then(|| Self {
            cipher: Aes256Gcm::new_from_slice(key).expect("length checked"),
        })
    }

    /// Seal `plain` into printable text (base64 of nonce || ciphertext).
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("AES-GCM encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    /// Open what `seal` produced.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = B64.decode(sealed).map_err(|_| SealError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let s = Sealer::from_key_file(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = s.seal(b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open(&sealed).unwrap(), b"hunter2");
        // The same key is loaded again from the file.
        assert_eq!(
            Sealer::from_key_file(&path).unwrap().open(&sealed).unwrap(),
            b"hunter2"
        );
        let mut raw = B64.decode(&sealed).unwrap();
        raw[NONCE_LEN] ^= 1;
        assert!(matches!(s.open(&B64.encode(raw)), Err(SealError::Open)));
        let other = Sealer::from_key(&[7u8; 32]).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Sealer::from_key_file(&path),
            Err(SealError::BadKey(_))
        ));
    }

    #[test]
    fn callers_racing_to_make_the_key_get_the_same_one() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secret.key");
            let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..8).map(|_| s.spawn(|| key_file(&path))).collect();
                racers
                    .into_iter()
                    .map(|r| r.join().unwrap().unwrap())
                    .collect()
            });
            assert!(keys.iter().all(|k| k.len() == KEY_LEN && k == &keys[0]));
            // Nothing but the key is left behind.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }
}

//! The two keys: a random data key per backup, which seals its chunks, and
//! the master key, which wraps every data key (see `wrap.rs`) and never
//! leaves the control plane.
//!
//! Both are wiped from memory when dropped and never printed: their `Debug`
//! shows no key bytes, so a `{:?}` of a config or an order cannot leak one.

use crate::PipelineError;
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::RngCore;
use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes in a data key or a master key (AES-256).
pub const KEY_LEN: usize = 32;

/// Keeps fingerprints apart from any other SHA-256 of the key, so a
/// fingerprint reveals nothing usable elsewhere.
const FINGERPRINT_DOMAIN: &[u8] = b"coffer/backup-master-key/fingerprint/v1\0";

/// One backup's key: seals that backup's chunks and nothing else.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        DataKey(random_key())
    }

    /// A key from its 32 bytes (as sent to the agent).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PipelineError> {
        Ok(DataKey(key_bytes("a data key", bytes)?))
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The cipher that seals and opens this backup's chunks: ring's
    /// AES-256-GCM, which uses the CPU's vector AES and carry-less multiply
    /// (about 8 GB/s a core where the pure-Rust one does 1.5). Unlike the
    /// master key's cipher, its expanded key schedule is not wiped when
    /// dropped: ring offers no way to, and the data key it comes from is.
    pub(crate) fn chunk_cipher(&self) -> LessSafeKey {
        let key = UnboundKey::new(&AES_256_GCM, &self.0)
            .expect("a 32-byte key is what AES-256-GCM takes");
        LessSafeKey::new(key)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The key that wraps every backup's data key. Losing it loses every
/// backup; a different one cannot open them (`WrongMasterKey`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        MasterKey(random_key())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PipelineError> {
        Ok(MasterKey(key_bytes("a master key", bytes)?))
    }

    /// A short id of this key (16 hex digits), safe to store and show: it
    /// tells which master key wrapped a backup's data key, so "wrong key"
    /// can be told from "damaged" without trying. One-way, and
    /// domain-separated from any other use of the key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(FINGERPRINT_DOMAIN);
        h.update(self.0);
        hex::encode(&h.finalize()[..8])
    }

    /// For writing the key file only: the key itself never leaves the crate.
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(fingerprint {})", self.fingerprint())
    }
}

fn random_key() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

fn key_bytes(what: &str, bytes: &[u8]) -> Result<[u8; KEY_LEN], PipelineError> {
    bytes.try_into().map_err(|_| {
        PipelineError::InvalidKey(format!("{what} is {KEY_LEN} bytes, not {}", bytes.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_keep_their_bytes() {
        let a = DataKey::generate();
        assert_ne!(a.as_bytes(), DataKey::generate().as_bytes());
        assert_eq!(
            DataKey::from_bytes(a.as_bytes()).unwrap().as_bytes(),
            a.as_bytes()
        );
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let e = DataKey::from_bytes(&[0; 16]).unwrap_err();
        assert!(matches!(e, PipelineError::InvalidKey(_)), "{e}");
        assert!(e.to_string().contains("32 bytes, not 16"), "{e}");
        assert!(MasterKey::from_bytes(&[0; 33]).is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = DataKey::from_bytes(&[0xab; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "DataKey(..)");
        let m = MasterKey::from_bytes(&[0xab; 32]).unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
        assert!(shown.contains(&m.fingerprint()), "{shown}");
    }

    #[test]
    fn fingerprints_are_short_stable_and_distinct() {
        let m = MasterKey::from_bytes(&[1; 32]).unwrap();
        let f = m.fingerprint();
        assert_eq!(f.len(), 16);
        assert_eq!(f, MasterKey::from_bytes(&[1; 32]).unwrap().fingerprint());
        assert_ne!(f, MasterKey::from_bytes(&[2; 32]).unwrap().fingerprint());
        // Not a plain hash of the key.
        assert!(!hex::encode(Sha256::digest([1u8; 32])).starts_with(&f));
    }
}

//! Data keys wrapped by the master key, for storing beside the backup
//! record: hex text of nonce (12) || AES-256-GCM(master, data key) || tag.

use crate::keys::{DataKey, MasterKey, KEY_LEN};
use crate::PipelineError;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// The AAD of every wrapped key: a master key may one day seal other
/// things, and none of them can then pass for a data key.
const WRAP_LABEL: &[u8] = b"coffer/backup-data-key/v1";

/// `key` sealed by `master`, as 120 hex digits. A fresh random nonce each
/// time: wrapping the same key twice gives different text.
pub fn wrap_key(master: &MasterKey, key: &DataKey) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = master
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key.as_bytes(),
                aad: WRAP_LABEL,
            },
        )
        .expect("AES-GCM seals 32 bytes without fail");
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    hex::encode(out)
}

/// Open a key `wrap_key` made. Text that is not a wrapped key at all is
/// `InvalidKey`; one that does not open under `master` is
/// `WrongMasterKey` (another master key, or an altered record).
pub fn unwrap_key(master: &MasterKey, wrapped: &str) -> Result<DataKey, PipelineError> {
    let raw = hex::decode(wrapped.trim())
        .map_err(|e| PipelineError::InvalidKey(format!("the wrapped data key is not hex: {e}")))?;
    if raw.len() != WRAPPED_LEN {
        return Err(PipelineError::InvalidKey(format!(
            "a wrapped data key is {WRAPPED_LEN} bytes, this one {}",
            raw.len()
        )));
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let plain = Zeroizing::new(
        master
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: WRAP_LABEL,
                },
            )
            .map_err(|_| PipelineError::WrongMasterKey)?,
    );
    DataKey::from_bytes(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps() {
        let master = MasterKey::generate();
        let key = DataKey::generate();
        let wrapped = wrap_key(&master, &key);
        assert_eq!(wrapped.len(), 2 * WRAPPED_LEN);
        assert!(!wrapped.contains(&hex::encode(key.as_bytes())));
        assert_eq!(
            unwrap_key(&master, &wrapped).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert_ne!(wrap_key(&master, &key), wrapped, "a fresh nonce each time");
    }

    #[test]
    fn another_master_key_is_named_as_such() {
        let wrapped = wrap_key(&MasterKey::generate(), &DataKey::generate());
        let e = unwrap_key(&MasterKey::generate(), &wrapped).unwrap_err();
        assert!(matches!(e, PipelineError::WrongMasterKey));
        assert_eq!(
            e.to_string(),
            "the configured backup master key cannot open this backup's data key (wrong master key?)"
        );
    }

    #[test]
    fn altered_or_malformed_wrapped_keys_are_refused() {
        let master = MasterKey::generate();
        let wrapped = wrap_key(&master, &DataKey::generate());
        let mut altered = wrapped.clone().into_bytes();
        altered[40] = if altered[40] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(
            unwrap_key(&master, &altered),
            Err(PipelineError::WrongMasterKey)
        ));
        for bad in ["", "zz", &wrapped[..100]] {
            assert!(
                matches!(unwrap_key(&master, bad), Err(PipelineError::InvalidKey(_))),
                "{bad}"
            );
        }
    }
}

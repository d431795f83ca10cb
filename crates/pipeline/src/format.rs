//! The stored object, byte by byte (format version 1).
//!
//! ```text
//! header, 24 bytes:
//!   0..8    magic "COFFERBK"
//!   8       format version (1)
//!   9       codec id: 0 none, 1 zstd, 2 gzip
//!   10..12  reserved, zero
//!   12..16  chunk size in bytes (u32 BE), 1 ..= 64 MiB
//!   16..24  stream nonce prefix: 8 random bytes, new for every stream
//!
//! frame, repeated until (and including) the one flagged final:
//!   0..4    length of the sealed body that follows the flags (u32 BE)
//!   4       flags: bit 0 = final frame; other bits zero
//!   5..     sealed body = AES-256-GCM(data key, nonce, aad, plaintext) || tag(16)
//!
//!   plaintext = kind (0 stored, 1 compressed with the header's codec) || chunk
//!   nonce     = nonce prefix (8) || chunk index (u32 BE)
//!   aad       = header (24) || chunk index (u64 BE) || flags
//! ```
//!
//! Every chunk but the last holds exactly `chunk size` plain bytes; the last
//! (flagged final) holds fewer, possibly none: a stream that ends on a chunk
//! boundary, or an empty one, ends with an empty final frame.
//!
//! Why this shape:
//! - The header is in every frame's AAD, so an edited header fails the first
//!   frame; the random prefix makes each stream's nonces its own, so frames
//!   cannot be moved from one backup into another even under one data key.
//! - The index is in the nonce and the AAD, so a reordered, dropped or
//!   repeated frame fails authentication at the first frame out of place.
//! - The final flag is in the clear (the reader must know when to stop) and
//!   in the AAD (so it cannot be forged): a stream cut at a frame boundary
//!   lacks its final frame and is refused, and bytes after it are refused.
//! - The kind byte lets a chunk that compression would grow be stored as it
//!   is, so no frame's body exceeds `chunk size + 1 + 16`: the reader caps
//!   every length by that before allocating, and the chunk size itself is
//!   capped, so a corrupt length cannot make it allocate gigabytes.
//! - The u32 index allows 2^32 chunks per stream (4 PiB at 1 MiB chunks).

use crate::codec::CodecKind;
use crate::PipelineError;

pub(crate) const MAGIC: &[u8; 8] = b"COFFERBK";
pub(crate) const VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 24;

/// The largest chunk size a stream may have (and `EncodeOptions` may ask
/// for): it bounds what a reader allocates per frame.
pub const MAX_CHUNK_SIZE: usize = 64 << 20;

/// Frame prefix: length (4) and flags (1).
pub(crate) const FRAME_PREFIX_LEN: usize = 5;
pub(crate) const FLAGS_AT: usize = 4;
/// Where the sealed body, starting with the kind byte, begins in a frame.
pub(crate) const SEALED_AT: usize = FRAME_PREFIX_LEN;
/// Where the chunk bytes begin in a frame being built.
pub(crate) const CHUNK_AT: usize = SEALED_AT + 1;
pub(crate) const TAG_LEN: usize = 16;

pub(crate) const FLAG_FINAL: u8 = 1;
pub(crate) const KIND_STORED: u8 = 0;
pub(crate) const KIND_COMPRESSED: u8 = 1;

/// The smallest sealed body: a kind byte and the tag.
pub(crate) const MIN_SEALED_LEN: usize = 1 + TAG_LEN;

/// The largest sealed body a stream of `chunk_size` chunks can hold.
pub(crate) fn max_sealed_len(chunk_size: usize) -> usize {
    1 + chunk_size + TAG_LEN
}

/// What a stream's header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub codec: CodecKind,
    pub chunk_size: usize,
    pub nonce_prefix: [u8; 8],
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8] = VERSION;
        out[9] = self.codec.id();
        // Checked by `EncodeOptions::validate`: at most 64 MiB.
        let size = u32::try_from(self.chunk_size).expect("chunk size fits in u32");
        out[12..16].copy_from_slice(&size.to_be_bytes());
        out[16..24].copy_from_slice(&self.nonce_prefix);
        out
    }

    /// Parse a header. Bad magic or impossible fields are integrity errors
    /// (the object is not what it should be); a version or codec this build
    /// does not know is `Unsupported`, so an operator can tell "too new"
    /// from "damaged".
    pub fn parse(raw: &[u8; HEADER_LEN]) -> Result<Self, PipelineError> {
        if &raw[..8] != MAGIC {
            return Err(PipelineError::Integrity(
                "the object does not start with a Coffer backup header".into(),
            ));
        }
        if raw[8] != VERSION {
            return Err(PipelineError::Unsupported(format!(
                "backup format version {} (this build reads version {VERSION})",
                raw[8]
            )));
        }
        let codec = CodecKind::from_id(raw[9])?;
        let chunk_size = u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]) as usize;
        if raw[10..12] != [0, 0] || chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(PipelineError::Integrity(
                "the backup header is malformed".into(),
            ));
        }
        let mut nonce_prefix = [0u8; 8];
        nonce_prefix.copy_from_slice(&raw[16..24]);
        Ok(Header {
            codec,
            chunk_size,
            nonce_prefix,
        })
    }
}

/// The AES-GCM nonce of chunk `index` in a stream.
pub(crate) fn nonce(prefix: &[u8; 8], index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&index.to_be_bytes());
    n
}

/// The associated data of chunk `index`: binds it to its stream, its
/// position and whether it is the last.
pub(crate) fn aad(header: &[u8; HEADER_LEN], index: u32, flags: u8) -> [u8; HEADER_LEN + 9] {
    let mut a = [0u8; HEADER_LEN + 9];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&u64::from(index).to_be_bytes());
    a[HEADER_LEN + 8] = flags;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            codec: CodecKind::Zstd,
            chunk_size: 1 << 20,
            nonce_prefix: [7; 8],
        }
    }

    #[test]
    fn header_round_trips() {
        let raw = header().to_bytes();
        assert_eq!(&raw[..8], b"COFFERBK");
        assert_eq!(Header::parse(&raw).unwrap(), header());
    }

    #[test]
    fn damaged_headers_are_integrity_errors_and_new_ones_unsupported() {
        let raw = header().to_bytes();
        let with = |at: usize, v: u8| {
            let mut r = raw;
            r[at] = v;
            Header::parse(&r)
        };
        assert!(matches!(with(0, b'X'), Err(PipelineError::Integrity(_))));
        assert!(matches!(with(10, 1), Err(PipelineError::Integrity(_))));
        assert!(matches!(with(12, 0xff), Err(PipelineError::Integrity(_))));
        assert!(matches!(with(8, 2), Err(PipelineError::Unsupported(_))));
        assert!(matches!(with(9, 9), Err(PipelineError::Unsupported(_))));
        let mut zero = raw;
        zero[12..16].copy_from_slice(&[0; 4]);
        assert!(matches!(
            Header::parse(&zero),
            Err(PipelineError::Integrity(_))
        ));
    }

    #[test]
    fn nonces_and_aads_differ_by_position_and_flag() {
        let h = header().to_bytes();
        assert_ne!(nonce(&[1; 8], 1), nonce(&[1; 8], 2));
        assert_ne!(nonce(&[1; 8], 1), nonce(&[2; 8], 1));
        assert_ne!(aad(&h, 3, 0), aad(&h, 3, FLAG_FINAL));
        assert_ne!(aad(&h, 3, 0), aad(&h, 4, 0));
    }
}

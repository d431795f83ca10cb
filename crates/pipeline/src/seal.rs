//! One chunk to one frame and back: the CPU work a worker does.
//!
//! Both directions work in the buffer they are given where they can: with
//! compression off, or for a chunk that does not compress, the bytes read
//! are encrypted where they lie and written from there. Buffers come from,
//! and go back to, the stream's pool.

use crate::codec::{Codec, CodecKind};
use crate::compress;
use crate::format::{
    self, Header, CHUNK_AT, FLAGS_AT, FLAG_FINAL, HEADER_LEN, KIND_COMPRESSED, KIND_STORED,
    SEALED_AT, TAG_LEN,
};
use crate::pool::BufferPool;
use crate::{DataKey, PipelineError};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag};

/// A stream's key, header and buffers: everything a worker needs, shared
/// by the reader, the workers and the writer.
pub(crate) struct Sealer {
    cipher: LessSafeKey,
    header: [u8; HEADER_LEN],
    nonce_prefix: [u8; 8],
    /// How `seal` compresses: the configured codec, with its level.
    codec: Codec,
    /// How `open` decompresses: what the header names.
    kind: CodecKind,
    chunk_size: usize,
    /// Buffers of `CHUNK_AT + chunk_size + TAG_LEN` bytes, which hold a
    /// chunk being read, a frame being built or read, or a chunk opened.
    pub buffers: BufferPool,
}

/// A chunk ready to write.
pub(crate) struct Sealed {
    /// The whole frame: prefix and sealed body.
    pub frame: Vec<u8>,
    pub plain_len: usize,
    pub is_final: bool,
}

/// A chunk that authenticated, ready to write.
pub(crate) struct Opened {
    /// Holds the chunk from `start` on.
    pub buf: Vec<u8>,
    start: usize,
    /// Stored bytes of its frame, prefix included.
    pub frame_len: usize,
    pub is_final: bool,
}

impl Opened {
    pub fn plain(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Sealer {
    /// The sealer of a stream being written with `codec`, keeping up to
    /// `keep` idle buffers.
    pub fn for_encode(key: &DataKey, header: &Header, codec: Codec, keep: usize) -> Self {
        Sealer {
            cipher: key.chunk_cipher(),
            header: header.to_bytes(),
            nonce_prefix: header.nonce_prefix,
            codec,
            kind: header.codec,
            chunk_size: header.chunk_size,
            buffers: BufferPool::new(CHUNK_AT + header.chunk_size + TAG_LEN, keep),
        }
    }

    /// The opener of a stream with `header`.
    pub fn for_decode(key: &DataKey, header: &Header, keep: usize) -> Self {
        // Never used to compress; any codec will do.
        Sealer::for_encode(key, header, Codec::None, keep)
    }

    /// A buffer for reading a chunk: `CHUNK_AT` bytes of room for the
    /// frame prefix, then space for the chunk and the tag.
    pub fn chunk_buffer(&self) -> Vec<u8> {
        let mut buf = self.buffers.take();
        buf.resize(CHUNK_AT, 0);
        buf
    }

    /// Seal chunk `index`: `buf` (from `chunk_buffer`) holds `CHUNK_AT`
    /// bytes of any value, then the chunk. Compressed when that makes it
    /// smaller.
    pub fn seal(
        &self,
        index: u32,
        is_final: bool,
        mut buf: Vec<u8>,
    ) -> Result<Sealed, PipelineError> {
        let plain_len = buf.len() - CHUNK_AT;
        let mut frame = match self.compressed(&buf[CHUNK_AT..]) {
            Some(compressed) => {
                self.buffers.give(buf);
                compressed
            }
            None => {
                buf[SEALED_AT] = KIND_STORED;
                buf
            }
        };
        let flags = if is_final { FLAG_FINAL } else { 0 };
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(format::nonce(&self.nonce_prefix, index)),
                Aad::from(format::aad(&self.header, index, flags)),
                &mut frame[SEALED_AT..],
            )
            .map_err(|_| PipelineError::Worker(format!("AES-GCM refused to seal chunk {index}")))?;
        frame.extend_from_slice(tag.as_ref());
        let sealed_len = u32::try_from(frame.len() - SEALED_AT)
            .expect("a sealed chunk of at most 64 MiB fits in u32");
        frame[..4].copy_from_slice(&sealed_len.to_be_bytes());
        frame[FLAGS_AT] = flags;
        Ok(Sealed {
            frame,
            plain_len,
            is_final,
        })
    }

    /// `chunk` compressed into a frame buffer (kind byte set), or `None`
    /// when it is to be stored as it is.
    fn compressed(&self, chunk: &[u8]) -> Option<Vec<u8>> {
        if self.codec == Codec::None {
            return None;
        }
        let mut out = self.buffers.take();
        if compress::compress(self.codec, chunk, &mut out, CHUNK_AT) {
            out[SEALED_AT] = KIND_COMPRESSED;
            Some(out)
        } else {
            self.buffers.give(out);
            None
        }
    }

    /// Authenticate and open chunk `index` from its sealed body (ciphertext
    /// and tag, at least `MIN_SEALED_LEN` bytes). Nothing of it comes out
    /// unless the tag verified and its length is right for its place.
    pub fn open(&self, index: u32, flags: u8, mut body: Vec<u8>) -> Result<Opened, PipelineError> {
        let frame_len = format::FRAME_PREFIX_LEN + body.len();
        let tag_at = body.len() - TAG_LEN;
        let tag: [u8; TAG_LEN] = body[tag_at..].try_into().expect("TAG_LEN bytes");
        body.truncate(tag_at);
        self.cipher
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(format::nonce(&self.nonce_prefix, index)),
                Aad::from(format::aad(&self.header, index, flags)),
                Tag::from(tag),
                &mut body,
                0..,
            )
            .map_err(|_| {
                PipelineError::Integrity(format!(
                    "chunk {index} failed authentication (altered, out of place, \
                     or not sealed with this backup's data key)"
                ))
            })?;
        let opened = match body.first() {
            Some(&KIND_STORED) => Opened {
                buf: body,
                start: 1,
                frame_len,
                is_final: flags & FLAG_FINAL != 0,
            },
            Some(&KIND_COMPRESSED) => {
                let mut out = self.buffers.take();
                let done = compress::decompress(self.kind, &body[1..], self.chunk_size, &mut out);
                self.buffers.give(body);
                done.map_err(|e| {
                    PipelineError::Integrity(format!("chunk {index} does not decompress: {e}"))
                })?;
                Opened {
                    buf: out,
                    start: 0,
                    frame_len,
                    is_final: flags & FLAG_FINAL != 0,
                }
            }
            _ => {
                return Err(PipelineError::Integrity(format!(
                    "chunk {index} is of an unknown kind"
                )))
            }
        };
        let len = opened.plain().len();
        if len > self.chunk_size || (!opened.is_final && len != self.chunk_size) {
            return Err(PipelineError::Integrity(format!(
                "chunk {index} holds {len} bytes where the stream's chunks hold {}",
                self.chunk_size
            )));
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(codec: Codec, chunk_size: usize) -> Sealer {
        Sealer::for_encode(
            &DataKey::from_bytes(&[9; 32]).unwrap(),
            &Header {
                codec: codec.kind(),
                chunk_size,
                nonce_prefix: [3; 8],
            },
            codec,
            4,
        )
    }

    fn chunk_buf(s: &Sealer, chunk: &[u8]) -> Vec<u8> {
        let mut buf = s.chunk_buffer();
        buf.extend_from_slice(chunk);
        buf
    }

    fn body(frame: &[u8]) -> (u8, Vec<u8>) {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(frame.len(), SEALED_AT + len);
        (frame[FLAGS_AT], frame[SEALED_AT..].to_vec())
    }

    #[test]
    fn seals_and_opens_each_kind() {
        let text = b"abc".repeat(400);
        for codec in [
            Codec::None,
            Codec::Zstd { level: 1 },
            Codec::Gzip { level: 1 },
        ] {
            let s = sealer(codec, 1200);
            let sealed = s.seal(5, false, chunk_buf(&s, &text)).unwrap();
            assert_eq!(sealed.plain_len, 1200);
            let compressed = codec != Codec::None;
            assert_eq!(sealed.frame.len() < 200, compressed, "{codec}");
            let (flags, body) = body(&sealed.frame);
            assert_eq!(flags, 0);
            let opened = s.open(5, flags, body).unwrap();
            assert_eq!(opened.plain(), &text[..]);
            assert_eq!(opened.frame_len, sealed.frame.len());
            assert!(!opened.is_final);
        }
    }

    #[test]
    fn sealing_in_place_does_not_reallocate() {
        let s = sealer(Codec::None, 1000);
        let buf = chunk_buf(&s, &[1; 1000]);
        let before = buf.as_ptr();
        let sealed = s.seal(0, true, buf).unwrap();
        assert_eq!(sealed.frame.as_ptr(), before);
    }

    #[test]
    fn a_frame_opens_only_at_its_own_place_and_flag() {
        let s = sealer(Codec::None, 100);
        let sealed = s.seal(2, true, chunk_buf(&s, &[7; 10])).unwrap();
        let (flags, body) = body(&sealed.frame);
        assert_eq!(flags, FLAG_FINAL);
        assert!(s.open(2, flags, body.clone()).unwrap().is_final);
        for (index, flags) in [(3, FLAG_FINAL), (2, 0)] {
            let e = s.open(index, flags, body.clone()).err().expect("refused");
            assert!(e.to_string().contains("failed authentication"), "{e}");
        }
        let other_stream = Sealer::for_decode(
            &DataKey::from_bytes(&[9; 32]).unwrap(),
            &Header {
                codec: CodecKind::None,
                chunk_size: 100,
                nonce_prefix: [4; 8],
            },
            4,
        );
        assert!(other_stream.open(2, FLAG_FINAL, body).is_err());
    }

    #[test]
    fn a_short_chunk_that_is_not_final_is_refused() {
        let s = sealer(Codec::None, 100);
        let sealed = s.seal(0, false, chunk_buf(&s, &[7; 10])).unwrap();
        let (flags, body) = body(&sealed.frame);
        let e = s.open(0, flags, body).err().expect("refused");
        assert!(e.to_string().contains("holds 10 bytes"), "{e}");
    }
}

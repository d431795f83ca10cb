//! Compression of one chunk at a time, on the worker thread that seals it.
//!
//! zstd contexts are kept per thread and reused: making one per chunk costs
//! allocations and zeroing of several MiB, a visible share of level 1-3 work.
//! The blocking pool's threads live a while, so a context serves many chunks.

use crate::codec::{Codec, CodecKind};
use std::cell::RefCell;
use std::io::{Read, Write};

thread_local! {
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compress `chunk` into `out`, after `reserve` zero bytes (room for the
/// frame's prefix, so the result is sealed in place). `false`, with `out`
/// in any state, when compression is off or would not make the chunk
/// smaller: the caller then stores the chunk as it is.
pub(crate) fn compress(codec: Codec, chunk: &[u8], out: &mut Vec<u8>, reserve: usize) -> bool {
    out.clear();
    out.resize(reserve, 0);
    match codec {
        Codec::None => false,
        Codec::Zstd { level } => zstd(level, chunk, out, reserve),
        Codec::Gzip { level } => gzip(level, chunk, out, reserve),
    }
}

fn zstd(level: i32, chunk: &[u8], out: &mut Vec<u8>, reserve: usize) -> bool {
    // Room for exactly a chunk: zstd stops with an error as soon as its
    // output would not be smaller, so incompressible data costs no more.
    out.resize(reserve + chunk.len(), 0);
    let written = ZSTD_COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !matches!(&*slot, Some((l, _)) if *l == level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, compressor) = slot.as_mut()?;
        compressor
            .compress_to_buffer(chunk, &mut out[reserve..])
            .ok()
    });
    match written {
        Some(n) if n < chunk.len() => {
            out.truncate(reserve + n);
            true
        }
        _ => false,
    }
}

fn gzip(level: u32, chunk: &[u8], out: &mut Vec<u8>, reserve: usize) -> bool {
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
    let done = encoder.write_all(chunk).and_then(|()| encoder.try_finish());
    done.is_ok() && encoder.get_ref().len() - reserve < chunk.len()
}

/// Decompress a chunk that held at most `max` bytes into `out` (emptied
/// first). An error here is reported as a damaged chunk: the bytes
/// authenticated, so only a broken writer could have produced them.
pub(crate) fn decompress(
    kind: CodecKind,
    data: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    match kind {
        CodecKind::None => Err("it is marked compressed in a stream without a codec".into()),
        CodecKind::Zstd => ZSTD_DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
            }
            let decompressor = slot.as_mut().expect("set just above");
            out.reserve(max);
            // Output stops at the buffer's capacity, so a chunk that would
            // grow past it is an error, not an allocation; the caller
            // checks the exact length against the chunk size.
            decompressor
                .decompress_to_buffer(data, out)
                .map(|_| ())
                .map_err(|e| format!("zstd: {e}"))
        }),
        CodecKind::Gzip => {
            out.reserve(max + 1);
            flate2::read::GzDecoder::new(data)
                .take(max as u64 + 1)
                .read_to_end(out)
                .map_err(|e| format!("gzip: {e}"))?;
            if out.len() > max {
                return Err(format!("it decompresses to more than {max} bytes"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Vec<u8> {
        b"INSERT INTO t VALUES (1, 'abc');\n"
            .iter()
            .cycle()
            .take(len)
            .copied()
            .collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545F4914F6CDD1Du64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn compressible_chunks_round_trip_after_the_reserved_prefix() {
        let chunk = text(100_000);
        for codec in [
            Codec::Zstd { level: 1 },
            Codec::Zstd { level: 3 },
            Codec::Gzip { level: 6 },
        ] {
            let mut out = vec![1, 2, 3];
            assert!(
                compress(codec, &chunk, &mut out, 6),
                "{codec}: text compresses"
            );
            assert_eq!(&out[..6], &[0; 6]);
            assert!(out.len() < chunk.len() / 4, "{codec}");
            let mut back = vec![9; 10];
            decompress(codec.kind(), &out[6..], chunk.len(), &mut back).unwrap();
            assert!(back == chunk, "{codec}");
            let mut small = Vec::new();
            assert!(
                decompress(codec.kind(), &out[6..], 1000, &mut small).is_err(),
                "{codec}: bound"
            );
        }
    }

    #[test]
    fn incompressible_and_empty_chunks_are_left_alone() {
        for codec in [
            Codec::None,
            Codec::Zstd { level: 3 },
            Codec::Gzip { level: 6 },
        ] {
            assert!(
                !compress(codec, &noise(65536), &mut Vec::new(), 6),
                "{codec}"
            );
            assert!(!compress(codec, &[], &mut Vec::new(), 6), "{codec}");
        }
    }

    #[test]
    fn a_thread_switches_zstd_levels() {
        let chunk = text(50_000);
        for level in [1, 19, 1] {
            let mut out = Vec::new();
            assert!(compress(Codec::Zstd { level }, &chunk, &mut out, 0));
            let mut back = Vec::new();
            decompress(CodecKind::Zstd, &out, chunk.len(), &mut back).unwrap();
            assert!(back == chunk, "level {level}");
        }
    }

    #[test]
    fn garbage_does_not_decompress() {
        for kind in [CodecKind::Zstd, CodecKind::Gzip, CodecKind::None] {
            assert!(decompress(kind, b"not compressed", 100, &mut Vec::new()).is_err());
        }
    }
}

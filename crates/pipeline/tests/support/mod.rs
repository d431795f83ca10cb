//! Shared by the pipeline's tests: inputs, a reading of the stored format
//! written from its description (so a format change shows up here), and
//! readers and writers that fail the way real ones do.

#![allow(dead_code)]

use coffer_pipeline::{
    decode, encode, Codec, DataKey, EncodeOptions, PipelineError, Progress, Summary,
};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Header length and frame prefix (length u32 BE, flags), per format.rs.
pub const HEADER: usize = 24;
pub const PREFIX: usize = 5;

/// Bytes that compress well (SQL-like text) or not at all (xorshift).
pub fn data(len: usize, compressible: bool) -> Vec<u8> {
    if compressible {
        let mut out = Vec::with_capacity(len);
        let mut row = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!("INSERT INTO t VALUES ({row}, 'name {}');\n", row % 97).as_bytes(),
            );
            row += 1;
        }
        out.truncate(len);
        out
    } else {
        noise(len, 0x9E37_79B9_7F4A_7C15)
    }
}

pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn opts(codec: Codec, chunk_size: usize) -> EncodeOptions {
    EncodeOptions {
        codec,
        chunk_size,
        parallelism: 2,
    }
}

pub async fn seal(plain: &[u8], key: &DataKey, o: &EncodeOptions) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let s = encode(plain, &mut out, key, o, &Progress::default())
        .await
        .expect("encode");
    (out, s)
}

/// Decode `stored`; on error also what reached the writer by then.
pub async fn open(stored: &[u8], key: &DataKey) -> Result<Vec<u8>, (PipelineError, Vec<u8>)> {
    let mut out = Vec::new();
    match decode(stored, &mut out, key, None, &Progress::default()).await {
        Ok(_) => Ok(out),
        Err(e) => Err((e, out)),
    }
}

/// Each frame of a stored object: (offset of its prefix, whole length).
pub fn frames(stored: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at < stored.len() {
        let len = u32::from_be_bytes(stored[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, PREFIX + len));
        at += PREFIX + len;
    }
    assert_eq!(at, stored.len(), "frames tile the object");
    out
}

/// Reads `ok` bytes of `data`, then fails as a dying tool's pipe does.
pub struct FailingReader {
    pub data: Vec<u8>,
    pub ok: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ok == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "mariabackup exited with status 1",
            )));
        }
        let n = self.ok.min(buf.remaining()).min(self.data.len()).min(8192);
        buf.put_slice(&self.data[..n]);
        self.data.drain(..n);
        self.ok -= n;
        Poll::Ready(Ok(()))
    }
}

/// A writer that keeps what it is given, optionally fails with ENOSPC once
/// `room` bytes are taken, and remembers whether it was shut down.
#[derive(Default)]
pub struct Sink {
    pub bytes: Vec<u8>,
    pub room: Option<usize>,
    pub shut_down: bool,
}

impl Sink {
    pub fn with_room(room: usize) -> Self {
        Sink {
            room: Some(room),
            ..Sink::default()
        }
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        assert!(!self.shut_down, "written after shutdown");
        let n = match self.room {
            Some(room) if self.bytes.len() >= room => {
                return Poll::Ready(Err(io::Error::from_raw_os_error(28)));
            }
            Some(room) => buf.len().min(room - self.bytes.len()),
            None => buf.len(),
        };
        self.bytes.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut_down = true;
        Poll::Ready(Ok(()))
    }
}

/// Produces `len` bytes without holding them: a little over 2 MiB of
/// noise with 6 bits per byte, read round and round. No chunk of up to
/// 2 MiB repeats itself, so zstd does real work and saves about a quarter.
pub struct Generated {
    left: u64,
    block: Vec<u8>,
    at: usize,
}

impl Generated {
    pub fn new(len: u64) -> Self {
        let block = noise((2 << 20) + 4099, 7)
            .into_iter()
            .map(|b| b & 0x3f)
            .collect();
        Generated {
            left: len,
            block,
            at: 0,
        }
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.left > 0 && buf.remaining() > 0 {
            let n = (this.left as usize)
                .min(buf.remaining())
                .min(this.block.len() - this.at);
            buf.put_slice(&this.block[this.at..this.at + n]);
            this.at = (this.at + n) % this.block.len();
            this.left -= n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

/// Counts what it is given and drops it.
#[derive(Default)]
pub struct Discard {
    pub bytes: u64,
}

impl AsyncWrite for Discard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

//! Encode and decode throughput on this machine, to choose codecs and to
//! compare debug and release builds:
//!
//!     cargo run -p coffer-pipeline --example throughput [--release] -- [MiB] [codec...]
//!
//! `PARALLELISM=1` in the environment shows what the second core adds.
//!
//! The input is text-like rows made in memory beforehand (zstd:1 stores
//! about a third of it) and the output is discarded: the numbers are the
//! pipeline's, not a disk's or a network's.

use coffer_pipeline::{decode, encode, Codec, DataKey, EncodeOptions, Progress};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncWrite;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(256, |a| a.parse().expect("MiB"));
    let codecs: Vec<Codec> = {
        let named: Vec<Codec> = args.map(|a| a.parse().expect("codec")).collect();
        if named.is_empty() {
            ["none", "zstd:1", "zstd:3", "gzip:1"]
                .iter()
                .map(|c| c.parse().unwrap())
                .collect()
        } else {
            named
        }
    };
    let key = DataKey::generate();
    // Made before the clock starts: the numbers are the pipeline's alone.
    let input = text(mib << 20);
    let mb = input.len() as f64 / 1e6;
    let parallelism = std::env::var("PARALLELISM")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(EncodeOptions::default().parallelism);
    println!("{mib} MiB, parallelism {parallelism} (encode)");
    for codec in codecs {
        let opts = EncodeOptions {
            codec,
            parallelism,
            ..EncodeOptions::default()
        };
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let s = encode(&input[..], Discard, &key, &opts, &Progress::default())
            .await
            .expect("encode");
        let enc = started.elapsed().as_secs_f64();
        let enc_cores = (cpu_seconds() - cpu) / enc;

        let mut stored = Vec::with_capacity(s.stored_bytes as usize);
        encode(&input[..], &mut stored, &key, &opts, &Progress::default())
            .await
            .expect("encode");
        let (started, cpu) = (Instant::now(), cpu_seconds());
        decode(&stored[..], Discard, &key, None, &Progress::default())
            .await
            .expect("decode");
        let dec = started.elapsed().as_secs_f64();
        let dec_cores = (cpu_seconds() - cpu) / dec;
        println!(
            "{codec:>8}: encode {:6.0} MB/s ({enc_cores:.1} cores), \
             decode {:6.0} MB/s ({dec_cores:.1} cores), stored {:5.1}%",
            mb / enc,
            mb / dec,
            100.0 * s.stored_bytes as f64 / input.len() as f64
        );
    }
}

/// CPU time this process has used (user and system), from
/// /proc/self/stat: how many cores a stage kept busy.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses); utime and
    // stime are the 12th and 13th of those, in clock ticks (100 a second).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Text-like rows with varying numbers, like a logical dump.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut row = 0u64;
    while out.len() < len {
        let x = row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        out.extend_from_slice(
            format!(
                "({row}, {}, 'customer {}', {}.{:02}),\n",
                x >> 40,
                x % 9973,
                x % 100_000,
                row % 100
            )
            .as_bytes(),
        );
        row += 1;
    }
    out.truncate(len);
    out
}

struct Discard;

impl AsyncWrite for Discard {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

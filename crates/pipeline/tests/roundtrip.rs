//! Encode then decode gives the input back, for every codec and size; the
//! summary, the progress counters and the stored bytes agree.

mod support;

use coffer_pipeline::{decode, encode, Codec, DataKey, EncodeOptions, PipelineError, Progress};
use sha2::{Digest, Sha256};
use support::{data, frames, open, opts, seal, Sink, HEADER};

const CHUNK: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_size_round_trips() {
    let key = DataKey::generate();
    let codecs = [
        Codec::None,
        Codec::Zstd { level: 1 },
        Codec::Zstd { level: 3 },
        Codec::Gzip { level: 6 },
    ];
    for codec in codecs {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 123] {
            for compressible in [true, false] {
                let what = format!("{codec}, {len} bytes, compressible {compressible}");
                let plain = data(len, compressible);
                let progress = Progress::default();
                let mut stored = Sink::default();
                let s = encode(
                    &plain[..],
                    &mut stored,
                    &key,
                    &opts(codec, CHUNK),
                    &progress,
                )
                .await
                .unwrap();
                assert!(stored.shut_down, "{what}");
                let stored = stored.bytes;
                assert_eq!(s.plain_bytes, len as u64, "{what}");
                assert_eq!(s.stored_bytes, stored.len() as u64, "{what}");
                assert_eq!(s.sha256, hex::encode(Sha256::digest(&stored)), "{what}");
                assert_eq!(progress.plain_bytes(), s.plain_bytes, "{what}");
                assert_eq!(progress.stored_bytes(), s.stored_bytes, "{what}");
                // Full chunks, then a short or empty final one.
                assert_eq!(frames(&stored).len(), len / CHUNK + 1, "{what}");

                let back_progress = Progress::default();
                let mut back = Sink::default();
                let d = decode(
                    &stored[..],
                    &mut back,
                    &key,
                    Some(&s.sha256),
                    &back_progress,
                )
                .await
                .unwrap();
                assert!(back.shut_down, "{what}");
                assert!(back.bytes == plain, "{what}: restored bytes differ");
                assert_eq!(d, s, "{what}");
                assert_eq!(back_progress.plain_bytes(), s.plain_bytes, "{what}");
                assert_eq!(back_progress.stored_bytes(), s.stored_bytes, "{what}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_shrinks_text_and_never_grows_noise_beyond_framing() {
    let key = DataKey::generate();
    let len = 10 * CHUNK;
    let frames_overhead = HEADER + 11 * (5 + 1 + 16);
    for codec in [
        Codec::Zstd { level: 1 },
        Codec::Zstd { level: 3 },
        Codec::Gzip { level: 6 },
    ] {
        let (text, _) = seal(&data(len, true), &key, &opts(codec, CHUNK)).await;
        assert!(
            text.len() < len / 5,
            "{codec}: {} bytes for {len} of text",
            text.len()
        );
        let (noise, _) = seal(&data(len, false), &key, &opts(codec, CHUNK)).await;
        assert_eq!(
            noise.len(),
            len + frames_overhead,
            "{codec}: noise is stored as it is"
        );
    }
    let (plain, _) = seal(&data(len, true), &key, &opts(Codec::None, CHUNK)).await;
    assert_eq!(
        plain.len(),
        len + frames_overhead,
        "none stores every chunk as it is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_and_odd_chunk_sizes_and_any_parallelism_round_trip() {
    let key = DataKey::generate();
    for (chunk_size, parallelism, len) in [
        (1, 1, 300),
        (3, 2, 10_007),
        (1000, 1, 10_007),
        (4096, 8, 10_007),
        (100_000, 3, 10_007),
    ] {
        let plain = data(len, true);
        let o = EncodeOptions {
            codec: Codec::Zstd { level: 1 },
            chunk_size,
            parallelism,
        };
        let (stored, _) = seal(&plain, &key, &o).await;
        assert_eq!(
            frames(&stored).len(),
            len / chunk_size + 1,
            "chunk {chunk_size}"
        );
        let back = open(&stored, &key).await.map_err(|(e, _)| e).unwrap();
        assert_eq!(back, plain, "chunk {chunk_size}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_never_gives_the_same_bytes() {
    let key = DataKey::generate();
    let plain = data(3 * CHUNK, true);
    let (a, sa) = seal(&plain, &key, &opts(Codec::default(), CHUNK)).await;
    let (b, sb) = seal(&plain, &key, &opts(Codec::default(), CHUNK)).await;
    assert_ne!(a, b, "a fresh nonce prefix per stream");
    assert_ne!(sa.sha256, sb.sha256);
    assert_eq!(open(&a, &key).await.unwrap(), open(&b, &key).await.unwrap());
}

#[tokio::test]
async fn runs_on_a_current_thread_runtime_too() {
    // The agent may run on either flavour; the workers are on the blocking
    // pool, so one async thread is enough.
    let key = DataKey::generate();
    let plain = data(5 * CHUNK + 7, true);
    let (stored, _) = seal(&plain, &key, &opts(Codec::Zstd { level: 1 }, CHUNK)).await;
    assert_eq!(open(&stored, &key).await.unwrap(), plain);
}

#[tokio::test]
async fn options_that_cannot_work_are_refused_before_anything_is_written() {
    let key = DataKey::generate();
    for o in [
        opts(Codec::None, 0),
        opts(Codec::None, (64 << 20) + 1),
        EncodeOptions {
            parallelism: 0,
            ..EncodeOptions::default()
        },
        opts(Codec::Zstd { level: 40 }, CHUNK),
    ] {
        let mut out = Sink::default();
        let e = encode(&b"abc"[..], &mut out, &key, &o, &Progress::default())
            .await
            .unwrap_err();
        assert!(matches!(e, PipelineError::InvalidOptions(_)), "{o:?}: {e}");
        assert!(out.bytes.is_empty() && !out.shut_down, "{o:?}");
    }
}

#[test]
fn streams_can_run_on_spawned_tasks() {
    // The agent spawns backups: their futures must be `Send`.
    fn assert_send<T: Send>(_: &T) {}
    let (key, opts, progress) = (
        DataKey::generate(),
        EncodeOptions::default(),
        Progress::default(),
    );
    let backup = encode(
        tokio::io::empty(),
        tokio::io::sink(),
        &key,
        &opts,
        &progress,
    );
    assert_send(&backup);
    let restore = decode(tokio::io::empty(), tokio::io::sink(), &key, None, &progress);
    assert_send(&restore);
}

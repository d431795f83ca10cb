//! When the input or the output fails, the error says which side and
//! carries the io error's text; the writer is never completed (shut down)
//! after a failure.

mod support;

use coffer_pipeline::{decode, encode, Codec, DataKey, PipelineError, Progress};
use support::{data, opts, seal, FailingReader, Sink};

const CHUNK: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_fails_mid_stream_is_a_source_error() {
    let key = DataKey::generate();
    for codec in [Codec::None, Codec::Zstd { level: 1 }] {
        let reader = FailingReader {
            data: data(10 * CHUNK, true),
            ok: 3 * CHUNK + 500,
        };
        let mut out = Sink::default();
        let e = encode(
            reader,
            &mut out,
            &key,
            &opts(codec, CHUNK),
            &Progress::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, PipelineError::Source(_)), "{e}");
        assert!(
            e.to_string().contains("mariabackup exited with status 1"),
            "{e}"
        );
        assert!(!out.shut_down, "a failed backup's upload is not completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_sink_error_that_says_so() {
    let key = DataKey::generate();
    let plain = data(10 * CHUNK, false);
    for room in [0, 10, 3 * CHUNK + 17] {
        let mut out = Sink::with_room(room);
        let e = encode(
            &plain[..],
            &mut out,
            &key,
            &opts(Codec::Zstd { level: 1 }, CHUNK),
            &Progress::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, PipelineError::Sink(_)), "{e}");
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert!(!out.shut_down);
    }

    let (stored, _) = seal(&plain, &key, &opts(Codec::Zstd { level: 1 }, CHUNK)).await;
    let mut out = Sink::with_room(4 * CHUNK + 1);
    let e = decode(&stored[..], &mut out, &key, None, &Progress::default())
        .await
        .unwrap_err();
    assert!(matches!(e, PipelineError::Sink(_)), "{e}");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert!(!out.shut_down, "a failed restore is not completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_object_that_cannot_be_read_is_a_source_error() {
    let key = DataKey::generate();
    let plain = data(10 * CHUNK, true);
    let (stored, _) = seal(&plain, &key, &opts(Codec::None, CHUNK)).await;
    let reader = FailingReader {
        ok: stored.len() / 2,
        data: stored,
    };
    let mut out = Sink::default();
    let e = decode(reader, &mut out, &key, None, &Progress::default())
        .await
        .unwrap_err();
    assert!(matches!(e, PipelineError::Source(_)), "{e}");
    assert!(!out.shut_down);
    assert!(
        plain.starts_with(&out.bytes),
        "only verified chunks were written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_while_a_stream_runs() {
    // A reader that trickles: the counters are read from another task.
    let key = DataKey::generate();
    let progress = Progress::default();
    let (mut tx, rx) = tokio::io::duplex(CHUNK);
    let watcher = progress.clone();
    let feed = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let block = data(CHUNK, true);
        let mut seen = Vec::new();
        for _ in 0..20 {
            tx.write_all(&block).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            seen.push(watcher.plain_bytes());
        }
        seen
    });
    let mut out = Sink::default();
    let s = encode(
        rx,
        &mut out,
        &key,
        &opts(Codec::Zstd { level: 1 }, CHUNK),
        &progress,
    )
    .await
    .unwrap();
    let seen = feed.await.unwrap();
    assert_eq!(s.plain_bytes, 20 * CHUNK as u64);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|&b| b > 0 && b < s.plain_bytes),
        "no progress seen mid-stream: {seen:?}"
    );
    assert_eq!(progress.plain_bytes(), s.plain_bytes);
}

//! Every way a stored object can be damaged is caught as an integrity
//! error, and nothing of a damaged chunk (or any chunk after it) reaches
//! the output.

mod support;

use coffer_pipeline::{decode, Codec, DataKey, PipelineError, Progress};
use sha2::{Digest, Sha256};
use support::{data, frames, open, opts, seal, Sink, HEADER, PREFIX};

const CHUNK: usize = 16 * 1024;

/// A stored object of six full chunks and a short final one (chunks 0..=6).
async fn stored(key: &DataKey) -> (Vec<u8>, Vec<u8>) {
    let plain = data(6 * CHUNK + 1000, false);
    let (stored, _) = seal(&plain, key, &opts(Codec::Zstd { level: 1 }, CHUNK)).await;
    assert_eq!(frames(&stored).len(), 7);
    (plain, stored)
}

/// Decode `bad`: it must fail with an integrity error whose message says
/// `why`, having written exactly the `good_chunks` chunks before the damage
/// (every one of them verified) and nothing of the damaged one.
async fn refused(bad: &[u8], key: &DataKey, plain: &[u8], good_chunks: usize, why: &str) {
    let (e, out) = open(bad, key).await.expect_err("damage must be detected");
    let msg = e.to_string();
    assert!(matches!(e, PipelineError::Integrity(_)), "{why}: {msg}");
    assert!(msg.starts_with("backup integrity check failed: "), "{msg}");
    assert!(msg.contains(why), "expected {why:?} in {msg:?}");
    let expected = (good_chunks * CHUNK).min(plain.len());
    assert_eq!(out.len(), expected, "{why}: bytes written");
    assert!(
        out == plain[..expected],
        "{why}: what was written is not the backup's data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_anywhere_is_caught_before_its_chunk_is_written() {
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let f = frames(&stored);
    let cases = [
        (0, 0x04, 0, "does not start with a Coffer backup header"),
        (10, 0x04, 0, "header is malformed"),
        // Chunk size 16 KiB -> 0: malformed; -> 272 KiB: frames still fit, but
        // the header is in every frame's AAD.
        (14, 0x40, 0, "header is malformed"),
        (13, 0x04, 0, "chunk 0 failed authentication"),
        (16, 0x04, 0, "chunk 0 failed authentication"),
        (23, 0x04, 0, "chunk 0 failed authentication"),
        (
            f[0].0 + PREFIX + 3,
            0x04,
            0,
            "chunk 0 failed authentication",
        ),
        (
            f[3].0 + PREFIX + 100,
            0x04,
            3,
            "chunk 3 failed authentication",
        ),
        (
            f[3].0 + f[3].1 - 1,
            0x04,
            3,
            "chunk 3 failed authentication",
        ),
        (
            f[6].0 + PREFIX + 10,
            0x04,
            6,
            "chunk 6 failed authentication",
        ),
        (
            f[6].0 + f[6].1 - 1,
            0x04,
            6,
            "chunk 6 failed authentication",
        ),
    ];
    for (at, xor, good_chunks, why) in cases {
        let mut bad = stored.clone();
        bad[at] ^= xor;
        refused(&bad, &key, &plain, good_chunks, why).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_prefixes_are_checked_or_authenticated() {
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let f = frames(&stored);
    // The final flag on a middle frame, or off on the last: authentication.
    let mut bad = stored.clone();
    bad[f[2].0 + 4] = 1;
    refused(&bad, &key, &plain, 2, "chunk 2 failed authentication").await;
    let mut bad = stored.clone();
    bad[f[6].0 + 4] = 0;
    refused(&bad, &key, &plain, 6, "chunk 6 failed authentication").await;
    // Unknown flags.
    let mut bad = stored.clone();
    bad[f[1].0 + 4] = 0x80;
    refused(&bad, &key, &plain, 1, "chunk 1 has unknown frame flags").await;
    // A length past what the stream's chunks can seal to is refused before
    // anything is allocated for it.
    let mut bad = stored.clone();
    bad[f[4].0..f[4].0 + 4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    refused(&bad, &key, &plain, 4, "chunk 4 claims 2147483647 bytes").await;
    // A smaller chunk size in the header makes chunk 0 too long for it.
    let mut bad = stored.clone();
    bad[12..16].copy_from_slice(&1000u32.to_be_bytes());
    refused(&bad, &key, &plain, 0, "chunk 0 claims").await;
    // A shorter length cuts the tag and misaligns what follows: the bad
    // chunk is the one reported, whatever the reader makes of the rest.
    let mut bad = stored.clone();
    bad[f[4].0 + 3] = bad[f[4].0 + 3].wrapping_sub(1);
    refused(&bad, &key, &plain, 4, "chunk 4 failed authentication").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_anywhere_is_caught() {
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let f = frames(&stored);
    let empty: &[u8] = &[];
    refused(empty, &key, &plain, 0, "the stored object is empty").await;
    refused(
        &stored[..HEADER - 1],
        &key,
        &plain,
        0,
        "ends inside its header",
    )
    .await;
    refused(
        &stored[..HEADER],
        &key,
        &plain,
        0,
        "ends before its final chunk, after 0 chunks",
    )
    .await;
    // Without its final frame: every chunk verifies, yet the stream is cut.
    refused(
        &stored[..f[6].0],
        &key,
        &plain,
        6,
        "ends before its final chunk, after 6 chunks",
    )
    .await;
    refused(
        &stored[..f[3].0],
        &key,
        &plain,
        3,
        "ends before its final chunk",
    )
    .await;
    for cut in [
        f[3].0 + 2,
        f[3].0 + PREFIX,
        f[3].0 + 1000,
        f[6].0 + f[6].1 - 1,
    ] {
        let chunk = if cut > f[6].0 { 6 } else { 3 };
        refused(
            &stored[..cut],
            &key,
            &plain,
            chunk,
            &format!("ends inside chunk {chunk}"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_dropped_and_repeated_frames_are_caught() {
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let f = frames(&stored);
    let frame = |i: usize| &stored[f[i].0..f[i].0 + f[i].1];
    let build = |order: &[usize]| {
        let mut out = stored[..HEADER].to_vec();
        for &i in order {
            out.extend_from_slice(frame(i));
        }
        out
    };
    refused(
        &build(&[0, 1, 3, 2, 4, 5, 6]),
        &key,
        &plain,
        2,
        "chunk 2 failed authentication",
    )
    .await;
    refused(
        &build(&[0, 1, 2, 4, 5, 6]),
        &key,
        &plain,
        3,
        "chunk 3 failed authentication",
    )
    .await;
    refused(
        &build(&[0, 1, 1, 2, 3, 4, 5, 6]),
        &key,
        &plain,
        2,
        "chunk 2 failed authentication",
    )
    .await;
    refused(
        &build(&[0, 1, 2, 3, 4, 5, 6, 6]),
        &key,
        &plain,
        7,
        "bytes follow the final chunk",
    )
    .await;
    let mut trailing = stored.clone();
    trailing.push(0);
    refused(&trailing, &key, &plain, 7, "bytes follow the final chunk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_from_another_backup_do_not_fit() {
    // Even under the same data key: each stream has its own nonce prefix,
    // which is in the header and so in every frame's AAD.
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let (other, _) = seal(&plain, &key, &opts(Codec::Zstd { level: 1 }, CHUNK)).await;
    let f = frames(&stored);
    let g = frames(&other);
    let mut spliced = stored[..f[2].0].to_vec();
    spliced.extend_from_slice(&other[g[2].0..]);
    refused(&spliced, &key, &plain, 2, "chunk 2 failed authentication").await;
    let mut other_header = other[..HEADER].to_vec();
    other_header.extend_from_slice(&stored[HEADER..]);
    refused(
        &other_header,
        &key,
        &plain,
        0,
        "chunk 0 failed authentication",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_data_key_opens_nothing() {
    let (plain, stored) = stored(&DataKey::generate()).await;
    refused(
        &stored,
        &DataKey::generate(),
        &plain,
        0,
        "chunk 0 failed authentication",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_version_or_codec_is_unsupported_not_damaged() {
    let key = DataKey::generate();
    let (_, stored) = stored(&key).await;
    for (at, value) in [(8, 2u8), (9, 7u8)] {
        let mut newer = stored.clone();
        newer[at] = value;
        let (e, out) = open(&newer, &key).await.unwrap_err();
        assert!(matches!(e, PipelineError::Unsupported(_)), "{e}");
        assert!(out.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_checksum_must_match() {
    let key = DataKey::generate();
    let (plain, stored) = stored(&key).await;
    let (other, _) = seal(&plain, &key, &opts(Codec::None, CHUNK)).await;
    let wrong = hex::encode(Sha256::digest(&other));
    let mut out = Sink::default();
    let e = decode(
        &stored[..],
        &mut out,
        &key,
        Some(&wrong),
        &Progress::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PipelineError::Integrity(_)), "{e}");
    assert!(e.to_string().contains("sha256 mismatch"), "{e}");
    assert!(
        !out.shut_down,
        "a restore that failed its checksum is not completed"
    );

    // The right one, in capitals and with a newline, is accepted.
    let right = hex::encode_upper(Sha256::digest(&stored)) + "\n";
    let mut out = Sink::default();
    decode(
        &stored[..],
        &mut out,
        &key,
        Some(&right),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert!(out.shut_down);
    assert_eq!(out.bytes, plain);
}

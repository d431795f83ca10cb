//! One conformance suite, run on every backend: the local filesystem, a
//! real Swift (started by scripts/swift.sh) and the same Swift's S3 API.
//! After the suite, each backend is looked at without the Storage API to
//! check that nothing was left behind (partial files, segments, parts).

mod common;

use coffer_storage::{Storage, StorageConfig, StorageError};
use common::*;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) -> bool {
    matches!(r, Err(StorageError::NotFound(_)))
}

/// What every backend must do. Leaves the storage empty.
async fn conformance(s: &Storage) {
    // A large object in uneven pieces: several parts, read back whole.
    let big = data(20 << 20, 7);
    put(s, "a/big.cbk", &big).await.unwrap();
    assert_eq!(s.size("a/big.cbk").await.unwrap(), big.len() as u64);
    assert_eq!(sha(&get(s, "a/big.cbk").await.unwrap()), sha(&big));

    // Small and empty objects.
    put(s, "a/small.cbk", b"hello").await.unwrap();
    put(s, "ab.cbk", b"x").await.unwrap();
    put(s, "b/c/deep.cbk", b"deep").await.unwrap();
    put(s, "empty.cbk", b"").await.unwrap();
    assert_eq!(get(s, "a/small.cbk").await.unwrap(), b"hello");
    assert_eq!(get(s, "empty.cbk").await.unwrap(), b"");
    assert_eq!(s.size("empty.cbk").await.unwrap(), 0);

    // Listing: by string prefix, sorted, only what is under the prefix.
    let list = |p: &'static str| async move { s.list(p).await.unwrap() };
    assert_eq!(list("a/").await, ["a/big.cbk", "a/small.cbk"]);
    assert_eq!(list("a").await, ["a/big.cbk", "a/small.cbk", "ab.cbk"]);
    assert_eq!(list("a/s").await, ["a/small.cbk"]);
    assert_eq!(list("b/").await, ["b/c/deep.cbk"]);
    assert_eq!(
        list("").await,
        [
            "a/big.cbk",
            "a/small.cbk",
            "ab.cbk",
            "b/c/deep.cbk",
            "empty.cbk"
        ]
    );
    assert!(list("nothing/").await.is_empty());

    // Aborted with several parts sent or in flight, or dropped without
    // shutdown: nothing appears under the key.
    let mut w = s.writer("a/aborted.cbk").await.unwrap();
    w.write_all(&data(44 << 20, 3)).await.unwrap();
    w.abort().await.unwrap();
    let mut w = s.writer("a/dropped.cbk").await.unwrap();
    w.write_all(&data(17 << 20, 4)).await.unwrap();
    drop(w);
    let mut w = s.writer("a/unfinished.cbk").await.unwrap();
    w.write_all(b"half").await.unwrap();
    w.flush().await.unwrap();
    assert_eq!(list("a/").await, ["a/big.cbk", "a/small.cbk"]);
    assert!(not_found(s.size("a/aborted.cbk").await));
    assert!(not_found(s.size("a/unfinished.cbk").await));
    w.abort().await.unwrap();

    // Concurrent writers of different keys.
    let objects: Vec<Vec<u8>> = (0..4).map(|i| data((6 << 20) + i, 20 + i as u64)).collect();
    let keys: Vec<String> = (0..4).map(|i| format!("c/{i}")).collect();
    let puts = keys.iter().zip(&objects).map(|(k, d)| put(s, k, d));
    for r in futures::future::join_all(puts).await {
        r.unwrap();
    }
    for (k, d) in keys.iter().zip(&objects) {
        assert_eq!(sha(&get(s, k).await.unwrap()), sha(d), "{k}");
    }
    assert_eq!(list("c/").await, keys);

    // Bad keys are refused the same way everywhere.
    for bad in ["", "/abs", "a/", "a/../b", ".segments/x"] {
        let e = s.writer(bad).await.err();
        assert!(matches!(e, Some(StorageError::Config(_))), "{bad:?}: {e:?}");
    }

    // Delete: gone for reader and size; deleting the absent is fine.
    for key in list("").await {
        s.delete(&key).await.unwrap();
    }
    s.delete("a/big.cbk").await.unwrap();
    s.delete("never/was.cbk").await.unwrap();
    assert!(not_found(s.size("a/big.cbk").await));
    assert!(not_found(s.reader("a/big.cbk").await));
    assert!(list("").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let s = Storage::connect(&StorageConfig::Fs { root: root.clone() })
        .await
        .unwrap();
    assert_eq!(
        s.location("k.cbk"),
        format!("fs://{}/k.cbk", root.display())
    );
    conformance(&s).await;
    // Background discards of dropped uploads finish quickly on a disk.
    for _ in 0..50 {
        if files_under(&root).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift() {
    swift_up();
    let container = unique("conf");
    let s = Storage::connect(&common::swift(&container, "backups/daily"))
        .await
        .unwrap();
    assert_eq!(
        s.location("k"),
        format!("swift://{container}/backups/daily/k")
    );
    conformance(&s).await;
    // Large objects' segments went with them, or with their aborted uploads.
    RawSwift::login("test:tester")
        .await
        .assert_empty(&[&container])
        .await;
    // With no prefix, segments sit next to the objects and stay unlisted.
    let s = Storage::connect(&common::swift(&container, ""))
        .await
        .unwrap();
    put(&s, "big", &data(9 << 20, 1)).await.unwrap();
    assert_eq!(s.list("").await.unwrap(), ["big"]);
    s.delete("big").await.unwrap();
    RawSwift::login("test:tester")
        .await
        .assert_empty(&[&container])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_swift() {
    swift_up();
    let bucket = unique("s3conf");
    // On Swift's S3 API a bucket is a container: the Swift backend makes it.
    Storage::connect(&common::swift(&bucket, "")).await.unwrap();
    let s = Storage::connect(&s3(&endpoint(), &bucket, "backups"))
        .await
        .unwrap();
    assert_eq!(s.location("k"), format!("s3://{bucket}/backups/k"));
    conformance(&s).await;
    // s3api keeps multipart parts in "<bucket>+segments".
    RawSwift::login("test:tester")
        .await
        .assert_empty(&[&bucket, &format!("{bucket}+segments")])
        .await;

    let missing = Storage::connect(&s3(&endpoint(), &unique("nobucket"), "")).await;
    assert!(
        matches!(&missing, Err(StorageError::Config(m)) if m.contains("does not exist")),
        "{missing:?}"
    );
}

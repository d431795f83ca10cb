//! One conformance suite run on every backend: the local filesystem, a real
//! Swift (started by scripts/swift.sh) and the same Swift's S3 API. Then
//! the faults: a full filesystem, a Swift container over quota, a service
//! that cannot be reached.

use coffer_storage::{Storage, StorageConfig, StorageError};
use sha2::{Digest, Sha256};
use std::process::Command;
use std::sync::Once;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AUTH: &str = "http://127.0.0.1:8080/auth/v1.0";

fn swift_up() {
    static START: Once = Once::new();
    START.call_once(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/swift.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

fn swift(container: &str) -> StorageConfig {
    StorageConfig::Swift {
        auth_url: AUTH.into(),
        user: "test:tester".into(),
        key: "testing".into(),
        container: container.into(),
        prefix: String::new(),
    }
}

fn s3(endpoint: &str, bucket: &str) -> StorageConfig {
    StorageConfig::S3 {
        endpoint: endpoint.into(),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        access_key_id: "test:tester".into(),
        secret_access_key: "testing".into(),
        prefix: "backups".into(),
    }
}

/// Deterministic incompressible bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn put(s: &Storage, key: &str, bytes: &[u8]) -> Result<(), std::io::Error> {
    let mut w = s.writer(key).await.map_err(StorageError::into_io)?;
    // In uneven pieces, as the pipeline writes frames.
    for piece in bytes.chunks(1_000_003) {
        w.write_all(piece).await?;
    }
    w.shutdown().await
}

async fn get(s: &Storage, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    s.reader(key)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

async fn conformance(s: Storage) {
    let big = data(20 << 20, 7);
    put(&s, "a/big.cbk", &big).await.unwrap();
    let back = get(&s, "a/big.cbk").await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&big));
    assert_eq!(s.size("a/big.cbk").await.unwrap(), big.len() as u64);
    put(&s, "a/small.cbk", b"hello").await.unwrap();
    put(&s, "b/other.cbk", b"x").await.unwrap();
    put(&s, "empty.cbk", b"").await.unwrap();
    assert_eq!(get(&s, "empty.cbk").await, b"");
    assert_eq!(
        s.list("a/").await.unwrap(),
        vec!["a/big.cbk".to_string(), "a/small.cbk".to_string()]
    );

    // Not shut down, or aborted: nothing appears.
    let mut w = s.writer("a/partial.cbk").await.unwrap();
    w.write_all(&data(9 << 20, 3)).await.unwrap();
    w.abort().await.unwrap();
    let mut w = s.writer("a/dropped.cbk").await.unwrap();
    w.write_all(b"half").await.unwrap();
    drop(w);
    assert_eq!(s.list("a/").await.unwrap().len(), 2);
    let partial = s.size("a/partial.cbk").await;
    assert!(
        matches!(partial, Err(StorageError::NotFound(_))),
        "{partial:?}"
    );

    // Concurrent writers of different keys.
    let (x, y) = (data(6 << 20, 11), data(6 << 20, 12));
    let (r1, r2) = tokio::join!(put(&s, "c/x", &x), put(&s, "c/y", &y));
    r1.unwrap();
    r2.unwrap();
    assert_eq!(get(&s, "c/x").await, x);
    assert_eq!(get(&s, "c/y").await, y);

    for key in [
        "a/big.cbk",
        "a/small.cbk",
        "b/other.cbk",
        "empty.cbk",
        "c/x",
        "c/y",
    ] {
        s.delete(key).await.unwrap();
    }
    s.delete("a/big.cbk").await.unwrap(); // absent is fine
    assert!(matches!(
        s.size("a/big.cbk").await,
        Err(StorageError::NotFound(_))
    ));
    assert!(s.reader("a/big.cbk").await.is_err());
    assert!(
        s.list("").await.unwrap().is_empty(),
        "{:?}",
        s.list("").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::Fs {
        root: dir.path().join("backups"),
    };
    let s = Storage::connect(&config).await.unwrap();
    assert_eq!(
        s.location("k.cbk"),
        format!("fs://{}/k.cbk", dir.path().join("backups").display())
    );
    conformance(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_backend() {
    swift_up();
    let s = Storage::connect(&swift(&unique("conf"))).await.unwrap();
    assert!(s.location("k").starts_with("swift://conf-"));
    conformance(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend() {
    swift_up();
    let bucket = unique("s3conf");
    // The bucket is the Swift container: create it through Swift.
    Storage::connect(&swift(&bucket)).await.unwrap();
    let s = Storage::connect(&s3("http://127.0.0.1:8080", &bucket))
        .await
        .unwrap();
    assert!(s.location("k").starts_with("s3://s3conf-"));
    conformance(s).await;
    let missing = Storage::connect(&s3("http://127.0.0.1:8080", &unique("nobucket"))).await;
    assert!(
        matches!(missing, Err(StorageError::Config(_))),
        "{missing:?}"
    );
}

/// Unmounts when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_filesystem_is_full_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small");
    std::fs::create_dir_all(&root).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mounting a tmpfs needs root");
    let _guard = Tmpfs(root.clone());
    let s = Storage::connect(&StorageConfig::Fs { root }).await.unwrap();
    let e = put(&s, "big.cbk", &data(10 << 20, 5)).await.unwrap_err();
    assert!(e.to_string().contains("storage full"), "{e}");
    assert!(s.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_quota_is_full() {
    swift_up();
    let container = unique("quota");
    let s = Storage::connect(&swift(&container)).await.unwrap();
    // A 1 MB quota on the container.
    let out = Command::new("swift")
        .args(["-A", AUTH, "-U", "test:tester", "-K", "testing", "post"])
        .args(["-m", "quota-bytes:1000000", &container])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = put(&s, "big.cbk", &data(12 << 20, 9)).await.unwrap_err();
    assert!(e.to_string().contains("storage full"), "{e}");
    assert!(s.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_service_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StorageConfig::Swift {
        auth_url: format!("http://127.0.0.1:{port}/auth/v1.0"),
        user: "u".into(),
        key: "k".into(),
        container: "c".into(),
        prefix: String::new(),
    };
    let e = Storage::connect(&config).await.unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
    let e = Storage::connect(&s3(&format!("http://127.0.0.1:{port}"), "b"))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
}

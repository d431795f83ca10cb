//! Failures a backup meets, on real backends: a full filesystem, a Swift
//! container over quota, a service that cannot be reached or cuts the
//! connection mid-upload, and a Swift token revoked mid-upload. Each
//! failure must be typed (Full, Unavailable) — through the io errors an
//! ObjectWriter returns too — and leave nothing in storage.

mod common;

use coffer_storage::{Storage, StorageConfig, StorageError};
use common::proxy::CutProxy;
use common::*;
use std::process::Command;
use tokio::io::AsyncWriteExt;

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (this test runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_full(e: &std::io::Error) -> bool {
    matches!(StorageError::from_io(e), StorageError::Full(_))
        && e.to_string().starts_with("storage full")
}

fn is_unavailable(e: &std::io::Error) -> bool {
    matches!(StorageError::from_io(e), StorageError::Unavailable(_))
        && e.to_string().starts_with("storage unavailable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_filesystem_is_full_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small");
    let _tmpfs = Tmpfs::mount(&root, "4m");
    let s = Storage::connect(&StorageConfig::Fs { root: root.clone() })
        .await
        .unwrap();
    let e = put(&s, "big.cbk", &data(10 << 20, 5)).await.unwrap_err();
    assert!(is_full(&e), "{e}");
    assert!(s.list("").await.unwrap().is_empty());
    // The partial file went too: the space is free again.
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
    put(&s, "fits.cbk", &data(3 << 20, 6)).await.unwrap();
    assert_eq!(s.list("").await.unwrap(), ["fits.cbk"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_over_quota_is_full_and_leaves_nothing() {
    swift_up();
    let raw = RawSwift::login("test:tester").await;
    let container = unique("quota");
    let s = Storage::connect(&common::swift(&container, "q"))
        .await
        .unwrap();
    raw.set_quota(&container, 1_000_000).await;
    // One request (smaller than a part), then a multipart upload.
    for (key, len) in [("five.cbk", 5 << 20), ("twenty.cbk", 20 << 20)] {
        let e = put(&s, key, &data(len, 9)).await.unwrap_err();
        assert!(is_full(&e), "{key}: {e}");
    }
    assert!(s.list("").await.unwrap().is_empty());
    raw.assert_empty(&[&container]).await;
    // Under the quota, all is well.
    put(&s, "small.cbk", &data(500_000, 1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_over_quota_is_full() {
    swift_up();
    let raw = RawSwift::login("test:tester").await;
    let bucket = unique("s3quota");
    raw.create(&bucket).await;
    raw.set_quota(&bucket, 1_000_000).await;
    let s = Storage::connect(&s3(&endpoint(), &bucket, ""))
        .await
        .unwrap();
    let e = put(&s, "five.cbk", &data(5 << 20, 9)).await.unwrap_err();
    assert!(is_full(&e), "{e}");
    assert!(s.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth = format!("http://127.0.0.1:{port}/auth/v1.0");
    let e = Storage::connect(&swift_as("test:tester", &auth, "c", ""))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let e = Storage::connect(&s3(&format!("http://127.0.0.1:{port}"), "b", ""))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}

/// A Storage that reaches Swift through `proxy` (user test:proxied, whose
/// storage URL names the host it logged in at).
async fn through(proxy: &CutProxy, container: &str) -> Storage {
    let auth = format!("http://{}/auth/v1.0", proxy.addr());
    Storage::connect(&swift_as("test:proxied", &auth, container, "mid"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_gone_after_connect_is_unavailable() {
    swift_up();
    let proxy = CutProxy::start(&swift_addr()).await;
    let container = unique("gone");
    let s = through(&proxy, &container).await;
    put(&s, "before.cbk", b"ok").await.unwrap();
    proxy.off();
    let e = put(&s, "after.cbk", &data(20 << 20, 2)).await.unwrap_err();
    assert!(is_unavailable(&e), "{e}");
    let e = s.list("").await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let e = s.size("before.cbk").await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    proxy.pass();
    assert_eq!(s.list("").await.unwrap(), ["before.cbk"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_upload_is_unavailable_and_leaves_nothing() {
    swift_up();
    let proxy = CutProxy::start(&swift_addr()).await;
    let container = unique("cut");
    let s = through(&proxy, &container).await;
    // Every connection dies after 3 MiB: no 8 MiB part gets through, the
    // small requests that discard the upload do.
    proxy.cut_after(3 << 20);
    let e = put(&s, "big.cbk", &data(20 << 20, 3)).await.unwrap_err();
    assert!(is_unavailable(&e), "{e}");
    proxy.pass();
    assert!(s.list("").await.unwrap().is_empty());
    RawSwift::login("test:tester")
        .await
        .assert_empty(&[&container])
        .await;

    // Reading: cut mid-object, the reader's error says why.
    let direct = Storage::connect(&common::swift(&container, "mid"))
        .await
        .unwrap();
    let object = data(20 << 20, 4);
    put(&direct, "stored.cbk", &object).await.unwrap();
    proxy.cut_after(3 << 20);
    let e = get(&s, "stored.cbk").await.unwrap_err();
    assert!(is_unavailable(&e), "{e}");
    proxy.pass();
    assert_eq!(get(&s, "stored.cbk").await.unwrap(), object);
    direct.delete("stored.cbk").await.unwrap();
}

/// Revoke a tempauth token: drop it from memcached, where tempauth keeps
/// it (under the md5 of "AUTH_/token/<token>").
async fn revoke(token: &str) {
    use md5::{Digest, Md5};
    use tokio::io::{AsyncBufReadExt, BufReader};
    let key = hex::encode(Md5::digest(format!("AUTH_/token/{token}")));
    let mut conn = tokio::net::TcpStream::connect("127.0.0.1:11211")
        .await
        .expect("memcached on 127.0.0.1:11211");
    conn.write_all(format!("delete {key}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).await.unwrap();
    assert_eq!(answer.trim(), "DELETED", "revoking the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_is_renewed_even_mid_upload() {
    swift_up();
    if std::env::var_os("COFFER_TEST_SWIFT_AUTH").is_some() {
        // The memcached of someone else's Swift is not ours to edit.
        return;
    }
    let container = unique("token");
    let s = Storage::connect(&swift_as("test:revoked", &auth_url(), &container, ""))
        .await
        .unwrap();
    // tempauth hands a user its current token: the one the Storage holds.
    let old = RawSwift::login("test:revoked").await.token;
    put(&s, "one.cbk", b"1").await.unwrap();

    revoke(&old).await;
    assert_eq!(s.size("one.cbk").await.unwrap(), 1);
    let renewed = RawSwift::login("test:revoked").await.token;
    assert_ne!(renewed, old, "the token was not revoked");

    // Mid-upload: a part stored with the old token, the rest sent after it
    // died (from OpenDAL's tasks, where only the transport can renew it).
    let object = data(30 << 20, 8);
    let mut w = s.writer("two.cbk").await.unwrap();
    w.write_all(&object[..20 << 20]).await.unwrap();
    let raw = RawSwift::login("test:tester").await;
    let stored = || async {
        let names = raw.names(&container).await;
        names.iter().any(|n| n.starts_with(".segments/"))
    };
    for _ in 0..100 {
        if stored().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored().await, "no part was stored");
    revoke(&renewed).await;
    w.write_all(&object[20 << 20..]).await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(get(&s, "two.cbk").await.unwrap(), object);
    for key in s.list("").await.unwrap() {
        s.delete(&key).await.unwrap();
    }
    raw.assert_empty(&[&container]).await;
}

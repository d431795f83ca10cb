//! What the storage tests share: a running Swift (started by
//! scripts/swift.sh), configurations, test data, a raw Swift client to see
//! what the Storage API hides, and a TCP proxy that breaks connections.

#![allow(dead_code)] // each test binary uses its own part of this

pub mod proxy;

use coffer_storage::{Storage, StorageConfig, StorageError};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEFAULT_AUTH: &str = "http://127.0.0.1:8080/auth/v1.0";

/// The tempauth URL of the Swift under test: `COFFER_TEST_SWIFT_AUTH`, or
/// the one `scripts/swift.sh start` runs.
pub fn auth_url() -> String {
    std::env::var("COFFER_TEST_SWIFT_AUTH").unwrap_or_else(|_| DEFAULT_AUTH.to_string())
}

/// `http://host:port` of the Swift under test (its S3 API is there too).
pub fn endpoint() -> String {
    let url = auth_url();
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_string(),
        None => url,
    }
}

/// `host:port` of the Swift under test.
pub fn swift_addr() -> String {
    endpoint()
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Make sure Swift answers: start it with scripts/swift.sh (idempotent, and
/// serialized across test binaries by the script's lock) unless
/// COFFER_TEST_SWIFT_AUTH names one that someone else runs.
pub fn swift_up() {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if *started {
        return;
    }
    if std::env::var_os("COFFER_TEST_SWIFT_AUTH").is_none() {
        let script = &format!(
            "{}/../../scripts/swift.sh",
            // The checkout being tested (cargo sets it at run time); a build
            // reused from another checkout would bake in that one's path.
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
        );
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .expect("running bash scripts/swift.sh start");
        assert!(
            out.status.success(),
            "these tests need a Swift; `bash scripts/swift.sh start` failed (install the \
             packages with scripts/install-test-deps.sh, or point COFFER_TEST_SWIFT_AUTH at \
             a running tempauth Swift):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *started = true;
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn swift_as(user: &str, auth_url: &str, container: &str, prefix: &str) -> StorageConfig {
    StorageConfig::Swift {
        auth_url: auth_url.into(),
        user: user.into(),
        key: "testing".into(),
        container: container.into(),
        prefix: prefix.into(),
    }
}

pub fn swift(container: &str, prefix: &str) -> StorageConfig {
    swift_as("test:tester", &auth_url(), container, prefix)
}

pub fn s3(endpoint: &str, bucket: &str, prefix: &str) -> StorageConfig {
    StorageConfig::S3 {
        endpoint: endpoint.into(),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        access_key_id: "test:tester".into(),
        secret_access_key: "testing".into(),
        prefix: prefix.into(),
    }
}

/// Deterministic incompressible bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
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

/// Store `bytes` under `key` through an ObjectWriter, in uneven pieces as
/// the pipeline writes its frames.
pub async fn put(s: &Storage, key: &str, bytes: &[u8]) -> Result<(), std::io::Error> {
    let mut w = s.writer(key).await.map_err(StorageError::into_io)?;
    for piece in bytes.chunks(1_000_003) {
        w.write_all(piece).await?;
    }
    w.shutdown().await
}

pub async fn get(s: &Storage, key: &str) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    s.reader(key)
        .await
        .map_err(StorageError::into_io)?
        .read_to_end(&mut out)
        .await?;
    Ok(out)
}

/// Swift as seen without the Storage API: every name in a container,
/// segments included.
pub struct RawSwift {
    http: reqwest013::Client,
    pub token: String,
    pub storage_url: String,
}

impl RawSwift {
    pub async fn login(user: &str) -> RawSwift {
        // As coffer-storage does: reqwest needs a TLS provider, even for http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest013::Client::new();
        let resp = http
            .get(auth_url())
            .header("X-Storage-User", user)
            .header("X-Storage-Pass", "testing")
            .send()
            .await
            .expect("Swift login");
        assert!(resp.status().is_success(), "login: {}", resp.status());
        let header = |n: &str| resp.headers()[n].to_str().unwrap().to_string();
        RawSwift {
            token: header("x-auth-token"),
            storage_url: header("x-storage-url"),
            http,
        }
    }

    /// Every object name in `container` (none if it does not exist).
    pub async fn names(&self, container: &str) -> Vec<String> {
        let resp = self
            .http
            .get(format!("{}/{container}?format=json", self.storage_url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .unwrap();
        if resp.status() == 404 {
            return Vec::new();
        }
        assert!(resp.status().is_success(), "listing: {}", resp.status());
        let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        body.as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Wait (a little) until `container` and `others` hold nothing at all:
    /// uploads dropped unfinished are discarded in the background.
    pub async fn assert_empty(&self, containers: &[&str]) {
        let mut left = Vec::new();
        for _ in 0..50 {
            left.clear();
            for c in containers {
                left.extend(self.names(c).await.into_iter().map(|n| format!("{c}/{n}")));
            }
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("left behind in Swift: {left:?}");
    }

    pub async fn set_quota(&self, container: &str, bytes: u64) {
        let resp = self
            .http
            .post(format!("{}/{container}", self.storage_url))
            .header("X-Auth-Token", &self.token)
            .header("X-Container-Meta-Quota-Bytes", bytes.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "quota: {}", resp.status());
    }

    pub async fn create(&self, container: &str) {
        let resp = self
            .http
            .put(format!("{}/{container}", self.storage_url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "create: {}", resp.status());
    }
}

/// Every file under `dir`, at any depth (partial uploads included).
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

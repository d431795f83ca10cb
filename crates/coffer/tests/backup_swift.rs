//! Backups on a real OpenStack Swift (single node, tempauth, started by
//! scripts/swift.sh) and on the same server's S3 API: MariaDB full +
//! incremental restored into a new instance; Redis through S3; and the
//! storage going away mid-backup (a proxy that cuts every connection).

mod common;

#[path = "common/backup.rs"]
mod backup;
#[path = "common/proxy.rs"]
mod proxy;

use backup::{active, backup, start_backup, wait_backup, PW};
use common::{client, Coffer};
use proxy::CuttingProxy;
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

const SWIFT: &str = "127.0.0.1:8080";

fn swift_up() {
    static START: Once = Once::new();
    START.call_once(|| {
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
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/swift.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Object names in a Swift container (empty if it does not exist).
fn swift_list(container: &str) -> Vec<String> {
    let out = Command::new("swift")
        .args([
            "-A",
            &format!("http://{SWIFT}/auth/v1.0"),
            "-U",
            "test:tester",
            "-K",
            "testing",
        ])
        .args(["list", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Create a container (an S3 bucket on Swift's s3api).
fn swift_post(container: &str) {
    let out = Command::new("swift")
        .args([
            "-A",
            &format!("http://{SWIFT}/auth/v1.0"),
            "-U",
            "test:tester",
            "-K",
            "testing",
        ])
        .args(["post", container])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

fn coffer_with_storage(storage: &str) -> Coffer {
    Coffer::start_roles(&["up"], &[("COFFER__BACKUP__STORAGE", storage)])
}

fn sql(ip: &str, q: &str) -> String {
    client("mariadb", ip, "app", PW, "app", q)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn mariadb_full_and_incremental_on_swift() {
    swift_up();
    let container = unique("coffer-swift");
    let c = coffer_with_storage(&format!(
        r#"{{ kind = "swift", auth_url = "http://{SWIFT}/auth/v1.0", user = "test:tester", key = "testing", container = "{container}" }}"#
    ));
    let (src, ip) = active(&c, "src", "mariadb", None);
    sql(&ip, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))");
    sql(&ip, "INSERT INTO t SELECT seq, 'a' FROM seq_1_to_3000");
    let full = backup(&c, &src, "full", false);
    assert!(
        full["locationRef"]
            .as_str()
            .unwrap()
            .starts_with("swift://"),
        "{full}"
    );
    sql(&ip, "INSERT INTO t SELECT seq, 'b' FROM seq_3001_to_4000");
    let incr = backup(&c, &src, "incr", true);
    assert_eq!(incr["parent_id"], full["id"]);
    sql(
        &ip,
        "INSERT INTO t SELECT seq, 'late' FROM seq_4001_to_4100",
    );
    assert_eq!(
        swift_list(&container).len(),
        2,
        "{:?}",
        swift_list(&container)
    );

    let (_, rip) = active(&c, "restored", "mariadb", incr["id"].as_str());
    assert_eq!(sql(&rip, "SELECT COUNT(*) FROM t"), "4000");
    assert_eq!(sql(&rip, "SELECT COUNT(*) FROM t WHERE v = 'b'"), "1000");

    let full_id = full["id"].as_str().unwrap();
    assert_eq!(
        c.http("DELETE", &format!("/backups/{full_id}"), None).0,
        202
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.http("GET", &format!("/backups/{full_id}"), None).0 != 404 {
        assert!(std::time::Instant::now() < deadline, "{}", c.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        swift_list(&container).is_empty(),
        "{:?}",
        swift_list(&container)
    );
}

fn s3_storage(endpoint: &str, bucket: &str) -> String {
    format!(
        r#"{{ kind = "s3", endpoint = "http://{endpoint}", bucket = "{bucket}", region = "us-east-1", access_key_id = "test:tester", secret_access_key = "testing" }}"#
    )
}

#[test]
fn redis_backup_restores_through_s3() {
    swift_up();
    let bucket = unique("coffer-s3");
    swift_post(&bucket);
    let c = coffer_with_storage(&s3_storage(SWIFT, &bucket));
    let (src, ip) = active(&c, "rd", "redis", None);
    for i in 0..50 {
        client("redis", &ip, "app", PW, "", &format!("SET k{i} v{i}")).unwrap();
    }
    let b = backup(&c, &src, "s3-full", false);
    assert!(
        b["locationRef"].as_str().unwrap().starts_with("s3://"),
        "{b}"
    );
    assert_eq!(swift_list(&bucket).len(), 1);
    let (_, rip) = active(&c, "rd2", "redis", b["id"].as_str());
    let got = client("redis", &rip, "app", PW, "", "GET k42").unwrap();
    assert_eq!(got.trim(), "v42");
}

#[test]
fn storage_cut_mid_backup_fails_it_cleanly() {
    swift_up();
    let bucket = unique("coffer-cut");
    swift_post(&bucket);
    // Everything to storage goes through a proxy that dies after 1 MiB.
    let proxy = CuttingProxy::start(SWIFT, 1 << 20);
    let c = coffer_with_storage(&s3_storage(&format!("127.0.0.1:{}", proxy.port), &bucket));
    let (src, ip) = active(&c, "src", "mariadb", None);
    sql(
        &ip,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARBINARY(1024))",
    );
    sql(
        &ip,
        "INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_8192",
    );
    let id = start_backup(&c, &src, "cut", false);
    let b = wait_backup(&c, &id, Duration::from_secs(300));
    assert!(
        proxy.is_cut(),
        "the proxy passed {} bytes",
        proxy.upstream_bytes()
    );
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(
        b["fail_reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{b}"
    );
    let inst = c.wait_status(&src, &["ACTIVE", "ERROR"], Duration::from_secs(30));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    assert_eq!(sql(&ip, "SELECT COUNT(*) FROM t"), "8192");
    // No object (complete or partial) is listed under the bucket.
    assert!(swift_list(&bucket).is_empty(), "{:?}", swift_list(&bucket));
}

#[test]
fn postgresql_and_redis_full_on_swift() {
    swift_up();
    let container = unique("coffer-swift-pr");
    let c = coffer_with_storage(&format!(
        r#"{{ kind = "swift", auth_url = "http://{SWIFT}/auth/v1.0", user = "test:tester", key = "testing", container = "{container}" }}"#
    ));
    let (pg, pg_ip) = active(&c, "pg", "postgresql", None);
    let psql = |ip: &str, q: &str| client("postgresql", ip, "app", PW, "app", q).unwrap();
    psql(
        &pg_ip,
        "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 2500) g",
    );
    let (rd, rd_ip) = active(&c, "rd", "redis", None);
    client("redis", &rd_ip, "app", PW, "", "SET answer 42").unwrap();

    let pg_backup = backup(&c, &pg, "pg-full", false);
    let rd_backup = backup(&c, &rd, "rd-full", false);
    assert_eq!(
        swift_list(&container).len(),
        2,
        "{:?}",
        swift_list(&container)
    );

    let (_, pg2) = active(&c, "pg2", "postgresql", pg_backup["id"].as_str());
    assert_eq!(psql(&pg2, "SELECT COUNT(*) FROM t").trim(), "2500");
    let (_, rd2) = active(&c, "rd2", "redis", rd_backup["id"].as_str());
    let got = client("redis", &rd2, "app", PW, "", "GET answer").unwrap();
    assert_eq!(got.trim(), "42");
}

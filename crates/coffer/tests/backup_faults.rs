//! The faults a backup must survive, through the real binary: a byte
//! flipped in a stored object, the wrong master key, storage that fills up
//! mid-backup, and coffer killed with -9 while a backup runs.

mod common;

#[path = "common/backup.rs"]
mod backup;

use backup::{active, backup, create, start_backup, stored_objects, wait_backup, PW};
use common::{client, Coffer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn sql(ip: &str, q: &str) -> String {
    client("mariadb", ip, "app", PW, "app", q)
        .unwrap()
        .trim()
        .to_string()
}

/// A MariaDB instance holding `mib` MiB of incompressible rows.
fn loaded(c: &Coffer, name: &str, mib: u32) -> (String, String) {
    let (id, ip) = active(c, name, "mariadb", None);
    sql(
        &ip,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARBINARY(1024))",
    );
    sql(
        &ip,
        &format!(
            "INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_{}",
            mib * 1024
        ),
    );
    (id, ip)
}

#[test]
fn corrupt_object_and_wrong_master_key_fail_the_restore_only() {
    let mut c = Coffer::up();
    let (src, ip) = loaded(&c, "src", 2);
    let good = backup(&c, &src, "good", false);
    let bad = backup(&c, &src, "to-corrupt", false);
    let bad_id = bad["id"].as_str().unwrap();

    // Flip one byte in the middle of the stored object.
    let object = c.state_dir().join("backups").join(format!("{bad_id}.cbk"));
    let mut bytes = std::fs::read(&object).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&object, bytes).unwrap();

    let inst = create(&c, "from-corrupt", "mariadb", Some(bad_id));
    assert_eq!(inst["status"], "ERROR", "{inst}");
    let fault = inst["fault"]["message"].as_str().unwrap();
    assert!(fault.contains("integrity"), "{fault}");
    // Nothing else was touched: the source serves, the backups are listed.
    let src_now = c.wait_status(&src, &["ACTIVE"], Duration::from_secs(5));
    assert_eq!(src_now["operating_status"], "HEALTHY");
    assert_eq!(sql(&ip, "SELECT COUNT(*) FROM t"), "2048");
    let (_, b) = c.http("GET", &format!("/backups/{bad_id}"), None);
    assert_eq!(b["backup"]["status"], "COMPLETED");

    // Another master key cannot open the data key: a clear refusal.
    c.kill9();
    let other_key = c.state_dir().join("other-master.key");
    c.set_env(
        "COFFER__BACKUP__MASTER_KEY_FILE",
        other_key.to_str().unwrap(),
    );
    c.start();
    let good_id = good["id"].as_str().unwrap();
    let inst = create(&c, "wrong-key", "mariadb", Some(good_id));
    assert_eq!(inst["status"], "ERROR", "{inst}");
    let fault = inst["fault"]["message"].as_str().unwrap();
    assert!(fault.contains("master key"), "{fault}");

    // With the right key the same backup restores.
    c.kill9();
    c.set_env("COFFER__BACKUP__MASTER_KEY_FILE", "backup-master.key");
    c.start();
    let (_, rip) = active(&c, "right-key", "mariadb", Some(good_id));
    assert_eq!(sql(&rip, "SELECT COUNT(*) FROM t"), "2048");
}

/// Unmounts a tmpfs when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn storage_full_fails_the_backup_and_nothing_else() {
    let c = Coffer::up();
    let (src, ip) = loaded(&c, "src", 4);
    // Backup storage on a 1 MiB filesystem: 4 MiB of random rows cannot fit.
    let _fs = Tmpfs::mount(&c.state_dir().join("backups"), "1m");
    let id = start_backup(&c, &src, "too-big", false);
    let b = wait_backup(&c, &id, Duration::from_secs(120));
    assert_eq!(b["status"], "FAILED", "{b}");
    let reason = b["fail_reason"].as_str().unwrap().to_lowercase();
    assert!(
        reason.contains("full") || reason.contains("no space"),
        "{reason}"
    );
    // The instance serves again, untouched; no partial object is left.
    let inst = c.wait_status(&src, &["ACTIVE", "ERROR"], Duration::from_secs(10));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    assert_eq!(sql(&ip, "SELECT COUNT(*) FROM t"), "4096");
    sql(&ip, "INSERT INTO t VALUES (0, 'still writable')");
    let left: Vec<String> = stored_objects(&c)
        .into_iter()
        .filter(|f| f != "lost+found")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A FAILED backup can be deleted.
    assert_eq!(c.http("DELETE", &format!("/backups/{id}"), None).0, 202);
}

#[test]
fn coffer_killed_mid_backup_never_leaves_a_false_completed() {
    // gzip at level 9 on incompressible rows: a backup slow enough to be
    // seen running (and killed) on any machine.
    let mut c = Coffer::start_roles(&["up"], &[("COFFER__BACKUP__CODEC", "gzip:9")]);
    let (src, ip) = loaded(&c, "src", 48);
    let id = start_backup(&c, &src, "interrupted", false);
    // While it runs: the instance shows BACKUP and the backup its progress.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, v) = c.http("GET", &format!("/backups/{id}"), None);
        let b = &v["backup"];
        let done = b["progress"]["bytes_done"].as_u64().unwrap_or(0);
        if b["status"] == "BUILDING" && done > 0 {
            assert!(
                b["progress"]["bytes_per_second"].as_u64().unwrap() > 0,
                "{b}"
            );
            let (_, i) = c.http("GET", &format!("/instances/{src}"), None);
            assert_eq!(i["instance"]["status"], "BACKUP", "{i}");
            eprintln!("killing coffer {done} bytes into the backup");
            break;
        }
        assert_ne!(
            b["status"], "COMPLETED",
            "the backup ended before it was seen running"
        );
        assert!(
            Instant::now() < deadline,
            "backup never showed progress\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.kill9();
    c.start();
    let b = wait_backup(&c, &id, Duration::from_secs(300));
    eprintln!("after the restart the backup is {}", b["status"]);
    let inst = c.wait_status(&src, &["ACTIVE", "ERROR"], Duration::from_secs(30));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    match b["status"].as_str().unwrap() {
        "COMPLETED" => {
            // Resumed: it must really restore.
            let (_, rip) = active(&c, "after-crash", "mariadb", b["id"].as_str());
            assert_eq!(sql(&rip, "SELECT COUNT(*) FROM t"), "49152");
        }
        _ => {
            assert!(b["fail_reason"].as_str().is_some(), "{b}");
            let objects = stored_objects(&c);
            assert!(objects.is_empty(), "{objects:?}");
        }
    }
    assert_eq!(sql(&ip, "SELECT COUNT(*) FROM t"), "49152");
}

//! MariaDB backups against real servers: "mariabackup" (full, then an
//! incremental) and "mariadb-dump", each restored into a second, new
//! instance on a loopback address of its own (127.10.220-225.X:3306), and
//! checked with the `mariadb` client as the tenant would use it.
//!
//! Needs `mariadbd`, `mariadb-install-db`, `mariadb`, `mariadb-dump`,
//! `mariabackup` and `mbstream` on the PATH (Debian: `apt-get install
//! mariadb-server mariadb-client mariadb-backup`) and root.

mod backup_support;

use backup_support::*;
use coffer_datastores::mariadb::MariaDb;
use coffer_model::{DatabaseSpec, InstanceId, UserInfo, UserSpec};
use coffer_strategy::{DatastoreManager, Health, InstanceContext};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

const START: Duration = Duration::from_secs(60);
const STOP: Duration = Duration::from_secs(30);

/// SIGKILLs the test's server when dropped, so a failing assertion does not
/// leave a mariadbd behind.
struct KillOnDrop(InstanceContext);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = MariaDb.pid(&self.0) {
            eprintln!("killing leftover mariadbd {pid}");
            let _ = kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// An instance in `base` on 127.10.`net`.X (X from the pid, so concurrent
/// runs differ), with its guard.
fn instance(base: &Path, net: u8) -> (InstanceContext, KillOnDrop) {
    let ctx = InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: base.join("data"),
        conf_dir: base.join("conf"),
        run_dir: base.join("run"),
        log_dir: base.join("log"),
        secret_dir: base.join("secret"),
        ip: Ipv4Addr::new(127, 10, net, (std::process::id() % 250 + 2) as u8),
        port: 3306,
        ram_mb: 256,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    };
    let guard = KillOnDrop(ctx.clone());
    (ctx, guard)
}

fn require_tools() {
    for tool in [
        "mariadbd",
        "mariadb-install-db",
        "mariadb",
        "mariadb-dump",
        "mariabackup",
        "mbstream",
    ] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok();
        assert!(
            found,
            "{tool} not found: apt-get install mariadb-server mariadb-client mariadb-backup"
        );
    }
}

/// A running source instance with database `app` and tenant `app`.
async fn source(base: &Path, net: u8) -> (InstanceContext, KillOnDrop) {
    require_tools();
    let (ctx, guard) = instance(base, net);
    let m = MariaDb::new();
    m.initialize(&ctx).await.unwrap();
    m.render_config(&ctx).await.unwrap();
    m.start(&ctx, START).await.unwrap();
    m.create_databases(&ctx, &[DatabaseSpec { name: "app".into() }])
        .await
        .unwrap();
    m.create_users(
        &ctx,
        &[UserSpec {
            name: "app".into(),
            password: "secret".into(),
            host: "%".into(),
            databases: vec!["app".into()],
        }],
    )
    .await
    .unwrap();
    (ctx, guard)
}

/// The `mariadb` client over TCP as `user`.
async fn client(ctx: &InstanceContext, user: &str, password: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", &ctx.ip.to_string(), "-P", &ctx.port.to_string()])
        .args(["-u", user])
        .arg(format!("-p{password}"))
        .args(["-N", "-B", "-e", sql, "app"])
        .output()
        .await
        .expect("running mariadb")
}

/// The `mariadb` client as `os_admin` over the unix socket.
async fn admin_client(ctx: &InstanceContext, password: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!(
            "--socket={}",
            ctx.run_dir.join("mysqld.sock").display()
        ))
        .args(["-u", "os_admin"])
        .arg(format!("-p{password}"))
        .args(["-N", "-B", "-e", sql])
        .output()
        .await
        .expect("running mariadb")
}

fn secret_files(ctx: &InstanceContext) -> Vec<String> {
    std::fs::read_dir(&ctx.secret_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn app(ctx: &InstanceContext, sql: &str) -> String {
    ok(&client(ctx, "app", "secret", sql).await)
}

/// What the restored instance must look like to the agent and the tenant:
/// healthy, the tenant's rows and password, its own admin password (the
/// source's refused), the agent's admin functions working, the init file
/// gone, and a restart bringing it all back.
async fn check_restored(source: &InstanceContext, restored: &InstanceContext, rows: &str) {
    let m = MariaDb::new();
    assert_eq!(m.health(restored).await, Health::Healthy);
    assert_eq!(
        app(restored, "SELECT GROUP_CONCAT(i ORDER BY i) FROM t").await,
        rows
    );

    let (old, new) = (admin_password(source), admin_password(restored));
    assert_ne!(old, new, "the restore has its own admin password");
    assert!(!admin_client(restored, &old, "SELECT 1")
        .await
        .status
        .success());
    assert_eq!(ok(&admin_client(restored, &new, "SELECT 1").await), "1");
    assert!(!restored.secret_dir.join("rekey.sql").exists());
    assert_eq!(
        secret_files(restored),
        ["os_admin.password"],
        "no tool secrets left"
    );
    let cnf = std::fs::read_to_string(restored.conf_dir.join("my.cnf")).unwrap();
    assert!(!cnf.contains("init-file"), "{cnf}");
    assert!(restored.data_dir.join(".coffer-initialized").exists());

    assert_eq!(m.list_databases(restored).await.unwrap(), ["app"]);
    let users = m.list_users(restored).await.unwrap();
    assert_eq!(
        users,
        [UserInfo {
            name: "app".into(),
            host: "%".into(),
            databases: vec!["app".into()],
        }]
    );
    m.create_users(
        restored,
        &[UserSpec {
            name: "new".into(),
            password: "pw-new".into(),
            host: "%".into(),
            databases: vec!["app".into()],
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        ok(&client(restored, "new", "pw-new", "SELECT 1").await),
        "1"
    );

    // initialize + render_config + start, as the agent does at boot.
    m.stop(restored, STOP).await.unwrap();
    m.initialize(restored).await.unwrap();
    m.render_config(restored).await.unwrap();
    m.start(restored, START).await.unwrap();
    assert_eq!(admin_password(restored), new);
    assert_eq!(
        app(restored, "SELECT GROUP_CONCAT(i ORDER BY i) FROM t").await,
        rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariabackup_full_and_incremental_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _src_guard) = source(&dir.path().join("src"), 220).await;
    app(
        &src,
        "CREATE TABLE t(i INT PRIMARY KEY, s VARCHAR(200)); \
         INSERT INTO t VALUES (1, REPEAT('a', 200)), (2, 'b'), (3, 'c')",
    )
    .await;

    let strategy = backup("mariabackup");
    assert!(strategy.supports_incremental());
    let full_file = dir.path().join("full.xb");
    let full = backup_to_file(&*strategy, &src, &dir.path().join("w1"), None, &full_file).await;
    assert_eq!(full["tool"], "mariabackup");
    assert_eq!(full["incremental"], false);
    assert_eq!(full["backup_type"], "full-backuped");
    assert_eq!(full["from_lsn"], 0);
    assert!(full["to_lsn"].as_u64().unwrap() > 0, "{full}");
    assert_eq!(full["bytes"], std::fs::metadata(&full_file).unwrap().len());

    app(
        &src,
        "INSERT INTO t VALUES (4, 'd'), (5, 'e'); DELETE FROM t WHERE i = 2",
    )
    .await;
    let inc_file = dir.path().join("inc.xb");
    let inc = backup_to_file(
        &*strategy,
        &src,
        &dir.path().join("w2"),
        Some(&full),
        &inc_file,
    )
    .await;
    assert_eq!(
        secret_files(&src),
        ["os_admin.password"],
        "defaults files removed"
    );
    assert_eq!(inc["incremental"], true);
    assert_eq!(inc["backup_type"], "incremental");
    assert_eq!(inc["from_lsn"], full["to_lsn"]);
    assert!(
        inc["last_lsn"].as_u64() > full["last_lsn"].as_u64(),
        "{inc}"
    );

    // Written after the last backup: must not be restored.
    app(&src, "INSERT INTO t VALUES (6, 'f')").await;

    let (dst, _dst_guard) = instance(&dir.path().join("dst"), 221);
    let pieces = [(full_file.clone(), full.clone()), (inc_file, inc)];
    restore_files(
        &*restore("mariabackup"),
        &dst,
        &dir.path().join("rw"),
        &pieces,
    )
    .await
    .unwrap();
    check_restored(&src, &dst, "1,3,4,5").await;

    // The full backup alone restores the state it saw.
    let (only_full, _g) = instance(&dir.path().join("full-only"), 222);
    restore_files(
        &*restore("mariabackup"),
        &only_full,
        &dir.path().join("rw-full"),
        &pieces[..1],
    )
    .await
    .unwrap();
    assert_eq!(
        app(&only_full, "SELECT GROUP_CONCAT(i ORDER BY i) FROM t").await,
        "1,2,3"
    );
    MariaDb.stop(&only_full, STOP).await.unwrap();
    MariaDb.stop(&dst, STOP).await.unwrap();
    MariaDb.stop(&src, STOP).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariabackup_refuses_damaged_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _src_guard) = source(&dir.path().join("src"), 223).await;
    app(
        &src,
        "CREATE TABLE t(i INT PRIMARY KEY); INSERT INTO t VALUES (1)",
    )
    .await;
    let strategy = backup("mariabackup");
    let full_file = dir.path().join("full.xb");
    let full = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &full_file).await;
    MariaDb.stop(&src, STOP).await.unwrap();
    let bad = truncated(&full_file);
    let r = restore("mariabackup");

    // The recorded length catches the cut...
    let (a, _ga) = instance(&dir.path().join("a"), 224);
    let e = restore_files(
        &*r,
        &a,
        &dir.path().join("wa"),
        &[(bad.clone(), full.clone())],
    )
    .await
    .unwrap_err();
    eprintln!("truncated piece: {e}");
    // ...and so does mbstream itself, without it.
    let (b, _gb) = instance(&dir.path().join("b"), 225);
    let e = restore_files(
        &*r,
        &b,
        &dir.path().join("wb"),
        &[(bad, without_lengths(&full))],
    )
    .await
    .unwrap_err();
    eprintln!("truncated piece, no length recorded: {e}");
    assert!(e.to_string().contains("mbstream"), "{e}");
    assert_eq!(MariaDb.pid(&b), None);

    // An incremental can not come first; a restore into a used data
    // directory is refused.
    let (c, _gc) = instance(&dir.path().join("c"), 229);
    r.begin(&c, &dir.path().join("wc")).await.unwrap();
    let mut inc = full.clone();
    inc["incremental"] = true.into();
    assert!(r.piece(&c, &dir.path().join("wc"), 0, &inc).await.is_err());
    let e = r.begin(&src, &dir.path().join("wd")).await.unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_dump_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _src_guard) = source(&dir.path().join("src"), 226).await;
    app(
        &src,
        "CREATE TABLE t(i INT PRIMARY KEY, b BLOB); \
         INSERT INTO t VALUES (1, UNHEX('00FF0D0A5C27')), (2, NULL), (3, 'x'); \
         CREATE TABLE audit(i INT); \
         CREATE TRIGGER t_ins AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.i); \
         CREATE PROCEDURE twice(IN x INT) SELECT 2 * x",
    )
    .await;

    let strategy = backup("mariadb-dump");
    assert!(!strategy.supports_incremental());
    let file = dir.path().join("dump.sql");
    let value = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &file).await;
    assert_eq!(value["tool"], "mariadb-dump");
    assert_eq!(value["incremental"], false);
    assert_eq!(value["databases"], serde_json::json!(["app"]));
    assert_eq!(value["bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(secret_files(&src), ["os_admin.password"]);
    let e = strategy
        .start(&src, &dir.path().join("w2"), Some(&value))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("full backups only"), "{e}");

    // Written after the backup: must not be restored.
    app(&src, "INSERT INTO t VALUES (4, 'late')").await;

    let (dst, _dst_guard) = instance(&dir.path().join("dst"), 227);
    restore_files(
        &*restore("mariadb-dump"),
        &dst,
        &dir.path().join("rw"),
        &[(file.clone(), value.clone())],
    )
    .await
    .unwrap();
    check_restored(&src, &dst, "1,2,3").await;
    assert_eq!(
        app(&dst, "SELECT HEX(b) FROM t WHERE i = 1").await,
        "00FF0D0A5C27"
    );
    assert_eq!(app(&dst, "CALL twice(21)").await, "42");
    app(&dst, "INSERT INTO t VALUES (9, NULL)").await;
    assert_eq!(
        app(&dst, "SELECT GROUP_CONCAT(i) FROM audit").await,
        "9",
        "the trigger came along"
    );

    // A cut dump fails: the client stops at a cut statement, and a cut
    // between two statements, which looks complete to the client, fails by
    // the recorded length.
    let (bad, _gb) = instance(&dir.path().join("bad"), 228);
    let e = restore_files(
        &*restore("mariadb-dump"),
        &bad,
        &dir.path().join("wb"),
        &[(truncated(&file), value)],
    )
    .await
    .unwrap_err();
    eprintln!("truncated dump: {e}");
    let e = e.to_string();
    assert!(
        e.contains("truncated or corrupted") || e.starts_with("mariadb < dump failed"),
        "{e}"
    );
    MariaDb.stop(&bad, STOP).await.unwrap();
    MariaDb.stop(&dst, STOP).await.unwrap();
    MariaDb.stop(&src, STOP).await.unwrap();
}

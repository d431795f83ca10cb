//! Runs a real MariaDB server through the manager, on a loopback address of
//! its own (127.10.250.X:3306) in a temporary directory, and checks it with
//! the `mariadb` command-line client.
//!
//! Needs `mariadbd`, `mariadb-install-db` and `mariadb` on the PATH
//! (Debian: `apt-get install mariadb-server mariadb-client`) and root.

use coffer_datastores::mariadb::MariaDb;
use coffer_model::{DatabaseSpec, InstanceId, UserSpec};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
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

fn context(base: &Path) -> InstanceContext {
    // Its own loopback address, picked from the pid so concurrent runs differ.
    let ip = Ipv4Addr::new(127, 10, 250, (std::process::id() % 250 + 2) as u8);
    InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: base.join("data"),
        conf_dir: base.join("conf"),
        run_dir: base.join("run"),
        log_dir: base.join("log"),
        secret_dir: base.join("secret"),
        ip,
        port: 3306,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    }
}

fn require_tools() {
    for tool in ["mariadbd", "mariadb-install-db", "mariadb"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok();
        assert!(found, "{tool} not found: install mariadb-server and mariadb-client (apt-get install mariadb-server)");
    }
}

/// The `mariadb` client over TCP as `user`.
async fn client(
    ctx: &InstanceContext,
    user: &str,
    password: &str,
    db: Option<&str>,
    sql: &str,
) -> Output {
    let mut cmd = Command::new("mariadb");
    cmd.arg("--no-defaults")
        .args([
            "-h",
            &ctx.ip.to_string(),
            "-P",
            &ctx.port.to_string(),
            "-u",
            user,
        ])
        .arg(format!("-p{password}"))
        .args(["-N", "-B", "-e", sql]);
    if let Some(db) = db {
        cmd.arg(db);
    }
    cmd.output().await.expect("running mariadb")
}

/// The `mariadb` client as root over the unix socket (socket auth).
async fn root(ctx: &InstanceContext, sql: &str) -> String {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!(
            "--socket={}",
            ctx.run_dir.join("mysqld.sock").display()
        ))
        .args(["-u", "root", "-N", "-B", "-e", sql])
        .output()
        .await
        .expect("running mariadb");
    assert!(
        out.status.success(),
        "root over the socket: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn user(name: &str, password: &str, databases: &[&str]) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: password.into(),
        host: "%".into(),
        databases: databases.iter().map(|d| d.to_string()).collect(),
    }
}

fn dbs(names: &[&str]) -> Vec<DatabaseSpec> {
    names
        .iter()
        .map(|n| DatabaseSpec {
            name: n.to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_lifecycle() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let m = MariaDb::new();
    let _guard = KillOnDrop(ctx.clone());

    let t0 = Instant::now();
    m.initialize(&ctx).await.unwrap();
    let t_init = t0.elapsed();
    m.render_config(&ctx).await.unwrap();
    m.start(&ctx, START).await.unwrap();
    eprintln!(
        "initialize {t_init:?}, initialize + start {:?} (ip {})",
        t0.elapsed(),
        ctx.ip
    );
    assert_eq!(m.health(&ctx).await, Health::Healthy);
    let pid = m.pid(&ctx).expect("pid of the running server");

    // The admin secret is private and the init SQL holding it is gone.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&ctx.secret_dir), 0o700);
    assert_eq!(mode(&ctx.secret_dir.join("os_admin.password")), 0o600);
    assert!(
        std::fs::read_to_string(ctx.secret_dir.join("os_admin.password"))
            .unwrap()
            .len()
            >= 24
    );
    assert!(!ctx.secret_dir.join("init.sql").exists());

    // Awkward names are created literally.
    let awkward = [
        "app",
        "we`ird'db",
        "x'; DROP DATABASE app; --",
        "a_b",
        "axb",
    ];
    m.create_databases(&ctx, &dbs(&awkward)).await.unwrap();
    m.create_databases(&ctx, &dbs(&["app"])).await.unwrap();
    let shown = root(&ctx, "SHOW DATABASES").await;
    for name in awkward {
        assert!(shown.lines().any(|l| l == name), "{name:?} not in {shown}");
    }
    let e = m
        .create_databases(&ctx, &dbs(&["ok", "mysql"]))
        .await
        .unwrap_err();
    assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    assert!(
        !root(&ctx, "SHOW DATABASES")
            .await
            .lines()
            .any(|l| l == "ok"),
        "nothing created on invalid input"
    );

    m.create_users(
        &ctx,
        &[user("app", "secret", &["app"]), user("u2", "pw2", &["a_b"])],
    )
    .await
    .unwrap();
    let e = m
        .create_users(&ctx, &[user("root", "x", &[])])
        .await
        .unwrap_err();
    assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");

    let sql = "CREATE TABLE t(i int); INSERT INTO t VALUES (1); SELECT * FROM t";
    assert_eq!(
        ok(&client(&ctx, "app", "secret", Some("app"), sql).await),
        "1"
    );

    // The tenant sees its own database only.
    let visible = ok(&client(&ctx, "app", "secret", None, "SHOW DATABASES").await);
    assert!(!visible.lines().any(|l| l == "mysql"), "{visible}");
    failed(
        &client(
            &ctx,
            "app",
            "secret",
            None,
            "SELECT COUNT(*) FROM mysql.user",
        )
        .await,
    );
    // A grant on a_b must not open axb (`_` is a wildcard in grants).
    ok(&client(&ctx, "u2", "pw2", Some("a_b"), "CREATE TABLE t(i int)").await);
    failed(&client(&ctx, "u2", "pw2", Some("axb"), "SELECT 1").await);
    // root is socket-only: no way in over TCP.
    failed(&client(&ctx, "root", "", None, "SELECT 1").await);

    // A retried create converges, and sets the password again.
    m.create_users(&ctx, &[user("app", "secret2", &["app"])])
        .await
        .unwrap();
    failed(&client(&ctx, "app", "secret", Some("app"), "SELECT 1").await);
    m.create_users(&ctx, &[user("app", "secret", &["app"])])
        .await
        .unwrap();

    // Read-only refuses tenant writes, and lifts again.
    m.set_read_only(&ctx, true).await.unwrap();
    let err = failed(
        &client(
            &ctx,
            "app",
            "secret",
            Some("app"),
            "INSERT INTO t VALUES (2)",
        )
        .await,
    );
    assert!(err.contains("read-only"), "{err}");
    m.set_read_only(&ctx, false).await.unwrap();
    ok(&client(
        &ctx,
        "app",
        "secret",
        Some("app"),
        "INSERT INTO t VALUES (2)",
    )
    .await);

    // initialize again keeps the data.
    m.initialize(&ctx).await.unwrap();
    let count = "SELECT COUNT(*) FROM t";
    assert_eq!(
        ok(&client(&ctx, "app", "secret", Some("app"), count).await),
        "2"
    );
    m.start(&ctx, START).await.unwrap();
    assert_eq!(
        m.pid(&ctx),
        Some(pid),
        "start on a running server does nothing"
    );

    m.stop(&ctx, STOP).await.unwrap();
    assert_eq!(m.pid(&ctx), None);
    assert_eq!(m.health(&ctx).await, Health::Stopped);
    assert!(!ctx.run_dir.join("mariadbd.pid").exists());
    m.stop(&ctx, STOP).await.unwrap();

    m.render_config(&ctx).await.unwrap();
    m.start(&ctx, START).await.unwrap();
    let pid2 = m.pid(&ctx).expect("restarted");
    assert_ne!(pid, pid2);
    assert_eq!(
        ok(&client(&ctx, "app", "secret", Some("app"), count).await),
        "2"
    );

    m.stop(&ctx, STOP).await.unwrap();
    for p in [pid, pid2] {
        let gone = !Path::new(&format!("/proc/{p}/cmdline")).exists()
            || !std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .contains("mariadbd");
        assert!(gone, "mariadbd {p} still runs");
    }

    // A stale pid file naming some other live process is not "running",
    // and stop must not signal that process.
    std::fs::write(
        ctx.run_dir.join("mariadbd.pid"),
        std::process::id().to_string(),
    )
    .unwrap();
    assert_eq!(m.pid(&ctx), None);
    m.stop(&ctx, STOP).await.unwrap();
    assert!(!ctx.run_dir.join("mariadbd.pid").exists());
}

#[tokio::test]
async fn half_initialised_data_dir_is_redone() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    std::fs::create_dir_all(ctx.data_dir.join("mysql")).unwrap();
    std::fs::write(ctx.data_dir.join("mysql/junk"), b"crashed mid-way").unwrap();
    MariaDb.initialize(&ctx).await.unwrap();
    assert!(!ctx.data_dir.join("mysql/junk").exists());
    assert!(
        ctx.data_dir.join("mysql/user.frm").exists()
            || ctx.data_dir.join("mysql/global_priv.MAI").exists()
    );
    assert!(ctx.data_dir.join(".coffer-initialized").exists());
    let password = std::fs::read(ctx.secret_dir.join("os_admin.password")).unwrap();
    MariaDb.initialize(&ctx).await.unwrap();
    assert_eq!(
        std::fs::read(ctx.secret_dir.join("os_admin.password")).unwrap(),
        password,
        "kept"
    );
    assert_eq!(MariaDb.health(&ctx).await, Health::Stopped);
}

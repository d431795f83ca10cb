//! What the PostgreSQL integration tests share: an instance on a loopback
//! address of its own (127.10.240.X:5432) in a private (0700) temporary
//! directory, a guard that kills its server, and the real `psql` client.
//!
//! Needs Debian's postgresql-15 (`apt-get install postgresql-15`: the
//! programs in /usr/lib/postgresql/15/bin and the `postgres` OS user),
//! `setpriv` (util-linux) and root.
#![allow(dead_code)] // each test file uses its own part

use coffer_datastores::postgresql::PostgreSql;
use coffer_model::{DatabaseSpec, InstanceId, UserInfo, UserSpec};
use coffer_strategy::{DatastoreManager, InstanceContext};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

pub const START: Duration = Duration::from_secs(60);
pub const STOP: Duration = Duration::from_secs(30);
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// SIGKILLs the test server's whole process group when dropped, so a
/// failing assertion leaves no postmaster or backend behind.
pub struct KillOnDrop(pub InstanceContext);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = PostgreSql.pid(&self.0) {
            eprintln!("killing leftover postgres {pid} and its group");
            let _ = killpg(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

pub fn context(base: &Path) -> InstanceContext {
    // Its own loopback address, picked from the pid so concurrent runs differ.
    let ip = Ipv4Addr::new(127, 10, 240, (std::process::id() % 250 + 2) as u8);
    InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: base.join("data"),
        conf_dir: base.join("conf"),
        run_dir: base.join("run"),
        log_dir: base.join("log"),
        secret_dir: base.join("secret"),
        ip,
        port: 5432,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    }
}

/// A 0700 temporary directory with a 0700 instance directory inside, like
/// the compute driver's.
pub fn private_base() -> (tempfile::TempDir, PathBuf) {
    for tool in ["initdb", "postgres", "psql"] {
        let path = format!("{BIN}/{tool}");
        assert!(
            Path::new(&path).exists(),
            "{path} not found: install postgresql-15 (apt-get install postgresql-15)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("instance");
    std::fs::create_dir(&base).unwrap();
    for d in [dir.path(), base.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    (dir, base)
}

/// An initialised, configured and started instance with its guard.
pub async fn started() -> (tempfile::TempDir, InstanceContext, KillOnDrop) {
    let (dir, base) = private_base();
    let ctx = context(&base);
    let guard = KillOnDrop(ctx.clone());
    PostgreSql.initialize(&ctx).await.unwrap();
    PostgreSql.render_config(&ctx).await.unwrap();
    PostgreSql.start(&ctx, START).await.unwrap();
    (dir, ctx, guard)
}

/// `psql` over TCP as `user` (the password from the environment).
pub async fn psql(
    ctx: &InstanceContext,
    user: &str,
    password: &str,
    db: &str,
    sql: &str,
) -> Output {
    let host = ctx.ip.to_string();
    run_psql(&host, ctx, user, password, db, sql).await
}

/// `psql` as the agent's `os_admin` over the unix socket.
pub async fn admin_psql(ctx: &InstanceContext, db: &str, sql: &str) -> String {
    let pw = std::fs::read_to_string(ctx.secret_dir.join("os_admin.password")).unwrap();
    let host = ctx.run_dir.display().to_string();
    ok(&run_psql(&host, ctx, "os_admin", &pw, db, sql).await)
}

async fn run_psql(
    host: &str,
    ctx: &InstanceContext,
    user: &str,
    password: &str,
    db: &str,
    sql: &str,
) -> Output {
    Command::new(format!("{BIN}/psql"))
        .env_clear()
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", host, "-p", &ctx.port.to_string()])
        .args(["-U", user, "-d", db, "-c", sql])
        .output()
        .await
        .expect("running psql")
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn user(name: &str, password: &str, databases: &[&str]) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: password.into(),
        host: "%".into(),
        databases: databases.iter().map(|d| d.to_string()).collect(),
    }
}

pub fn dbs(names: &[&str]) -> Vec<DatabaseSpec> {
    names
        .iter()
        .map(|n| DatabaseSpec {
            name: n.to_string(),
        })
        .collect()
}

pub fn info(name: &str, databases: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        host: "%".into(),
        databases: databases.iter().map(|d| d.to_string()).collect(),
    }
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// A database name that would drop `app` if it were spliced into SQL.
pub const INJECTION: &str = "x'; DROP DATABASE app; --";

//! The MariaDB manager's tenant databases, users, access and root against a
//! real server on a loopback address of its own (127.10.241-242.X:3306),
//! checked from outside with the `mariadb` client over TCP.
//!
//! Needs `mariadbd`, `mariadb-install-db` and `mariadb` on the PATH
//! (Debian: `apt-get install mariadb-server mariadb-client`) and root.

use coffer_datastores::mariadb::MariaDb;
use coffer_model::{DatabaseSpec, InstanceId, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// SIGKILLs the test's server when dropped, even when an assertion failed.
struct KillOnDrop(InstanceContext);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = MariaDb.pid(&self.0) {
            let _ = kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A running server for one test: 127.10.`octet`.X, X from the pid so
/// concurrent runs differ, `octet` so this file's tests do.
async fn server(base: &Path, octet: u8) -> (InstanceContext, KillOnDrop) {
    for tool in ["mariadbd", "mariadb-install-db", "mariadb"] {
        let found = std::process::Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok(),
            "{tool} not found: apt-get install mariadb-server mariadb-client"
        );
    }
    let ctx = InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: base.join("data"),
        conf_dir: base.join("conf"),
        run_dir: base.join("run"),
        log_dir: base.join("log"),
        secret_dir: base.join("secret"),
        ip: Ipv4Addr::new(127, 10, octet, (std::process::id() % 250 + 2) as u8),
        port: 3306,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    };
    let guard = KillOnDrop(ctx.clone());
    let t0 = Instant::now();
    MariaDb.initialize(&ctx).await.unwrap();
    MariaDb.render_config(&ctx).await.unwrap();
    MariaDb.start(&ctx, Duration::from_secs(60)).await.unwrap();
    eprintln!("initialize + start {:?} on {}", t0.elapsed(), ctx.ip);
    (ctx, guard)
}

/// `sql` through the `mariadb` client over TCP as `user`: stdout, or stderr.
async fn client(
    ctx: &InstanceContext,
    user: &str,
    pw: &str,
    db: &str,
    sql: &str,
) -> Result<String, String> {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", &ctx.ip.to_string(), "-P", "3306", "-u", user])
        .arg(format!("-p{pw}"))
        .args(["--connect-timeout=5", "-N", "-B", "-e", sql, db])
        .output()
        .await
        .expect("running mariadb");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

fn user(name: &str, password: &str, databases: &[&str]) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: password.into(),
        host: "%".into(),
        databases: strings(databases),
    }
}

fn info(name: &str, databases: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        host: "%".into(),
        databases: strings(databases),
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn update(name: Option<&str>, password: Option<&str>, host: Option<&str>) -> UserUpdate {
    UserUpdate {
        name: name.map(Into::into),
        password: password.map(Into::into),
        host: host.map(Into::into),
    }
}

/// The kind of a result, to compare in one line; the message to check.
fn kind<T: std::fmt::Debug>(result: Result<T, DatastoreError>) -> (&'static str, String) {
    match result {
        Ok(v) => ("ok", format!("{v:?}")),
        Err(e @ DatastoreError::InvalidInput(_)) => ("InvalidInput", e.to_string()),
        Err(e @ DatastoreError::NotFound(_)) => ("NotFound", e.to_string()),
        Err(e @ DatastoreError::AlreadyExists(_)) => ("AlreadyExists", e.to_string()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// One test's server and the manager's calls on it, shortened.
struct Db {
    ctx: InstanceContext,
    m: MariaDb,
}

impl Db {
    async fn create_dbs(&self, names: &[&str]) {
        let specs: Vec<_> = names
            .iter()
            .map(|n| DatabaseSpec {
                name: n.to_string(),
            })
            .collect();
        self.m.create_databases(&self.ctx, &specs).await.unwrap();
    }

    async fn dbs(&self) -> Vec<String> {
        self.m.list_databases(&self.ctx).await.unwrap()
    }

    async fn users(&self) -> Vec<UserInfo> {
        self.m.list_users(&self.ctx).await.unwrap()
    }

    async fn user(&self, name: &str) -> UserInfo {
        let users = self.users().await;
        users.into_iter().find(|u| u.name == name).expect("listed")
    }

    /// Whether `user` can log in over TCP and use `db`.
    async fn can(&self, user: &str, password: &str, db: &str) -> bool {
        client(&self.ctx, user, password, db, "SELECT 1")
            .await
            .is_ok()
    }

    async fn update(&self, name: &str, host: &str, u: UserUpdate) -> &'static str {
        kind(self.m.update_user(&self.ctx, name, host, &u).await).0
    }

    async fn grant(&self, name: &str, dbs: &[&str]) -> &'static str {
        kind(
            self.m
                .grant_access(&self.ctx, name, "%", &strings(dbs))
                .await,
        )
        .0
    }

    async fn revoke(&self, name: &str, db: &str) -> &'static str {
        kind(self.m.revoke_access(&self.ctx, name, "%", db).await).0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_users_and_access() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _guard) = server(dir.path(), 241).await;
    let (t, m) = (
        Db {
            ctx: ctx.clone(),
            m: MariaDb,
        },
        MariaDb,
    );

    // What prepare creates, and what the listings then say.
    t.create_dbs(&["app", "a_b", "other"]).await;
    let users = [
        user("app", "secret", &["app"]),
        user("u2", "pw2", &["a_b"]),
        user("o'neil", "it's", &["other"]),
    ];
    m.create_users(&ctx, &users).await.unwrap();
    assert_eq!(t.dbs().await, strings(&["a_b", "app", "other"]));
    let listed = vec![
        info("app", &["app"]),
        info("o'neil", &["other"]),
        info("u2", &["a_b"]),
    ];
    assert_eq!(t.users().await, listed, "no root, os_admin, mariadb.sys");
    // Duplicates are the caller's to refuse (with list_users); a repeated
    // create still converges to the same state.
    m.create_users(&ctx, &users).await.unwrap();
    assert_eq!(t.users().await, listed);
    let me = client(&ctx, "o'neil", "it's", "other", "SELECT CURRENT_USER()").await;
    assert_eq!(me.unwrap(), "o'neil@%");

    // Validation by MariaDB's rules, before anything is sent.
    for bad in ["mysql", "SYS", "", " x", &"d".repeat(65)] {
        assert_eq!(
            kind(m.validate_database_name(bad)).0,
            "InvalidInput",
            "{bad:?}"
        );
    }
    for bad in [
        user("root", "x", &[]),
        user("os_admin", "x", &[]),
        user("ok", "", &[]),
    ] {
        assert_eq!(kind(m.validate_user(&bad)).0, "InvalidInput", "{bad:?}");
    }
    m.validate_user(&user("o'neil", "x", &["a_b"])).unwrap();

    // An injection attempt is a legal name here: it is created and dropped
    // literally, and `app` survives both; the same for a user.
    let evil = "x'; DROP DATABASE app; --";
    m.validate_database_name(evil).unwrap();
    t.create_dbs(&[evil]).await;
    assert!(t.dbs().await.contains(&evil.to_string()));
    m.delete_database(&ctx, evil).await.unwrap();
    assert_eq!(t.dbs().await, strings(&["a_b", "app", "other"]));
    let evil_user = "x'; DROP USER 'app'@'%'; --";
    m.create_users(&ctx, &[user(evil_user, "pw", &["app"])])
        .await
        .unwrap();
    assert!(t.can(evil_user, "pw", "app").await);
    m.delete_user(&ctx, evil_user, "%").await.unwrap();
    assert_eq!(t.users().await, listed);

    // Grant, then the user can use the database; revoke, then it cannot.
    t.create_dbs(&["g1", "g_2"]).await;
    assert!(!t.can("u2", "pw2", "g1").await);
    assert_eq!(t.grant("u2", &["g1", "g_2"]).await, "ok");
    client(&ctx, "u2", "pw2", "g1", "CREATE TABLE t(i int)")
        .await
        .unwrap();
    client(&ctx, "u2", "pw2", "g_2", "CREATE TABLE t(i int)")
        .await
        .unwrap();
    assert_eq!(t.user("u2").await, info("u2", &["a_b", "g1", "g_2"]));
    assert_eq!(t.revoke("u2", "g1").await, "ok");
    assert!(!t.can("u2", "pw2", "g1").await);
    assert!(t.can("u2", "pw2", "g_2").await);
    assert_eq!(t.revoke("u2", "g1").await, "ok", "nothing to take: fine");
    assert_eq!(t.user("u2").await, info("u2", &["a_b", "g_2"]));
    assert_eq!(t.revoke("u2", "g_2").await, "ok");
    assert!(!t.can("u2", "pw2", "g_2").await);

    // A missing database or user: NotFound, and nothing granted.
    let (k, msg) = kind(
        m.grant_access(&ctx, "u2", "%", &strings(&["g1", "nope"]))
            .await,
    );
    assert_eq!(k, "NotFound");
    assert!(msg.contains("nope"), "{msg}");
    assert!(!t.can("u2", "pw2", "g1").await);
    assert_eq!(t.grant("ghost", &["g1"]).await, "NotFound");
    assert_eq!(t.revoke("u2", "nope").await, "NotFound");
    assert_eq!(t.revoke("ghost", "g1").await, "NotFound");
    assert_eq!(t.grant("u2", &["mysql"]).await, "InvalidInput");

    // New password: the old one fails, the new one works; never in errors.
    assert_eq!(
        t.update("app", "%", update(None, Some("n3w'pw"), None))
            .await,
        "ok"
    );
    assert!(!t.can("app", "secret", "app").await);
    assert!(t.can("app", "n3w'pw", "app").await);
    let bad_pw = update(None, Some("hunter2\n"), None);
    let (k, msg) = kind(m.update_user(&ctx, "app", "%", &bad_pw).await);
    assert_eq!(k, "InvalidInput");
    assert!(!msg.contains("hunter2"), "{msg}");

    // Rename keeps the grants; a taken name or a missing user is refused.
    assert_eq!(
        t.update("app", "%", update(Some("app2"), None, None)).await,
        "ok"
    );
    assert!(!t.can("app", "n3w'pw", "app").await);
    assert!(t.can("app2", "n3w'pw", "app").await);
    assert_eq!(t.user("app2").await, info("app2", &["app"]));
    assert_eq!(
        t.update("app2", "%", update(Some("u2"), None, None)).await,
        "AlreadyExists"
    );
    assert_eq!(
        t.update("app", "%", update(None, Some("x"), None)).await,
        "NotFound"
    );
    assert_eq!(
        t.update("app2", "%", update(Some("root"), None, None))
            .await,
        "InvalidInput"
    );
    // Name, host and password at once. Over loopback the client comes
    // from 127.0.0.1 whatever 127.x address it dials.
    let all = update(Some("app3"), Some("pw3"), Some("127.0.0.1"));
    assert_eq!(t.update("app2", "%", all).await, "ok");
    let me = client(&ctx, "app3", "pw3", "app", "SELECT CURRENT_USER()").await;
    assert_eq!(me.unwrap(), "app3@127.0.0.1");
    let app3 = t.user("app3").await;
    assert_eq!(
        (app3.host.as_str(), app3.databases),
        ("127.0.0.1", strings(&["app"]))
    );

    // A user with a quote in its name: password, rename, drop, drop again.
    let quoted = update(Some("o'hara"), Some("p'w"), None);
    assert_eq!(t.update("o'neil", "%", quoted).await, "ok");
    assert!(t.can("o'hara", "p'w", "other").await);
    m.delete_user(&ctx, "o'hara", "%").await.unwrap();
    assert!(!t.can("o'hara", "p'w", "other").await);
    assert_eq!(kind(m.delete_user(&ctx, "o'hara", "%").await).0, "NotFound");

    // The server keeps hosts in lower case; any case finds the account.
    let mut mixed = user("hc", "pw", &[]);
    mixed.host = "Db.Example".into();
    m.create_users(&ctx, &[mixed]).await.unwrap();
    assert_eq!(t.user("hc").await.host, "db.example");
    assert_eq!(
        t.update("hc", "DB.example", update(None, Some("p2"), None))
            .await,
        "ok"
    );
    m.delete_user(&ctx, "hc", "Db.Example").await.unwrap();

    // Drop a user, twice; system accounts are out of reach.
    m.delete_user(&ctx, "u2", "%").await.unwrap();
    assert!(!t.can("u2", "pw2", "a_b").await);
    assert_eq!(kind(m.delete_user(&ctx, "u2", "%").await).0, "NotFound");
    for (name, host) in [
        ("root", "localhost"),
        ("os_admin", "localhost"),
        ("mariadb.sys", "localhost"),
    ] {
        assert_eq!(
            kind(m.delete_user(&ctx, name, host).await).0,
            "InvalidInput"
        );
        assert_eq!(
            t.update(name, host, update(None, Some("x"), None)).await,
            "InvalidInput"
        );
    }
    assert_eq!(m.health(&ctx).await, Health::Healthy, "os_admin intact");
    let names: Vec<String> = t.users().await.into_iter().map(|u| u.name).collect();
    assert_eq!(names, strings(&["app3"]));

    // Drop a database, twice; system databases are refused.
    m.delete_database(&ctx, "other").await.unwrap();
    assert_eq!(kind(m.delete_database(&ctx, "other").await).0, "NotFound");
    assert_eq!(
        kind(m.delete_database(&ctx, "mysql").await).0,
        "InvalidInput"
    );
    assert_eq!(t.dbs().await, strings(&["a_b", "app", "g1", "g_2"]));

    // Dropping a database takes its grants with it: a new database of the
    // same name is not open to the old users.
    let db = |n: &str| DatabaseSpec { name: n.into() };
    m.create_databases(&ctx, &[db("reborn")]).await.unwrap();
    m.create_users(&ctx, &[user("heir", "Heir-Pw-1", &["reborn"])])
        .await
        .unwrap();
    client(&ctx, "heir", "Heir-Pw-1", "reborn", "SELECT 1")
        .await
        .unwrap();
    m.delete_database(&ctx, "reborn").await.unwrap();
    assert!(m
        .list_users(&ctx)
        .await
        .unwrap()
        .iter()
        .all(|u| u.databases.iter().all(|d| d != "reborn")));
    m.create_databases(&ctx, &[db("reborn")]).await.unwrap();
    assert!(client(&ctx, "heir", "Heir-Pw-1", "reborn", "SELECT 1")
        .await
        .is_err());

    m.stop(&ctx, Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _guard) = server(dir.path(), 242).await;
    let t = Db {
        ctx: ctx.clone(),
        m: MariaDb,
    };
    let m = MariaDb;

    assert!(!m.root_enabled(&ctx).await.unwrap());
    assert!(!t.can("root", "", "mysql").await);
    m.disable_root(&ctx).await.unwrap(); // disabled already: fine

    let pw = m.enable_root(&ctx).await.unwrap();
    assert!(pw.len() >= 24, "{} characters", pw.len());
    assert!(m.root_enabled(&ctx).await.unwrap());
    let me = client(&ctx, "root", &pw, "mysql", "SELECT CURRENT_USER()").await;
    assert_eq!(me.unwrap(), "root@%");
    let grants = client(&ctx, "root", &pw, "mysql", "SHOW GRANTS")
        .await
        .unwrap();
    assert!(grants.contains("ALL PRIVILEGES ON *.*"), "{grants}");
    assert!(grants.contains("WITH GRANT OPTION"), "{grants}");
    client(&ctx, "root", &pw, "mysql", "CREATE DATABASE by_root")
        .await
        .unwrap();
    assert_eq!(t.dbs().await, strings(&["by_root"]));
    assert!(t.users().await.is_empty(), "root is never a tenant user");

    // Enabling again resets the password.
    let pw2 = m.enable_root(&ctx).await.unwrap();
    assert_ne!(pw, pw2);
    assert!(!t.can("root", &pw, "mysql").await);
    assert!(t.can("root", &pw2, "mysql").await);

    m.disable_root(&ctx).await.unwrap();
    let e = client(&ctx, "root", &pw2, "mysql", "SELECT 1")
        .await
        .unwrap_err();
    assert!(e.contains("Access denied"), "{e}");
    assert!(!m.root_enabled(&ctx).await.unwrap());
    m.disable_root(&ctx).await.unwrap();

    // root@localhost keeps socket authentication, and the agent its account.
    let sock = ctx.run_dir.join("mysqld.sock");
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", sock.display()))
        .args(["-u", "root", "-N", "-B", "-e", "SELECT CURRENT_USER()"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "root@localhost"
    );
    assert_eq!(m.health(&ctx).await, Health::Healthy);

    m.stop(&ctx, Duration::from_secs(30)).await.unwrap();
}

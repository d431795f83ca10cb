//! Runs a real PostgreSQL 15 server through the manager, from a private
//! (0700) temporary directory: initialisation, permissions, root,
//! read-only, restarts and stale lock files. Tenant databases and users are
//! in `postgresql_accounts.rs`.

mod postgresql_support;

use coffer_datastores::postgresql::PostgreSql;
use coffer_strategy::{DatastoreManager, Health};
use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use postgresql_support::*;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_lifecycle() {
    let (dir, base) = private_base();
    let ctx = context(&base);
    let m = PostgreSql::new();
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
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.contains(&base.display().to_string()), "{cmdline:?}");

    // Permissions: only the search bit was added above the instance; the
    // data dir is postgres's and private; the secret is root's and private.
    assert_eq!(mode(dir.path()), 0o701);
    assert_eq!(mode(&base), 0o701);
    let data = std::fs::metadata(&ctx.data_dir).unwrap();
    assert_eq!((data.uid(), data.mode() & 0o777), (101, 0o700));
    assert_eq!(mode(&ctx.secret_dir), 0o700);
    assert_eq!(std::fs::metadata(&ctx.secret_dir).unwrap().uid(), 0);
    let admin_pw_file = ctx.secret_dir.join("os_admin.password");
    assert_eq!(mode(&admin_pw_file), 0o600);
    let admin_pw = std::fs::read_to_string(&admin_pw_file).unwrap();
    assert!(admin_pw.len() >= 24);
    assert!(!ctx.run_dir.join("initdb.pwfile").exists());
    assert!(!cmdline.contains(&admin_pw));
    // The agent's role never logs in over TCP, even with its password.
    failed(&psql(&ctx, "os_admin", &admin_pw, "postgres", "SELECT 1").await);

    m.create_databases(&ctx, &dbs(&["app"])).await.unwrap();
    m.create_users(&ctx, &[user("app", "secret", &["app"])])
        .await
        .unwrap();
    let sql = "CREATE TABLE t(i int); INSERT INTO t VALUES (1); SELECT * FROM t";
    assert_eq!(ok(&psql(&ctx, "app", "secret", "app", sql).await), "1");

    // Root: refused until enabled, then in with the returned password.
    assert!(!m.root_enabled(&ctx).await.unwrap());
    failed(&psql(&ctx, "postgres", "", "postgres", "SELECT 1").await);
    let root_pw = m.enable_root(&ctx).await.unwrap();
    assert!(root_pw.len() >= 24);
    assert!(m.root_enabled(&ctx).await.unwrap());
    let is_super = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user";
    assert_eq!(
        ok(&psql(&ctx, "postgres", &root_pw, "postgres", is_super).await),
        "t"
    );
    // Re-rendering the configuration keeps root enabled.
    m.render_config(&ctx).await.unwrap();
    let hba = std::fs::read_to_string(ctx.conf_dir.join("pg_hba.conf")).unwrap();
    assert!(hba.contains("Root is enabled"), "{hba}");
    m.disable_root(&ctx).await.unwrap();
    assert!(!m.root_enabled(&ctx).await.unwrap());
    failed(&psql(&ctx, "postgres", &root_pw, "postgres", "SELECT 1").await);
    m.disable_root(&ctx).await.unwrap();
    assert!(!m
        .list_users(&ctx)
        .await
        .unwrap()
        .iter()
        .any(|u| u.name == "postgres"));

    // Read-only refuses tenant writes by default, and lifts again.
    m.set_read_only(&ctx, true).await.unwrap();
    let err = failed(&psql(&ctx, "app", "secret", "app", "INSERT INTO t VALUES (2)").await);
    assert!(err.contains("read-only transaction"), "{err}");
    // The agent itself is not read-only: freeing space on a full volume
    // (dropping a database) and managing users still work.
    m.create_databases(&ctx, &dbs(&["scratch"])).await.unwrap();
    m.create_users(&ctx, &[user("tmp", "pw", &["scratch"])])
        .await
        .unwrap();
    m.delete_user(&ctx, "tmp", "%").await.unwrap();
    m.delete_database(&ctx, "scratch").await.unwrap();
    m.set_read_only(&ctx, false).await.unwrap();
    ok(&psql(&ctx, "app", "secret", "app", "INSERT INTO t VALUES (2)").await);

    // initialize again keeps the data; start on a running server does nothing.
    m.initialize(&ctx).await.unwrap();
    let count = "SELECT count(*) FROM t";
    assert_eq!(ok(&psql(&ctx, "app", "secret", "app", count).await), "2");
    m.start(&ctx, START).await.unwrap();
    assert_eq!(m.pid(&ctx), Some(pid));

    m.stop(&ctx, STOP).await.unwrap();
    assert_eq!(m.pid(&ctx), None);
    assert_eq!(m.health(&ctx).await, Health::Stopped);
    let group = Pid::from_raw(i32::try_from(pid).unwrap());
    assert_eq!(killpg(group, None), Err(Errno::ESRCH), "no backend left");
    m.stop(&ctx, STOP).await.unwrap();

    // A stale lock file whose pid now belongs to another `postgres`
    // process (as after a reboot) does not block the start.
    let mut stranger = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "postgres",
            "--regid",
            "postgres",
            "--init-groups",
            "--",
        ])
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stale = format!("{}\n{}\n", stranger.id(), ctx.data_dir.display());
    std::fs::write(ctx.data_dir.join("postmaster.pid"), stale).unwrap();
    assert_eq!(m.pid(&ctx), None);

    let t1 = Instant::now();
    m.render_config(&ctx).await.unwrap();
    let restarted = m.start(&ctx, START).await;
    let _ = stranger.kill();
    let _ = stranger.wait();
    restarted.unwrap();
    eprintln!("restart {:?}", t1.elapsed());
    let pid2 = m.pid(&ctx).expect("restarted");
    assert_ne!(pid, pid2);
    assert_eq!(ok(&psql(&ctx, "app", "secret", "app", count).await), "2");
    m.stop(&ctx, STOP).await.unwrap();
    assert_eq!(m.health(&ctx).await, Health::Stopped);
}

#[tokio::test]
async fn half_initialised_data_dir_is_redone() {
    let (_dir, base) = private_base();
    let ctx = context(&base);
    std::fs::create_dir_all(ctx.data_dir.join("base")).unwrap();
    std::fs::write(ctx.data_dir.join("base/junk"), b"crashed mid-way").unwrap();
    PostgreSql.initialize(&ctx).await.unwrap();
    assert!(!ctx.data_dir.join("base/junk").exists());
    assert_eq!(
        std::fs::read_to_string(ctx.data_dir.join("PG_VERSION"))
            .unwrap()
            .trim(),
        "15"
    );
    assert!(ctx.data_dir.join(".coffer-initialized").exists());
    let password = std::fs::read(ctx.secret_dir.join("os_admin.password")).unwrap();
    PostgreSql.initialize(&ctx).await.unwrap();
    assert_eq!(
        std::fs::read(ctx.secret_dir.join("os_admin.password")).unwrap(),
        password,
        "kept"
    );
    assert_eq!(PostgreSql.health(&ctx).await, Health::Stopped);
    let e = PostgreSql
        .start(&context(&base.join("elsewhere")), START)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("render the configuration first"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_kills_the_server_when_a_test_panics() {
    let (_dir, base) = private_base();
    let mut ctx = context(&base);
    // Not the lifecycle test's address: both run at once in this binary.
    ctx.ip = std::net::Ipv4Addr::new(127, 10, 241, (std::process::id() % 250 + 2) as u8);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_ctx = ctx.clone();
    let task = tokio::spawn(async move {
        let _guard = KillOnDrop(task_ctx.clone());
        PostgreSql.initialize(&task_ctx).await.unwrap();
        PostgreSql.render_config(&task_ctx).await.unwrap();
        PostgreSql.start(&task_ctx, START).await.unwrap();
        let _ = tx.send(PostgreSql.pid(&task_ctx).unwrap());
        panic!("a failing assertion with the server running");
    });
    assert!(task.await.unwrap_err().is_panic());
    let pid = rx.await.expect("the server started before the panic");
    let group = Pid::from_raw(i32::try_from(pid).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while killpg(group, None) != Err(Errno::ESRCH) {
        assert!(
            Instant::now() < deadline,
            "postgres {pid} or its children survived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(PostgreSql.pid(&ctx), None);
    assert_eq!(PostgreSql.health(&ctx).await, Health::Stopped);
}

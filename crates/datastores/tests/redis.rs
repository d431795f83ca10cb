//! The Redis manager's lifecycle against a real redis-server: start in its
//! own process group, tenant access as `redis-cli` sees it, read-only mode,
//! nothing in plain text on disk, and data and users surviving a restart.

mod redis_support;

use coffer_datastores::redis::Redis;
use coffer_strategy::{DatastoreManager, Health};
use nix::unistd::{getpgid, Pid};
use redis_support::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lifecycle_read_only_and_restart() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), 241);
    let r = Redis::new();
    let _guard = KillOnDrop(ctx.clone());
    assert_eq!(r.health(&ctx).await, Health::Stopped);

    let t0 = Instant::now();
    r.initialize(&ctx).await.unwrap();
    let t_init = t0.elapsed();
    r.render_config(&ctx).await.unwrap();
    r.start(&ctx, START).await.unwrap();
    eprintln!(
        "initialize {t_init:?}; initialize+render+start {:?}",
        t0.elapsed()
    );
    assert_eq!(r.health(&ctx).await, Health::Healthy);
    // Idempotent: again on a running, initialised instance changes nothing.
    r.initialize(&ctx).await.unwrap();
    r.start(&ctx, START).await.unwrap();

    // Its own process group; the command line names the instance's config.
    let pid = r.pid(&ctx).expect("running");
    let pgid = getpgid(Some(Pid::from_raw(pid as i32))).unwrap();
    assert_eq!(pgid.as_raw(), pid as i32);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    let conf = ctx.conf_dir.join("redis.conf").display().to_string();
    assert!(cmdline.contains(&conf), "{cmdline:?}");

    // A retried create converges on the last password.
    r.create_users(&ctx, &[user("app", "first")]).await.unwrap();
    r.create_users(&ctx, &[user("app", "secret")])
        .await
        .unwrap();
    let app = Some(("app", "secret"));
    assert!(cli(&ctx, Some(("app", "first")), &["PING"]).contains("WRONGPASS"));
    assert_eq!(cli(&ctx, app, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(&ctx, app, &["GET", "k"]), "v");
    assert!(cli(&ctx, Some(("app", "wrong")), &["GET", "k"]).contains("WRONGPASS"));
    // No anonymous access, over TCP or the socket.
    assert!(cli(&ctx, None, &["GET", "k"]).contains("NOAUTH"));
    assert!(cli(&ctx, Some(("default", "")), &["GET", "k"]).contains("WRONGPASS"));
    let out = std::process::Command::new("redis-cli")
        .arg("-s")
        .arg(ctx.run_dir.join("redis.sock"))
        .arg("PING")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOAUTH"));
    // Pub/sub is allowed; dangerous commands are not.
    assert_eq!(cli(&ctx, app, &["PUBLISH", "ch", "hi"]), "0");
    for cmd in [&["FLUSHALL"][..], &["CONFIG", "SET", "maxmemory", "0"]] {
        assert!(cli(&ctx, app, cmd).contains("NOPERM"), "{cmd:?}");
    }

    // Read-only: writes refused, reads allowed, also for a user created
    // meanwhile; then back, without giving back the dangerous commands.
    r.set_read_only(&ctx, true).await.unwrap();
    assert!(cli(&ctx, app, &["SET", "k", "w"]).contains("NOPERM"));
    assert_eq!(cli(&ctx, app, &["GET", "k"]), "v");
    r.create_users(&ctx, &[user("late", "late-pw")])
        .await
        .unwrap();
    let late = Some(("late", "late-pw"));
    assert!(cli(&ctx, late, &["SET", "k", "w"]).contains("NOPERM"));
    r.set_read_only(&ctx, true).await.unwrap();
    r.set_read_only(&ctx, false).await.unwrap();
    assert_eq!(cli(&ctx, app, &["SET", "k", "w"]), "OK");
    assert_eq!(cli(&ctx, late, &["SET", "k2", "x"]), "OK");
    assert!(cli(&ctx, app, &["FLUSHALL"]).contains("NOPERM"));
    let root_pw = r.enable_root(&ctx).await.unwrap();

    // No password in plain text on disk; secrets, config and data private.
    let acl = std::fs::read_to_string(ctx.conf_dir.join("server/users.acl")).unwrap();
    let admin_pw = std::fs::read_to_string(ctx.secret_dir.join("os_admin.password")).unwrap();
    for secret in ["secret", "late-pw", &root_pw, admin_pw.trim()] {
        assert!(!acl.contains(secret), "{secret:?} in {acl}");
    }
    let conf_text = std::fs::read_to_string(&conf).unwrap();
    assert!(!conf_text.contains(admin_pw.trim()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&ctx.secret_dir.join("os_admin.password")), 0o600);
    for d in [&ctx.secret_dir, &ctx.conf_dir, &ctx.data_dir] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }

    // Stop (twice is fine), start: data (AOF) and users (ACL file) survive.
    r.stop(&ctx, STOP).await.unwrap();
    assert_eq!(r.health(&ctx).await, Health::Stopped);
    assert!(r.pid(&ctx).is_none());
    assert!(!alive(pid));
    r.stop(&ctx, STOP).await.unwrap();
    // A stale pid file naming another process is not "our server".
    let pid_file = ctx.run_dir.join("redis.pid");
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    assert!(r.pid(&ctx).is_none());
    assert_eq!(r.health(&ctx).await, Health::Stopped);
    r.render_config(&ctx).await.unwrap();
    r.start(&ctx, START).await.unwrap();
    assert_eq!(cli(&ctx, app, &["GET", "k"]), "w");
    assert_eq!(cli(&ctx, late, &["GET", "k2"]), "x");
    assert_eq!(names(&r.list_users(&ctx).await.unwrap()), ["app", "late"]);
    assert!(r.root_enabled(&ctx).await.unwrap());
    assert_eq!(cli(&ctx, Some(("root", &root_pw)), &["PING"]), "PONG");
    assert!(cli(&ctx, None, &["GET", "k"]).contains("NOAUTH"));

    let pid = r.pid(&ctx).unwrap();
    r.stop(&ctx, STOP).await.unwrap();
    assert!(!alive(pid), "no process left");

    // After all that (AOF, RDB, logs, ACL file written by the server): no
    // tenant or root password in any file, and the admin password only in
    // its own secret file.
    let admin_file = ctx.secret_dir.join("os_admin.password");
    let files = files_under(dir.path());
    let aof = files.iter().any(|f| f.to_string_lossy().contains(".aof"));
    assert!(files.len() >= 6 && aof, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let mut secrets = vec!["first", "secret", "late-pw", root_pw.as_str()];
        if file != admin_file {
            secrets.push(admin_pw.trim());
        }
        for secret in secrets {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret:?} in plain text in {}", file.display());
        }
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out
}

/// A test that panics with the server running leaves no process behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_kills_the_server_when_a_test_panics() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let outcome = tokio::spawn(async move {
        let (ctx, _guard) = running(&base, 242).await;
        tx.send((ctx.clone(), Redis::new().pid(&ctx).unwrap()))
            .unwrap();
        panic!("a failing assertion");
    })
    .await;
    assert!(outcome.unwrap_err().is_panic());
    let (ctx, pid) = rx.await.unwrap();
    assert!(!alive(pid), "redis-server {pid} survived the panic");
    assert_eq!(Redis::new().health(&ctx).await, Health::Stopped);
}

//! Redis "redis-rdb" against real servers: a snapshot of a running
//! instance restored into a second, new instance (127.10.230-232.X), read
//! with `redis-cli` as a tenant; the data must survive the restored
//! server's restart with `appendonly yes` (the AOF trap); damaged
//! snapshots are refused.
//!
//! Needs `redis-server`, `redis-cli` and `redis-check-rdb` (Debian:
//! `apt-get install redis-server redis-tools`).

mod backup_support;
mod redis_support;

use backup_support::*;
use coffer_datastores::redis::Redis;
use coffer_strategy::{DatastoreManager, Health, InstanceContext};
use redis_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rdb_restore_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _src_guard) = running(&dir.path().join("src"), 230).await;
    let r = Redis::new();
    r.create_users(&src, &[user("app", "secret")])
        .await
        .unwrap();
    let app = Some(("app", "secret"));
    for i in 0..200 {
        assert_eq!(
            cli(&src, app, &["SET", &format!("k{i}"), &format!("v{i}")]),
            "OK"
        );
    }
    cli(&src, app, &["HSET", "h", "f", "binary\u{1}\r\nvalue"]);
    cli(&src, app, &["RPUSH", "l", "a", "b", "c"]);

    let strategy = backup("redis-rdb");
    assert!(!strategy.supports_incremental());
    let file = dir.path().join("dump.rdb");
    let value = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &file).await;
    assert_eq!(value["tool"], "redis-rdb");
    assert_eq!(value["incremental"], false);
    assert_eq!(value["rdb_bytes"], std::fs::metadata(&file).unwrap().len());
    assert!(std::fs::read(&file).unwrap().starts_with(b"REDIS"));

    // Written after the backup: must not be restored.
    cli(&src, app, &["SET", "late", "x"]);
    cli(&src, app, &["DEL", "k0"]);

    let dst = context(&dir.path().join("dst"), 231);
    let _dst_guard = KillOnDrop(dst.clone());
    restore_files(
        &*restore("redis-rdb"),
        &dst,
        &dir.path().join("rw"),
        &[(file.clone(), value.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.health(&dst).await, Health::Healthy);
    assert_ne!(admin_password(&src), admin_password(&dst));

    // Users are not in the snapshot: the agent creates the requested ones.
    assert!(r.list_users(&dst).await.unwrap().is_empty());
    assert!(cli(&dst, app, &["PING"]).contains("WRONGPASS"));
    r.create_users(&dst, &[user("app", "secret")])
        .await
        .unwrap();
    let check = |ctx: &InstanceContext| {
        assert_eq!(cli(ctx, app, &["DBSIZE"]), "202");
        assert_eq!(cli(ctx, app, &["GET", "k0"]), "v0");
        assert_eq!(cli(ctx, app, &["GET", "k199"]), "v199");
        assert_eq!(cli(ctx, app, &["EXISTS", "late"]), "0");
        assert_eq!(cli(ctx, app, &["LRANGE", "l", "0", "-1"]), "a\nb\nc");
    };
    check(&dst);

    // The data now lives in the AOF, and the server runs as configured.
    assert!(dst.data_dir.join("appendonlydir").is_dir());
    assert!(!dst.data_dir.join(".coffer-rdb-restore").exists());
    let conf = std::fs::read_to_string(dst.conf_dir.join("redis.conf")).unwrap();
    assert!(conf.lines().any(|l| l == "appendonly yes"), "{conf}");
    let secrets: Vec<_> = std::fs::read_dir(&dst.secret_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(secrets, ["os_admin.password"]);

    // Restart with appendonly yes: everything comes back from the AOF,
    // even with the RDB gone.
    r.stop(&dst, STOP).await.unwrap();
    std::fs::remove_file(dst.data_dir.join("dump.rdb")).unwrap();
    r.initialize(&dst).await.unwrap();
    r.render_config(&dst).await.unwrap();
    r.start(&dst, START).await.unwrap();
    check(&dst);
    cli(&dst, app, &["SET", "after", "restore"]);
    r.stop(&dst, STOP).await.unwrap();
    r.start(&dst, START).await.unwrap();
    assert_eq!(cli(&dst, app, &["GET", "after"]), "restore");
    r.stop(&dst, STOP).await.unwrap();
    r.stop(&src, STOP).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rdb_refuses_damaged_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _src_guard) = running(&dir.path().join("src"), 232).await;
    let r = Redis::new();
    r.create_users(&src, &[user("app", "secret")])
        .await
        .unwrap();
    for i in 0..100 {
        cli(
            &src,
            Some(("app", "secret")),
            &["SET", &format!("k{i}"), &"v".repeat(100)],
        );
    }
    let strategy = backup("redis-rdb");
    let file = dir.path().join("dump.rdb");
    let value = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &file).await;
    r.stop(&src, STOP).await.unwrap();
    let restore = restore("redis-rdb");

    // Without the recorded length, redis-check-rdb notices the cut.
    let dst = context(&dir.path().join("a"), 233);
    let _guard = KillOnDrop(dst.clone());
    let e = restore_files(
        &*restore,
        &dst,
        &dir.path().join("wa"),
        &[(truncated(&file), without_lengths(&value))],
    )
    .await
    .unwrap_err();
    eprintln!("truncated snapshot: {e}");
    assert!(e.to_string().starts_with("redis-check-rdb failed"), "{e}");
    // With it, the length does.
    let dst = context(&dir.path().join("b"), 233);
    let e = restore_files(
        &*restore,
        &dst,
        &dir.path().join("wb"),
        &[(truncated(&file), value.clone())],
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("truncated or corrupted"), "{e}");
    assert_eq!(r.pid(&dst), None);

    let e = strategy
        .start(&src, &dir.path().join("w2"), Some(&value))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("full backups only"), "{e}");
    let e = restore
        .begin(&src, &dir.path().join("wc"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}

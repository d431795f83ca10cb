//! PostgreSQL "pg_basebackup" against real servers: a backup of a running
//! instance restored into a second, new instance (127.10.226-229.X:5432),
//! checked with `psql` as the tenant would use it; damaged streams
//! refused.
//!
//! Needs Debian's postgresql-15 (pg_basebackup, pg_verifybackup), `tar`,
//! `setpriv` and root.

mod backup_support;
mod postgresql_support;

use backup_support::*;
use coffer_datastores::postgresql::PostgreSql;
use coffer_strategy::{DatastoreManager, Health, InstanceContext};
use postgresql_support::*;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tokio::process::Command;

/// A context in `base` on 127.10.`net`.X, with its guard.
fn instance(base: &Path, net: u8) -> (InstanceContext, KillOnDrop) {
    std::fs::create_dir_all(base).unwrap();
    let mut ctx = context(base);
    ctx.ip = Ipv4Addr::new(127, 10, net, (std::process::id() % 250 + 2) as u8);
    let guard = KillOnDrop(ctx.clone());
    (ctx, guard)
}

async fn app(ctx: &InstanceContext, sql: &str) -> String {
    ok(&psql(ctx, "app", "secret", "app", sql).await)
}

const ROWS: &str = "SELECT string_agg(i::text, ',' ORDER BY i) FROM t";

/// Offset of the contents of tar member `name` in `tar` (ustar headers).
fn member_offset(tar: &[u8], name: &str) -> Option<usize> {
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let header = &tar[at..at + 512];
        let end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let member = std::str::from_utf8(&header[..end]).unwrap_or("");
        let size_field = std::str::from_utf8(&header[124..136]).unwrap();
        let size = usize::from_str_radix(size_field.trim_matches(['\0', ' ']), 8).unwrap_or(0);
        if member.trim_start_matches("./") == name {
            return Some(at + 512);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_basebackup_restore() {
    let (dir, base) = private_base();
    let (src, _src_guard) = instance(&base.join("src"), 226);
    let pg = PostgreSql::new();
    pg.initialize(&src).await.unwrap();
    pg.render_config(&src).await.unwrap();
    pg.start(&src, START).await.unwrap();
    pg.create_databases(&src, &dbs(&["app"])).await.unwrap();
    pg.create_users(&src, &[user("app", "secret", &["app"])])
        .await
        .unwrap();
    app(
        &src,
        "CREATE TABLE t(i int PRIMARY KEY, s text); \
         INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g",
    )
    .await;

    let strategy = backup("pg_basebackup");
    assert!(!strategy.supports_incremental());
    let file = dir.path().join("base.tar");
    let value = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &file).await;
    assert_eq!(value["tool"], "pg_basebackup");
    assert_eq!(value["incremental"], false);
    assert_eq!(value["timeline"], 1);
    for lsn in ["start_lsn", "stop_lsn"] {
        let v = value[lsn].as_str().unwrap_or_default();
        assert!(v.contains('/'), "{lsn} in {value}");
    }
    assert_eq!(value["bytes"], std::fs::metadata(&file).unwrap().len());
    let leftovers: Vec<_> = std::fs::read_dir(&src.secret_dir).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only os_admin.password stays in secret_dir"
    );

    // Written after the backup: must not be restored.
    app(
        &src,
        "DELETE FROM t WHERE i > 3; INSERT INTO t VALUES (5000, 'late')",
    )
    .await;

    let (dst, _dst_guard) = instance(&base.join("dst"), 227);
    restore_files(
        &*restore("pg_basebackup"),
        &dst,
        &dir.path().join("rw"),
        &[(file.clone(), value.clone())],
    )
    .await
    .unwrap();
    assert_eq!(pg.health(&dst).await, Health::Healthy);
    assert_eq!(
        app(&dst, "SELECT count(*), max(i) FROM t").await,
        "1000|1000"
    );
    assert_eq!(app(&src, ROWS).await, "1,2,3,5000");

    // Its own admin password; the source's is refused.
    let (old, new) = (admin_password(&src), admin_password(&dst));
    assert_ne!(old, new);
    assert_eq!(admin_psql(&dst, "postgres", "SELECT 1").await, "1");
    let refused = Command::new("/usr/lib/postgresql/15/bin/psql")
        .env_clear()
        .env("PGPASSWORD", &old)
        .args(["-X", "-h", &dst.run_dir.display().to_string()])
        .args([
            "-p", "5432", "-U", "os_admin", "-d", "postgres", "-c", "SELECT 1",
        ])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let hba = std::fs::read_to_string(dst.conf_dir.join("pg_hba.conf")).unwrap();
    assert!(!hba.contains("trust"), "{hba}");
    assert!(
        hba.contains("local   replication  os_admin  scram-sha-256"),
        "{hba}"
    );
    assert!(!dst.data_dir.join("backup_manifest").exists());
    let meta = std::fs::metadata(&dst.data_dir).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert_eq!(
        meta.uid(),
        std::fs::metadata(src.data_dir.join("PG_VERSION"))
            .unwrap()
            .uid()
    );
    let secrets: Vec<_> = std::fs::read_dir(&dst.secret_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(secrets, ["os_admin.password"]);
    let conf = std::fs::read_to_string(dst.conf_dir.join("postgresql.conf")).unwrap();
    assert!(
        conf.contains(&format!("listen_addresses = '{}'", dst.ip)),
        "{conf}"
    );

    // The agent's admin functions work on it.
    assert_eq!(pg.list_databases(&dst).await.unwrap(), ["app"]);
    assert_eq!(pg.list_users(&dst).await.unwrap(), [info("app", &["app"])]);
    pg.create_users(&dst, &[user("new", "pw-new", &["app"])])
        .await
        .unwrap();
    assert_eq!(
        ok(&psql(&dst, "new", "pw-new", "app", "SELECT 1").await),
        "1"
    );

    // initialize + render_config + start, as the agent does at boot.
    pg.stop(&dst, STOP).await.unwrap();
    pg.initialize(&dst).await.unwrap();
    pg.render_config(&dst).await.unwrap();
    pg.start(&dst, START).await.unwrap();
    assert_eq!(admin_password(&dst), new);
    assert_eq!(app(&dst, "SELECT count(*) FROM t").await, "1000");
    pg.stop(&dst, STOP).await.unwrap();
    pg.stop(&src, STOP).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_basebackup_refuses_damaged_streams() {
    let (dir, base) = private_base();
    let (src, _src_guard) = instance(&base.join("src"), 228);
    let pg = PostgreSql::new();
    pg.initialize(&src).await.unwrap();
    pg.render_config(&src).await.unwrap();
    pg.start(&src, START).await.unwrap();
    let strategy = backup("pg_basebackup");
    let file = dir.path().join("base.tar");
    let value = backup_to_file(&*strategy, &src, &dir.path().join("w"), None, &file).await;
    pg.stop(&src, STOP).await.unwrap();
    let r = restore("pg_basebackup");

    // Cut in half: tar notices, with or without the recorded length.
    let (a, _ga) = instance(&base.join("a"), 229);
    let e = restore_files(
        &*r,
        &a,
        &dir.path().join("wa"),
        &[(truncated(&file), without_lengths(&value))],
    )
    .await
    .unwrap_err();
    eprintln!("truncated tar: {e}");
    assert!(e.to_string().starts_with("tar --extract failed"), "{e}");

    // One byte changed inside pg_control: the tar is fine, the manifest's
    // checksum is not.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = member_offset(&bytes, "global/pg_control").expect("pg_control in the tar");
    bytes[at + 100] ^= 0xff;
    let damaged = dir.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let (b, _gb) = instance(&base.join("b"), 229);
    let e = restore_files(&*r, &b, &dir.path().join("wb"), &[(damaged, value.clone())])
        .await
        .unwrap_err();
    eprintln!("damaged tar: {e}");
    assert!(e.to_string().starts_with("pg_verifybackup failed"), "{e}");
    assert_eq!(pg.pid(&b), None);

    // Only one piece; not into a used data directory.
    let (c, _gc) = instance(&base.join("c"), 229);
    r.begin(&c, &dir.path().join("wc")).await.unwrap();
    assert!(r
        .piece(&c, &dir.path().join("wc"), 1, &value)
        .await
        .is_err());
    let e = r.begin(&src, &dir.path().join("wd")).await.unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    let e = strategy
        .start(&src, &dir.path().join("we"), Some(&value))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("full backups only"), "{e}");
}

//! The PostgreSQL manager against a real server started from a 0700
//! directory: initdb and postgres as the `postgres` account, tenant
//! databases and users seen through psql, and data kept across restarts.

use coffer_datastores::postgresql::PostgreSql;
use coffer_model::{DatabaseSpec, InstanceId, UserSpec};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

struct StopOnDrop(InstanceContext);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = PostgreSql::new().pid(&self.0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn psql(ip: &str, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-h",
            ip,
            "-U",
            user,
            "-d",
            db,
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql is installed");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[tokio::test]
async fn postgresql_lifecycle_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let ip = format!("127.10.242.{}", 1 + std::process::id() % 250);
    let ctx = InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: dir.path().join("data"),
        conf_dir: dir.path().join("conf"),
        run_dir: dir.path().join("run"),
        log_dir: dir.path().join("log"),
        secret_dir: dir.path().join("secret"),
        ip: ip.parse().unwrap(),
        port: 5432,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
    };
    let pg = PostgreSql::new();
    let _guard = StopOnDrop(ctx.clone());
    pg.initialize(&ctx).await.unwrap();
    pg.render_config(&ctx).await.unwrap();
    if let Err(e) = pg.start(&ctx, Duration::from_secs(60)).await {
        let log = std::fs::read_to_string(ctx.log_dir.join("console.log")).unwrap_or_default();
        panic!("start: {e}\n{log}");
    }
    assert_eq!(pg.health(&ctx).await, Health::Healthy);

    let evil = "x'; DROP DATABASE app; --";
    let dbs = [
        DatabaseSpec { name: "app".into() },
        DatabaseSpec { name: evil.into() },
    ];
    pg.create_databases(&ctx, &dbs).await.unwrap();
    let app = UserSpec {
        name: "app".into(),
        password: "secret".into(),
        host: "%".into(),
        databases: vec!["app".into()],
    };
    pg.create_users(&ctx, &[app]).await.unwrap();
    assert_eq!(
        pg.list_databases(&ctx).await.unwrap(),
        vec!["app".to_string(), evil.to_string()]
    );
    psql(
        &ip,
        "app",
        "secret",
        "app",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (5)",
    )
    .unwrap();
    assert!(
        psql(&ip, "app", "secret", evil, "SELECT 1").is_err(),
        "not granted"
    );
    assert!(psql(&ip, "os_admin", "x", "postgres", "SELECT 1").is_err());

    let users = pg.list_users(&ctx).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].databases, vec!["app".to_string()]);
    pg.revoke_access(&ctx, "app", "%", "app").await.unwrap();
    assert!(psql(&ip, "app", "secret", "app", "SELECT 1").is_err());
    pg.grant_access(&ctx, "app", "%", &["app".into()])
        .await
        .unwrap();
    assert_eq!(
        psql(&ip, "app", "secret", "app", "SELECT v FROM t").unwrap(),
        "5"
    );

    let root = pg.enable_root(&ctx).await.unwrap();
    assert!(pg.root_enabled(&ctx).await.unwrap());
    psql(&ip, "postgres", &root, "postgres", "SELECT 1").unwrap();
    pg.disable_root(&ctx).await.unwrap();
    assert!(psql(&ip, "postgres", &root, "postgres", "SELECT 1").is_err());
    assert!(!pg.root_enabled(&ctx).await.unwrap());

    pg.stop(&ctx, Duration::from_secs(30)).await.unwrap();
    assert_eq!(pg.health(&ctx).await, Health::Stopped);
    pg.initialize(&ctx).await.unwrap();
    pg.start(&ctx, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        psql(&ip, "app", "secret", "app", "SELECT v FROM t").unwrap(),
        "5"
    );
    pg.delete_user(&ctx, "app", "%").await.unwrap();
    assert!(matches!(
        pg.delete_user(&ctx, "app", "%").await,
        Err(DatastoreError::NotFound(_))
    ));
    pg.delete_database(&ctx, evil).await.unwrap();
    assert!(matches!(
        pg.delete_database(&ctx, evil).await,
        Err(DatastoreError::NotFound(_))
    ));
    pg.stop(&ctx, Duration::from_secs(30)).await.unwrap();
    assert!(pg.pid(&ctx).is_none());
}

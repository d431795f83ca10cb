//! The Redis manager against a real redis-server: ACL users, a password
//! that looks like ACL rules staying a password, read-only mode, and users
//! and data surviving a restart.

use coffer_datastores::redis::Redis;
use coffer_model::{InstanceId, UserSpec};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use std::process::Command;
use std::time::Duration;

struct StopOnDrop(InstanceContext);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = Redis::new().pid(&self.0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn cli(ip: &str, user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            ip,
            "--user",
            user,
            "--pass",
            password,
            "--no-auth-warning",
        ])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

fn user(name: &str, password: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: password.into(),
        host: "%".into(),
        databases: vec![],
    }
}

#[tokio::test]
async fn redis_users_read_only_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ip = format!("127.10.241.{}", 1 + std::process::id() % 250);
    let ctx = InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: dir.path().join("data"),
        conf_dir: dir.path().join("conf"),
        run_dir: dir.path().join("run"),
        log_dir: dir.path().join("log"),
        secret_dir: dir.path().join("secret"),
        ip: ip.parse().unwrap(),
        port: 6379,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
    };
    let r = Redis::new();
    let _guard = StopOnDrop(ctx.clone());
    r.initialize(&ctx).await.unwrap();
    r.render_config(&ctx).await.unwrap();
    r.start(&ctx, Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.health(&ctx).await, Health::Healthy);

    // A password that reads like ACL rules is one password, nothing more.
    let tricky = "x on ~* +@all";
    r.create_users(&ctx, &[user("app", "secret"), user("tricky", tricky)])
        .await
        .unwrap();
    assert_eq!(cli(&ip, "app", "secret", &["SET", "k", "v"]), "OK");
    assert_eq!(cli(&ip, "tricky", tricky, &["GET", "k"]), "v");
    assert!(cli(&ip, "tricky", "x", &["GET", "k"]).contains("WRONGPASS"));
    assert!(cli(&ip, "app", "secret", &["FLUSHALL"]).contains("NOPERM"));
    assert!(
        cli(&ip, "default", "", &["GET", "k"]).contains("WRONGPASS")
            || cli(&ip, "default", "", &["GET", "k"]).contains("NOAUTH")
    );
    assert!(matches!(
        r.create_databases(&ctx, &[coffer_model::DatabaseSpec { name: "d".into() }])
            .await,
        Err(DatastoreError::NotSupported(_))
    ));
    r.create_databases(&ctx, &[]).await.unwrap();
    assert!(r.validate_user(&user("default", "x")).is_err());
    let mut bad_host = user("h", "x");
    bad_host.host = "10.0.0.1".into();
    assert!(r.validate_user(&bad_host).is_err());

    // Read-only: writes refused, reads allowed; then back, without
    // giving back the dangerous commands.
    r.set_read_only(&ctx, true).await.unwrap();
    assert!(cli(&ip, "app", "secret", &["SET", "k", "w"]).contains("NOPERM"));
    assert_eq!(cli(&ip, "app", "secret", &["GET", "k"]), "v");
    r.set_read_only(&ctx, false).await.unwrap();
    assert_eq!(cli(&ip, "app", "secret", &["SET", "k", "w"]), "OK");
    assert!(cli(&ip, "app", "secret", &["FLUSHALL"]).contains("NOPERM"));

    // Users (kept hashed) and data survive a restart.
    r.stop(&ctx, Duration::from_secs(20)).await.unwrap();
    assert_eq!(r.health(&ctx).await, Health::Stopped);
    r.start(&ctx, Duration::from_secs(30)).await.unwrap();
    assert_eq!(cli(&ip, "app", "secret", &["GET", "k"]), "w");
    let acl = std::fs::read_to_string(ctx.conf_dir.join("users.acl")).unwrap();
    assert!(!acl.contains("secret") && !acl.contains(tricky), "{acl}");

    r.delete_user(&ctx, "tricky", "%").await.unwrap();
    assert!(matches!(
        r.delete_user(&ctx, "tricky", "%").await,
        Err(DatastoreError::NotFound(_))
    ));
    r.stop(&ctx, Duration::from_secs(20)).await.unwrap();
    assert!(r.pid(&ctx).is_none());
}

//! What the Redis integration tests share: an instance on a loopback
//! address of its own in a temporary directory, a guard that kills its
//! server, and `redis-cli` as the tenant would run it.
//!
//! Needs `redis-server` and `redis-cli` on the PATH (Debian:
//! `apt-get install redis-server redis-tools`).
#![allow(dead_code)] // each test file uses its own part

use coffer_datastores::redis::Redis;
use coffer_model::{InstanceId, UserInfo, UserSpec};
use coffer_strategy::{DatastoreError, DatastoreManager, InstanceContext};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

pub const START: Duration = Duration::from_secs(30);
pub const STOP: Duration = Duration::from_secs(20);

/// SIGKILLs the test's server when dropped, so a failing assertion does not
/// leave a redis-server behind.
pub struct KillOnDrop(pub InstanceContext);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = Redis::new().pid(&self.0) {
            eprintln!("killing leftover redis-server {pid}");
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A context on its own loopback address 127.10.`net`.X: `net` keeps the
/// tests apart, X (from the pid) keeps concurrent runs apart.
pub fn context(base: &Path, net: u8) -> InstanceContext {
    let ip = Ipv4Addr::new(127, 10, net, (std::process::id() % 250 + 2) as u8);
    InstanceContext {
        instance_id: InstanceId::new(),
        data_dir: base.join("data"),
        conf_dir: base.join("conf"),
        run_dir: base.join("run"),
        log_dir: base.join("log"),
        secret_dir: base.join("secret"),
        ip,
        port: 6379,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    }
}

pub fn require_tools() {
    for tool in ["redis-server", "redis-cli"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok();
        assert!(
            found,
            "{tool} not found: apt-get install redis-server redis-tools"
        );
    }
}

/// A running instance: initialised, configured and started.
pub async fn running(base: &Path, net: u8) -> (InstanceContext, KillOnDrop) {
    require_tools();
    let ctx = context(base, net);
    let guard = KillOnDrop(ctx.clone());
    let r = Redis::new();
    r.initialize(&ctx).await.unwrap();
    r.render_config(&ctx).await.unwrap();
    r.start(&ctx, START).await.unwrap();
    (ctx, guard)
}

/// `redis-cli` over TCP as `user` (None: anonymous): stdout and stderr.
pub fn cli(ctx: &InstanceContext, user: Option<(&str, &str)>, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args(["-h", &ctx.ip.to_string(), "-p", &ctx.port.to_string()]);
    cmd.env_remove("REDISCLI_AUTH");
    if let Some((name, password)) = user {
        // The password from the environment, not the command line.
        cmd.args(["--user", name]).env("REDISCLI_AUTH", password);
    }
    let out = cmd.args(args).output().expect("running redis-cli");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

pub fn user(name: &str, password: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        password: password.into(),
        host: "%".into(),
        databases: vec![],
    }
}

pub fn names(users: &[UserInfo]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
        && !std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .is_empty()
}

pub fn assert_not_supported<T: std::fmt::Debug>(r: Result<T, DatastoreError>) {
    match r {
        Err(DatastoreError::NotSupported(m)) => {
            assert!(m.contains("Redis does not support databases"), "{m}")
        }
        other => panic!("expected NotSupported, got {other:?}"),
    }
}

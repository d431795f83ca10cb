//! Configuration groups on a real MariaDB server (127.10.244-245.X:3306 in
//! a temporary directory): overrides rendered into `my.cnf` and applied
//! live or at the next start, as new client sessions see them; and the
//! built-in schema checked against the server, parameter by parameter.
//!
//! Needs `mariadbd`, `mariadb-install-db` and `mariadb` on the PATH
//! (Debian: `apt-get install mariadb-server mariadb-client`) and root.

use coffer_datastores::mariadb::MariaDb;
use coffer_datastores::parameters::builtin_schema;
use coffer_model::{
    ConfigValue, InstanceId, Overrides, ParameterSchema, ParameterType, Setting, UserSpec,
};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, Health, InstanceContext};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;
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

/// A running server on 127.10.`net`.X (X from the pid, so concurrent runs
/// differ; `net` keeps this file's tests apart).
async fn server(base: &Path, net: u8) -> (InstanceContext, KillOnDrop) {
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
        ip: Ipv4Addr::new(127, 10, net, (std::process::id() % 250 + 2) as u8),
        port: 3306,
        ram_mb: 512,
        volume_size_bytes: 1 << 30,
        overrides: Default::default(),
        sandbox: None,
    };
    let guard = KillOnDrop(ctx.clone());
    MariaDb.initialize(&ctx).await.unwrap();
    MariaDb.render_config(&ctx).await.unwrap();
    MariaDb.start(&ctx, START).await.unwrap();
    (ctx, guard)
}

/// `sql` in a new session as root over the unix socket: stdout, or stderr.
async fn root(ctx: &InstanceContext, sql: &str) -> Result<String, String> {
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
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// A global variable as `SHOW GLOBAL VARIABLES` shows it to a new session.
async fn global(ctx: &InstanceContext, name: &str) -> String {
    let shown = root(ctx, &format!("SHOW GLOBAL VARIABLES LIKE '{name}'"))
        .await
        .unwrap();
    let (shown_name, value) = shown.split_once('\t').unwrap_or((&shown, ""));
    assert_eq!(shown_name, name, "{shown}");
    value.to_string()
}

/// A tenant logs in over TCP (the password from the environment).
async fn tenant_login(ctx: &InstanceContext, user: &str, password: &str) -> bool {
    Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", &ctx.ip.to_string(), "-P", "3306", "-u", user])
        .env("MYSQL_PWD", password)
        .args(["--connect-timeout=5", "-N", "-B", "-e", "SELECT 1"])
        .output()
        .await
        .expect("running mariadb")
        .status
        .success()
}

fn setting(value: ConfigValue, restart_required: bool) -> Setting {
    Setting {
        value,
        restart_required,
    }
}

fn change(name: &str, value: Option<ConfigValue>, restart_required: bool) -> ConfigChange {
    ConfigChange {
        name: name.into(),
        value,
        restart_required,
    }
}

/// The changes that take `ctx.overrides` to `next`, as the agent computes them.
fn changes(old: &Overrides, next: &Overrides) -> Vec<ConfigChange> {
    let mut out: Vec<ConfigChange> = next
        .iter()
        .filter(|(name, s)| old.get(*name) != Some(s))
        .map(|(name, s)| change(name, Some(s.value.clone()), s.restart_required))
        .collect();
    out.extend(
        old.iter()
            .filter(|(name, _)| !next.contains_key(*name))
            .map(|(name, s)| change(name, None, s.restart_required)),
    );
    out
}

/// Set `next` as the instance's overrides: render, then apply to the
/// running server. Returns what needs a restart.
async fn configure(ctx: &mut InstanceContext, next: Overrides) -> Vec<String> {
    let changes = changes(&ctx.overrides, &next);
    ctx.overrides = next;
    MariaDb.render_config(ctx).await.unwrap();
    MariaDb.apply_configuration(ctx, &changes).await.unwrap()
}

async fn restart(ctx: &InstanceContext) {
    MariaDb.stop(ctx, STOP).await.unwrap();
    MariaDb.render_config(ctx).await.unwrap();
    MariaDb.start(ctx, START).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_configuration_group_applies_live_and_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _guard) = server(dir.path(), 244).await;
    assert_eq!(global(&ctx, "max_connections").await, "100", "the flavor's");
    assert_eq!(global(&ctx, "innodb_log_buffer_size").await, "8388608");

    // Dynamic ones at once, the restart-only one reported.
    let modes = "ANSI,NO_BACKSLASH_ESCAPES";
    let group: Overrides = [
        ("max_connections", setting(ConfigValue::Integer(250), false)),
        ("slow_query_log", setting(ConfigValue::Boolean(true), false)),
        ("long_query_time", setting(ConfigValue::Float(0.25), false)),
        (
            "sql_mode",
            setting(ConfigValue::String(modes.into()), false),
        ),
        (
            "innodb_log_buffer_size",
            setting(ConfigValue::Integer(16 << 20), true),
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    let restart_needed = configure(&mut ctx, group.clone()).await;
    assert_eq!(restart_needed, ["innodb_log_buffer_size"]);
    assert_eq!(global(&ctx, "max_connections").await, "250");
    assert_eq!(global(&ctx, "slow_query_log").await, "ON");
    assert_eq!(global(&ctx, "long_query_time").await, "0.250000");
    let sql_mode = global(&ctx, "sql_mode").await;
    assert!(
        sql_mode.contains("ANSI_QUOTES") && sql_mode.contains("NO_BACKSLASH_ESCAPES"),
        "{sql_mode}"
    );
    assert_eq!(global(&ctx, "innodb_log_buffer_size").await, "8388608");

    // The agent's own statements keep their meaning whatever the tenant's
    // SQL mode: a password with a backslash and a quote works as given.
    let password = r"p\a's";
    let app = UserSpec {
        name: "app".into(),
        password: password.into(),
        host: "%".into(),
        databases: vec![],
    };
    MariaDb.create_users(&ctx, &[app]).await.unwrap();
    assert!(tenant_login(&ctx, "app", password).await);

    let effective = MariaDb.effective_configuration(&ctx).await.unwrap();
    for (name, value) in [
        ("max_connections", "250"),
        ("slow_query_log", "ON"),
        ("innodb_log_buffer_size", "8388608"),
        ("innodb_buffer_pool_size", "268435456"),
        ("tmp_table_size", "16777216"),
    ] {
        assert_eq!(
            effective.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    assert_eq!(effective["sql_mode"], sql_mode);

    // The restart-only value after stop + start; the others stay.
    restart(&ctx).await;
    assert_eq!(global(&ctx, "innodb_log_buffer_size").await, "16777216");
    assert_eq!(global(&ctx, "max_connections").await, "250");
    assert_eq!(global(&ctx, "long_query_time").await, "0.250000");

    // Removing overrides: back to the flavor's value, or the default.
    let mut smaller = group.clone();
    smaller.remove("max_connections");
    smaller.remove("sql_mode");
    assert!(configure(&mut ctx, smaller.clone()).await.is_empty());
    assert_eq!(global(&ctx, "max_connections").await, "100");
    let default_mode = global(&ctx, "sql_mode").await;
    assert!(!default_mode.contains("ANSI"), "{default_mode}");
    assert!(
        default_mode.contains("STRICT_TRANS_TABLES"),
        "{default_mode}"
    );

    // A value the server refuses is an error naming the parameter.
    for (name, value) in [
        ("max_connections", ConfigValue::String("lots".into())),
        ("no_such_variable", ConfigValue::Integer(1)),
    ] {
        let e = MariaDb
            .apply_configuration(&ctx, &[change(name, Some(value), false)])
            .await
            .unwrap_err();
        assert!(matches!(e, DatastoreError::Command { .. }), "{e}");
        assert!(e.to_string().contains(name), "{e}");
    }
    // A parameter the schema wrongly called dynamic still gets there.
    let wrong = change("back_log", Some(ConfigValue::Integer(99)), false);
    let needed = MariaDb.apply_configuration(&ctx, &[wrong]).await.unwrap();
    assert_eq!(needed, ["back_log"]);

    // A bigger flavor: re-rendered and restarted, a bigger buffer pool.
    ctx.ram_mb = 1024;
    restart(&ctx).await;
    assert_eq!(global(&ctx, "innodb_buffer_pool_size").await, "536870912");
    assert_eq!(global(&ctx, "max_connections").await, "200");
    let effective = MariaDb.effective_configuration(&ctx).await.unwrap();
    assert_eq!(effective["innodb_buffer_pool_size"], "536870912");
    assert_eq!(
        effective["innodb_log_buffer_size"], "16777216",
        "the group's"
    );
    MariaDb.stop(&ctx, STOP).await.unwrap();
}

/// Every parameter of the built-in schema: the server knows it as a
/// variable and as a `my.cnf` option, `SET GLOBAL` refuses it (error 1238,
/// read-only) exactly when the schema says it needs a restart, and the
/// server starts with all of them written into `my.cnf`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_schema_matches_the_server() {
    let schema = ParameterSchema::parse(builtin_schema("mariadb", "10.11").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _guard) = server(dir.path(), 245).await;
    let help = std::process::Command::new("mariadbd")
        .args(["--no-defaults", "--help", "--verbose"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);

    let mut current = Overrides::new();
    for p in schema.parameters() {
        let name = &p.name;
        let option = format!("--{}", name.replace('_', "-"));
        assert!(
            help.lines().any(|l| {
                let l = l.trim_start();
                l.split(['=', '[', ' ']).next() == Some(option.as_str())
            }),
            "{name} is not a mariadbd option"
        );
        let value = root(&ctx, &format!("SELECT @@GLOBAL.{name}"))
            .await
            .unwrap_or_else(|e| panic!("{name} is not a variable: {e}"));
        let set = root(&ctx, &format!("SET GLOBAL {name} = @@GLOBAL.{name}")).await;
        match (&set, p.restart_required) {
            (Ok(_), false) => {}
            (Err(e), true) if e.contains("ERROR 1238") => {}
            _ => panic!(
                "{name}: schema says restart_required = {}, SET GLOBAL gives {set:?}",
                p.restart_required
            ),
        }
        let typed = match p.kind {
            ParameterType::Integer => ConfigValue::Integer(value.parse().unwrap()),
            ParameterType::Float => ConfigValue::Float(value.parse().unwrap()),
            ParameterType::Boolean => ConfigValue::Boolean(value == "1"),
            ParameterType::String => ConfigValue::String(value.clone()),
        };
        current.insert(name.clone(), setting(typed, p.restart_required));
    }
    eprintln!("{} parameters checked", current.len());

    // All of them in my.cnf (as they are now): the server still starts.
    ctx.overrides = current;
    restart(&ctx).await;
    assert_eq!(MariaDb.health(&ctx).await, Health::Healthy);
    let effective: BTreeMap<String, String> = MariaDb.effective_configuration(&ctx).await.unwrap();
    for name in ctx.overrides.keys() {
        assert!(effective.contains_key(name), "{name} not reported");
    }
    MariaDb.stop(&ctx, STOP).await.unwrap();
}

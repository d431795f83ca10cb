//! Configuration groups on a real Redis 7.0 server (127.10.244-245.X:6379
//! in a temporary directory): overrides rendered into `redis.conf` and
//! applied with `CONFIG SET` or at the next start, as a new admin
//! connection sees them; and the built-in schema checked against the
//! server, parameter by parameter.

mod redis_support;

use coffer_datastores::parameters::builtin_schema;
use coffer_datastores::redis::Redis;
use coffer_model::{ConfigValue, Overrides, ParameterSchema, Setting};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, InstanceContext};
use redis_support::*;

/// `redis-cli` as the agent's `os_admin` over the unix socket (the password
/// from the environment): stdout and stderr.
fn admin_cli(ctx: &InstanceContext, args: &[&str]) -> String {
    let pw = std::fs::read_to_string(ctx.secret_dir.join("os_admin.password")).unwrap();
    let out = std::process::Command::new("redis-cli")
        .arg("-s")
        .arg(ctx.run_dir.join("redis.sock"))
        .args(["--user", "os_admin"])
        .env("REDISCLI_AUTH", pw.trim_end())
        .args(args)
        .output()
        .expect("running redis-cli");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

/// `CONFIG GET name` in a new connection: the value.
fn config_get(ctx: &InstanceContext, name: &str) -> String {
    let out = admin_cli(ctx, &["CONFIG", "GET", name]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(name), "{out}");
    lines.next().unwrap_or("").to_string()
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

/// Set `next` as the instance's overrides: render, then apply with
/// `changes`. Returns what needs a restart.
async fn configure(
    ctx: &mut InstanceContext,
    next: Overrides,
    changes: &[ConfigChange],
) -> Result<Vec<String>, DatastoreError> {
    ctx.overrides = next;
    Redis.render_config(ctx).await.unwrap();
    Redis.apply_configuration(ctx, changes).await
}

async fn restart(ctx: &InstanceContext) {
    Redis.stop(ctx, STOP).await.unwrap();
    Redis.render_config(ctx).await.unwrap();
    Redis.start(ctx, START).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_configuration_group_applies_live_and_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _guard) = running(dir.path(), 244).await;
    assert_eq!(config_get(&ctx, "maxmemory-policy"), "noeviction");
    assert_eq!(config_get(&ctx, "maxmemory"), "402653184", "the flavor's");

    let group: Overrides = [
        (
            "maxmemory-policy",
            ConfigValue::String("allkeys-lru".into()),
            false,
        ),
        ("timeout", ConfigValue::Integer(300), false),
        (
            "notify-keyspace-events",
            ConfigValue::String("Ex".into()),
            false,
        ),
        ("lazyfree-lazy-eviction", ConfigValue::Boolean(true), false),
        ("databases", ConfigValue::Integer(32), true),
    ]
    .into_iter()
    .map(|(n, v, r)| (n.to_string(), setting(v, r)))
    .collect();
    let changes: Vec<ConfigChange> = group
        .iter()
        .map(|(n, s)| change(n, Some(s.value.clone()), s.restart_required))
        .collect();
    let needed = configure(&mut ctx, group.clone(), &changes).await.unwrap();
    assert_eq!(needed, ["databases"]);
    assert_eq!(config_get(&ctx, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_get(&ctx, "timeout"), "300");
    assert_eq!(config_get(&ctx, "notify-keyspace-events"), "xE");
    assert_eq!(config_get(&ctx, "lazyfree-lazy-eviction"), "yes");
    assert_eq!(config_get(&ctx, "databases"), "16");

    let effective = Redis.effective_configuration(&ctx).await.unwrap();
    for (name, value) in [
        ("maxmemory", "402653184"),
        ("maxmemory-policy", "allkeys-lru"),
        ("timeout", "300"),
        ("lazyfree-lazy-eviction", "yes"),
        ("databases", "16"),
    ] {
        assert_eq!(
            effective.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }

    // The restart-only value after stop + start; the others stay.
    restart(&ctx).await;
    assert_eq!(config_get(&ctx, "databases"), "32");
    assert_eq!(config_get(&ctx, "timeout"), "300");

    // Removing overrides: back to the flavor's value at once; one the
    // template does not set waits for the restart.
    let mut smaller = group.clone();
    smaller.remove("maxmemory-policy");
    smaller.remove("timeout");
    let removed = [
        change("maxmemory-policy", None, false),
        change("timeout", None, false),
    ];
    let needed = configure(&mut ctx, smaller.clone(), &removed)
        .await
        .unwrap();
    assert_eq!(needed, ["timeout"]);
    assert_eq!(config_get(&ctx, "maxmemory-policy"), "noeviction");
    assert_eq!(config_get(&ctx, "timeout"), "300");
    restart(&ctx).await;
    assert_eq!(config_get(&ctx, "timeout"), "0");

    // A value the server refuses is an error naming the parameter.
    let bad = change(
        "maxclients",
        Some(ConfigValue::String("lots".into())),
        false,
    );
    let e = Redis.apply_configuration(&ctx, &[bad]).await.unwrap_err();
    assert!(matches!(e, DatastoreError::Command { .. }), "{e}");
    assert!(e.to_string().contains("maxclients"), "{e}");
    // A parameter the schema wrongly called dynamic waits for the restart.
    let wrong = change("tcp-backlog", Some(ConfigValue::Integer(100)), false);
    let needed = Redis.apply_configuration(&ctx, &[wrong]).await.unwrap();
    assert_eq!(needed, ["tcp-backlog"]);

    // A bigger flavor: re-rendered and restarted, a bigger maxmemory.
    ctx.ram_mb = 1024;
    restart(&ctx).await;
    assert_eq!(config_get(&ctx, "maxmemory"), "805306368");
    let effective = Redis.effective_configuration(&ctx).await.unwrap();
    assert_eq!(effective["maxmemory"], "805306368");
    assert_eq!(effective["databases"], "32", "the group's");
    Redis.stop(&ctx, STOP).await.unwrap();
}

/// Every parameter of the built-in schema: `CONFIG GET` knows it, and
/// `CONFIG SET` to its current value is refused as immutable exactly when
/// the schema says it needs a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_schema_matches_the_server() {
    let schema = ParameterSchema::parse(builtin_schema("redis", "7.0").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _guard) = running(dir.path(), 245).await;
    let mut checked = 0;
    for p in schema.parameters() {
        let name = p.name.as_str();
        let value = config_get(&ctx, name);
        let set = admin_cli(&ctx, &["CONFIG", "SET", name, &value]);
        let immutable = set.contains("can't set immutable config");
        assert!(
            set == "OK" || immutable,
            "{name}: CONFIG SET {value:?} gives {set}"
        );
        assert_eq!(immutable, p.restart_required, "{name}: {set}");
        checked += 1;
    }
    eprintln!("{checked} parameters checked");
    Redis.stop(&ctx, STOP).await.unwrap();
}

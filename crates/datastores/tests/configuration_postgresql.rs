//! Configuration groups on a real PostgreSQL 15 server
//! (127.10.244-245.X:5432 in a private temporary directory): overrides
//! rendered into `postgresql.conf` and applied by a reload or at the next
//! start, as new `psql` sessions see them; and the built-in schema checked
//! against `pg_settings`, parameter by parameter.

mod postgresql_support;

use coffer_datastores::parameters::builtin_schema;
use coffer_datastores::postgresql::PostgreSql;
use coffer_model::{ConfigValue, Overrides, ParameterSchema, ParameterType, Setting};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, InstanceContext};
use postgresql_support::*;
use std::net::Ipv4Addr;

/// A started instance on 127.10.`net`.X (`net` keeps this file's tests
/// apart from each other and from the other files').
async fn server(net: u8) -> (tempfile::TempDir, InstanceContext, KillOnDrop) {
    let (dir, base) = private_base();
    let mut ctx = context(&base);
    ctx.ip = Ipv4Addr::new(127, 10, net, (std::process::id() % 250 + 2) as u8);
    let guard = KillOnDrop(ctx.clone());
    PostgreSql.initialize(&ctx).await.unwrap();
    PostgreSql.render_config(&ctx).await.unwrap();
    PostgreSql.start(&ctx, START).await.unwrap();
    (dir, ctx, guard)
}

/// `sql` in a new `psql` session as `os_admin` over the unix socket.
async fn socket_psql(ctx: &InstanceContext, sql: &str) -> std::process::Output {
    let pw = std::fs::read_to_string(ctx.secret_dir.join("os_admin.password")).unwrap();
    tokio::process::Command::new("/usr/lib/postgresql/15/bin/psql")
        .env_clear()
        .env("PGPASSWORD", &pw)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", &ctx.run_dir.display().to_string()])
        .args([
            "-p",
            &ctx.port.to_string(),
            "-U",
            "os_admin",
            "-d",
            "postgres",
        ])
        .args(["-c", sql])
        .output()
        .await
        .expect("running psql")
}

/// `SHOW name` in a new session. The group's 1 ms `statement_timeout`
/// applies to it too: a SHOW cancelled on a busy machine is tried again.
async fn show(ctx: &InstanceContext, name: &str) -> String {
    for _ in 0..5 {
        let out = socket_psql(ctx, &format!("SHOW {name}")).await;
        if !String::from_utf8_lossy(&out.stderr).contains("statement timeout") {
            return ok(&out);
        }
    }
    panic!("SHOW {name} timed out again and again");
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

fn overrides(items: &[(&str, ConfigValue, bool)]) -> Overrides {
    items
        .iter()
        .map(|(n, v, r)| (n.to_string(), setting(v.clone(), *r)))
        .collect()
}

/// Set `next` as the instance's overrides: render, then apply with
/// `changes`. Returns what needs a restart.
async fn configure(
    ctx: &mut InstanceContext,
    next: Overrides,
    changes: &[ConfigChange],
) -> Result<Vec<String>, DatastoreError> {
    ctx.overrides = next;
    PostgreSql.render_config(ctx).await.unwrap();
    PostgreSql.apply_configuration(ctx, changes).await
}

async fn restart(ctx: &InstanceContext) {
    PostgreSql.stop(ctx, STOP).await.unwrap();
    PostgreSql.render_config(ctx).await.unwrap();
    PostgreSql.start(ctx, START).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_configuration_group_applies_live_and_at_restart() {
    let (_dir, mut ctx, _guard) = server(244).await;
    assert_eq!(show(&ctx, "work_mem").await, "4MB", "the flavor's");
    assert_eq!(show(&ctx, "max_connections").await, "100");

    let group = overrides(&[
        ("work_mem", ConfigValue::Integer(8192), false),
        ("log_statement", ConfigValue::String("ddl".into()), false),
        ("statement_timeout", ConfigValue::Integer(1), false),
        ("random_page_cost", ConfigValue::Float(1.5), false),
        ("max_connections", ConfigValue::Integer(150), true),
    ]);
    let changes: Vec<ConfigChange> = group
        .iter()
        .map(|(n, s)| change(n, Some(s.value.clone()), s.restart_required))
        .collect();
    let needed = configure(&mut ctx, group.clone(), &changes).await.unwrap();
    assert_eq!(needed, ["max_connections"]);
    // A new session sees the reload at once.
    assert_eq!(show(&ctx, "work_mem").await, "8MB");
    assert_eq!(show(&ctx, "log_statement").await, "ddl");
    assert_eq!(show(&ctx, "statement_timeout").await, "1ms");
    assert_eq!(show(&ctx, "random_page_cost").await, "1.5");
    assert_eq!(show(&ctx, "max_connections").await, "100");

    // The tenant's 1 ms statement timeout applies to tenants, but does not
    // cancel the agent's work.
    let sleep = failed(&socket_psql(&ctx, "SELECT pg_sleep(0.2)").await);
    assert!(sleep.contains("statement timeout"), "{sleep}");
    PostgreSql
        .create_databases(&ctx, &dbs(&["app"]))
        .await
        .unwrap();

    let effective = PostgreSql.effective_configuration(&ctx).await.unwrap();
    for (name, value) in [
        ("work_mem", "8192"),
        ("statement_timeout", "1"),
        ("log_statement", "ddl"),
        ("random_page_cost", "1.5"),
        ("max_connections", "100"),
        ("shared_buffers", "16384"),
        ("maintenance_work_mem", "32768"),
    ] {
        assert_eq!(
            effective.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }

    // The restart-only value after stop + start; the others stay.
    restart(&ctx).await;
    assert_eq!(show(&ctx, "max_connections").await, "150");
    assert_eq!(show(&ctx, "work_mem").await, "8MB");

    // Removing overrides: back to the flavor's value, or the default.
    let mut smaller = group.clone();
    smaller.remove("work_mem");
    smaller.remove("statement_timeout");
    let removed = [
        change("work_mem", None, false),
        change("statement_timeout", None, false),
    ];
    let needed = configure(&mut ctx, smaller.clone(), &removed)
        .await
        .unwrap();
    assert!(needed.is_empty(), "{needed:?}");
    assert_eq!(show(&ctx, "work_mem").await, "4MB");
    assert_eq!(show(&ctx, "statement_timeout").await, "0");

    // A value the server refuses is an error naming the parameter, and
    // nothing of it is applied.
    let mut bad = smaller.clone();
    bad.insert("work_mem".into(), setting(ConfigValue::Integer(10), false));
    let e = configure(
        &mut ctx,
        bad,
        &[change("work_mem", Some(ConfigValue::Integer(10)), false)],
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains("work_mem"), "{e}");
    assert_eq!(show(&ctx, "work_mem").await, "4MB");
    // A parameter the schema wrongly called dynamic is reported as
    // waiting for the restart.
    let mut wrong = smaller.clone();
    wrong.insert(
        "max_locks_per_transaction".into(),
        setting(ConfigValue::Integer(128), false),
    );
    let wrong_change = change(
        "max_locks_per_transaction",
        Some(ConfigValue::Integer(128)),
        false,
    );
    let needed = configure(&mut ctx, wrong, &[wrong_change]).await.unwrap();
    assert_eq!(needed, ["max_locks_per_transaction"]);
    configure(&mut ctx, smaller, &[]).await.unwrap();

    // A bigger flavor: re-rendered and restarted, bigger shared buffers.
    ctx.ram_mb = 1024;
    restart(&ctx).await;
    assert_eq!(show(&ctx, "shared_buffers").await, "256MB");
    assert_eq!(show(&ctx, "max_connections").await, "150", "the group's");
    let effective = PostgreSql.effective_configuration(&ctx).await.unwrap();
    assert_eq!(effective["shared_buffers"], "32768");
    assert_eq!(effective["work_mem"], "8192", "the flavor's RAM/128");
    PostgreSql.stop(&ctx, STOP).await.unwrap();
}

/// Every parameter of the built-in schema as `pg_settings` has it: known,
/// `postmaster` context exactly when the schema says it needs a restart,
/// of the same type and unit, within the server's range, and every
/// allowed value one the server accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_schema_matches_the_server() {
    let schema = ParameterSchema::parse(builtin_schema("postgresql", "15").unwrap()).unwrap();
    let (_dir, ctx, _guard) = server(245).await;
    let mut checked = 0;
    for p in schema.parameters() {
        let row = admin_psql(
            &ctx,
            "postgres",
            &format!(
                "SELECT context, vartype, coalesce(unit, ''), coalesce(min_val, ''), \
                 coalesce(max_val, ''), coalesce(array_to_string(enumvals, ','), '') \
                 FROM pg_settings WHERE name = '{}'",
                p.name
            ),
        )
        .await;
        let fields: Vec<&str> = row.split('|').collect();
        let [context, vartype, unit, min, max, enumvals] = fields[..] else {
            panic!("{} is not a PostgreSQL parameter: {row:?}", p.name);
        };
        assert_eq!(
            context == "postmaster",
            p.restart_required,
            "{}: context {context}",
            p.name
        );
        let kind = match vartype {
            "bool" => ParameterType::Boolean,
            "integer" => ParameterType::Integer,
            "real" => ParameterType::Float,
            _ => ParameterType::String,
        };
        assert_eq!(kind, p.kind, "{}: {vartype}", p.name);
        assert_eq!(p.unit.as_deref().unwrap_or(""), unit, "{}: unit", p.name);
        let number = |s: &str| s.parse::<f64>().unwrap();
        if let Some(lo) = p.min.as_ref().and_then(|n| n.as_f64()) {
            assert!(lo >= number(min), "{}: min {lo} below {min}", p.name);
        }
        if let Some(hi) = p.max.as_ref().and_then(|n| n.as_f64()) {
            assert!(hi <= number(max), "{}: max {hi} above {max}", p.name);
        }
        for v in &p.allowed_values {
            assert!(
                enumvals.split(',').any(|e| e == v),
                "{}: {v} not in {enumvals}",
                p.name
            );
        }
        checked += 1;
    }
    eprintln!("{checked} parameters checked");
    PostgreSql.stop(&ctx, STOP).await.unwrap();
}

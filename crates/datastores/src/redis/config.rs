//! `redis.conf`, sized from the flavor's memory and ending with the
//! configuration group's overrides, and the ACL file a new instance
//! starts with.

use super::admin::ADMIN_USER;
use super::paths::{Paths, RDB_FILE};
use coffer_model::ConfigValue;
use coffer_strategy::{DatastoreError, InstanceContext};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The hashed form of a password as ACL files store it (`#<sha256 hex>`),
/// so no password is ever written in plain text.
pub fn acl_hash(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("#{hex}")
}

/// The ACL file a new instance starts with: no anonymous access, and the
/// agent's own account (its password hashed).
pub fn initial_acl(admin_password: &str) -> String {
    format!(
        "user default off resetchannels -@all\nuser {ADMIN_USER} on {} ~* &* +@all\n",
        acl_hash(admin_password)
    )
}

/// `maxmemory` in MB for a flavor: three quarters of its RAM (the rest is
/// for the server itself, fork copy-on-write and clients), at least 16.
pub fn maxmemory_mb(ram_mb: i64) -> i64 {
    (ram_mb.max(0) * 3 / 4).max(16)
}

/// The settings the template derives from the flavor, as `redis.conf` and
/// `CONFIG SET` take them: `maxmemory`, and a policy under which writes
/// fail rather than evict keys.
pub fn sized(ram_mb: i64) -> [(&'static str, String); 2] {
    [
        ("maxmemory", format!("{}mb", maxmemory_mb(ram_mb))),
        ("maxmemory-policy", "noeviction".to_string()),
    ]
}

/// The value the template gives `name` for a flavor with `ram_mb` MB of
/// memory, if it sets it.
pub fn sized_value(ram_mb: i64, name: &str) -> Option<String> {
    sized(ram_mb)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// Directives the template sets that Coffer depends on (and others that
/// would undo them or reach outside the instance): a configuration group
/// never overrides these.
pub const PROTECTED: &[&str] = &[
    "bind",
    "bind-source-addr",
    "port",
    "unixsocket",
    "unixsocketperm",
    "dir",
    "pidfile",
    "logfile",
    "daemonize",
    "supervised",
    "set-proc-title",
    "proc-title-template",
    "aclfile",
    "user",
    "requirepass",
    "masterauth",
    "masteruser",
    "replicaof",
    "slaveof",
    "protected-mode",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "rename-command",
    "include",
    "loadmodule",
    "appendonly",
    "appendfsync",
    "appendfilename",
    "appenddirname",
    "save",
    "dbfilename",
    "tls-port",
    "cluster-enabled",
    "cluster-config-file",
];

/// The keyspace event classes of Redis 7.0: any other character in
/// `notify-keyspace-events` would keep the server from starting.
const KEYSPACE_EVENT_CLASSES: &str = "AKEg$lshzxetmdn";

/// The `redis.conf` for this instance. Users are not here but in the ACL
/// file, which the server rewrites itself (`ACL SAVE`).
pub fn render(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let restoring = paths.rdb_restore_marker.exists();
    let sized: String = sized(ctx.ram_mb)
        .iter()
        .map(|(name, value)| format!("{name} {value}\n"))
        .collect();
    let text = format!(
        "# Written by Coffer before every start; local edits are overwritten.\n\
         bind {ip}\n\
         port {port}\n\
         unixsocket {socket}\n\
         unixsocketperm 700\n\
         dir {data}\n\
         pidfile {pid}\n\
         logfile {log}\n\
         daemonize no\n\
         # A SIGTERM stops it even when the snapshot cannot be written (a\n\
         # full volume): the append-only file holds the data.\n\
         shutdown-on-sigterm force\n\
         # Keep the command line as started: it names this instance's config.\n\
         set-proc-title no\n\
         # Users: no anonymous access; hashed passwords only.\n\
         aclfile {acl}\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         enable-protected-configs no\n\
         # Sized for {ram} MB of RAM; writes fail rather than evict keys.\n\
         {sized}\
         # Durability: append-only file, fsync once a second, plus snapshots.\n\
         {aof_comment}\
         appendonly {appendonly}\n\
         appendfsync everysec\n\
         save 3600 1 300 100 60 10000\n\
         dbfilename {rdb_file}\n",
        ip = ctx.ip,
        port = ctx.port,
        socket = path_value(&paths.socket)?,
        data = path_value(&ctx.data_dir)?,
        pid = path_value(&paths.pid_file)?,
        log = path_value(&paths.log)?,
        acl = path_value(&paths.acl)?,
        ram = ctx.ram_mb,
        aof_comment = if restoring {
            "# Off until the restored RDB is rewritten as the AOF.\n"
        } else {
            ""
        },
        appendonly = if restoring { "no" } else { "yes" },
        rdb_file = RDB_FILE,
    );
    Ok(text + &overrides_section(ctx)?)
}

/// The configuration group's overrides, after (and so winning over)
/// everything above; empty without overrides.
fn overrides_section(ctx: &InstanceContext) -> Result<String, DatastoreError> {
    crate::overrides::check(&ctx.overrides, PROTECTED)?;
    if ctx.overrides.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from("# Configuration group: wins over the values above.\n");
    for (name, setting) in &ctx.overrides {
        check_value(name, &setting.value)?;
        let value = match &setting.value {
            ConfigValue::String(s) => format!("\"{s}\""),
            other => command_value(other),
        };
        out.push_str(&format!("{name} {value}\n"));
    }
    Ok(out)
}

/// A value as `CONFIG SET` takes it: booleans yes/no, the rest as text.
pub fn command_value(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Boolean(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

/// Refuse a value the server would not start with, which the schema's
/// types cannot express: `notify-keyspace-events` must name known classes.
fn check_value(name: &str, value: &ConfigValue) -> Result<(), DatastoreError> {
    match value {
        ConfigValue::String(s)
            if name == "notify-keyspace-events"
                && !s.chars().all(|c| KEYSPACE_EVENT_CLASSES.contains(c)) =>
        {
            Err(DatastoreError::InvalidInput(format!(
                "configuration parameter notify-keyspace-events: {s:?} holds a letter that is not \
                 an event class (use {KEYSPACE_EVENT_CLASSES})"
            )))
        }
        _ => Ok(()),
    }
}

/// A path as a config value. redis.conf splits lines on blanks and gives
/// quotes and backslashes a meaning, so paths that would need quoting are
/// refused rather than quoted.
fn path_value(path: &Path) -> Result<String, DatastoreError> {
    let bad = || {
        DatastoreError::InvalidInput(format!(
            "path {path:?} cannot be written into redis.conf \
             (needs UTF-8 without blanks, quotes or backslashes)"
        ))
    };
    let s = path.to_str().ok_or_else(bad)?;
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\".contains(c))
    {
        return Err(bad());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::InstanceId;
    use std::path::PathBuf;

    fn ctx(base: &str, ram_mb: i64) -> InstanceContext {
        let base = PathBuf::from(base);
        InstanceContext {
            instance_id: InstanceId::new(),
            data_dir: base.join("data"),
            conf_dir: base.join("conf"),
            run_dir: base.join("run"),
            log_dir: base.join("log"),
            secret_dir: base.join("secret"),
            ip: "127.10.0.3".parse().unwrap(),
            port: 6379,
            ram_mb,
            volume_size_bytes: 1 << 30,
            overrides: Default::default(),
            sandbox: None,
        }
    }

    #[test]
    fn renders_the_instance_config() {
        let c = ctx("/srv/coffer/i1", 512);
        let text = render(&c, &Paths::new(&c)).unwrap();
        for line in [
            "bind 127.10.0.3",
            "port 6379",
            "unixsocket /srv/coffer/i1/run/redis.sock",
            "unixsocketperm 700",
            "dir /srv/coffer/i1/data",
            "pidfile /srv/coffer/i1/run/redis.pid",
            "logfile /srv/coffer/i1/log/redis.log",
            "daemonize no",
            "set-proc-title no",
            "aclfile /srv/coffer/i1/conf/server/users.acl",
            "maxmemory 384mb",
            "maxmemory-policy noeviction",
            "appendonly yes",
            "appendfsync everysec",
            "save 3600 1 300 100 60 10000",
            "dbfilename dump.rdb",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // No password of any kind in the config: users live in the ACL file.
        assert!(!text.contains("requirepass") && !text.contains("masterauth"));
        assert!(!text.contains('>') && !text.contains("user "), "{text}");
    }

    #[test]
    fn a_restored_rdb_starts_without_aof() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        let c = ctx(base, 512);
        let p = Paths::new(&c);
        std::fs::create_dir_all(&c.data_dir).unwrap();
        std::fs::write(&p.rdb_restore_marker, b"").unwrap();
        let text = render(&c, &p).unwrap();
        assert!(text.lines().any(|l| l == "appendonly no"), "{text}");
        std::fs::remove_file(&p.rdb_restore_marker).unwrap();
        let text = render(&c, &p).unwrap();
        assert!(text.lines().any(|l| l == "appendonly yes"), "{text}");
    }

    fn setting(value: ConfigValue, restart_required: bool) -> coffer_model::Setting {
        coffer_model::Setting {
            value,
            restart_required,
        }
    }

    #[test]
    fn overrides_follow_and_win_over_the_flavor() {
        let mut c = ctx("/srv/coffer/i1", 512);
        c.overrides = [
            (
                "maxmemory-policy",
                setting(ConfigValue::String("allkeys-lru".into()), false),
            ),
            ("maxmemory", setting(ConfigValue::Integer(100 << 20), false)),
            (
                "lazyfree-lazy-eviction",
                setting(ConfigValue::Boolean(true), false),
            ),
            (
                "notify-keyspace-events",
                setting(ConfigValue::String("Ex".into()), false),
            ),
            ("databases", setting(ConfigValue::Integer(32), true)),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        let text = render(&c, &Paths::new(&c)).unwrap();
        assert!(
            text.ends_with(
                "dbfilename dump.rdb\n\
                 # Configuration group: wins over the values above.\n\
                 databases 32\n\
                 lazyfree-lazy-eviction yes\n\
                 maxmemory 104857600\n\
                 maxmemory-policy \"allkeys-lru\"\n\
                 notify-keyspace-events \"Ex\"\n"
            ),
            "{text}"
        );
        let flavor = text.find("maxmemory 384mb\n").unwrap();
        assert!(flavor < text.find("maxmemory 104857600\n").unwrap());
        let plain = render(&ctx("/srv/coffer/i1", 512), &Paths::new(&c)).unwrap();
        assert!(!plain.contains("Configuration group"));
        assert_eq!(sized_value(512, "maxmemory").as_deref(), Some("384mb"));
        assert_eq!(
            sized_value(512, "maxmemory-policy").as_deref(),
            Some("noeviction")
        );
        assert_eq!(sized_value(512, "timeout"), None);
        assert_eq!(command_value(&ConfigValue::Boolean(false)), "no");
        assert_eq!(command_value(&ConfigValue::Integer(-1)), "-1");
    }

    #[test]
    fn overrides_that_would_break_the_server_are_refused() {
        for (name, value) in [
            ("dir", ConfigValue::String("/tmp".into())),
            ("appendonly", ConfigValue::Boolean(false)),
            ("user", ConfigValue::String("x on nopass".into())),
            ("notify-keyspace-events", ConfigValue::String("Q".into())),
        ] {
            let mut c = ctx("/srv/coffer/i1", 512);
            c.overrides = [(name.to_string(), setting(value, false))].into();
            let e = render(&c, &Paths::new(&c)).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn refuses_paths_that_need_quoting() {
        for base in ["/srv/my instance", "/srv/a\"b", "/srv/a\\b", "/srv/a\nb"] {
            let c = ctx(base, 512);
            let e = render(&c, &Paths::new(&c)).unwrap_err();
            assert!(
                matches!(e, DatastoreError::InvalidInput(_)),
                "{base:?}: {e}"
            );
        }
    }

    #[test]
    fn hashes_and_sizes() {
        // sha256("secret")
        assert_eq!(
            acl_hash("secret"),
            "#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
        let acl = initial_acl("s3cret-admin");
        assert!(!acl.contains("s3cret-admin"));
        assert_eq!(
            acl.lines().collect::<Vec<_>>(),
            [
                "user default off resetchannels -@all".to_string(),
                format!("user os_admin on {} ~* &* +@all", acl_hash("s3cret-admin")),
            ]
        );
        assert_eq!(maxmemory_mb(512), 384);
        assert_eq!(maxmemory_mb(2048), 1536);
        assert_eq!(maxmemory_mb(0), 16);
        assert_eq!(maxmemory_mb(-5), 16);
    }
}

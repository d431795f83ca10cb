//! The server's `postgresql.conf`, rendered into `conf_dir`, sized from
//! the flavor's memory and the volume's size, and ending with the
//! configuration group's overrides (the last setting of a name wins).
//!
//! Everything per instance (address, port, socket, log and hba paths) is
//! here, outside the data directory: `pg_basebackup` copies the data
//! directory's own files into restores and replicas, which must not inherit
//! another instance's address. `postgresql.auto.conf` (ALTER SYSTEM) is
//! never used for the same reason.

use super::paths::Paths;
use coffer_model::ConfigValue;
use coffer_strategy::{DatastoreError, InstanceContext};
use std::path::Path;

/// The configuration template; every `{{name}}` is replaced by `render`.
const TEMPLATE: &str = "\
# Written by Coffer before every start; local edits are overwritten.
hba_file = '{{hba}}'
ident_file = '{{ident}}'
listen_addresses = '{{ip}}'
port = {{port}}
unix_socket_directories = '{{run_dir}}'
unix_socket_permissions = 0700
cluster_name = '{{cluster_name}}'
password_encryption = scram-sha-256
superuser_reserved_connections = 3

logging_collector = on
log_directory = '{{log_dir}}'
log_filename = 'postgresql-%a.log'
log_truncate_on_rotation = on
log_rotation_age = 1d
log_rotation_size = 0
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'Etc/UTC'

datestyle = 'iso, mdy'
timezone = 'Etc/UTC'
lc_messages = 'C'
lc_monetary = 'C'
lc_numeric = 'C'
lc_time = 'C'
default_text_search_config = 'pg_catalog.english'

# Sized for {{ram_mb}} MB of RAM.
shared_buffers = {{shared_buffers}}MB
effective_cache_size = {{effective_cache}}MB
max_connections = {{max_connections}}
work_mem = {{work_mem}}MB
maintenance_work_mem = {{maintenance_work_mem}}MB

# Sized for a {{volume_mb}} MB volume, so that WAL cannot fill it.
max_wal_size = {{max_wal}}MB
min_wal_size = {{min_wal}}MB

# Backups: pg_basebackup is a replication client, and with `-X fetch`
# (the only WAL mode it has when streaming a tar to stdout) it collects the
# backup's WAL at the end, which must not have been recycled meanwhile.
wal_level = replica
max_wal_senders = 10
wal_keep_size = {{min_wal}}MB

# Read-only switch (set_read_only); written with `off` by render_config
# when missing.
include_if_exists = '{{read_only}}'
";

/// The parameters the template sizes from the flavor (its memory and
/// volume): with the overrides, what `effective_configuration` reports.
pub const SIZED: &[&str] = &[
    "shared_buffers",
    "effective_cache_size",
    "max_connections",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "min_wal_size",
];

/// Parameters the template sets that Coffer depends on (and others that
/// would undo them): a configuration group never overrides these.
pub const PROTECTED: &[&str] = &[
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "cluster_name",
    "password_encryption",
    "superuser_reserved_connections",
    "logging_collector",
    "log_directory",
    "log_filename",
    "log_truncate_on_rotation",
    "log_rotation_age",
    "log_rotation_size",
    "log_line_prefix",
    "lc_messages",
    "max_wal_size",
    "min_wal_size",
    "wal_level",
    "max_wal_senders",
    "max_replication_slots",
    "wal_keep_size",
    "archive_mode",
    "archive_command",
    "archive_library",
    "restore_command",
    "default_transaction_read_only",
    "ssl",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "shared_preload_libraries",
    "local_preload_libraries",
    "session_preload_libraries",
    "dynamic_library_path",
    "include",
    "include_dir",
    "include_if_exists",
];

/// Memory settings derived from the flavor's RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `shared_buffers` in MiB: a quarter of the RAM, at least 16.
    pub shared_buffers_mb: i64,
    /// `effective_cache_size` in MiB: three quarters of the RAM (a planner
    /// hint, nothing is allocated).
    pub effective_cache_mb: i64,
    /// `max_connections`: 100 per 512 MB, within 20..=1000.
    pub max_connections: i64,
    /// `work_mem` in MiB (per sort or hash, per connection).
    pub work_mem_mb: i64,
    /// `maintenance_work_mem` in MiB (VACUUM, CREATE INDEX).
    pub maintenance_work_mem_mb: i64,
}

impl Memory {
    /// Settings for a flavor with `ram_mb` MB of memory.
    pub fn for_ram(ram_mb: i64) -> Self {
        let ram = ram_mb.max(0);
        Memory {
            shared_buffers_mb: (ram / 4).max(16),
            effective_cache_mb: (ram * 3 / 4).max(32),
            max_connections: (ram * 100 / 512).clamp(20, 1000),
            work_mem_mb: (ram / 128).clamp(1, 64),
            maintenance_work_mem_mb: (ram / 16).clamp(16, 1024),
        }
    }
}

/// WAL sizes in MiB: `max_wal_size` an eighth of the volume within
/// 64..=4096 (the default 1 GB would fill a 1 GB volume), `min_wal_size`
/// a quarter of that within 32..=1024 (at least two 16 MB segments).
pub fn wal_sizes(volume_bytes: u64) -> (u64, u64) {
    let max = (volume_bytes >> 20) / 8;
    let max = max.clamp(64, 4096);
    (max, (max / 4).clamp(32, 1024))
}

/// The `postgresql.conf` for this instance.
pub fn render(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let mem = Memory::for_ram(ctx.ram_mb);
    let (max_wal, min_wal) = wal_sizes(ctx.volume_size_bytes);
    let values: [(&str, String); 17] = [
        ("hba", path_value(&paths.hba)?),
        ("ident", path_value(&paths.ident)?),
        ("ip", ctx.ip.to_string()),
        ("port", ctx.port.to_string()),
        ("run_dir", path_value(&paths.run_dir)?),
        ("cluster_name", format!("coffer-{}", ctx.instance_id)),
        ("log_dir", path_value(&paths.log_dir)?),
        ("ram_mb", ctx.ram_mb.to_string()),
        ("shared_buffers", mem.shared_buffers_mb.to_string()),
        ("effective_cache", mem.effective_cache_mb.to_string()),
        ("max_connections", mem.max_connections.to_string()),
        ("work_mem", mem.work_mem_mb.to_string()),
        (
            "maintenance_work_mem",
            mem.maintenance_work_mem_mb.to_string(),
        ),
        ("volume_mb", (ctx.volume_size_bytes >> 20).to_string()),
        ("max_wal", max_wal.to_string()),
        ("min_wal", min_wal.to_string()),
        ("read_only", path_value(&paths.read_only)?),
    ];
    let mut out = TEMPLATE.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    debug_assert!(
        !out.contains("{{"),
        "unfilled placeholder in postgresql.conf template"
    );
    out.push_str(&overrides_section(ctx)?);
    Ok(out)
}

/// The configuration group's overrides, after (and so winning over)
/// everything above; empty without overrides.
fn overrides_section(ctx: &InstanceContext) -> Result<String, DatastoreError> {
    crate::overrides::check(&ctx.overrides, PROTECTED)?;
    if ctx.overrides.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from("\n# Configuration group: wins over the values above.\n");
    for (name, setting) in &ctx.overrides {
        out.push_str(&format!("{name} = {}\n", conf_value(&setting.value)));
    }
    Ok(out)
}

/// A value as `postgresql.conf` writes it: booleans on/off, strings
/// single-quoted (quotes doubled, backslashes escaped), numbers bare (in
/// the parameter's base unit).
pub fn conf_value(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
        ConfigValue::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        ConfigValue::Integer(_) | ConfigValue::Float(_) => value.to_string(),
    }
}

/// A path inside a single-quoted configuration value: quotes doubled and
/// backslashes escaped (the file's own escape character). Paths that are
/// not UTF-8 or hold control characters are refused.
pub fn path_value(path: &Path) -> Result<String, DatastoreError> {
    let s = path.to_str().ok_or_else(|| bad_path(path))?;
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(bad_path(path));
    }
    Ok(s.replace('\\', "\\\\").replace('\'', "''"))
}

fn bad_path(path: &Path) -> DatastoreError {
    DatastoreError::InvalidInput(format!(
        "path {path:?} cannot be written into postgresql.conf (needs UTF-8 without control characters)"
    ))
}

/// The contents of `read_only.conf`: on while the instance is read-only.
pub fn read_only_conf(read_only: bool) -> String {
    format!(
        "# Written by Coffer: set_read_only({read_only}).\n\
         default_transaction_read_only = {}\n",
        if read_only { "on" } else { "off" }
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use coffer_model::InstanceId;
    use std::path::PathBuf;

    pub(in super::super) fn ctx(ram_mb: i64) -> InstanceContext {
        let base = PathBuf::from("/srv/coffer/i1");
        InstanceContext {
            instance_id: InstanceId::new(),
            data_dir: base.join("data"),
            conf_dir: base.join("conf"),
            run_dir: base.join("run"),
            log_dir: base.join("log"),
            secret_dir: base.join("secret"),
            ip: "10.1.2.3".parse().unwrap(),
            port: 5432,
            ram_mb,
            volume_size_bytes: 1 << 30,
            overrides: Default::default(),
            sandbox: None,
        }
    }

    fn rendered(ram_mb: i64) -> String {
        let c = ctx(ram_mb);
        render(&c, &Paths::new(&c)).unwrap()
    }

    #[test]
    fn paths_and_address() {
        let c = ctx(512);
        let conf = render(&c, &Paths::new(&c)).unwrap();
        assert!(conf.starts_with("# Written by Coffer"));
        let cluster = format!("cluster_name = 'coffer-{}'", c.instance_id);
        for line in [
            "hba_file = '/srv/coffer/i1/conf/pg_hba.conf'",
            "ident_file = '/srv/coffer/i1/conf/pg_ident.conf'",
            "listen_addresses = '10.1.2.3'",
            "port = 5432",
            "unix_socket_directories = '/srv/coffer/i1/run'",
            "log_directory = '/srv/coffer/i1/log'",
            "password_encryption = scram-sha-256",
            "include_if_exists = '/srv/coffer/i1/conf/read_only.conf'",
            &cluster,
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing {line:?} in\n{conf}"
            );
        }
        assert!(!conf.contains("{{"));
        assert!(
            !conf.contains("data_directory"),
            "the data dir comes from -D"
        );
    }

    #[test]
    fn memory_and_wal_scale() {
        let small = rendered(512);
        for line in [
            "shared_buffers = 128MB",
            "effective_cache_size = 384MB",
            "max_connections = 100",
            "work_mem = 4MB",
            "maintenance_work_mem = 32MB",
            "max_wal_size = 128MB",
            "min_wal_size = 32MB",
            "wal_level = replica",
            "max_wal_senders = 10",
            "wal_keep_size = 32MB",
        ] {
            assert!(
                small.lines().any(|l| l == line),
                "missing {line:?} in\n{small}"
            );
        }
        let big = rendered(4096);
        assert!(big.contains("shared_buffers = 1024MB\n"), "{big}");
        assert!(big.contains("max_connections = 800\n"));
        let tiny = Memory::for_ram(0);
        assert_eq!((tiny.shared_buffers_mb, tiny.max_connections), (16, 20));
        assert_eq!(Memory::for_ram(-5), tiny);
        assert_eq!(wal_sizes(0), (64, 32));
        assert_eq!(wal_sizes(100 << 30), (4096, 1024));
    }

    #[test]
    fn read_only_switch() {
        assert!(read_only_conf(true).ends_with("\ndefault_transaction_read_only = on\n"));
        assert!(read_only_conf(false).ends_with("\ndefault_transaction_read_only = off\n"));
    }

    #[test]
    fn overrides_follow_and_win_over_the_flavor() {
        let mut c = ctx(512);
        let set = |value, restart_required| coffer_model::Setting {
            value,
            restart_required,
        };
        c.overrides = [
            ("work_mem", set(ConfigValue::Integer(8192), false)),
            ("max_connections", set(ConfigValue::Integer(150), true)),
            ("autovacuum", set(ConfigValue::Boolean(false), false)),
            ("random_page_cost", set(ConfigValue::Float(1.1), false)),
            (
                "log_statement",
                set(ConfigValue::String("ddl".into()), false),
            ),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        let conf = render(&c, &Paths::new(&c)).unwrap();
        assert!(
            conf.ends_with(
                "\n# Configuration group: wins over the values above.\n\
                 autovacuum = off\n\
                 log_statement = 'ddl'\n\
                 max_connections = 150\n\
                 random_page_cost = 1.1\n\
                 work_mem = 8192\n"
            ),
            "{conf}"
        );
        // After the flavor's value and the read-only include.
        let flavor = conf.find("max_connections = 100\n").unwrap();
        let include = conf.find("include_if_exists").unwrap();
        let group = conf.find("max_connections = 150\n").unwrap();
        assert!(flavor < group && include < group, "{conf}");
        assert!(!rendered(512).contains("Configuration group"));
        assert_eq!(
            conf_value(&ConfigValue::String("it's a\\b".into())),
            "'it''s a\\\\b'"
        );
    }

    #[test]
    fn protected_parameters_are_refused_and_sized_ones_rendered() {
        for name in [
            "listen_addresses",
            "wal_level",
            "hba_file",
            "ssl",
            "max_wal_size",
        ] {
            let mut c = ctx(512);
            let setting = coffer_model::Setting {
                value: ConfigValue::String("x".into()),
                restart_required: true,
            };
            c.overrides = [(name.to_string(), setting)].into();
            let e = render(&c, &Paths::new(&c)).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
            assert!(e.to_string().contains(name), "{e}");
        }
        let conf = rendered(512);
        for name in SIZED {
            let line = format!("\n{name} = ");
            assert!(conf.contains(&line), "{name} is not in\n{conf}");
        }
    }

    #[test]
    fn quotes_in_paths_are_escaped_and_control_characters_refused() {
        assert_eq!(path_value(Path::new("/a'b\\c")).unwrap(), "/a''b\\\\c");
        let mut c = ctx(512);
        c.log_dir = PathBuf::from("/srv/a\nb");
        let e = render(&c, &Paths::new(&c)).unwrap_err();
        assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    }
}

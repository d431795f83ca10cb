//! The server's `my.cnf`, rendered from a template, sized from the
//! flavor's memory, and ending with the configuration group's overrides.

use super::paths::Paths;
use coffer_model::ConfigValue;
use coffer_strategy::{DatastoreError, InstanceContext};

/// The configuration template; every `{{name}}` is replaced by `render`.
const TEMPLATE: &str = "\
# Written by Coffer before every start; local edits are overwritten.
[mariadbd]
{{user}}datadir = {{datadir}}
bind-address = {{ip}}
port = {{port}}
socket = {{socket}}
tmpdir = {{tmpdir}}
pid-file = {{pid_file}}
log-error = {{log_error}}
skip-name-resolve
local-infile = 0
secure-file-priv = {{files_dir}}
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci

# Sized for {{ram_mb}} MB of RAM.
{{sized}}";

/// Options the template sets that Coffer depends on (and paths and
/// switches that would undo them): a configuration group never overrides
/// these.
pub const PROTECTED: &[&str] = &[
    "user",
    "datadir",
    "bind_address",
    "port",
    "socket",
    "tmpdir",
    "pid_file",
    "log_error",
    "skip_name_resolve",
    "local_infile",
    "character_set_server",
    "collation_server",
    "init_file",
    "read_only",
    "super_read_only",
    "skip_networking",
    "skip_grant_tables",
    "secure_file_priv",
    "plugin_dir",
    "plugin_load_add",
    "log_bin",
    "log_basename",
    "general_log_file",
    "slow_query_log_file",
    "innodb_data_home_dir",
    "innodb_log_group_home_dir",
    "innodb_undo_directory",
    "aria_log_dir_path",
];

/// The SQL modes MariaDB 10.11 knows: a `sql_mode` naming another would
/// keep the server from starting.
const SQL_MODES: &[&str] = &[
    "REAL_AS_FLOAT",
    "PIPES_AS_CONCAT",
    "ANSI_QUOTES",
    "IGNORE_SPACE",
    "IGNORE_BAD_TABLE_OPTIONS",
    "ONLY_FULL_GROUP_BY",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_DIR_IN_CREATE",
    "POSTGRESQL",
    "ORACLE",
    "MSSQL",
    "DB2",
    "MAXDB",
    "NO_KEY_OPTIONS",
    "NO_TABLE_OPTIONS",
    "NO_FIELD_OPTIONS",
    "MYSQL323",
    "MYSQL40",
    "ANSI",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "STRICT_TRANS_TABLES",
    "STRICT_ALL_TABLES",
    "NO_ZERO_IN_DATE",
    "NO_ZERO_DATE",
    "ALLOW_INVALID_DATES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "TRADITIONAL",
    "NO_AUTO_CREATE_USER",
    "HIGH_NOT_PRECEDENCE",
    "NO_ENGINE_SUBSTITUTION",
    "PAD_CHAR_TO_FULL_LENGTH",
    "EMPTY_STRING_IS_NULL",
    "SIMULTANEOUS_ASSIGNMENT",
    "TIME_ROUND_FRACTIONAL",
];

/// A flavor-derived amount: `my.cnf` writes mebibytes as `256M`, SQL
/// needs bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    Mib(i64),
    Count(i64),
}

impl Amount {
    /// As `my.cnf` writes it.
    pub fn option(self) -> String {
        match self {
            Amount::Mib(n) => format!("{n}M"),
            Amount::Count(n) => n.to_string(),
        }
    }

    /// As a number in SQL (`SET GLOBAL`).
    pub fn sql(self) -> String {
        match self {
            Amount::Mib(n) => n.saturating_mul(1 << 20).to_string(),
            Amount::Count(n) => n.to_string(),
        }
    }
}

/// Memory settings derived from the flavor's RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `innodb_buffer_pool_size` in MiB: half the RAM, at least 8.
    pub buffer_pool_mb: i64,
    /// `innodb_log_buffer_size` in MiB.
    pub log_buffer_mb: i64,
    /// `max_connections`: 100 per 512 MB, within 20..=2000.
    pub max_connections: i64,
    /// `key_buffer_size` in MiB (MyISAM indexes; little used).
    pub key_buffer_mb: i64,
    /// `aria_pagecache_buffer_size` in MiB (internal temporary tables).
    pub aria_pagecache_mb: i64,
    /// `tmp_table_size` and `max_heap_table_size` in MiB (per connection).
    pub tmp_table_mb: i64,
}

impl Memory {
    /// Settings for a flavor with `ram_mb` MB of memory.
    pub fn for_ram(ram_mb: i64) -> Self {
        let ram = ram_mb.max(0);
        Memory {
            buffer_pool_mb: (ram / 2).max(8),
            log_buffer_mb: (ram / 64).clamp(2, 64),
            max_connections: (ram * 100 / 512).clamp(20, 2000),
            key_buffer_mb: (ram / 256).clamp(1, 32),
            aria_pagecache_mb: (ram / 64).clamp(1, 128),
            tmp_table_mb: (ram / 32).clamp(2, 64),
        }
    }

    /// The options `my.cnf` sets from these sizes, in file order.
    pub fn options(&self) -> [(&'static str, Amount); 7] {
        [
            ("innodb_buffer_pool_size", Amount::Mib(self.buffer_pool_mb)),
            ("innodb_log_buffer_size", Amount::Mib(self.log_buffer_mb)),
            ("max_connections", Amount::Count(self.max_connections)),
            ("key_buffer_size", Amount::Mib(self.key_buffer_mb)),
            (
                "aria_pagecache_buffer_size",
                Amount::Mib(self.aria_pagecache_mb),
            ),
            ("tmp_table_size", Amount::Mib(self.tmp_table_mb)),
            ("max_heap_table_size", Amount::Mib(self.tmp_table_mb)),
        ]
    }
}

/// The value the template gives option `name` for a flavor with `ram_mb`
/// MB of memory, if it sets it.
pub fn sized_value(ram_mb: i64, name: &str) -> Option<Amount> {
    Memory::for_ram(ram_mb)
        .options()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, amount)| amount)
}

/// The `my.cnf` for this instance.
pub fn render(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let sized: String = Memory::for_ram(ctx.ram_mb)
        .options()
        .iter()
        .map(|(name, amount)| format!("{name} = {}\n", amount.option()))
        .collect();
    // Run as root only when unconfined: in a sandbox the server starts as
    // the instance's own account already.
    let user = match ctx.sandbox {
        Some(_) => String::new(),
        None => "user = root\n".to_string(),
    };
    let values: [(&str, String); 11] = [
        ("user", user),
        ("files_dir", path_value(&paths.files_dir)?),
        ("datadir", path_value(&ctx.data_dir)?),
        ("ip", ctx.ip.to_string()),
        ("port", ctx.port.to_string()),
        ("socket", path_value(&paths.socket)?),
        ("tmpdir", path_value(&paths.tmp_dir)?),
        ("pid_file", path_value(&paths.pid_file)?),
        ("log_error", path_value(&paths.error_log)?),
        ("ram_mb", ctx.ram_mb.to_string()),
        ("sized", sized),
    ];
    let mut out = TEMPLATE.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    debug_assert!(
        !out.contains("{{"),
        "unfilled placeholder in my.cnf template"
    );
    out.push_str(&overrides_section(ctx)?);
    Ok(out)
}

/// The configuration group's overrides, after (and so winning over) the
/// flavor-derived options; empty without overrides.
fn overrides_section(ctx: &InstanceContext) -> Result<String, DatastoreError> {
    crate::overrides::check(&ctx.overrides, PROTECTED)?;
    if ctx.overrides.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from("\n# Configuration group: wins over the values above.\n");
    for (name, setting) in &ctx.overrides {
        check_value(name, &setting.value)?;
        out.push_str(&format!("{name} = {}\n", option_value(&setting.value)));
    }
    Ok(out)
}

/// A value as `my.cnf` writes it: booleans ON/OFF, strings in double
/// quotes (their characters need no escaping), numbers as they are.
fn option_value(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Boolean(b) => on_off(*b).to_string(),
        ConfigValue::String(s) => format!("\"{s}\""),
        ConfigValue::Integer(_) | ConfigValue::Float(_) => value.to_string(),
    }
}

/// A value as `SET GLOBAL` takes it: booleans ON/OFF, strings as quoted
/// literals, numbers as they are.
pub fn sql_value(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Boolean(b) => on_off(*b).to_string(),
        ConfigValue::String(s) => super::sql::quote_str(s),
        ConfigValue::Integer(_) | ConfigValue::Float(_) => value.to_string(),
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

/// Refuse a value the server would not start with, which the schema's
/// types cannot express: `sql_mode` must name known modes.
fn check_value(name: &str, value: &ConfigValue) -> Result<(), DatastoreError> {
    let ConfigValue::String(modes) = value else {
        return Ok(());
    };
    if name != "sql_mode" {
        return Ok(());
    }
    let unknown = modes
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .find(|m| !SQL_MODES.iter().any(|known| known.eq_ignore_ascii_case(m)));
    match unknown {
        Some(m) => Err(DatastoreError::InvalidInput(format!(
            "configuration parameter sql_mode: {m:?} is not an SQL mode of MariaDB"
        ))),
        None => Ok(()),
    }
}

/// Write the instance's `my.cnf` (and the server's tmpdir). With
/// `init_file`, the server runs that SQL file at its next start: a
/// restore's first start re-keys the admin account that way, before any
/// client can connect; the next `write` without it takes it out again.
pub fn write(
    ctx: &InstanceContext,
    paths: &Paths,
    init_file: Option<&std::path::Path>,
) -> Result<(), DatastoreError> {
    paths.check_socket()?;
    let mut text = render(ctx, paths)?;
    if let Some(file) = init_file {
        text.push_str(&format!(
            "# Only for the first start after a restore.
init-file = {}
",
            path_value(file)?
        ));
    }
    std::fs::create_dir_all(&ctx.conf_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", ctx.conf_dir.display()))?;
    crate::sandbox::server_dir(ctx, &paths.tmp_dir, 0o700)?;
    crate::sandbox::server_dir(ctx, &paths.files_dir, 0o700)?;
    crate::files::write_atomic(&paths.config, text.as_bytes(), 0o644)?;
    Ok(())
}

/// A path as an option value. The option file has no quoting that every
/// tool reads alike, so paths that would need it are refused.
pub fn path_value(path: &std::path::Path) -> Result<String, DatastoreError> {
    let s = path.to_str().ok_or_else(|| bad_path(path))?;
    if s.is_empty() || s.trim() != s || s.chars().any(|c| c.is_control() || "#;\"'\\".contains(c)) {
        return Err(bad_path(path));
    }
    Ok(s.to_string())
}

fn bad_path(path: &std::path::Path) -> DatastoreError {
    DatastoreError::InvalidInput(format!(
        "path {path:?} cannot be written into my.cnf (needs UTF-8 without quotes, '#', ';', backslashes or surrounding spaces)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::InstanceId;
    use std::path::PathBuf;

    fn ctx(ram_mb: i64) -> InstanceContext {
        let base = PathBuf::from("/srv/coffer/i1");
        InstanceContext {
            instance_id: InstanceId::new(),
            data_dir: base.join("data"),
            conf_dir: base.join("conf"),
            run_dir: base.join("run"),
            log_dir: base.join("log"),
            secret_dir: base.join("secret"),
            ip: "10.1.2.3".parse().unwrap(),
            port: 3306,
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
        let cnf = rendered(512);
        assert!(cnf.starts_with("# Written by Coffer"));
        for line in [
            "[mariadbd]",
            "user = root",
            "datadir = /srv/coffer/i1/data",
            "bind-address = 10.1.2.3",
            "port = 3306",
            "socket = /srv/coffer/i1/run/mysqld.sock",
            "pid-file = /srv/coffer/i1/run/mariadbd.pid",
            "log-error = /srv/coffer/i1/log/error.log",
            "skip-name-resolve",
        ] {
            assert!(cnf.lines().any(|l| l == line), "missing {line:?} in\n{cnf}");
        }
        assert!(!cnf.contains("{{"));
    }

    #[test]
    fn memory_scales_with_ram() {
        let small = rendered(512);
        assert!(
            small.contains("innodb_buffer_pool_size = 256M\n"),
            "{small}"
        );
        assert!(small.contains("innodb_log_buffer_size = 8M\n"));
        assert!(small.contains("max_connections = 100\n"));
        assert!(small.contains("key_buffer_size = 2M\n"));
        assert!(small.contains("aria_pagecache_buffer_size = 8M\n"));
        assert!(small.contains("tmp_table_size = 16M\nmax_heap_table_size = 16M\n"));
        let big = rendered(2048);
        assert!(big.contains("innodb_buffer_pool_size = 1024M\n"), "{big}");
        assert!(big.contains("max_connections = 400\n"));
        let tiny = Memory::for_ram(0);
        assert_eq!(tiny.buffer_pool_mb, 8);
        assert_eq!(tiny.max_connections, 20);
        assert_eq!(Memory::for_ram(-5), tiny);
    }

    #[test]
    fn init_file_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ctx(512);
        c.conf_dir = dir.path().join("conf");
        c.run_dir = dir.path().join("run");
        let p = Paths::new(&c);
        write(&c, &p, Some(std::path::Path::new("/srv/s/rekey.sql"))).unwrap();
        let cnf = std::fs::read_to_string(&p.config).unwrap();
        assert!(cnf.ends_with("\ninit-file = /srv/s/rekey.sql\n"), "{cnf}");
        write(&c, &p, None).unwrap();
        let cnf = std::fs::read_to_string(&p.config).unwrap();
        assert!(!cnf.contains("init-file"), "{cnf}");
        assert!(p.tmp_dir.is_dir());
    }

    fn setting(value: ConfigValue, restart_required: bool) -> coffer_model::Setting {
        coffer_model::Setting {
            value,
            restart_required,
        }
    }

    #[test]
    fn overrides_follow_and_win_over_the_flavor() {
        let mut c = ctx(512);
        c.overrides = [
            ("max_connections", setting(ConfigValue::Integer(250), false)),
            ("slow_query_log", setting(ConfigValue::Boolean(true), false)),
            (
                "performance_schema",
                setting(ConfigValue::Boolean(false), true),
            ),
            ("long_query_time", setting(ConfigValue::Float(0.25), false)),
            (
                "sql_mode",
                setting(
                    ConfigValue::String("STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION".into()),
                    false,
                ),
            ),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        let cnf = render(&c, &Paths::new(&c)).unwrap();
        let section = cnf
            .split("# Configuration group: wins over the values above.\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no overrides section in\n{cnf}"));
        assert_eq!(
            section,
            "long_query_time = 0.25\n\
             max_connections = 250\n\
             performance_schema = OFF\n\
             slow_query_log = ON\n\
             sql_mode = \"STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION\"\n"
        );
        // The flavor's value stays above; the later line is the one read.
        let flavor = cnf.find("max_connections = 100\n").unwrap();
        let group = cnf.find("max_connections = 250\n").unwrap();
        assert!(flavor < group, "{cnf}");
        assert!(!rendered(512).contains("Configuration group"));
    }

    #[test]
    fn overrides_that_would_break_the_server_are_refused() {
        for (name, value) in [
            ("port", ConfigValue::Integer(3307)),
            ("bind-address", ConfigValue::String("0.0.0.0".into())),
            ("skip_name_resolve", ConfigValue::Boolean(false)),
            (
                "sql_mode",
                ConfigValue::String("STRICT_TRANS_TABLES,NO_SUCH_MODE".into()),
            ),
            ("wait_timeout", ConfigValue::Float(f64::NAN)),
        ] {
            let mut c = ctx(512);
            c.overrides = [(name.to_string(), setting(value, false))].into();
            let e = render(&c, &Paths::new(&c)).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
            assert!(
                e.to_string().contains("sql_mode") || e.to_string().contains(name),
                "{e}"
            );
        }
        let mut c = ctx(512);
        let modes = ConfigValue::String("ansi, no_backslash_escapes".into());
        c.overrides = [("sql_mode".to_string(), setting(modes, false))].into();
        render(&c, &Paths::new(&c)).unwrap();
    }

    #[test]
    fn values_for_sql_and_the_flavor() {
        assert_eq!(sql_value(&ConfigValue::Boolean(true)), "ON");
        assert_eq!(sql_value(&ConfigValue::Integer(-1)), "-1");
        assert_eq!(sql_value(&ConfigValue::Float(0.5)), "0.5");
        assert_eq!(sql_value(&ConfigValue::String("A,B".into())), "'A,B'");
        assert_eq!(
            sized_value(512, "innodb_buffer_pool_size").map(Amount::sql),
            Some((256i64 << 20).to_string())
        );
        assert_eq!(
            sized_value(512, "max_connections"),
            Some(Amount::Count(100))
        );
        assert_eq!(sized_value(512, "wait_timeout"), None);
    }

    #[test]
    fn unwritable_paths_are_refused() {
        let mut c = ctx(512);
        c.data_dir = PathBuf::from("/srv/a#b");
        let e = render(&c, &Paths::new(&c)).unwrap_err();
        assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    }
}

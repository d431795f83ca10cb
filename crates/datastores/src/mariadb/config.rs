//! The server's `my.cnf`, rendered from a template and sized from the
//! flavor's memory.

use super::paths::Paths;
use coffer_strategy::{DatastoreError, InstanceContext};

/// The configuration template; every `{{name}}` is replaced by `render`.
const TEMPLATE: &str = "\
# Written by Coffer before every start; local edits are overwritten.
[mariadbd]
user = root
datadir = {{datadir}}
bind-address = {{ip}}
port = {{port}}
socket = {{socket}}
tmpdir = {{tmpdir}}
pid-file = {{pid_file}}
log-error = {{log_error}}
skip-name-resolve
local-infile = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci

# Sized for {{ram_mb}} MB of RAM.
innodb_buffer_pool_size = {{buffer_pool}}
innodb_log_buffer_size = {{log_buffer}}
max_connections = {{max_connections}}
key_buffer_size = {{key_buffer}}
aria_pagecache_buffer_size = {{aria_pagecache}}
tmp_table_size = {{tmp_table}}
max_heap_table_size = {{tmp_table}}
";

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
}

/// The `my.cnf` for this instance.
pub fn render(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let mem = Memory::for_ram(ctx.ram_mb);
    let mb = |n: i64| format!("{n}M");
    let values: [(&str, String); 14] = [
        ("datadir", path_value(&ctx.data_dir)?),
        ("ip", ctx.ip.to_string()),
        ("port", ctx.port.to_string()),
        ("socket", path_value(&paths.socket)?),
        ("tmpdir", path_value(&paths.tmp_dir)?),
        ("pid_file", path_value(&paths.pid_file)?),
        ("log_error", path_value(&paths.error_log)?),
        ("ram_mb", ctx.ram_mb.to_string()),
        ("buffer_pool", mb(mem.buffer_pool_mb)),
        ("log_buffer", mb(mem.log_buffer_mb)),
        ("max_connections", mem.max_connections.to_string()),
        ("key_buffer", mb(mem.key_buffer_mb)),
        ("aria_pagecache", mb(mem.aria_pagecache_mb)),
        ("tmp_table", mb(mem.tmp_table_mb)),
    ];
    let mut out = TEMPLATE.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    debug_assert!(
        !out.contains("{{"),
        "unfilled placeholder in my.cnf template"
    );
    Ok(out)
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
    crate::files::ensure_private_dir(&paths.tmp_dir)?;
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

    #[test]
    fn unwritable_paths_are_refused() {
        let mut c = ctx(512);
        c.data_dir = PathBuf::from("/srv/a#b");
        let e = render(&c, &Paths::new(&c)).unwrap_err();
        assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    }
}

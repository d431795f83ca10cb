//! `redis.conf`, sized from the flavor's memory, and the ACL file a new
//! instance starts with.

use super::admin::ADMIN_USER;
use super::paths::{Paths, RDB_FILE};
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

/// The `redis.conf` for this instance. Users are not here but in the ACL
/// file, which the server rewrites itself (`ACL SAVE`).
pub fn render(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let restoring = paths.rdb_restore_marker.exists();
    Ok(format!(
        "# Written by Coffer before every start; local edits are overwritten.\n\
         bind {ip}\n\
         port {port}\n\
         unixsocket {socket}\n\
         unixsocketperm 700\n\
         dir {data}\n\
         pidfile {pid}\n\
         logfile {log}\n\
         daemonize no\n\
         # Keep the command line as started: it names this instance's config.\n\
         set-proc-title no\n\
         # Users: no anonymous access; hashed passwords only.\n\
         aclfile {acl}\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         enable-protected-configs no\n\
         # Sized for {ram} MB of RAM; writes fail rather than evict keys.\n\
         maxmemory {maxmem}mb\n\
         maxmemory-policy noeviction\n\
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
        maxmem = maxmemory_mb(ctx.ram_mb),
        aof_comment = if restoring {
            "# Off until the restored RDB is rewritten as the AOF.\n"
        } else {
            ""
        },
        appendonly = if restoring { "no" } else { "yes" },
        rdb_file = RDB_FILE,
    ))
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
            "aclfile /srv/coffer/i1/conf/users.acl",
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

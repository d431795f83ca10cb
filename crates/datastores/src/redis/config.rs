//! `redis.conf` and the initial ACL file.

use coffer_strategy::InstanceContext;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Where the Redis manager keeps each file of an instance.
pub struct Paths {
    pub config: PathBuf,
    pub acl: PathBuf,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
    pub log: PathBuf,
    pub console_log: PathBuf,
    pub marker: PathBuf,
    pub password: PathBuf,
}

impl Paths {
    pub fn new(ctx: &InstanceContext) -> Self {
        Paths {
            config: ctx.conf_dir.join("redis.conf"),
            acl: ctx.conf_dir.join("users.acl"),
            socket: ctx.run_dir.join("redis.sock"),
            pid_file: ctx.run_dir.join("redis.pid"),
            log: ctx.log_dir.join("redis.log"),
            console_log: ctx.log_dir.join("console.log"),
            marker: ctx.data_dir.join(".coffer-initialized"),
            password: ctx.secret_dir.join("os_admin.password"),
        }
    }
}

/// The hashed form of a password as ACL files store it (`#<sha256 hex>`),
/// so no password is written in plain text.
pub fn acl_hash(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("#{hex}")
}

/// The ACL file a new instance starts with: no anonymous access, and the
/// agent's own account.
pub fn initial_acl(admin_password: &str) -> String {
    format!(
        "user default off resetchannels -@all\nuser os_admin on {} ~* &* +@all\n",
        acl_hash(admin_password)
    )
}

/// `maxmemory` for a flavor: three quarters of its RAM, at least 16 MB.
pub fn maxmemory_mb(ram_mb: i64) -> i64 {
    (ram_mb.max(0) * 3 / 4).max(16)
}

/// The server configuration.
pub fn render(ctx: &InstanceContext, paths: &Paths) -> String {
    format!(
        "# Written by Coffer before every start; local edits are overwritten.\n\
         bind {ip}\nport {port}\nunixsocket {socket}\nunixsocketperm 700\n\
         dir {data}\npidfile {pid}\nlogfile {log}\ndaemonize no\n\
         # Keep the command line as started: it names this instance's config.\n\
         set-proc-title no\n\
         aclfile {acl}\n\
         # Sized for {ram} MB of RAM.\nmaxmemory {maxmem}mb\nmaxmemory-policy noeviction\n\
         appendonly yes\nappendfsync everysec\nsave 900 1 300 10 60 10000\n",
        ip = ctx.ip,
        port = ctx.port,
        socket = paths.socket.display(),
        data = ctx.data_dir.display(),
        pid = paths.pid_file.display(),
        log = paths.log.display(),
        acl = paths.acl.display(),
        ram = ctx.ram_mb,
        maxmem = maxmemory_mb(ctx.ram_mb),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_sizes() {
        // sha256("secret")
        assert_eq!(
            acl_hash("secret"),
            "#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
        let acl = initial_acl("s3cret-admin");
        assert!(!acl.contains("s3cret-admin"));
        assert!(acl.starts_with("user default off"));
        assert_eq!(maxmemory_mb(512), 384);
        assert_eq!(maxmemory_mb(2048), 1536);
        assert_eq!(maxmemory_mb(0), 16);
    }
}

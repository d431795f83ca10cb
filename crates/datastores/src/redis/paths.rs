//! Where the Redis manager keeps each file of an instance.

use coffer_strategy::{DatastoreError, InstanceContext};
use std::path::PathBuf;

/// Longest unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The RDB file's name in the data directory (`dbfilename`).
pub const RDB_FILE: &str = "dump.rdb";

/// The files of one instance, all under the context's directories.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `conf_dir/redis.conf`, the server's only argument: it names the
    /// instance on the server's command line.
    pub config: PathBuf,
    /// `conf_dir/server/users.acl` (0600): the ACL users, passwords as
    /// SHA-256 hashes only. Written by `initialize`, then by the server
    /// (`ACL SAVE`, which writes a new file beside it: so its directory is
    /// the server's).
    pub acl: PathBuf,
    /// `conf_dir/users.acl`: where the ACL file was before it had a
    /// directory of its own; moved at the next configuration.
    pub old_acl: PathBuf,
    /// `conf_dir/tenants-read-only`: present while tenant writes are
    /// refused, so users created or renamed meanwhile get the same rules.
    /// Outside the data dir, which is full when this matters.
    pub read_only_flag: PathBuf,
    /// `run_dir/redis.sock` (0700): the admin connection's way in.
    pub socket: PathBuf,
    /// `run_dir/redis.pid`, written by the server.
    pub pid_file: PathBuf,
    /// `log_dir/redis.log`, the server's own log.
    pub log: PathBuf,
    /// `log_dir/console.log`: stdout and stderr of the server process
    /// (what it says before its log is open).
    pub console_log: PathBuf,
    /// `data_dir/.coffer-initialized`, written when `initialize` is done.
    pub marker: PathBuf,
    /// `data_dir/dump.rdb` (`dbfilename`): the server's RDB snapshot.
    pub rdb: PathBuf,
    /// `data_dir/.coffer-rdb-restore`: present while a restored RDB waits
    /// to be turned into the append-only file. `render` writes
    /// `appendonly no` meanwhile: with `appendonly yes` and no AOF yet,
    /// the server would start empty and ignore the RDB.
    pub rdb_restore_marker: PathBuf,
    /// `secret_dir/os_admin.password` (0600).
    pub password: PathBuf,
}

impl Paths {
    /// The paths of the instance described by `ctx`.
    pub fn new(ctx: &InstanceContext) -> Self {
        Paths {
            config: ctx.conf_dir.join("redis.conf"),
            acl: crate::sandbox::server_conf_dir(ctx).join("users.acl"),
            old_acl: ctx.conf_dir.join("users.acl"),
            read_only_flag: ctx.conf_dir.join("tenants-read-only"),
            socket: ctx.run_dir.join("redis.sock"),
            pid_file: ctx.run_dir.join("redis.pid"),
            log: ctx.log_dir.join("redis.log"),
            console_log: ctx.log_dir.join("console.log"),
            marker: ctx.data_dir.join(".coffer-initialized"),
            rdb: ctx.data_dir.join(RDB_FILE),
            rdb_restore_marker: ctx.data_dir.join(".coffer-rdb-restore"),
            password: ctx.secret_dir.join("os_admin.password"),
        }
    }

    /// Refuse a run_dir so deep that the socket path would not fit in a
    /// `sockaddr_un` (the server would fail to start with an obscure error).
    pub fn check_socket(&self) -> Result<(), DatastoreError> {
        let len = self.socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(DatastoreError::InvalidInput(format!(
                "socket path {} is {len} bytes long; unix sockets allow {MAX_SOCKET_PATH}",
                self.socket.display()
            )));
        }
        Ok(())
    }

    /// Whether tenant writes are currently refused.
    pub fn read_only(&self) -> bool {
        self.read_only_flag.exists()
    }
}

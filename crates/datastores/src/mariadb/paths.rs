//! Where the MariaDB manager keeps each file of an instance.

use crate::sandbox::tool_secret_dir;
use coffer_strategy::{DatastoreError, InstanceContext};
use std::path::PathBuf;

/// Longest unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The files of one instance, all under the context's directories.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `conf_dir/my.cnf`.
    pub config: PathBuf,
    /// `run_dir/mysqld.sock`: the admin connection's way in.
    pub socket: PathBuf,
    /// `run_dir/tmp`: the server's own temporary directory (a shared /tmp
    /// lets concurrent bootstraps trip over each other's temporary tables).
    pub tmp_dir: PathBuf,
    /// `run_dir/mariadbd.pid`, written by the server.
    pub pid_file: PathBuf,
    /// `log_dir/error.log`, the server's own log.
    pub error_log: PathBuf,
    /// `log_dir/console.log`: stdout and stderr of the server process
    /// (what it says before its error log is open).
    pub console_log: PathBuf,
    /// `data_dir/.coffer-initialized`, written once install-db succeeded.
    pub marker: PathBuf,
    /// `secret_dir/os_admin.password` (0600).
    pub password: PathBuf,
    /// `init.sql` (0600) in the tools' secret dir, present only while
    /// install-db runs.
    pub init_sql: PathBuf,
    /// `rekey.sql` (0600) in the tools' secret dir: the server's init file
    /// at the first start after a restore, present only during that start.
    pub rekey_sql: PathBuf,
    /// `run_dir/files`: the only directory `SELECT ... INTO OUTFILE` and
    /// `LOAD_FILE()` reach (`secure_file_priv`).
    pub files_dir: PathBuf,
}

impl Paths {
    /// The paths of the instance described by `ctx`.
    pub fn new(ctx: &InstanceContext) -> Self {
        Paths {
            config: ctx.conf_dir.join("my.cnf"),
            socket: ctx.run_dir.join("mysqld.sock"),
            tmp_dir: ctx.run_dir.join("tmp"),
            pid_file: ctx.run_dir.join("mariadbd.pid"),
            error_log: ctx.log_dir.join("error.log"),
            console_log: ctx.log_dir.join("console.log"),
            marker: ctx.data_dir.join(".coffer-initialized"),
            password: ctx.secret_dir.join("os_admin.password"),
            init_sql: tool_secret_dir(ctx).join("init.sql"),
            rekey_sql: tool_secret_dir(ctx).join("rekey.sql"),
            files_dir: ctx.run_dir.join("files"),
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
}

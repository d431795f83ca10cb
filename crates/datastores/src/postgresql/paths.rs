//! Where the PostgreSQL manager keeps each file of an instance.

use coffer_strategy::{DatastoreError, InstanceContext};
use std::path::PathBuf;

/// Longest unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The files of one instance, all under the context's directories.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The data directory (owned by `postgres`, mode 0700).
    pub data_dir: PathBuf,
    /// The socket directory (`unix_socket_directories`), owned by `postgres`.
    pub run_dir: PathBuf,
    /// The server's log directory, owned by `postgres`.
    pub log_dir: PathBuf,
    /// `conf_dir/postgresql.conf`, named on the server's command line.
    pub config: PathBuf,
    /// `conf_dir/pg_hba.conf`: who may log in, and how.
    pub hba: PathBuf,
    /// `conf_dir/pg_ident.conf` (empty: no ident maps).
    pub ident: PathBuf,
    /// `conf_dir/read_only.conf`, included by `postgresql.conf`: the
    /// read-only switch (`default_transaction_read_only`).
    pub read_only: PathBuf,
    /// `conf_dir/root.enabled`: present while the `postgres` superuser may
    /// log in over TCP (so every re-rendered `pg_hba.conf` keeps that).
    pub root_marker: PathBuf,
    /// `run_dir/.s.PGSQL.<port>`: the admin connection's way in.
    pub socket: PathBuf,
    /// `run_dir/.s.PGSQL.<port>.lock`, the socket's lock file.
    pub socket_lock: PathBuf,
    /// `run_dir/initdb.pwfile`: the admin password for initdb, present
    /// only while initdb runs (mode 0600, owned by `postgres`).
    pub pwfile: PathBuf,
    /// `data_dir/postmaster.pid`, written by the server (first line: pid).
    pub pid_file: PathBuf,
    /// `log_dir/console.log`: stdout and stderr of the server process
    /// (what it says before its logging collector runs).
    pub console_log: PathBuf,
    /// `data_dir/.coffer-initialized`, written once initdb succeeded.
    pub marker: PathBuf,
    /// `secret_dir/os_admin.password` (0600).
    pub password: PathBuf,
    /// The port, which names the socket.
    pub port: u16,
}

impl Paths {
    /// The paths of the instance described by `ctx`.
    pub fn new(ctx: &InstanceContext) -> Self {
        let socket = ctx.run_dir.join(format!(".s.PGSQL.{}", ctx.port));
        Paths {
            data_dir: ctx.data_dir.clone(),
            run_dir: ctx.run_dir.clone(),
            log_dir: ctx.log_dir.clone(),
            config: ctx.conf_dir.join("postgresql.conf"),
            hba: ctx.conf_dir.join("pg_hba.conf"),
            ident: ctx.conf_dir.join("pg_ident.conf"),
            read_only: ctx.conf_dir.join("read_only.conf"),
            root_marker: ctx.conf_dir.join("root.enabled"),
            socket_lock: ctx.run_dir.join(format!(".s.PGSQL.{}.lock", ctx.port)),
            socket,
            pwfile: ctx.run_dir.join("initdb.pwfile"),
            pid_file: ctx.data_dir.join("postmaster.pid"),
            console_log: ctx.log_dir.join("console.log"),
            marker: ctx.data_dir.join(".coffer-initialized"),
            password: ctx.secret_dir.join("os_admin.password"),
            port: ctx.port,
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

    /// `config_file=...`: the argument that tells this instance's
    /// postmaster from others in `/proc/PID/cmdline`.
    pub fn config_arg(&self) -> String {
        format!("config_file={}", self.config.display())
    }
}

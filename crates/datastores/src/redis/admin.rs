//! The agent's admin connection: the `os_admin` ACL user over the unix
//! socket (mode 0700, so only root on the host can even reach it).

use super::paths::Paths;
use super::resp::Conn;
use anyhow::Context;
use coffer_strategy::DatastoreError;
use std::time::Duration;

/// The agent's ACL user, created by `initialize`.
pub const ADMIN_USER: &str = "os_admin";

/// The stored admin password.
pub fn read_password(paths: &Paths) -> Result<String, DatastoreError> {
    let raw = std::fs::read_to_string(&paths.password).with_context(|| {
        format!(
            "reading the admin password from {}",
            paths.password.display()
        )
    })?;
    Ok(raw.trim_end_matches('\n').to_string())
}

/// Open an admin connection, authenticated.
pub async fn connect(paths: &Paths) -> Result<Conn, DatastoreError> {
    let password = read_password(paths)?;
    Conn::open(&paths.socket, ADMIN_USER, &password).await
}

/// Whether the server accepts the admin's `AUTH` and answers `PING` within
/// `timeout` (a server still loading its data answers `-LOADING`: not yet).
pub async fn ping(paths: &Paths, timeout: Duration) -> bool {
    let probe = async { connect(paths).await?.ok(&["PING"]).await };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Ok(_)))
}

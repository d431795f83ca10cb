//! How MariaDB's own tools (mariabackup, mariadb-dump, the mariadb client)
//! log in as `os_admin`: a defaults file of their own, 0600 in
//! the tools' secret dir (readable by the account they run as), never a password on the command line (which every local
//! user can read in /proc).

use super::admin::{read_password, ADMIN_USER};
use super::config::path_value;
use super::paths::Paths;
use crate::files::SecretFile;
use anyhow::anyhow;
use coffer_strategy::{DatastoreError, InstanceContext};

/// Option-file group read by mariabackup.
pub const MARIABACKUP_GROUP: &str = "mariabackup";
/// Option-file group read by every client program (mariadb, mariadb-dump).
pub const CLIENT_GROUP: &str = "client";

/// A defaults file for a tool reading option group `group`, and the
/// password it holds (to redact from the tool's output). It must be the
/// tool's first argument (`--defaults-file=...`): then no other option file
/// (/etc/mysql/my.cnf) is read. The file is removed when dropped.
pub fn defaults_file(
    ctx: &InstanceContext,
    paths: &Paths,
    group: &str,
) -> Result<(SecretFile, String), DatastoreError> {
    let password = read_password(paths)?;
    let text = render(group, &password, &path_value(&paths.socket)?)?;
    let file = crate::sandbox::tool_secret_file(ctx, group, "cnf", text.as_bytes())?;
    Ok((file, password))
}

/// `--defaults-file=<file>`.
pub fn arg(file: &SecretFile) -> String {
    format!("--defaults-file={}", file.path().display())
}

/// The file's text. Option files have no escaping every tool reads alike,
/// and the generated password is alphanumeric: anything else is refused
/// rather than written wrongly.
fn render(group: &str, password: &str, socket: &str) -> Result<String, DatastoreError> {
    if password.is_empty() || !password.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(anyhow!("the stored admin password is not a generated one").into());
    }
    Ok(format!(
        "[{group}]\nuser = {ADMIN_USER}\npassword = {password}\nsocket = {socket}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_group() {
        assert_eq!(
            render("client", "abc123", "/run/x/mysqld.sock").unwrap(),
            "[client]\nuser = os_admin\npassword = abc123\nsocket = /run/x/mysqld.sock\n"
        );
        assert!(render("client", "a b", "/s").is_err());
        assert!(render("client", "", "/s").is_err());
    }
}

//! `pg_hba.conf`: who may log in, from where, and how.
//!
//! Every login needs a SCRAM password. The agent's own role logs in over
//! the unix socket only; the `postgres` superuser is refused over TCP
//! unless root is enabled. Rules are matched top to bottom, so the
//! refusals come before the general rule.

use super::admin::ADMIN_USER;
use super::sql::ROOT_USER;
use std::net::Ipv4Addr;

/// The `pg_hba.conf` for an instance listening on `ip`, with root's network
/// login allowed or not.
pub fn render(ip: Ipv4Addr, root_enabled: bool) -> String {
    let mut out = String::from(
        "# Written by Coffer; local edits are overwritten.\n\
         # TYPE  DATABASE  USER  ADDRESS  METHOD\n\
         local   all  all  scram-sha-256\n\
         # The agent's own role: unix socket only; pg_basebackup needs a\n\
         # replication connection (`all` does not cover those).\n",
    );
    out.push_str(&format!(
        "local   replication  {ADMIN_USER}  scram-sha-256\n"
    ));
    let refuse = |out: &mut String, user: &str| {
        for net in ["0.0.0.0/0", "::/0"] {
            out.push_str(&format!("host    all  {user}  {net}  reject\n"));
        }
    };
    refuse(&mut out, ADMIN_USER);
    if root_enabled {
        out.push_str(&format!(
            "# Root is enabled: {ROOT_USER} may log in over TCP.\n"
        ));
    } else {
        out.push_str(&format!(
            "# Root is disabled: {ROOT_USER} is refused over TCP.\n"
        ));
        refuse(&mut out, ROOT_USER);
    }
    // A client of a loopback address arrives from 127.0.0.1 whatever
    // address it dialled.
    out.push_str("host    all  all  127.0.0.0/8  scram-sha-256\n");
    if !ip.is_loopback() {
        // Users are "%" (any host): on a routed address, any client with
        // the password may log in.
        out.push_str("host    all  all  0.0.0.0/0  scram-sha-256\n");
    }
    out
}

/// The `pg_hba.conf` of a restored server's first start: the agent's role
/// may log in over the unix socket without a password, so that it can set
/// this instance's own (the restored catalog holds the source's). The
/// socket directory and the socket are 0700, owned by `postgres`: only
/// root and `postgres` on the host, who can read the data directory
/// anyway, can connect. Everything else is as `render` makes it.
pub fn render_for_rekey(ip: Ipv4Addr) -> String {
    format!(
        "# Only while a restore sets the admin password (first match wins).\n\
         local   all  {ADMIN_USER}  trust\n{}",
        render(ip, false)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn root_disabled_refuses_postgres_and_os_admin_over_tcp() {
        let r = rules(&render(Ipv4Addr::new(127, 10, 0, 3), false));
        assert_eq!(
            r,
            vec![
                "local all all scram-sha-256",
                "local replication os_admin scram-sha-256",
                "host all os_admin 0.0.0.0/0 reject",
                "host all os_admin ::/0 reject",
                "host all postgres 0.0.0.0/0 reject",
                "host all postgres ::/0 reject",
                "host all all 127.0.0.0/8 scram-sha-256",
            ]
        );
    }

    #[test]
    fn root_enabled_lets_postgres_in_but_never_os_admin() {
        let r = rules(&render(Ipv4Addr::new(127, 10, 0, 3), true));
        assert!(!r.iter().any(|l| l.contains("postgres")), "{r:?}");
        assert!(r.contains(&"host all os_admin 0.0.0.0/0 reject".to_string()));
        assert_eq!(r.last().unwrap(), "host all all 127.0.0.0/8 scram-sha-256");
    }

    #[test]
    fn rekey_trusts_only_the_agent_on_the_socket() {
        let ip = Ipv4Addr::new(127, 10, 0, 3);
        let r = rules(&render_for_rekey(ip));
        assert_eq!(r[0], "local all os_admin trust");
        assert_eq!(r[1..], rules(&render(ip, false))[..]);
        assert_eq!(r.iter().filter(|l| l.ends_with("trust")).count(), 1);
    }

    #[test]
    fn routed_address_accepts_any_client_with_a_password() {
        let r = rules(&render(Ipv4Addr::new(10, 1, 2, 3), false));
        assert_eq!(r.last().unwrap(), "host all all 0.0.0.0/0 scram-sha-256");
        assert!(r
            .iter()
            .all(|l| l.ends_with("scram-sha-256") || l.ends_with("reject")));
    }
}

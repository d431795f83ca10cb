//! MariaDB end to end through the real binary: the CLI with --wait, the
//! mysql client as the tenant's user, plain HTTP with Trove's bodies,
//! restart, agent restart without a datastore restart, delete.

mod common;

use common::{instance_dir, Coffer};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn mysql(ip: &str, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
    common::client("mariadb", ip, user, password, db, sql)
}

fn mariadbd_pid(c: &Coffer, id: &str) -> i32 {
    let dir = instance_dir(c.state_dir(), id);
    std::fs::read_to_string(dir.join("run/mariadbd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn cli_create_connect_restart_delete() {
    let c = Coffer::up();
    let (ok, out, err) = c.cli(&[
        "instance",
        "create",
        "db1",
        "--datastore",
        "mariadb",
        "--flavor",
        "small",
        "--size",
        "1",
        "--database",
        "app",
        "--user",
        "app:secret",
        "--wait",
        "-f",
        "json",
    ]);
    assert!(ok, "create failed: {err}\n{}", c.log());
    assert!(err.contains("ACTIVE"), "progress is shown: {err}");
    let inst: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inst["status"], "ACTIVE");
    let id = inst["id"].as_str().unwrap().to_string();
    let ip = inst["ip"][0].as_str().unwrap().to_string();

    // The tenant's user works with the stock client, on the instance's own address.
    mysql(
        &ip,
        "app",
        "secret",
        "app",
        "CREATE TABLE t (v INT); INSERT INTO t VALUES (42)",
    )
    .unwrap();
    assert_eq!(
        mysql(&ip, "app", "secret", "app", "SELECT v FROM t").unwrap(),
        "42"
    );
    assert!(mysql(&ip, "app", "wrong", "app", "SELECT 1").is_err());
    // root has no network access (it is reachable only over the socket).
    assert!(mysql(&ip, "root", "", "mysql", "SELECT 1").is_err());

    // Flavor memory sized the buffer pool (small = 512 MB).
    let pool = mysql(
        &ip,
        "app",
        "secret",
        "app",
        "SELECT @@innodb_buffer_pool_size",
    )
    .unwrap();
    assert_eq!(pool.parse::<u64>().unwrap(), 256 << 20);

    // The heartbeat makes the datastore's health visible.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = c.http("GET", &format!("/instances/{id}"), None);
        if v["instance"]["operating_status"] == "HEALTHY"
            && v["instance"]["volume"]["used"].is_number()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never HEALTHY: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The table and show commands find it by name.
    let (ok, out, _) = c.cli(&["instance", "list"]);
    assert!(
        ok && out.contains("db1") && out.contains("ACTIVE") && out.contains(&ip),
        "{out}"
    );
    let (ok, out, _) = c.cli(&["instance", "show", "db1"]);
    assert!(ok && out.contains(&id), "{out}");

    // The account commands, by instance name.
    let run = |args: &[&str]| {
        let (ok, out, err) = c.cli(args);
        assert!(ok, "coffer {args:?}: {err}");
        out
    };
    run(&["database", "create", "db1", "reports"]);
    assert!(run(&["database", "list", "db1"]).contains("reports"));
    run(&[
        "user",
        "create",
        "db1",
        "analyst:Cli-Pw-77",
        "--database",
        "reports",
    ]);
    let users = run(&["user", "list", "db1", "-f", "json"]);
    assert!(
        users.contains("analyst") && users.contains("reports"),
        "{users}"
    );
    mysql(&ip, "analyst", "Cli-Pw-77", "reports", "SELECT 1").unwrap();
    run(&["user", "revoke", "db1", "analyst", "reports"]);
    assert!(mysql(&ip, "analyst", "Cli-Pw-77", "reports", "SELECT 1").is_err());
    run(&["user", "grant", "db1", "analyst", "reports"]);
    run(&[
        "user",
        "update",
        "db1",
        "analyst",
        "--new-password",
        "Cli-Pw-78",
    ]);
    mysql(&ip, "analyst", "Cli-Pw-78", "reports", "SELECT 1").unwrap();
    let root: serde_json::Value =
        serde_json::from_str(&run(&["root", "enable", "db1", "-f", "json"])).unwrap();
    mysql(
        &ip,
        "root",
        root["password"].as_str().unwrap(),
        "mysql",
        "SELECT 1",
    )
    .unwrap();
    assert!(run(&["root", "show", "db1"]).contains("true"));
    run(&["root", "disable", "db1"]);
    assert!(run(&["root", "show", "db1"]).contains("false"));
    run(&["user", "delete", "db1", "analyst"]);
    run(&["database", "delete", "db1", "reports"]);
    assert!(!run(&["database", "list", "db1"]).contains("reports"));
    let (ok, _, err) = c.cli(&["user", "show", "db1", "nobody"]);
    assert!(!ok && err.contains("404"), "{err}");

    // Killing the agent: the supervisor starts a new one, which adopts the
    // running server instead of restarting it.
    let server_pid = mariadbd_pid(&c, &id);
    let agent_pid: i32 =
        std::fs::read_to_string(instance_dir(c.state_dir(), &id).join("agent.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    Command::new("kill")
        .args(["-9", &agent_pid.to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let new_pid = std::fs::read_to_string(instance_dir(c.state_dir(), &id).join("agent.pid"))
            .unwrap_or_default();
        if new_pid
            .trim()
            .parse::<i32>()
            .ok()
            .is_some_and(|p| p != agent_pid && common::pids_mentioning(&p.to_string()).len() <= 1)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent not restarted\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        mariadbd_pid(&c, &id),
        server_pid,
        "the datastore was not restarted"
    );
    assert_eq!(
        mysql(&ip, "app", "secret", "app", "SELECT v FROM t").unwrap(),
        "42"
    );

    // Restart: REBOOT then ACTIVE, a new server process, the data kept.
    let (ok, _, err) = c.cli(&["instance", "restart", "db1", "--wait"]);
    assert!(ok, "{err}");
    assert!(err.contains("REBOOT") || err.contains("ACTIVE"), "{err}");
    assert_ne!(mariadbd_pid(&c, &id), server_pid);
    assert_eq!(
        mysql(&ip, "app", "secret", "app", "SELECT v FROM t").unwrap(),
        "42"
    );

    // Delete removes every process and the directory.
    let (ok, _, err) = c.cli(&["instance", "delete", "db1", "--wait"]);
    assert!(ok, "{err}");
    assert!(!instance_dir(c.state_dir(), &id).exists());
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
    assert!(mysql(&ip, "app", "secret", "app", "SELECT 1").is_err());
}

#[test]
fn plain_http_with_trove_bodies() {
    let c = Coffer::up();
    let body = json!({"instance": {
        "name": "db2", "flavorRef": "1", "volume": {"size": 1, "type": null},
        "databases": [{"name": "shop"}],
        "users": [{"name": "clerk", "password": "Clerk-Pw-4417x", "databases": [{"name": "shop"}]}],
        "datastore": {"type": "mariadb", "version": "10.11"}, "access": {"is_public": false}
    }});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    // The agent's health comes with the prepare reply, not a heartbeat later.
    assert_eq!(inst["operating_status"], "HEALTHY", "{inst}");
    let ip = inst["ip"][0].as_str().unwrap();
    mysql(
        ip,
        "clerk",
        "Clerk-Pw-4417x",
        "shop",
        "CREATE TABLE o (i INT)",
    )
    .unwrap();
    // The user has no access to databases it was not granted.
    assert!(mysql(ip, "clerk", "Clerk-Pw-4417x", "mysql", "SELECT 1").is_err());

    let (code, _) = c.http(
        "POST",
        &format!("/instances/{id}/action"),
        Some(r#"{"restart": {}}"#),
    );
    assert_eq!(code, 202);
    c.wait_status(&id, &["ACTIVE"], Duration::from_secs(120));

    // The password is nowhere on disk in plain text: not in the metadata
    // store or its task rows, coffer's or the agent's logs, or the server's
    // files (which hold only its hash).
    let leaks = common::files_containing(c.state_dir(), "Clerk-Pw-4417x");
    assert!(leaks.is_empty(), "plain password found in {leaks:?}");

    let (code, _) = c.http("DELETE", &format!("/instances/{id}"), None);
    assert_eq!(code, 202);
    c.wait_gone(&id, Duration::from_secs(60));
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
}

//! Backups and restores through the real binary, on filesystem storage:
//! MariaDB full + incremental restored into a new instance, PostgreSQL and
//! Redis full; the CLI with its progress output; list, filter, cascade
//! delete.

mod common;

#[path = "common/backup.rs"]
mod backup;

use backup::{active, backup, stored_objects, PW};
use common::{client, Coffer};
use std::time::Duration;

fn count(datastore: &str, ip: &str, query: &str) -> String {
    client(datastore, ip, "app", PW, "app", query)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn mariadb_full_then_incremental_restores_every_row() {
    let c = Coffer::up();
    let (src, ip) = active(&c, "src", "mariadb", None);
    let sql = |q: &str| client("mariadb", &ip, "app", PW, "app", q).unwrap();
    sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))");
    sql("INSERT INTO t SELECT seq, CONCAT('row-', seq) FROM seq_1_to_1000");

    // The full backup through the CLI, with --wait.
    let (ok, out, err) = c.cli(&["backup", "create", "full", "--instance", "src", "--wait"]);
    assert!(ok, "{out}\n{err}\n{}", c.log());
    assert!(out.contains("COMPLETED"), "{out}");
    let (code, list) = c.http("GET", &format!("/backups?instance_id={src}"), None);
    assert_eq!(code, 200, "{list}");
    let full = list["backups"][0].clone();
    assert_eq!(full["name"], "full");
    assert_eq!(full["status"], "COMPLETED");
    assert!(full["parent_id"].is_null());

    sql("INSERT INTO t SELECT seq, CONCAT('more-', seq) FROM seq_1001_to_2000");
    let incr = backup(&c, &src, "incr", true);
    assert_eq!(incr["parent_id"], full["id"], "{incr}");
    // Written after the incremental: must not come back.
    sql("INSERT INTO t SELECT seq, 'late' FROM seq_2001_to_2500");

    // Restore the incremental (and so its full parent) through the CLI.
    let incr_id = incr["id"].as_str().unwrap();
    let (ok, out, err) = c.cli(&[
        "instance", "create", "restored", "--flavor", "1", "--size", "1", "--backup", incr_id,
        "--wait",
    ]);
    assert!(ok, "{out}\n{err}\n{}", c.log());
    assert!(out.contains("ACTIVE"), "{out}");
    let (code, l) = c.http("GET", "/instances", None);
    assert_eq!(code, 200);
    let restored = l["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "restored")
        .unwrap()
        .clone();
    assert_eq!(restored["datastore"]["type"], "mariadb");
    let rip = restored["ip"][0].as_str().unwrap();
    assert_eq!(count("mariadb", rip, "SELECT COUNT(*) FROM t"), "2000");
    assert_eq!(
        count("mariadb", rip, "SELECT COUNT(*) FROM t WHERE v = 'late'"),
        "0"
    );
    assert_eq!(
        count("mariadb", rip, "SELECT v FROM t WHERE id = 1500"),
        "more-1500"
    );
    // The restored instance is fully managed: users via the API.
    let rid = restored["id"].as_str().unwrap();
    let (code, users) = c.http("GET", &format!("/instances/{rid}/users"), None);
    assert_eq!(code, 200, "{users}");
    assert!(users.to_string().contains("\"app\""), "{users}");

    // The source kept everything.
    assert_eq!(count("mariadb", &ip, "SELECT COUNT(*) FROM t"), "2500");

    // Deleting the full backup takes its incremental with it.
    assert_eq!(stored_objects(&c).len(), 2, "{:?}", stored_objects(&c));
    let full_id = full["id"].as_str().unwrap();
    let (ok, out, err) = c.cli(&["backup", "delete", full_id, "--wait"]);
    assert!(ok, "{out}\n{err}\n{}", c.log());
    for id in [full_id, incr_id] {
        assert_eq!(c.http("GET", &format!("/backups/{id}"), None).0, 404);
    }
    assert!(stored_objects(&c).is_empty(), "{:?}", stored_objects(&c));
}

#[test]
fn postgresql_full_backup_restores() {
    let c = Coffer::up();
    let (src, ip) = active(&c, "pg", "postgresql", None);
    let sql = |q: &str| client("postgresql", &ip, "app", PW, "app", q).unwrap();
    sql("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)");
    sql("INSERT INTO t SELECT g, 'row-' || g FROM generate_series(1, 5000) g");
    let b = backup(&c, &src, "pg-full", false);
    sql("INSERT INTO t SELECT g, 'late' FROM generate_series(5001, 6000) g");
    // PostgreSQL takes no incremental backups: a clear 400.
    let body = format!(r#"{{"backup": {{"name": "i", "instance": "{src}", "incremental": 1}}}}"#);
    let (code, v) = c.http("POST", "/backups", Some(&body));
    assert_eq!(code, 400, "{v}");
    let (_, rip) = active(&c, "pg-restored", "postgresql", b["id"].as_str());
    assert_eq!(count("postgresql", &rip, "SELECT COUNT(*) FROM t"), "5000");
    assert_eq!(
        count("postgresql", &rip, "SELECT v FROM t WHERE id = 4321"),
        "row-4321"
    );
}

#[test]
fn redis_full_backup_restores() {
    let c = Coffer::up();
    let (src, ip) = active(&c, "rd", "redis", None);
    let cmd = |q: &str| client("redis", &ip, "app", PW, "", q).unwrap();
    for i in 0..200 {
        cmd(&format!("SET key:{i} value-{i}"));
    }
    let b = backup(&c, &src, "rd-full", false);
    cmd("SET late yes");
    let (rid, rip) = active(&c, "rd-restored", "redis", b["id"].as_str());
    let get = |k: &str| client("redis", &rip, "app", PW, "", &format!("GET {k}")).unwrap();
    assert_eq!(get("key:123").trim(), "value-123");
    assert_eq!(get("late").trim(), "");
    assert_eq!(
        client("redis", &rip, "app", PW, "", "DBSIZE")
            .unwrap()
            .trim(),
        "200"
    );
    // The restored data survives a restart (it lives in the AOF now).
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{rid}/action"),
        Some(r#"{"restart": {}}"#),
    );
    assert_eq!(code, 202, "{v}");
    std::thread::sleep(Duration::from_millis(300));
    let inst = c.wait_status(&rid, &["ACTIVE", "ERROR"], Duration::from_secs(60));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    assert_eq!(get("key:7").trim(), "value-7");
}

#[test]
fn backup_requests_are_checked() {
    let c = Coffer::up();
    let missing = "00000000-0000-0000-0000-000000000000";
    let cases = [
        (
            format!(r#"{{"backup": {{"name": "b", "instance": "{missing}"}}}}"#),
            404,
        ),
        (r#"{"backup": {"name": "b"}}"#.to_string(), 400),
        (r#"{"backup": "#.to_string(), 400),
        (
            format!(r#"{{"backup": {{"name": "", "instance": "{missing}"}}}}"#),
            400,
        ),
    ];
    for (body, want) in cases {
        let (code, v) = c.http("POST", "/backups", Some(&body));
        assert_eq!(code, want, "{body}: {v}");
    }
    assert_eq!(c.http("GET", &format!("/backups/{missing}"), None).0, 404);
    assert_eq!(c.http("GET", "/backups/not-an-id", None).0, 404);
    assert_eq!(
        c.http("DELETE", &format!("/backups/{missing}"), None).0,
        404
    );
    let (code, v) = c.http("GET", "/backups", None);
    assert_eq!(
        (code, v["backups"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    // Restoring from a backup that does not exist.
    let body = format!(
        r#"{{"instance": {{"name": "x", "flavorRef": "1", "volume": {{"size": 1}}, "restorePoint": {{"backupRef": "{missing}"}}}}}}"#
    );
    let (code, v) = c.http("POST", "/instances", Some(&body));
    assert_eq!(code, 400, "{v}");
}

#[test]
fn mariadb_logical_dump_strategy_restores() {
    let c = Coffer::start_roles(
        &["up"],
        &[(
            "COFFER__DATASTORES__MARIADB__BACKUP_STRATEGY",
            "mariadb-dump",
        )],
    );
    let (src, ip) = active(&c, "logical", "mariadb", None);
    let sql = |q: &str| client("mariadb", &ip, "app", PW, "app", q).unwrap();
    sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))");
    sql("INSERT INTO t SELECT seq, CONCAT('row-', seq) FROM seq_1_to_700");
    let b = backup(&c, &src, "dump", false);
    // A logical dump takes no incrementals.
    let body =
        format!(r#"{{"backup": {{"name": "i", "instance": "{src}", "incremental": true}}}}"#);
    assert_eq!(c.http("POST", "/backups", Some(&body)).0, 400);
    let (_, rip) = active(&c, "logical-restored", "mariadb", b["id"].as_str());
    assert_eq!(count("mariadb", &rip, "SELECT COUNT(*) FROM t"), "700");
}

//! Trove's in-datastore API on every datastore, through the real binary:
//! create an instance with an initial database and user, connect with the
//! datastore's own client, add a database and a user through the API,
//! grant and revoke and see the effect in the datastore, root enable and
//! disable, bad names and duplicates refused, no password left on disk.

mod common;

use common::{client, Coffer};
use serde_json::{json, Value};
use std::time::Duration;

fn create_instance(c: &Coffer, datastore: &str, with_db: bool) -> (String, String) {
    let dbs = if with_db {
        json!([{"name": "app"}])
    } else {
        json!([])
    };
    let user_dbs = dbs.clone();
    let body = json!({"instance": {"name": format!("{datastore}-1"), "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": datastore}, "databases": dbs,
        "users": [{"name": "app", "password": "App-Pw-5521", "databases": user_dbs}]}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    (id, inst["ip"][0].as_str().unwrap().to_string())
}

/// Restart through the API: REBOOT, then ACTIVE and HEALTHY again.
fn restart(c: &Coffer, id: &str) {
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{id}/action"),
        Some(r#"{"restart": {}}"#),
    );
    assert_eq!(code, 202, "{v}");
    let inst = c.wait_status(id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    assert_eq!(inst["operating_status"], "HEALTHY", "{inst}");
}

/// No password of the test reached a file in plain text; then delete the
/// instance and check nothing of it keeps running.
fn no_leaks_then_delete(c: &Coffer, id: &str, root_pw: &str) {
    for pw in ["App-Pw-5521", "Analyst-Pw-1", "Analyst-Pw-2", root_pw] {
        let leaks = common::files_containing(c.state_dir(), pw);
        assert!(leaks.is_empty(), "{pw} found in {leaks:?}");
    }
    assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    c.wait_gone(id, Duration::from_secs(60));
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

/// The SQL datastores: databases, users, grants, root.
fn sql_datastore(datastore: &str, probe: &str, reserved_users: &[&str]) {
    let c = Coffer::up();
    let (id, ip) = create_instance(&c, datastore, true);
    let inst = |p: &str| format!("/instances/{id}{p}");
    let ds = datastore;

    client(
        ds,
        &ip,
        "app",
        "App-Pw-5521",
        "app",
        "CREATE TABLE t (v INT)",
    )
    .unwrap();
    client(
        ds,
        &ip,
        "app",
        "App-Pw-5521",
        "app",
        "INSERT INTO t VALUES (7)",
    )
    .unwrap();
    assert_eq!(
        client(ds, &ip, "app", "App-Pw-5521", "app", "SELECT v FROM t").unwrap(),
        "7"
    );

    // A second database and user through the API.
    let (code, v) = c.http(
        "POST",
        &inst("/databases"),
        Some(r#"{"databases": [{"name": "reports"}]}"#),
    );
    assert_eq!(code, 202, "{v}");
    let (code, v) = c.http("GET", &inst("/databases"), None);
    assert_eq!(code, 200);
    let dbs = names(&v, "databases");
    assert!(
        dbs.contains(&"app".into()) && dbs.contains(&"reports".into()),
        "{v}"
    );
    assert!(!dbs.iter().any(|d| ["mysql", "postgres", "template1", "information_schema"].contains(&d.as_str())), "{v}");
    let (code, v) = c.http(
        "POST",
        &inst("/users"),
        Some(r#"{"users": [{"name": "analyst", "password": "Analyst-Pw-1"}]}"#),
    );
    assert_eq!(code, 202, "{v}");
    let (_, v) = c.http("GET", &inst("/users"), None);
    assert!(names(&v, "users").contains(&"analyst".to_string()), "{v}");
    let (_, v) = c.http("GET", &inst("/users/analyst"), None);
    assert_eq!(v["user"]["databases"], json!([]), "{v}");

    // No access until granted; granted works; revoked stops working.
    assert!(client(ds, &ip, "analyst", "Analyst-Pw-1", "reports", probe).is_err());
    let (code, v) = c.http(
        "PUT",
        &inst("/users/analyst/databases"),
        Some(r#"{"databases": [{"name": "reports"}]}"#),
    );
    assert_eq!(code, 202, "{v}");
    client(
        ds,
        &ip,
        "analyst",
        "Analyst-Pw-1",
        "reports",
        "CREATE TABLE r (i INT)",
    )
    .unwrap();
    let (_, v) = c.http("GET", &inst("/users/analyst/databases"), None);
    assert_eq!(names(&v, "databases"), ["reports"]);
    assert_eq!(
        c.http("DELETE", &inst("/users/analyst/databases/reports"), None)
            .0,
        202
    );
    assert!(client(ds, &ip, "analyst", "Analyst-Pw-1", "reports", probe).is_err());
    assert!(
        client(ds, &ip, "analyst", "Analyst-Pw-1", "app", probe).is_err(),
        "never granted app"
    );

    // Duplicates and bad names are refused with Trove's 400 and a message.
    let (code, v) = c.http(
        "POST",
        &inst("/databases"),
        Some(r#"{"databases": [{"name": "reports"}]}"#),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("reports"));
    assert_eq!(
        c.http(
            "POST",
            &inst("/users"),
            Some(r#"{"users": [{"name": "analyst", "password": "x-Pw-2"}]}"#)
        )
        .0,
        400
    );
    let evil = json!({"databases": [{"name": "x'; DROP DATABASE app; --"}]}).to_string();
    let (code, v) = c.http("POST", &inst("/databases"), Some(&evil));
    // Rejected, or created under that literal name: either way `app` survives.
    assert!(code == 400 || code == 202, "{code} {v}");
    assert_eq!(
        client(ds, &ip, "app", "App-Pw-5521", "app", "SELECT v FROM t").unwrap(),
        "7"
    );
    for reserved in reserved_users {
        let body = json!({"users": [{"name": reserved, "password": "Reserved-1"}]}).to_string();
        assert_eq!(
            c.http("POST", &inst("/users"), Some(&body)).0,
            400,
            "user {reserved}"
        );
    }
    assert_eq!(c.http("GET", &inst("/users/nobody"), None).0, 404);
    assert_eq!(
        c.http("DELETE", &inst("/databases/nothing_here"), None).0,
        404
    );

    // Password change.
    let (code, _) = c.http(
        "PUT",
        &inst("/users/analyst"),
        Some(r#"{"user": {"password": "Analyst-Pw-2"}}"#),
    );
    assert_eq!(code, 202);
    c.http(
        "PUT",
        &inst("/users/analyst/databases"),
        Some(r#"{"databases": [{"name": "reports"}]}"#),
    );
    assert!(client(ds, &ip, "analyst", "Analyst-Pw-1", "reports", probe).is_err());
    client(ds, &ip, "analyst", "Analyst-Pw-2", "reports", probe).unwrap();

    // Root: off, on (the password shown once works), off again.
    assert_eq!(
        c.http("GET", &inst("/root"), None).1,
        json!({"rootEnabled": false})
    );
    let (code, v) = c.http("POST", &inst("/root"), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["user"]["name"], "root");
    let root_pw = v["user"]["password"].as_str().unwrap().to_string();
    let root_name = if ds == "postgresql" {
        "postgres"
    } else {
        "root"
    };
    client(
        ds,
        &ip,
        root_name,
        &root_pw,
        if ds == "postgresql" {
            "postgres"
        } else {
            "mysql"
        },
        probe,
    )
    .unwrap();
    assert_eq!(
        c.http("GET", &inst("/root"), None).1,
        json!({"rootEnabled": true})
    );
    assert_eq!(c.http("DELETE", &inst("/root"), None).0, 204);
    assert!(client(
        ds,
        &ip,
        root_name,
        &root_pw,
        if ds == "postgresql" {
            "postgres"
        } else {
            "mysql"
        },
        probe
    )
    .is_err());
    assert_eq!(
        c.http("GET", &inst("/root"), None).1,
        json!({"rootEnabled": false})
    );

    if ds == "mariadb" {
        // Hosts are case-insensitive: the same account spelled differently
        // is a duplicate, not a silent password reset.
        let body = |h: &str| {
            json!({"users": [{"name": "hosty", "password": "Hosty-Pw-1", "host": h}]}).to_string()
        };
        assert_eq!(
            c.http("POST", &inst("/users"), Some(&body("db.example"))).0,
            202
        );
        assert_eq!(
            c.http("POST", &inst("/users"), Some(&body("Db.Example"))).0,
            400
        );
        assert_eq!(
            c.http("DELETE", &inst("/users/hosty@db.example"), None).0,
            202
        );
    }

    // A restart keeps data, users and grants.
    restart(&c, &id);
    assert_eq!(
        client(ds, &ip, "app", "App-Pw-5521", "app", "SELECT v FROM t").unwrap(),
        "7"
    );
    client(ds, &ip, "analyst", "Analyst-Pw-2", "reports", probe).unwrap();

    // Drops.
    assert_eq!(c.http("DELETE", &inst("/users/analyst"), None).0, 202);
    assert_eq!(c.http("GET", &inst("/users/analyst"), None).0, 404);
    assert_eq!(c.http("DELETE", &inst("/databases/reports"), None).0, 202);
    assert!(
        !names(&c.http("GET", &inst("/databases"), None).1, "databases")
            .contains(&"reports".into())
    );

    no_leaks_then_delete(&c, &id, &root_pw);
}

#[test]
fn mariadb_accounts() {
    sql_datastore(
        "mariadb",
        "SELECT 1",
        &["mysql", "mariadb.sys", "root", "os_admin"],
    );
}

#[test]
fn postgresql_accounts() {
    sql_datastore(
        "postgresql",
        "SELECT 1",
        &["postgres", "pg_monitor", "root", "os_admin"],
    );
}

#[test]
fn redis_accounts() {
    let c = Coffer::up();
    let (id, ip) = create_instance(&c, "redis", false);
    let inst = |p: &str| format!("/instances/{id}{p}");
    client("redis", &ip, "app", "App-Pw-5521", "", "SET k v").unwrap();
    assert_eq!(
        client("redis", &ip, "app", "App-Pw-5521", "", "GET k").unwrap(),
        "v"
    );
    assert!(client("redis", &ip, "app", "wrong", "", "GET k").is_err());

    // Redis has no databases: Trove's notImplemented with a message.
    let (code, v) = c.http(
        "POST",
        &inst("/databases"),
        Some(r#"{"databases": [{"name": "reports"}]}"#),
    );
    assert_eq!(code, 501, "{v}");
    assert!(!v["notImplemented"]["message"].as_str().unwrap().is_empty());
    assert_eq!(c.http("GET", &inst("/databases"), None).0, 501);

    let (code, v) = c.http(
        "POST",
        &inst("/users"),
        Some(r#"{"users": [{"name": "analyst", "password": "Analyst-Pw-1"}]}"#),
    );
    assert_eq!(code, 202, "{v}");
    assert_eq!(
        client("redis", &ip, "analyst", "Analyst-Pw-1", "", "GET k").unwrap(),
        "v"
    );
    assert!(
        names(&c.http("GET", &inst("/users"), None).1, "users").contains(&"analyst".to_string())
    );
    assert_eq!(
        c.http(
            "POST",
            &inst("/users"),
            Some(r#"{"users": [{"name": "analyst", "password": "x-Pw-2"}]}"#)
        )
        .0,
        400
    );
    assert_eq!(
        c.http(
            "PUT",
            &inst("/users/analyst/databases"),
            Some(r#"{"databases": [{"name": "x"}]}"#)
        )
        .0,
        501
    );
    // Tenants cannot reach the server's admin commands.
    assert!(client(
        "redis",
        &ip,
        "analyst",
        "Analyst-Pw-1",
        "",
        "CONFIG GET maxmemory"
    )
    .is_err());

    assert_eq!(
        c.http(
            "PUT",
            &inst("/users/analyst"),
            Some(r#"{"user": {"password": "Analyst-Pw-2"}}"#)
        )
        .0,
        202
    );
    assert!(client("redis", &ip, "analyst", "Analyst-Pw-1", "", "GET k").is_err());
    client("redis", &ip, "analyst", "Analyst-Pw-2", "", "GET k").unwrap();

    let (code, v) = c.http("POST", &inst("/root"), None);
    assert_eq!(code, 200, "{v}");
    let root_pw = v["user"]["password"].as_str().unwrap().to_string();
    client("redis", &ip, "root", &root_pw, "", "CONFIG GET maxmemory").unwrap();
    assert_eq!(
        c.http("GET", &inst("/root"), None).1,
        json!({"rootEnabled": true})
    );
    assert_eq!(c.http("DELETE", &inst("/root"), None).0, 204);
    assert!(client("redis", &ip, "root", &root_pw, "", "PING").is_err());

    // A restart keeps data and users.
    restart(&c, &id);
    assert_eq!(
        client("redis", &ip, "app", "App-Pw-5521", "", "GET k").unwrap(),
        "v"
    );
    client("redis", &ip, "analyst", "Analyst-Pw-2", "", "GET k").unwrap();

    assert_eq!(c.http("DELETE", &inst("/users/analyst"), None).0, 202);
    assert_eq!(c.http("GET", &inst("/users/analyst"), None).0, 404);
    no_leaks_then_delete(&c, &id, &root_pw);
}

#[test]
fn account_requests_need_an_active_instance() {
    let c = Coffer::api_only();
    let body = json!({"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}}});
    let (_, v) = c.http("POST", "/instances", Some(&body.to_string()));
    let id = v["instance"]["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", "users"),
        ("GET", "databases"),
        ("POST", "root"),
        ("GET", "root"),
    ] {
        let (code, v) = c.http(method, &format!("/instances/{id}/{path}"), None);
        assert_eq!(code, 422, "{method} {path}: {v}");
        assert!(v["unprocessableEntity"]["message"]
            .as_str()
            .unwrap()
            .contains("BUILD"));
    }
    assert_eq!(c.http("GET", "/instances/not-an-id/users", None).0, 404);
    assert_eq!(
        c.http("POST", &format!("/instances/{id}/users"), Some("{bad"))
            .0,
        400
    );
}

//! Configuration groups, resize and restart on every datastore, through
//! the real binary: a group with a dynamic and a restart-required
//! parameter is attached; the dynamic value is seen in the datastore at
//! once (SHOW VARIABLES / pg_settings / CONFIG GET), the other only after
//! a restart; bad values are 422 naming the parameter; a flavor resize
//! changes the memory setting the datastore reports; a volume resize
//! raises the limit the agent enforces.

#[path = "common/backup.rs"]
mod backup;
mod common;

use backup::{active, PW};
use common::{client, instance_dir, Coffer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What a datastore is tested with.
struct Case {
    datastore: &'static str,
    version: &'static str,
    /// A dynamic parameter: (name, value to set, value as the datastore shows it).
    dynamic: (&'static str, Value, &'static str),
    /// A restart-required one, likewise.
    restart: (&'static str, Value, &'static str),
    /// The flavor-derived memory setting and its value on flavors 1 and 2.
    memory: (&'static str, &'static str, &'static str),
    /// A tenant write that a read-only (full) datastore refuses.
    write: &'static str,
}

/// Reads parameters as the datastore shows them, with its own client.
struct Probe<'a> {
    case: &'a Case,
    ip: String,
    /// Redis: the root password (CONFIG is an admin command).
    root: Option<String>,
}

impl Probe<'_> {
    fn get(&self, name: &str) -> String {
        let (ds, ip) = (self.case.datastore, &self.ip);
        match ds {
            "mariadb" => {
                let out = client(
                    ds,
                    ip,
                    "app",
                    PW,
                    "app",
                    &format!("SHOW GLOBAL VARIABLES LIKE '{name}'"),
                );
                let out = out.unwrap_or_else(|e| panic!("SHOW VARIABLES {name}: {e}"));
                out.split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string()
            }
            "postgresql" => {
                let q = format!("SELECT setting FROM pg_settings WHERE name = '{name}'");
                client(ds, ip, "app", PW, "app", &q).unwrap_or_else(|e| panic!("{q}: {e}"))
            }
            "redis" => {
                let root = self.root.as_deref().expect("root enabled");
                let out = client(ds, ip, "root", root, "", &format!("CONFIG GET {name}"));
                let out = out.unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
                out.lines().nth(1).unwrap_or_default().to_string()
            }
            other => panic!("no probe for {other}"),
        }
    }

    /// Wait (an apply task runs after the API answers) until `name` shows `want`.
    fn wait_for(&self, c: &Coffer, name: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.get(name);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} {name} is {got:?}, wanted {want:?}\n{}",
                self.case.datastore,
                c.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn write(&self) -> Result<String, String> {
        let ds = self.case.datastore;
        client(ds, &self.ip, "app", PW, "app", self.case.write)
    }
}

fn cli_ok(c: &Coffer, args: &[&str]) -> String {
    let (ok, out, err) = c.cli(args);
    assert!(ok, "coffer {args:?} failed:\n{out}\n{err}\n{}", c.log());
    out
}

/// A 422 whose message names `param`.
fn assert_invalid(code: u16, body: &Value, param: &str) {
    assert_eq!(code, 422, "{body}");
    let message = body["unprocessableEntity"]["message"].as_str().unwrap();
    assert!(message.contains(param), "{message}");
}

fn status_of(c: &Coffer, id: &str) -> Value {
    let (code, v) = c.http("GET", &format!("/instances/{id}"), None);
    assert_eq!(code, 200, "{v}");
    v["instance"].clone()
}

fn run(case: &Case) {
    let c = Coffer::up();
    let ds = case.datastore;
    let (dyn_name, dyn_value, dyn_shown) = &case.dynamic;
    let (rst_name, rst_value, rst_shown) = &case.restart;

    // The schema, as the API and the CLI serve it.
    let base = format!("/datastores/{ds}/versions/{}/parameters", case.version);
    let (code, params) = c.http("GET", &base, None);
    assert_eq!(code, 200, "{params}");
    let listed = params["configuration-parameters"].as_array().unwrap();
    let flag = |name: &str| {
        let p = listed
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        p["restart_required"].as_bool().unwrap()
    };
    assert!(!flag(dyn_name) && flag(rst_name));
    let (code, one) = c.http("GET", &format!("{base}/{dyn_name}"), None);
    assert_eq!((code, &one["name"]), (200, &json!(dyn_name)), "{one}");
    assert_eq!(
        c.http("GET", &format!("{base}/no_such_parameter"), None).0,
        404
    );
    let table = cli_ok(&c, &["configuration", "parameters", ds, case.version]);
    assert!(
        table.contains(dyn_name) && table.contains(rst_name),
        "{table}"
    );

    // Bad values: 422 naming the parameter; nothing is created.
    let create = |values: Value| {
        let body = json!({"configuration": {"name": "tuned", "values": values,
            "datastore": {"type": ds, "version": case.version}}});
        c.http("POST", "/configurations", Some(&body.to_string()))
    };
    let (code, v) = create(json!({"no_such_parameter": 1}));
    assert_invalid(code, &v, "no_such_parameter");
    let (code, v) = create(json!({ *dyn_name: [1, 2] }));
    assert_invalid(code, &v, dyn_name);
    let (code, v) = create(json!({ *rst_name: "x'; DROP TABLE t; --" }));
    assert_invalid(code, &v, rst_name);
    let (code, v) = c.http("POST", "/configurations", Some("{\"configuration\": "));
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        c.http("GET", "/configurations", None).1["configurations"],
        json!([])
    );

    let (code, v) = create(json!({ *dyn_name: dyn_value, *rst_name: rst_value }));
    assert_eq!(code, 200, "{v}");
    let group = v["configuration"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["configuration"]["instance_count"], 0);

    let (id, ip) = active(&c, &format!("{ds}-cfg"), ds, None);
    let mut probe = Probe {
        case,
        ip,
        root: None,
    };
    if ds == "redis" {
        let (code, v) = c.http("POST", &format!("/instances/{id}/root"), None);
        assert_eq!(code, 200, "{v}");
        probe.root = Some(v["user"]["password"].as_str().unwrap().to_string());
    }
    let default_dyn = probe.get(dyn_name);
    let default_rst = probe.get(rst_name);
    assert_ne!(default_dyn, *dyn_shown);
    assert_ne!(default_rst, *rst_shown);
    assert_eq!(probe.get(case.memory.0), case.memory.1, "flavor 1 memory");

    // Attach (CLI): the dynamic value at once, the other waits for a restart.
    cli_ok(&c, &["configuration", "attach", &id, "tuned"]);
    let inst = c.wait_status(&id, &["RESTART_REQUIRED", "ERROR"], Duration::from_secs(60));
    assert_eq!(inst["status"], "RESTART_REQUIRED", "{inst}");
    assert_eq!(inst["configuration"]["id"], json!(group), "{inst}");
    assert_eq!(inst["configuration"]["name"], "tuned", "{inst}");
    assert_eq!(probe.get(dyn_name), *dyn_shown);
    assert_eq!(
        probe.get(rst_name),
        default_rst,
        "applied before the restart"
    );
    let (_, effective) = c.http("GET", &format!("/instances/{id}/configuration"), None);
    assert_eq!(
        effective["instance"]["configuration"][dyn_name],
        json!(dyn_shown),
        "{effective}"
    );
    let (_, shown) = c.http("GET", &format!("/configurations/{group}"), None);
    assert_eq!(shown["configuration"]["instance_count"], 1, "{shown}");
    let (_, users) = c.http("GET", &format!("/configurations/{group}/instances"), None);
    assert_eq!(users["instances"][0]["id"], json!(id), "{users}");
    let (code, v) = c.http("DELETE", &format!("/configurations/{group}"), None);
    assert_eq!(code, 400, "an attached group is not deleted: {v}");

    // Restart (CLI): the restart-required value is in force; ACTIVE again.
    let out = cli_ok(&c, &["instance", "restart", &id, "--wait", "-f", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "ACTIVE",
        "{out}"
    );
    assert_eq!(probe.get(rst_name), *rst_shown);
    assert_eq!(probe.get(dyn_name), *dyn_shown, "survives the restart");

    // Bad updates are 422 and change nothing; a good PATCH applies at once.
    let patch = |values: Value| {
        let body = json!({"configuration": {"values": values}});
        c.http(
            "PATCH",
            &format!("/configurations/{group}"),
            Some(&body.to_string()),
        )
    };
    let (code, v) = patch(json!({"no_such_parameter": 5}));
    assert_invalid(code, &v, "no_such_parameter");
    let (code, v) = patch(json!({ *dyn_name: dyn_value.clone() }));
    assert_eq!(code, 200, "{v}");
    assert_eq!(status_of(&c, &id)["status"], "ACTIVE");

    // Detach: the dynamic value goes back at once, the other at a restart.
    let body = json!({"instance": {"configuration": null}});
    let (code, v) = c.http(
        "PATCH",
        &format!("/instances/{id}"),
        Some(&body.to_string()),
    );
    assert_eq!(code, 202, "{v}");
    probe.wait_for(&c, dyn_name, &default_dyn);
    let inst = c.wait_status(&id, &["RESTART_REQUIRED"], Duration::from_secs(30));
    assert!(inst.get("configuration").is_none(), "{inst}");
    cli_ok(&c, &["instance", "restart", &id, "--wait"]);
    assert_eq!(probe.get(rst_name), default_rst);
    assert_eq!(
        c.http("DELETE", &format!("/configurations/{group}"), None)
            .0,
        202
    );
    assert_eq!(
        c.http("GET", &format!("/configurations/{group}"), None).0,
        404
    );

    // Resize the flavor (CLI): the memory setting follows the flavor.
    let out = cli_ok(
        &c,
        &[
            "instance",
            "resize-flavor",
            &id,
            "medium",
            "--wait",
            "-f",
            "json",
        ],
    );
    let inst: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&inst["status"], &inst["flavor"]["id"]),
        (&json!("ACTIVE"), &json!("2")),
        "{inst}"
    );
    assert_eq!(probe.get(case.memory.0), case.memory.2, "flavor 2 memory");
    let same = json!({"resize": {"flavorRef": "2"}}).to_string();
    assert_eq!(
        c.http("POST", &format!("/instances/{id}/action"), Some(&same))
            .0,
        400
    );
    let missing = json!({"resize": {"flavorRef": "999"}}).to_string();
    assert_eq!(
        c.http("POST", &format!("/instances/{id}/action"), Some(&missing))
            .0,
        404
    );

    // Fill the 1 GB volume: the agent makes the datastore refuse writes.
    // A loop volume is a filesystem a little smaller than its size: fill
    // what it has left; a directory volume: its size.
    probe.write().unwrap();
    let dir = instance_dir(c.state_dir(), &id);
    let ballast = dir.join("data").join("ballast");
    let size = if dir.join("volume.img").exists() {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(dir.join("data/"))
            .output()
            .unwrap();
        let avail: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap();
        (avail - (1 << 20)).to_string()
    } else {
        "1G".to_string()
    };
    let ok = std::process::Command::new("fallocate")
        .args(["-l", &size])
        .arg(&ballast)
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.write().is_ok() {
        assert!(
            Instant::now() < deadline,
            "writes still allowed on a full volume\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Shrinking is refused with a message; growing (CLI) lifts the limit.
    let shrink = json!({"resize": {"volume": {"size": 1}}}).to_string();
    let (code, v) = c.http("POST", &format!("/instances/{id}/action"), Some(&shrink));
    assert_eq!(code, 400, "{v}");
    assert!(
        v["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("shrink"),
        "{v}"
    );
    let out = cli_ok(
        &c,
        &[
            "instance",
            "resize-volume",
            &id,
            "3",
            "--wait",
            "-f",
            "json",
        ],
    );
    let inst: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&inst["status"], &inst["volume"]["size"]),
        (&json!("ACTIVE"), &json!(3)),
        "{inst}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = probe.write() {
        assert!(
            Instant::now() < deadline,
            "writes still refused after the resize: {e}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_file(&ballast).unwrap();
    assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    c.wait_gone(&id, Duration::from_secs(60));
}

#[test]
fn mariadb_configuration_resize_and_restart() {
    run(&Case {
        datastore: "mariadb",
        version: "10.11",
        dynamic: ("max_connections", json!(321), "321"),
        restart: ("innodb_log_buffer_size", json!(33554432), "33554432"),
        memory: ("innodb_buffer_pool_size", "268435456", "536870912"),
        write: "CREATE TABLE IF NOT EXISTS w (v INT); INSERT INTO w VALUES (1)",
    });
}

#[test]
fn postgresql_configuration_resize_and_restart() {
    run(&Case {
        datastore: "postgresql",
        version: "15",
        dynamic: ("work_mem", json!(12345), "12345"),
        restart: ("max_locks_per_transaction", json!(128), "128"),
        memory: ("shared_buffers", "16384", "32768"),
        write: "CREATE TABLE IF NOT EXISTS w (v INT); INSERT INTO w VALUES (1)",
    });
}

#[test]
fn redis_configuration_resize_and_restart() {
    run(&Case {
        datastore: "redis",
        version: "7.0",
        dynamic: ("maxmemory-policy", json!("allkeys-lru"), "allkeys-lru"),
        restart: ("databases", json!(32), "32"),
        memory: ("maxmemory", "402653184", "805306368"),
        write: "SET w 1",
    });
}

/// An instance created with a group runs with all its values from the
/// first start (no restart needed), and groups of another datastore or
/// version are refused.
#[test]
fn create_with_configuration_and_mismatches() {
    let c = Coffer::up();
    let body = json!({"configuration": {"name": "pg", "values": {"max_locks_per_transaction": 100, "work_mem": 5000},
        "datastore": {"type": "postgresql"}}});
    let (code, v) = c.http("POST", "/configurations", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let pg_group = v["configuration"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["configuration"]["datastore_version_name"], "15");

    // A PostgreSQL group on a Redis instance: 422 at create.
    let wrong = json!({"instance": {"name": "r", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "redis"}, "configuration": pg_group}});
    let (code, v) = c.http("POST", "/instances", Some(&wrong.to_string()));
    assert_eq!(code, 422, "{v}");
    let unknown = json!({"instance": {"name": "r", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "postgresql"}, "configuration": "00000000-0000-0000-0000-000000000000"}});
    assert_eq!(
        c.http("POST", "/instances", Some(&unknown.to_string())).0,
        404
    );

    let user = format!("app:{PW}");
    let out = cli_ok(
        &c,
        &[
            "instance",
            "create",
            "pg-cfg",
            "--datastore",
            "postgresql",
            "--flavor",
            "small",
            "--size",
            "1",
            "--database",
            "app",
            "--user",
            &user,
            "--configuration",
            "pg",
            "--wait",
            "-f",
            "json",
        ],
    );
    let inst: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    let id = inst["id"].as_str().unwrap();
    let ip = inst["ip"][0].as_str().unwrap();
    let q = |name: &str| {
        client(
            "postgresql",
            ip,
            "app",
            PW,
            "app",
            &format!("SELECT setting FROM pg_settings WHERE name = '{name}'"),
        )
        .unwrap()
    };
    assert_eq!(q("max_locks_per_transaction"), "100");
    assert_eq!(q("work_mem"), "5000");

    // A Redis instance cannot take the PostgreSQL group; a second group
    // cannot replace an attached one without a detach.
    let (redis, _) = active(&c, "r1", "redis", None);
    let attach = json!({"instance": {"configuration": pg_group}}).to_string();
    let (code, v) = c.http("PUT", &format!("/instances/{redis}"), Some(&attach));
    assert_eq!(code, 422, "{v}");
    let other = json!({"configuration": {"name": "pg2", "values": {"work_mem": 6000}, "datastore": {"type": "postgresql"}}});
    let (_, v) = c.http("POST", "/configurations", Some(&other.to_string()));
    let second = v["configuration"]["id"].as_str().unwrap();
    let swap = json!({"instance": {"configuration": second}}).to_string();
    assert_eq!(
        c.http("PUT", &format!("/instances/{id}"), Some(&swap)).0,
        400
    );
    // PUT without a configuration detaches, as Trove's v1 client does.
    let (code, v) = c.http(
        "PUT",
        &format!("/instances/{id}"),
        Some(r#"{"instance": {}}"#),
    );
    assert_eq!(code, 202, "{v}");
    let inst = c.wait_status(id, &["RESTART_REQUIRED"], Duration::from_secs(30));
    assert!(inst.get("configuration").is_none(), "{inst}");
    // The rest of the CLI: list, show, merge-update, detach refused, delete.
    let listed = cli_ok(&c, &["configuration", "list"]);
    assert!(listed.contains("pg2") && listed.contains("pg"), "{listed}");
    cli_ok(
        &c,
        &[
            "configuration",
            "update",
            "pg2",
            "--values",
            r#"{"work_mem": 7000}"#,
            "--merge",
        ],
    );
    cli_ok(
        &c,
        &[
            "configuration",
            "update",
            "pg2",
            "--values",
            r#"{"statement_timeout": 9000}"#,
            "--merge",
        ],
    );
    let shown: Value =
        serde_json::from_str(&cli_ok(&c, &["configuration", "show", "pg2", "-f", "json"])).unwrap();
    assert_eq!(
        shown["values"],
        json!({"work_mem": 7000, "statement_timeout": 9000}),
        "{shown}"
    );
    let (ok, _, err) = c.cli(&[
        "configuration",
        "update",
        "pg2",
        "--values",
        r#"{"work_mem": -1}"#,
    ]);
    assert!(
        !ok && err.contains("work_mem") && err.contains("422"),
        "{err}"
    );
    let (ok, _, err) = c.cli(&["configuration", "detach", "r1"]);
    assert!(!ok && err.contains("no configuration group"), "{err}");
    cli_ok(&c, &["configuration", "delete", "pg"]);
    assert!(!cli_ok(&c, &["configuration", "list"]).contains(&pg_group));
    // Unknown fields and another project's group are refused.
    let (code, _) = c.http(
        "PATCH",
        &format!("/instances/{id}"),
        Some(r#"{"instance": {"name": "x"}}"#),
    );
    assert_eq!(code, 400);
    let foreign = format!("{}/v1.0/other/configurations/{second}", c.endpoint());
    assert_eq!(common::http("GET", &foreign, None).0, 404);
}

//! The roles as separate processes (`coffer api` + `coffer taskmanager`)
//! sharing a PostgreSQL metadata store: the task manager finds the API's
//! tasks by polling, agents reach the task manager's bus socket, and a
//! MariaDB instance goes from create to delete.

mod common;

use common::pg::TempDb;
use common::Coffer;
use serde_json::json;
use std::time::Duration;

#[test]
fn api_and_taskmanager_apart_on_postgres() {
    let db = TempDb::new();
    let url = db.url();
    let c = Coffer::start_roles(
        &["taskmanager", "api"],
        &[("COFFER__METADATA__URL", url.as_str())],
    );
    let body = json!({"instance": {"name": "apart", "flavorRef": 1, "volume": {"size": 1},
        "databases": [{"name": "app"}],
        "users": [{"name": "app", "password": "Apart-Pw-9k2", "databases": [{"name": "app"}]}]}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    let ip = inst["ip"][0].as_str().unwrap();
    let out = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h",
            ip,
            "-u",
            "app",
            "-pApart-Pw-9k2",
            "app",
            "-e",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The state lives in PostgreSQL, not in a SQLite file.
    assert!(!c.state_dir().join("coffer.db").exists());

    assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    c.wait_gone(&id, Duration::from_secs(60));
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
}

//! Helpers for backup tests: create instances, take backups, restore.

#![allow(dead_code)]

use super::Coffer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const PW: &str = "App-Pw-5521";

/// Create an instance of `datastore` with database `app` and user `app`
/// (or restore `backup` into it); wait for a terminal status.
pub fn create(c: &Coffer, name: &str, datastore: &str, backup: Option<&str>) -> Value {
    let dbs = if datastore == "redis" {
        json!([])
    } else {
        json!([{"name": "app"}])
    };
    let mut body = json!({"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": datastore}, "databases": dbs.clone(),
        "users": [{"name": "app", "password": PW, "databases": dbs}]}});
    if let Some(b) = backup {
        body["instance"]["restorePoint"] = json!({"backupRef": b});
    }
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(180))
}

pub fn active(c: &Coffer, name: &str, datastore: &str, backup: Option<&str>) -> (String, String) {
    let inst = create(c, name, datastore, backup);
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    (
        inst["id"].as_str().unwrap().to_string(),
        inst["ip"][0].as_str().unwrap().to_string(),
    )
}

/// POST /backups; returns the new backup's id.
pub fn start_backup(c: &Coffer, instance: &str, name: &str, incremental: bool) -> String {
    let body = json!({"backup": {"name": name, "instance": instance,
        "description": "test", "incremental": if incremental { 1 } else { 0 }}});
    let (code, v) = c.http("POST", "/backups", Some(&body.to_string()));
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["backup"]["status"], "NEW", "{v}");
    v["backup"]["id"].as_str().unwrap().to_string()
}

/// Poll the backup until it is COMPLETED or FAILED.
pub fn wait_backup(c: &Coffer, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, v) = c.http("GET", &format!("/backups/{id}"), None);
        assert_eq!(code, 200, "{v}");
        let status = v["backup"]["status"].as_str().unwrap().to_string();
        if status == "COMPLETED" || status == "FAILED" {
            return v["backup"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "backup {id} still {status}\n{}",
            c.log()
        );
        c.assert_servers_alive();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Take a backup and check it completed with its numbers filled in; the
/// instance is ACTIVE again afterwards.
pub fn backup(c: &Coffer, instance: &str, name: &str, incremental: bool) -> Value {
    let id = start_backup(c, instance, name, incremental);
    let b = wait_backup(c, &id, Duration::from_secs(180));
    assert_eq!(b["status"], "COMPLETED", "{b}\n{}", c.log());
    assert!(b["size_bytes"].as_u64().unwrap() > 0, "{b}");
    assert!(b["stored_bytes"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["checksum"].as_str().unwrap().len(), 64, "{b}");
    assert!(b["locationRef"].as_str().unwrap().ends_with(".cbk"), "{b}");
    let inst = c.wait_status(instance, &["ACTIVE", "ERROR"], Duration::from_secs(30));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    b
}

/// Objects in the state dir's filesystem backup storage (not the
/// `.partial/` directory of uploads in progress).
pub fn stored_objects(c: &Coffer) -> Vec<String> {
    let dir = c.state_dir().join("backups");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

//! Quotas through the real binary: limits shown at `/limits`, creates past
//! them refused with Trove's 413 `overLimit` body (instances, volume GB —
//! also by a volume resize — and backups), an admin raising a project's
//! limits, concurrent creates never exceeding them, and the openstack CLI
//! reading them.

mod common;

use common::Coffer;
use serde_json::{json, Value};
use std::time::Duration;

fn create(c: &Coffer, name: &str, size: i64) -> (u16, Value) {
    let body = json!({"instance": {"name": name, "flavorRef": "1", "volume": {"size": size},
        "datastore": {"type": "redis"}}});
    c.http("POST", "/instances", Some(&body.to_string()))
}

fn assert_over(code: u16, v: &Value, resources: &str) {
    assert_eq!(code, 413, "{v}");
    assert_eq!(v["overLimit"]["code"], 413, "{v}");
    assert_eq!(
        v["overLimit"]["message"],
        format!("Quota exceeded for resources: [{resources}]."),
        "{v}"
    );
}

#[test]
fn quotas_limit_instances_volumes_and_backups() {
    let c = Coffer::start_roles(
        &["up"],
        &[
            ("COFFER__QUOTAS__INSTANCES", "1"),
            ("COFFER__QUOTAS__VOLUMES", "3"),
            ("COFFER__QUOTAS__BACKUPS", "1"),
        ],
    );
    let (code, v) = c.http("GET", "/limits", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["limits"][0],
        json!({"verb": "ABSOLUTE", "max_instances": 1, "max_volumes": 3, "max_backups": 1})
    );

    let (code, v) = create(&c, "one", 1);
    assert_eq!(code, 200, "{v}");
    let one = v["instance"]["id"].as_str().unwrap().to_string();
    let (code, v) = create(&c, "two", 1);
    assert_over(code, &v, "'instances'");
    let (code, v) = create(&c, "big", 5);
    assert_over(code, &v, "'instances', 'volumes'");
    c.wait_status(&one, &["ACTIVE"], Duration::from_secs(60));

    // A volume resize counts its growth.
    let grow = json!({"resize": {"volume": {"size": 4}}}).to_string();
    let (code, v) = c.http("POST", &format!("/instances/{one}/action"), Some(&grow));
    assert_over(code, &v, "'volumes'");

    // Backups.
    let backup = |name: &str| {
        let body = json!({"backup": {"name": name, "instance": one}}).to_string();
        c.http("POST", "/backups", Some(&body))
    };
    let (code, v) = backup("b1");
    assert_eq!(code, 202, "{v}");
    c.wait_status(&one, &["ACTIVE"], Duration::from_secs(60));
    let (code, v) = backup("b2");
    assert_over(code, &v, "'backups'");
    assert_eq!(
        c.wait_status(&one, &["ACTIVE"], Duration::from_secs(5))["status"],
        "ACTIVE"
    );

    // The admin raises the limits; usage is shown beside them.
    let (code, v) = c.http(
        "PUT",
        "/mgmt/quotas/demo",
        Some(r#"{"quotas": {"instances": 4, "volumes": -1}}"#),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["quotas"], json!({"instances": 4, "volumes": -1}));
    let (code, v) = c.http(
        "PUT",
        "/mgmt/quotas/demo",
        Some(r#"{"quotas": {"ram": 4}}"#),
    );
    assert_eq!(code, 400, "{v}");
    let (_, v) = c.http("GET", "/mgmt/quotas/demo", None);
    let row = |r: &str| {
        v["quotas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["resource"] == r)
            .unwrap()
            .clone()
    };
    assert_eq!(
        row("instances"),
        json!({"resource": "instances", "in_use": 1, "reserved": 0, "limit": 4})
    );
    assert_eq!(row("backups")["in_use"], 1);
    assert_eq!(row("volumes")["limit"], -1);

    // Six concurrent creates against three free places: exactly three win.
    let results: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|n| {
                let c = &c;
                scope.spawn(move || create(c, &format!("race{n}"), 1).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&c| c == 200).count(),
        3,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&c| c == 413).count(),
        3,
        "{results:?}"
    );
    let (_, v) = c.http("GET", "/instances", None);
    assert_eq!(v["instances"].as_array().unwrap().len(), 4, "{v}");
    let (_, v) = c.http("GET", "/mgmt/instances", None);
    assert_eq!(v["instances"].as_array().unwrap().len(), 4, "{v}");

    // The real client reads them (`openstack database limit list` prints
    // its own table whatever -f says).
    let venv =
        std::env::var("COFFER_CLIENTS_VENV").unwrap_or_else(|_| "/var/tmp/coffer-clients".into());
    let endpoint = format!("{}/v1.0/demo", c.endpoint());
    let out = std::process::Command::new(format!("{venv}/bin/openstack"))
        .args(["--os-auth-type", "none", "--os-endpoint", &endpoint])
        .args(["database", "limit", "list"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("{name} not in\n{table}"))
    };
    assert_eq!(row("max_instances")[2], "4", "{table}");
    assert_eq!(row("max_volumes")[2], "-1", "{table}");
    assert_eq!(row("max_backups")[2], "1", "{table}");
}

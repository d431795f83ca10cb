//! kill -9 of coffer in the middle of creates: after a restart every
//! instance ends ACTIVE or ERROR (with a fault), none stays in BUILD, and
//! no process is left that belongs to no live instance.

mod common;

use common::Coffer;
use serde_json::json;
use std::time::Duration;

fn create(c: &Coffer, name: &str) -> String {
    let body = json!({"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1},
        "databases": [{"name": "app"}], "users": [{"name": "app", "password": "pw", "databases": [{"name": "app"}]}]}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    v["instance"]["id"].as_str().unwrap().to_string()
}

#[test]
fn kill9_mid_create_then_restart() {
    let mut c = Coffer::up();
    // Kill at different points: right after the POST, and a little later
    // (server created, prepare under way).
    let a = create(&c, "early");
    c.kill9();
    c.start();
    let b = create(&c, "later");
    std::thread::sleep(Duration::from_millis(700));
    c.kill9();
    c.start();

    let mut active = Vec::new();
    for id in [&a, &b] {
        let inst = c.wait_status(id, &["ACTIVE", "ERROR"], Duration::from_secs(180));
        if inst["status"] == "ERROR" {
            assert!(
                !inst["fault"]["message"].as_str().unwrap_or("").is_empty(),
                "ERROR without a fault: {inst}"
            );
        } else {
            active.push(inst["ip"][0].as_str().unwrap().to_string());
        }
    }
    // Created users work on the instances that finished.
    for ip in &active {
        let out = std::process::Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                ip,
                "-u",
                "app",
                "-ppw",
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
    }
    // Delete everything: nothing of ours may remain running.
    for id in [&a, &b] {
        assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    }
    for id in [&a, &b] {
        c.wait_gone(id, Duration::from_secs(60));
    }
    assert_eq!(
        c.instance_processes(),
        Vec::<i32>::new(),
        "orphan processes remain"
    );
}

#[test]
fn orphan_servers_are_removed_at_start() {
    let mut c = Coffer::up();
    let id = create(&c, "doomed");
    c.wait_status(&id, &["ACTIVE"], Duration::from_secs(120));
    c.kill9();
    // The instance disappears from the metadata store behind coffer's back
    // (e.g. a restored metadata backup): its processes are orphans now.
    c.exec_metadata("UPDATE instances SET deleted = TRUE WHERE id = $1", &id);
    assert!(!c.instance_processes().is_empty());
    c.start();
    let dir = common::instance_dir(c.state_dir(), &id);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !c.instance_processes().is_empty() || dir.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "orphans not removed\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

//! Version skew: a control plane one agent-protocol version ahead of an
//! instance's agent keeps serving it. What the old agent knows works; what
//! it lacks (configuration groups, resize: protocol 2) is refused at once
//! with "too old" (409), never sent to hang or fail half-way. Upgrading the
//! agent is restarting it with the new binary: the datastore keeps running.

mod common;

use common::{instance_processes_of, Coffer};
use serde_json::json;
use std::time::{Duration, Instant};

fn processes(c: &Coffer, id: &str, kind: &str) -> Vec<i32> {
    instance_processes_of(c.state_dir(), id, kind)
}

#[test]
fn an_agent_of_the_previous_protocol_is_served_and_upgraded() {
    // Every agent this coffer starts acts as one of protocol 1.
    let mut c = Coffer::start_roles(&["up"], &[("COFFER_AGENT_PROTOCOL", "1")]);
    let body = json!({"instance": {"name": "old", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "redis"}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(60));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    // Heartbeats (every 300 ms here) announce the agent's protocol.
    std::thread::sleep(Duration::from_millis(1500));

    // What protocol 1 has works.
    let user = json!({"users": [{"name": "app", "password": "Old-Agent-77"}]});
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{id}/users"),
        Some(&user.to_string()),
    );
    assert_eq!(code, 202, "{v}");

    // What it lacks is refused at once, saying why.
    let group = json!({"configuration": {"name": "g", "values": {"maxmemory-policy": "allkeys-lru"},
        "datastore": {"type": "redis", "version": "7.0"}}});
    let (code, v) = c.http("POST", "/configurations", Some(&group.to_string()));
    assert_eq!(code, 200, "{v}");
    let gid = v["configuration"]["id"].as_str().unwrap().to_string();
    let attach = json!({"instance": {"configuration": gid}}).to_string();
    let asked = Instant::now();
    let too_old = |code: u16, v: &serde_json::Value| {
        assert_eq!(code, 409, "{v}");
        let m = v["conflict"]["message"].as_str().unwrap_or_default();
        assert!(m.contains("too old") && m.contains("protocol 1"), "{v}");
    };
    let (code, v) = c.http("PUT", &format!("/instances/{id}"), Some(&attach));
    too_old(code, &v);
    let (code, v) = c.http("GET", &format!("/instances/{id}/configuration"), None);
    too_old(code, &v);
    let resize = json!({"resize": {"flavorRef": "2"}}).to_string();
    let (code, v) = c.http("POST", &format!("/instances/{id}/action"), Some(&resize));
    too_old(code, &v);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "refusals took {:?}",
        asked.elapsed()
    );
    let (_, v) = c.http("GET", &format!("/instances/{id}"), None);
    assert_eq!(v["instance"]["status"], "ACTIVE", "{v}");
    assert!(v["instance"].get("configuration").is_none(), "{v}");

    // Upgrade the agent: it restarts with the current protocol; the
    // datastore does not restart.
    let redis = processes(&c, &id, "redis-server");
    assert_eq!(redis.len(), 1);
    c.kill9();
    c.set_env("COFFER_AGENT_PROTOCOL", "");
    for pid in processes(&c, &id, "guest-agent") {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    c.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = c.http("PUT", &format!("/instances/{id}"), Some(&attach));
        if code == 202 {
            break;
        }
        assert!(code == 409 && Instant::now() < deadline, "{code} {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let inst = c.wait_status(&id, &["ACTIVE"], Duration::from_secs(30));
    assert_eq!(inst["configuration"]["id"], gid.as_str(), "{inst}");
    assert_eq!(
        processes(&c, &id, "redis-server"),
        redis,
        "the datastore restarted"
    );
    assert_eq!(processes(&c, &id, "guest-agent").len(), 1);
}

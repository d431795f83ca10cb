//! The broker cuts every connection of the control plane and the agents,
//! again and again, while agents heartbeat: every role reconnects by itself,
//! no instance leaves ACTIVE or is shown unhealthy, and afterwards requests
//! that go to the agent over the broker work.

mod common;

use common::pg::TempDb;
use common::rabbit::{mgmt, TestVhost};
use common::Coffer;
use serde_json::json;
use std::time::{Duration, Instant};

/// Close every connection on the vhost (as `rabbitmqctl close_connection`
/// would); how many were closed.
fn cut_all(vhost: &str) -> usize {
    let (_, list) = mgmt("GET", &format!("vhosts/{vhost}/connections"), None);
    let mut closed = 0;
    for c in list.as_array().into_iter().flatten() {
        if let Some(name) = c["name"].as_str() {
            let name = coffer_bus::amqp::admin::encode(name);
            if mgmt("DELETE", &format!("connections/{name}"), None).0 < 300 {
                closed += 1;
            }
        }
    }
    closed
}

#[test]
fn instances_stay_active_while_the_broker_cuts_connections() {
    let broker = TestVhost::new();
    let db = TempDb::new();
    let mut env = broker.env();
    env.push(("COFFER__METADATA__URL", db.url()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let c = Coffer::start_roles(&["taskmanager", "conductor", "api"], &env);

    let mut ids = Vec::new();
    for n in 0..2 {
        let body = json!({"instance": {"name": format!("steady{n}"), "flavorRef": "1",
            "volume": {"size": 1}, "datastore": {"type": "redis"}}});
        let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
        assert_eq!(code, 200, "{v}");
        ids.push(v["instance"]["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let inst = c.wait_status(id, &["ACTIVE", "ERROR"], Duration::from_secs(60));
        assert_eq!(inst["status"], "ACTIVE", "{inst}");
    }
    std::thread::sleep(Duration::from_secs(1));

    // 12 s of cuts (longer than the 10 s after which a silent agent shows
    // UNAVAILABLE), every 700 ms, checking the instances all along.
    let until = Instant::now() + Duration::from_secs(12);
    let mut closed = 0;
    while Instant::now() < until {
        closed += cut_all(&broker.vhost);
        for id in &ids {
            let (code, v) = c.http("GET", &format!("/instances/{id}"), None);
            assert_eq!(code, 200, "{v}");
            assert_eq!(v["instance"]["status"], "ACTIVE", "{v}");
            assert_eq!(
                v["instance"]["operating_status"],
                "HEALTHY",
                "{v}\n{}",
                c.log()
            );
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    // The management API lists connections with a delay: some rounds see
    // none, but the cuts happened many times over.
    assert!(closed >= 6, "only {closed} connections were cut");

    // Everyone is back: the standalone API reaches each agent over the broker.
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, v) = c.http("GET", &format!("/instances/{id}/users"), None);
            if code == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent of {id} unreachable: {code} {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for id in &ids {
        assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    }
    for id in &ids {
        c.wait_gone(id, Duration::from_secs(60));
    }
}

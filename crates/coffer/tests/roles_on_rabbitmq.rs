//! The roles as separate processes over RabbitMQ and PostgreSQL: `coffer
//! api`, `coffer taskmanager` and `coffer conductor` share a PostgreSQL
//! metadata store and talk over the machine's broker, in a vhost of this
//! test's own. The agent joins the broker as its own user, made at create
//! and removed at delete; the standalone API reaches the agent over the
//! broker (users), which on the local bus only `coffer up` can.

mod common;

use common::pg::TempDb;
use common::rabbit::TestVhost;
use common::Coffer;
use serde_json::json;
use std::time::Duration;

#[test]
fn roles_apart_on_postgres_and_rabbitmq() {
    let broker = TestVhost::new();
    let db = TempDb::new();
    let mut env: Vec<(&str, String)> = broker.env();
    env.push(("COFFER__METADATA__URL", db.url()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let c = Coffer::start_roles(&["taskmanager", "conductor", "api"], &env_refs);

    let body = json!({"instance": {"name": "amqp", "flavorRef": 1, "volume": {"size": 1},
        "datastore": {"type": "redis"}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    // Heartbeats reach the conductor over the broker.
    let inst = c.wait_status(&id, &["ACTIVE"], Duration::from_secs(10));
    assert_eq!(inst["operating_status"], "HEALTHY", "{inst}");

    // The agent is on the broker as its own user, and its queue exists.
    assert_eq!(broker.other_users(), vec![format!("agent-{id}")]);
    assert!(
        broker.queues().contains(&format!("agent.{id}")),
        "{:?}",
        broker.queues()
    );
    // The agent's bus login is in its own agent.json only (0600), not in
    // the control plane's log.
    assert!(
        !c.log().contains("amqp://agent-"),
        "an agent's broker URL was logged"
    );

    // The API (its own process) asks the agent over the broker.
    let user = json!({"users": [{"name": "app", "password": "Amqp-Pw-4411"}]});
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{id}/users"),
        Some(&user.to_string()),
    );
    assert_eq!(code, 202, "{v}\n{}", c.log());
    let (code, v) = c.http("GET", &format!("/instances/{id}/users"), None);
    assert_eq!(code, 200, "{v}");
    assert!(
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "app"),
        "{v}"
    );
    let ip = inst["ip"][0].as_str().unwrap();
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            ip,
            "--user",
            "app",
            "--pass",
            "Amqp-Pw-4411",
            "--no-auth-warning",
            "PING",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "PONG",
        "{out:?}"
    );

    c.restart_instance(&id);

    assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    c.wait_gone(&id, Duration::from_secs(60));
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
    // Its broker user and queue went with it.
    assert_eq!(broker.other_users(), Vec::<String>::new());
    assert!(!broker.queues().contains(&format!("agent.{id}")));
}

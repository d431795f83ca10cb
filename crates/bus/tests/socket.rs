//! The agent socket: authentication, request/reply, casts stamped with the
//! agent's identity, refusal of forbidden topics, reconnection.

use coffer_bus::socket::{serve, SocketClient, TokenCheck};
use coffer_bus::{agent_topic, Bus, BusError, InProcessBus, CONDUCTOR};
use coffer_model::InstanceId;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn check_for(id: InstanceId) -> TokenCheck {
    Arc::new(move |i, t| i == id && t == "good-token")
}

async fn wait_connected(c: &SocketClient) {
    for _ in 0..100 {
        if c.is_connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("agent never connected");
}

#[tokio::test]
async fn agent_round_trip_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let id = InstanceId::new();
    let bus = Arc::new(InProcessBus::new());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(
        bus.clone(),
        path.clone(),
        check_for(id),
        cancel.clone(),
    ));
    let mut conductor = bus.subscribe(CONDUCTOR).await.unwrap();

    let agent = SocketClient::start(path.clone(), id, "good-token".into(), cancel.clone());
    let mut inbox = agent.subscribe(&agent_topic(id)).await.unwrap();
    assert!(
        agent.subscribe(&agent_topic(id)).await.is_err(),
        "one subscription only"
    );
    assert!(agent.subscribe("taskmanager").await.is_err());
    wait_connected(&agent).await;

    // The agent answers a call from the control plane.
    let handler = tokio::spawn(async move {
        let m = inbox.next().await.unwrap();
        assert_eq!(m.body, json!({"method": "status"}));
        m.reply(Ok(json!({"status": "HEALTHY"})));
        let m = inbox.next().await.unwrap();
        m.reply(Err("nope".into()));
    });
    let topic = agent_topic(id);
    let r = bus
        .call(&topic, json!({"method": "status"}), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r, json!({"status": "HEALTHY"}));
    let e = bus
        .call(&topic, json!({}), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, BusError::Remote(ref m) if m == "nope"));
    handler.await.unwrap();

    // Casts reach the conductor stamped with the proven identity.
    agent.cast(CONDUCTOR, json!({"hb": 1})).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), conductor.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.from, format!("agent.{id}"));
    // A cast to another topic is dropped by the server, never delivered.
    let mut tm = bus.subscribe("taskmanager").await.unwrap();
    agent
        .cast("taskmanager", json!({"evil": true}))
        .await
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), tm.next())
        .await
        .is_err());

    cancel.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_token_is_refused_and_reconnect_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let id = InstanceId::new();
    let bus = Arc::new(InProcessBus::new());
    let cancel = CancellationToken::new();
    let server_cancel = cancel.child_token();
    let server = tokio::spawn(serve(
        bus.clone(),
        path.clone(),
        check_for(id),
        server_cancel.clone(),
    ));

    let intruder = SocketClient::start(path.clone(), id, "bad-token".into(), cancel.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!intruder.is_connected());
    assert!(matches!(
        bus.cast(&agent_topic(id), json!(1)).await,
        Err(BusError::NoRoute(_))
    ));

    let agent = SocketClient::start(path.clone(), id, "good-token".into(), cancel.clone());
    let mut inbox = agent.subscribe(&agent_topic(id)).await.unwrap();
    wait_connected(&agent).await;

    // The control plane goes away and comes back: the agent reconnects.
    server_cancel.cancel();
    server.await.unwrap().unwrap();
    drop(bus);
    let bus = Arc::new(InProcessBus::new());
    let server = tokio::spawn(serve(
        bus.clone(),
        path.clone(),
        check_for(id),
        cancel.clone(),
    ));
    let mut delivered = false;
    for _ in 0..100 {
        if bus.cast(&agent_topic(id), json!("again")).await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "agent did not reconnect");
    let m = tokio::time::timeout(Duration::from_secs(5), inbox.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body, json!("again"));
    cancel.cancel();
    server.await.unwrap().unwrap();
}

//! The RabbitMQ bus against the machine's real broker (127.0.0.1:5672, its
//! management API on 127.0.0.1:15672, enabled by scripts/install-test-deps.sh).
//! Each test makes its own vhost and users and removes them.

use coffer_bus::amqp::admin::BrokerAdmin;
use coffer_bus::amqp::names::{agent_user, news_key, CONDUCTOR_EXCHANGE, CONTROL_EXCHANGE};
use coffer_bus::amqp::{AmqpBus, Endpoint};
use coffer_bus::{agent_topic, Bus, BusError, CONDUCTOR, TASKMANAGER};
use coffer_model::InstanceId;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const MGMT: &str = "http://127.0.0.1:15672";
const BROKER: &str = "127.0.0.1:5672";

/// A vhost and a control-plane user of the test's own; removed on drop.
struct Broker {
    vhost: String,
    ctl_user: String,
    ctl_password: String,
    admin: BrokerAdmin,
}

impl Broker {
    async fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let vhost = format!("coffer-test-{tag}");
        let admin = BrokerAdmin::new(MGMT, "guest", "guest", &vhost).unwrap();
        admin
            .ensure_vhost()
            .await
            .expect("the RabbitMQ management API (run scripts/install-test-deps.sh)");
        let ctl_user = format!("ctl-{tag}");
        let ctl_password = uuid::Uuid::new_v4().simple().to_string();
        admin
            .ensure_control_user(&ctl_user, &ctl_password)
            .await
            .unwrap();
        Self {
            vhost,
            ctl_user,
            ctl_password,
            admin,
        }
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("amqp://{user}:{password}@{BROKER}/{}", self.vhost)
    }

    async fn control_plane(&self) -> AmqpBus {
        let process = uuid::Uuid::new_v4().simple().to_string();
        let bus = AmqpBus::start(
            &self.url(&self.ctl_user, &self.ctl_password),
            Endpoint::ControlPlane { process },
        )
        .unwrap();
        bus.wait_connected(Duration::from_secs(10)).await.unwrap();
        bus
    }

    /// A registered agent: its broker user, queue, and password.
    async fn register(&self, ctl: &AmqpBus) -> (InstanceId, String) {
        let id = InstanceId::new();
        let password = uuid::Uuid::new_v4().simple().to_string();
        self.admin.create_agent_user(id, &password).await.unwrap();
        ctl.declare_agent_queue(id).await.unwrap();
        (id, password)
    }

    async fn agent(&self, id: InstanceId, password: &str) -> AmqpBus {
        let bus = AmqpBus::start(
            &self.url(&agent_user(id), password),
            Endpoint::Agent { instance: id },
        )
        .unwrap();
        bus.wait_connected(Duration::from_secs(10)).await.unwrap();
        bus
    }
}

/// One management API request as guest, synchronous (for `Drop`); the
/// JSON answer, or Null.
fn mgmt_sync(method: &str, path: &str) -> serde_json::Value {
    std::process::Command::new("curl")
        .args([
            "-s",
            "-u",
            "guest:guest",
            "-X",
            method,
            &format!("{MGMT}/api/{path}"),
        ])
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice(&out.stdout).ok())
        .unwrap_or(serde_json::Value::Null)
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A drop cannot await: remove, synchronously, every user with
        // rights on this vhost (the agents' and the control plane's), then
        // the vhost.
        let vhost = self.vhost.replace('/', "%2F");
        let perms = mgmt_sync("GET", &format!("vhosts/{vhost}/permissions"));
        let mut users: Vec<String> = perms
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["user"].as_str().map(String::from))
            .collect();
        users.push(self.ctl_user.clone());
        for u in users.iter().filter(|u| u.as_str() != "guest") {
            mgmt_sync("DELETE", &format!("users/{u}"));
        }
        mgmt_sync("DELETE", &format!("vhosts/{vhost}"));
    }
}

/// An agent that answers every call with what it was sent.
fn echo(agent: Arc<AmqpBus>, id: InstanceId) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut inbox = agent.subscribe(&agent_topic(id)).await.unwrap();
        while let Some(m) = inbox.next().await {
            let body = m.body.clone();
            if body["fail"] == true {
                m.reply(Err("asked to fail".into()));
            } else if body["silent"] == true {
                drop(m);
            } else {
                m.reply(Ok(json!({"echo": body})));
            }
        }
    })
}

#[tokio::test]
async fn calls_casts_and_identities() {
    let broker = Broker::new().await;
    let ctl = broker.control_plane().await;
    let mut news = ctl.subscribe(CONDUCTOR).await.unwrap();
    let mut wakeups = ctl.subscribe(TASKMANAGER).await.unwrap();
    let (id, pw) = broker.register(&ctl).await;
    let agent = Arc::new(broker.agent(id, &pw).await);
    let _echo = echo(agent.clone(), id);

    let t = Duration::from_secs(10);
    let answer = ctl
        .call(&agent_topic(id), json!({"n": 1}), t)
        .await
        .unwrap();
    assert_eq!(answer, json!({"echo": {"n": 1}}));
    match ctl.call(&agent_topic(id), json!({"fail": true}), t).await {
        Err(BusError::Remote(e)) => assert_eq!(e, "asked to fail"),
        other => panic!("expected the agent's error, got {other:?}"),
    }
    let short = Duration::from_millis(500);
    assert!(matches!(
        ctl.call(&agent_topic(id), json!({"silent": true}), short)
            .await,
        Err(BusError::Timeout(..))
    ));
    // No queue for an instance nobody registered.
    assert!(matches!(
        ctl.call(&agent_topic(InstanceId::new()), json!({}), t)
            .await,
        Err(BusError::NoRoute(_))
    ));

    agent
        .cast(CONDUCTOR, json!({"heartbeat": 1}))
        .await
        .unwrap();
    let m = tokio::time::timeout(t, news.next()).await.unwrap().unwrap();
    assert_eq!(m.from, agent_topic(id));
    assert_eq!(m.body, json!({"heartbeat": 1}));
    drop(m);

    ctl.cast(TASKMANAGER, json!({"task_id": "x"}))
        .await
        .unwrap();
    let w = tokio::time::timeout(t, wakeups.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.from, "control-plane");

    // What an agent may not do, refused before it reaches the broker.
    assert!(matches!(
        agent.cast(TASKMANAGER, json!({})).await,
        Err(BusError::Refused(_))
    ));
    assert!(matches!(
        agent.call(&agent_topic(id), json!({}), t).await,
        Err(BusError::Refused(_))
    ));
    assert!(matches!(
        agent.subscribe(CONDUCTOR).await,
        Err(BusError::Refused(_))
    ));
}

async fn raw(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap()
}

/// Publish on a fresh confirm-mode channel; Err(text) when the broker refuses.
async fn raw_publish(
    conn: &Connection,
    exchange: &str,
    key: &str,
    props: BasicProperties,
) -> Result<(), String> {
    let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let confirm = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            b"{\"forged\": true}",
            props,
        )
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), confirm).await {
        Ok(Ok(lapin::Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(other)) => Err(format!("{other:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no confirm".into()),
    }
}

#[tokio::test]
async fn agents_are_confined_by_the_broker() {
    let broker = Broker::new().await;
    let ctl = broker.control_plane().await;
    let mut news = ctl.subscribe(CONDUCTOR).await.unwrap();
    let (a, pw_a) = broker.register(&ctl).await;
    let (b, _pw_b) = broker.register(&ctl).await;
    let conn = raw(&broker.url(&agent_user(a), &pw_a)).await;
    let as_a = BasicProperties::default().with_user_id(agent_user(a).as_str().into());

    // A cannot read B's queue.
    let ch = conn.create_channel().await.unwrap();
    let err = ch
        .basic_consume(
            agent_topic(b).as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("A consumed B's queue");
    assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");

    // A cannot send a task-manager command, nor write to any queue directly.
    let e = raw_publish(&conn, CONTROL_EXCHANGE, "taskmanager", as_a.clone()).await;
    assert!(e.as_ref().unwrap_err().contains("ACCESS_REFUSED"), "{e:?}");
    let e = raw_publish(&conn, "", &agent_topic(b), as_a.clone()).await;
    assert!(e.as_ref().unwrap_err().contains("ACCESS_REFUSED"), "{e:?}");
    let e = raw_publish(&conn, "", "ctl.conductor", as_a.clone()).await;
    assert!(e.as_ref().unwrap_err().contains("ACCESS_REFUSED"), "{e:?}");

    // A claiming to be B: with B's routing key (topic permission) ...
    let e = raw_publish(&conn, CONDUCTOR_EXCHANGE, &news_key(b), as_a.clone()).await;
    assert!(e.as_ref().unwrap_err().contains("ACCESS_REFUSED"), "{e:?}");
    // ... or with B's user id on its own routing key (user_id check).
    let as_b = BasicProperties::default().with_user_id(agent_user(b).as_str().into());
    let e = raw_publish(&conn, CONDUCTOR_EXCHANGE, &news_key(a), as_b).await;
    assert!(
        e.as_ref().unwrap_err().contains("PRECONDITION_FAILED"),
        "{e:?}"
    );
    // ... or with no user id at all: the broker lets it through, the
    // conductor drops it.
    raw_publish(
        &conn,
        CONDUCTOR_EXCHANGE,
        &news_key(a),
        BasicProperties::default(),
    )
    .await
    .unwrap();

    // If a forged message got through the broker (here: a control-plane
    // login, which may publish anything, naming agent A's user id is
    // refused by the broker; so the forgery is A's own id on B's key, made
    // possible by widening A's topic permission as a misconfigured broker
    // would), the conductor still refuses it.
    let widened = BrokerAdmin::new(MGMT, "guest", "guest", &broker.vhost).unwrap();
    widen_topic_permission(&widened, &agent_user(a), &broker.vhost).await;
    raw_publish(&conn, CONDUCTOR_EXCHANGE, &news_key(b), as_a.clone())
        .await
        .expect("the widened permission lets it through the broker");
    // A's genuine news arrives; the two forgeries before it never do.
    raw_publish(&conn, CONDUCTOR_EXCHANGE, &news_key(a), as_a)
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), news.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.from, agent_topic(a));
    drop(m);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), news.next())
            .await
            .is_err(),
        "a forged message reached the conductor"
    );
}

async fn widen_topic_permission(_admin: &BrokerAdmin, user: &str, vhost: &str) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-f",
            "-u",
            "guest:guest",
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "-d",
            &format!(r#"{{"exchange": "{CONDUCTOR_EXCHANGE}", "write": ".*", "read": ".*"}}"#),
            &format!("{MGMT}/api/topic-permissions/{vhost}/{user}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn confirmed_news_survives_broken_connections() {
    let broker = Broker::new().await;
    let ctl = broker.control_plane().await;
    let mut news = ctl.subscribe(CONDUCTOR).await.unwrap();
    let (id, pw) = broker.register(&ctl).await;
    let agent = Arc::new(broker.agent(id, &pw).await);
    let _echo = echo(agent.clone(), id);

    // The agent sends numbered news as fast as confirms come back, while
    // the broker closes every connection of both sides twice.
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = {
        let (agent, stop) = (agent.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut confirmed, mut n) = (BTreeSet::new(), 0u32);
            while !stop.is_cancelled() {
                if agent.cast(CONDUCTOR, json!({"n": n})).await.is_ok() {
                    confirmed.insert(n);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            confirmed
        })
    };
    let mut received = BTreeSet::new();
    let receive = async {
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), news.next()).await {
            if let Some(n) = m.body["n"].as_u64() {
                received.insert(n as u32);
            }
        }
    };
    let cut = async {
        for round in 0..2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The management API lists connections with a delay of its own.
            let mut closed = 0;
            for _ in 0..100 {
                closed += broker
                    .admin
                    .close_connections_of(&agent_user(id))
                    .await
                    .unwrap();
                closed += broker
                    .admin
                    .close_connections_of(&broker.ctl_user)
                    .await
                    .unwrap();
                if closed >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(closed >= 2, "round {round}: closed {closed} connections");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.cancel();
    };
    let ((), ()) = tokio::join!(receive, cut);
    let confirmed = sender.await.unwrap();
    assert!(
        confirmed.len() > 100,
        "only {} casts confirmed",
        confirmed.len()
    );
    let lost: Vec<_> = confirmed.difference(&received).collect();
    assert!(lost.is_empty(), "confirmed but never received: {lost:?}");

    // Both sides reconnected by themselves: calls work again.
    ctl.wait_connected(Duration::from_secs(10)).await.unwrap();
    agent.wait_connected(Duration::from_secs(10)).await.unwrap();
    let answer = ctl
        .call(
            &agent_topic(id),
            json!({"after": true}),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(answer["echo"]["after"], true);
}

#[tokio::test]
async fn a_deleted_agent_user_is_cut_off() {
    let broker = Broker::new().await;
    let ctl = broker.control_plane().await;
    let (id, pw) = broker.register(&ctl).await;
    let agent = broker.agent(id, &pw).await;
    assert!(broker.admin.agent_user_exists(id).await.unwrap());
    broker.admin.delete_agent_user(id).await.unwrap();
    ctl.delete_agent_queue(id).await.unwrap();
    assert!(!broker.admin.agent_user_exists(id).await.unwrap());
    // The broker closed its connection, and it cannot log in again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!agent.is_connected());
    assert!(agent.cast(CONDUCTOR, json!({})).await.is_err());
    assert!(matches!(
        ctl.call(&agent_topic(id), json!({}), Duration::from_secs(2))
            .await,
        Err(BusError::NoRoute(_))
    ));
}

#[tokio::test]
async fn compute_hosts_are_confined_like_agents() {
    use coffer_bus::amqp::names::Peer;
    use coffer_bus::amqp::AgentAccess;
    use coffer_bus::compute_topic;
    let broker = Broker::new().await;
    let ctl = broker.control_plane().await.with_agent_access(AgentAccess {
        admin: BrokerAdmin::new(MGMT, "guest", "guest", &broker.vhost).unwrap(),
        broker: BROKER.into(),
        secret: b"test secret".to_vec(),
    });
    let (h1, h2) = (
        Peer::ComputeHost("h1".into()),
        Peer::ComputeHost("h2".into()),
    );
    let url1 = ctl.register_peer(&h1).await.unwrap();
    assert_eq!(
        ctl.register_peer(&h1).await.unwrap(),
        url1,
        "registering again gives the same login"
    );
    ctl.register_peer(&h2).await.unwrap();
    let (agent, _) = broker.register(&ctl).await;

    // A host logs in only as itself, and answers the calls made to it.
    assert!(AmqpBus::start(&url1, Endpoint::ComputeHost { host: "h2".into() }).is_err());
    let host = AmqpBus::start(&url1, Endpoint::ComputeHost { host: "h1".into() }).unwrap();
    host.wait_connected(Duration::from_secs(10)).await.unwrap();
    let mut inbox = host.subscribe(&compute_topic("h1")).await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = inbox.next().await {
            assert_eq!(m.from, "control-plane");
            let body = m.body.clone();
            m.reply(Ok(json!({"host": "h1", "echo": body})));
        }
    });
    let got = ctl
        .call(
            &compute_topic("h1"),
            json!({"n": 7}),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(got, json!({"host": "h1", "echo": {"n": 7}}));
    assert!(matches!(
        host.cast(CONDUCTOR, json!({})).await,
        Err(BusError::Refused(_))
    ));
    assert!(matches!(
        host.subscribe(&compute_topic("h2")).await,
        Err(BusError::Refused(_))
    ));
    // Nobody serves h2: its call times out, it is not answered by h1.
    let e = ctl
        .call(&compute_topic("h2"), json!({}), Duration::from_millis(700))
        .await
        .unwrap_err();
    assert!(matches!(e, BusError::Timeout(..)), "{e}");

    // On the broker itself: h1 reads neither h2's queue nor an agent's,
    // sends no task-manager command, writes to no queue directly, speaks
    // neither for an agent nor for h2.
    let conn = raw(&url1).await;
    for queue in [h2.queue(), agent_topic(agent)] {
        let ch = conn.create_channel().await.unwrap();
        let err = ch
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("h1 consumed another's queue");
        assert!(err.to_string().contains("ACCESS_REFUSED"), "{queue}: {err}");
    }
    let as_h1 = BasicProperties::default().with_user_id(h1.user().as_str().into());
    for (exchange, key) in [
        (CONTROL_EXCHANGE, "taskmanager".to_string()),
        ("", h2.queue()),
        ("", agent_topic(agent)),
        (CONDUCTOR_EXCHANGE, news_key(agent)),
        (CONDUCTOR_EXCHANGE, h2.reply_key("anyone")),
    ] {
        let e = raw_publish(&conn, exchange, &key, as_h1.clone()).await;
        assert!(
            e.as_ref().unwrap_err().contains("ACCESS_REFUSED"),
            "{exchange} {key}: {e:?}"
        );
    }
    let as_h2 = BasicProperties::default().with_user_id(h2.user().as_str().into());
    let e = raw_publish(&conn, CONDUCTOR_EXCHANGE, &h1.reply_key("anyone"), as_h2).await;
    assert!(
        e.as_ref().unwrap_err().contains("PRECONDITION_FAILED"),
        "{e:?}"
    );

    // Removing the host cuts it off.
    ctl.unregister_peer(&h1).await.unwrap();
    let e = ctl
        .call(&compute_topic("h1"), json!({}), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BusError::NoRoute(_) | BusError::Timeout(..)),
        "{e}"
    );
}

//! The bus over RabbitMQ (AMQP 0.9.1, `lapin`): what Coffer uses when its
//! roles run as separate processes, possibly on several hosts.
//!
//! Two kinds of endpoint share this code: a control-plane process (API,
//! task manager, conductor; full rights on the vhost) and a guest agent
//! (its own broker user, confined by the broker to its own queue and its
//! own routing keys, see [`names`]). The broker stamps nothing on its own,
//! so every message carries the sender's user in `user_id`, which the
//! broker checks against the connection's login; the control plane accepts
//! news about instance X only with `user_id` = X's agent user and the
//! routing key X's agent may use.
//!
//! Delivery: casts and calls are published with publisher confirms and
//! `mandatory` (no queue = `NoRoute`); `cast` returns only once the broker
//! has confirmed, resending on a new connection if the old one broke first.
//! Messages to durable queues are persistent and acknowledged only after
//! the receiver is done with them (the [`Incoming`] was dropped), so a
//! receiver that dies mid-way gets them again. Calls expire on the broker
//! when their timeout passes, so an agent never acts on a request its
//! caller gave up on.

pub mod admin;
mod link;
pub mod names;
mod receive;

pub(crate) use receive::Settle;

use crate::{Bus, BusError, Incoming, Subscription, CONDUCTOR, TASKMANAGER};
use async_trait::async_trait;
use coffer_model::InstanceId;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use link::{lapin_err, Link, Session};
use names::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Who this endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A control-plane process; `process` names its reply queue (unique
    /// per process, no dots).
    ControlPlane { process: String },
    /// The guest agent of one instance.
    Agent { instance: InstanceId },
    /// The `coffer compute` daemon of one host.
    ComputeHost { host: String },
}

impl Endpoint {
    /// The confined peer this endpoint is (`None`: the control plane).
    pub fn peer(&self) -> Option<Peer> {
        match self {
            Endpoint::ControlPlane { .. } => None,
            Endpoint::Agent { instance } => Some(Peer::Agent(*instance)),
            Endpoint::ComputeHost { host } => Some(Peer::ComputeHost(host.clone())),
        }
    }
}

/// How long a cast may wait for the broker (reconnection included) before
/// it fails.
const PUBLISH_WAIT: Duration = Duration::from_secs(15);
/// Unacknowledged messages a consumer holds at once.
const PREFETCH: u16 = 64;

/// Calls waiting for their reply, by correlation id: who must answer, and
/// where the answer goes.
type Pending = HashMap<String, (Peer, oneshot::Sender<Result<Value, String>>)>;

pub(crate) struct Shared {
    endpoint: Endpoint,
    /// The login the broker checks `user_id` against.
    user: String,
    /// topic -> where its messages go (a new subscription replaces it).
    subs: Mutex<HashMap<String, mpsc::Sender<Incoming>>>,
    /// Calls waiting for their reply, by correlation id.
    pending: Mutex<Pending>,
    link: Arc<Link>,
}

/// The RabbitMQ bus; share it in an `Arc`.
pub struct AmqpBus {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    agents: Option<AgentAccess>,
}

/// What a control plane needs to let agents in: the management API, the
/// broker address agents reach, and the secret their passwords derive
/// from (so registering an instance twice gives the same password).
pub struct AgentAccess {
    pub admin: admin::BrokerAdmin,
    /// `host:port` of the broker as the agents' hosts reach it.
    pub broker: String,
    pub secret: Vec<u8>,
}

impl AgentAccess {
    fn password(&self, peer: &Peer) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"coffer agent broker password\0");
        h.update(&self.secret);
        // An agent's by its instance id (as before compute hosts existed);
        // a host's by its login, which no instance id can equal.
        match peer {
            Peer::Agent(id) => h.update(id.to_string().as_bytes()),
            Peer::ComputeHost(_) => h.update(peer.user().as_bytes()),
        }
        hex::encode(h.finalize())
    }
}

impl Drop for AmqpBus {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Host, port and (decoded) vhost of an `amqp://` URL.
pub fn broker_of(url: &str) -> Result<(String, u16, String), BusError> {
    let uri: lapin::uri::AMQPUri = url
        .parse()
        .map_err(|e: String| BusError::Codec(format!("bad broker URL: {e}")))?;
    Ok((uri.authority.host, uri.authority.port, uri.vhost))
}

/// The user name in an `amqp://user:password@host:port/vhost` URL.
fn url_user(url: &str) -> Result<String, BusError> {
    Ok(url_credentials(url)?.0)
}

/// The (decoded) user and password in an `amqp://` URL.
pub fn url_credentials(url: &str) -> Result<(String, String), BusError> {
    let uri: lapin::uri::AMQPUri = url
        .parse()
        .map_err(|e: String| BusError::Codec(format!("bad broker URL: {e}")))?;
    Ok((
        uri.authority.userinfo.username,
        uri.authority.userinfo.password,
    ))
}

impl AmqpBus {
    /// Connect (in the background, reconnecting for ever) as `endpoint`.
    /// A control plane declares the exchanges and its queues on every
    /// connection; an agent only consumes its own queue.
    pub fn start(url: &str, endpoint: Endpoint) -> Result<Self, BusError> {
        let user = url_user(url)?;
        if let Endpoint::ComputeHost { host } = &endpoint {
            if !valid_host_name(host) {
                return Err(BusError::Codec(format!(
                    "bad compute host name {host:?} (lower-case letters, digits, dashes)"
                )));
            }
        }
        if let Some(peer) = endpoint.peer() {
            if user != peer.user() {
                return Err(BusError::Refused(format!(
                    "{} must log in as {}, not {user}",
                    peer.prefix(),
                    peer.user()
                )));
            }
        }
        if let Endpoint::ControlPlane { process } = &endpoint {
            if process.is_empty() || process.contains(['.', '*', '#']) {
                return Err(BusError::Codec(format!("bad process name {process:?}")));
            }
        }
        let name = match &endpoint {
            Endpoint::ControlPlane { process } => format!("coffer-ctl-{process}"),
            Endpoint::Agent { instance } => format!("coffer-agent-{instance}"),
            Endpoint::ComputeHost { host } => format!("coffer-compute-{host}"),
        };
        let shared = Arc::new(Shared {
            endpoint,
            user,
            subs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            link: Link::new(url, &name),
        });
        let cancel = CancellationToken::new();
        let on_connect: link::OnConnect = {
            let shared = Arc::downgrade(&shared);
            Arc::new(move |session: Arc<Session>| {
                let shared = shared.clone();
                Box::pin(async move {
                    match shared.upgrade() {
                        Some(shared) => shared.set_up(session).await,
                        None => Ok(()),
                    }
                })
            })
        };
        tokio::spawn(shared.link.clone().run(on_connect, cancel.clone()));
        Ok(Self {
            shared,
            cancel,
            agents: None,
        })
    }

    /// Let this control plane register agents (make their broker users).
    pub fn with_agent_access(mut self, access: AgentAccess) -> Self {
        self.agents = Some(access);
        self
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.shared.link.session().is_some()
    }

    /// Wait until connected, up to `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), BusError> {
        self.shared
            .link
            .wait_session(Instant::now() + timeout)
            .await
            .map(|_| ())
    }

    /// Create instance `id`'s agent queue (durable: requests wait there
    /// while the agent restarts). Control plane only.
    pub async fn declare_agent_queue(&self, id: InstanceId) -> Result<(), BusError> {
        self.declare_peer_queue(&Peer::Agent(id)).await
    }

    /// Create a confined peer's queue. Control plane only.
    pub async fn declare_peer_queue(&self, peer: &Peer) -> Result<(), BusError> {
        let session = self.control_session().await?;
        let ch = session.conn.create_channel().await.map_err(lapin_err)?;
        ch.queue_declare(
            peer.queue().as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(lapin_err)?;
        let _ = ch.close(200, "done".into()).await;
        Ok(())
    }

    /// Remove instance `id`'s agent queue and what waits in it.
    pub async fn delete_agent_queue(&self, id: InstanceId) -> Result<(), BusError> {
        self.delete_peer_queue(&Peer::Agent(id)).await
    }

    /// Remove a confined peer's queue and what waits in it.
    pub async fn delete_peer_queue(&self, peer: &Peer) -> Result<(), BusError> {
        let session = self.control_session().await?;
        let ch = session.conn.create_channel().await.map_err(lapin_err)?;
        ch.queue_delete(peer.queue().as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(lapin_err)?;
        let _ = ch.close(200, "done".into()).await;
        Ok(())
    }

    async fn control_session(&self) -> Result<Arc<Session>, BusError> {
        if !matches!(self.shared.endpoint, Endpoint::ControlPlane { .. }) {
            return Err(BusError::Refused(
                "only the control plane manages queues".into(),
            ));
        }
        self.shared
            .link
            .wait_session(Instant::now() + PUBLISH_WAIT)
            .await
    }

    fn access(&self) -> Result<&AgentAccess, BusError> {
        self.agents.as_ref().ok_or_else(|| {
            BusError::Refused(
                "this process cannot manage broker users (no broker management access)".into(),
            )
        })
    }

    /// Make `peer`'s broker user and queue (again: the same password every
    /// time) and return the URL it logs in with, credentials included.
    pub async fn register_peer(&self, peer: &Peer) -> Result<String, BusError> {
        let access = self.access()?;
        let password = access.password(peer);
        access.admin.create_peer_user(peer, &password).await?;
        self.declare_peer_queue(peer).await?;
        Ok(format!(
            "amqp://{}:{password}@{}/{}",
            peer.user(),
            access.broker,
            admin::encode(access.admin.vhost())
        ))
    }

    /// Remove `peer`'s broker user (which cuts its connections) and queue.
    pub async fn unregister_peer(&self, peer: &Peer) -> Result<(), BusError> {
        self.access()?.admin.delete_peer_user(peer).await?;
        self.delete_peer_queue(peer).await
    }

    fn props(&self) -> BasicProperties {
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_user_id(self.shared.user.as_str().into())
    }
}

impl Shared {
    /// Lay out a new connection: exchanges, queues and bindings (control
    /// plane), then a consumer per subscription and for replies.
    async fn set_up(self: Arc<Self>, session: Arc<Session>) -> Result<(), lapin::Error> {
        // The layout once per connection; consumers for any new topic on
        // every run.
        let first = session.claim("\0layout");
        if let (true, Endpoint::ControlPlane { process }) = (first, &self.endpoint) {
            let ch = session.conn.create_channel().await?;
            for exchange in [CONTROL_EXCHANGE, CONDUCTOR_EXCHANGE] {
                ch.exchange_declare(
                    exchange.into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            }
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            for (queue, exchange, key) in [
                (TASKMANAGER_QUEUE, CONTROL_EXCHANGE, TASKMANAGER_KEY),
                (CONDUCTOR_QUEUE, CONDUCTOR_EXCHANGE, NEWS_BINDING),
            ] {
                ch.queue_declare(queue.into(), durable, FieldTable::default())
                    .await?;
                ch.queue_bind(
                    queue.into(),
                    exchange.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            let replies = reply_queue(process);
            ch.queue_declare(
                replies.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            for binding in reply_bindings(process) {
                ch.queue_bind(
                    replies.as_str().into(),
                    CONDUCTOR_EXCHANGE.into(),
                    binding.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            let consumer = ch
                .basic_consume(
                    replies.as_str().into(),
                    "".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            tokio::spawn(receive::replies(self.clone(), session.clone(), consumer));
        }
        self.consume_all(&session).await
    }

    async fn consume_all(self: Arc<Self>, session: &Arc<Session>) -> Result<(), lapin::Error> {
        let topics: Vec<String> = self
            .subs
            .lock()
            .expect("subs lock")
            .keys()
            .cloned()
            .collect();
        for topic in topics {
            self.clone().consume(session, &topic).await?;
        }
        Ok(())
    }

    /// The queue behind a topic this endpoint may subscribe to.
    fn queue_of(&self, topic: &str) -> Result<String, BusError> {
        match (&self.endpoint, topic) {
            (Endpoint::ControlPlane { .. }, TASKMANAGER) => Ok(TASKMANAGER_QUEUE.into()),
            (Endpoint::ControlPlane { .. }, CONDUCTOR) => Ok(CONDUCTOR_QUEUE.into()),
            (endpoint, t) if endpoint.peer().is_some_and(|p| p.queue() == t) => Ok(t.into()),
            _ => Err(BusError::Refused(format!(
                "{topic} cannot be subscribed to here"
            ))),
        }
    }

    async fn consume(
        self: Arc<Self>,
        session: &Arc<Session>,
        topic: &str,
    ) -> Result<(), lapin::Error> {
        let Ok(queue) = self.queue_of(topic) else {
            return Ok(());
        };
        if !session.claim(&queue) {
            return Ok(());
        }
        let ch = session.conn.create_channel().await?;
        ch.basic_qos(PREFETCH, Default::default()).await?;
        if self.endpoint.peer().is_some() {
            // The control plane made the queue; an agent may only look.
            ch.queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        }
        let consumer = ch
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(receive::deliveries(
            self,
            session.clone(),
            topic.to_string(),
            consumer,
        ));
        Ok(())
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn cast(&self, topic: &str, body: Value) -> Result<(), BusError> {
        let bytes = serde_json::to_vec(&body).map_err(|e| BusError::Codec(e.to_string()))?;
        let deadline = Instant::now() + PUBLISH_WAIT;
        let persistent = self.props().with_delivery_mode(2);
        let link = &self.shared.link;
        match (&self.shared.endpoint, topic) {
            (Endpoint::ControlPlane { .. }, TASKMANAGER) => {
                link.publish(
                    CONTROL_EXCHANGE,
                    TASKMANAGER_KEY,
                    &bytes,
                    persistent,
                    deadline,
                )
                .await
            }
            (Endpoint::ControlPlane { .. }, t) if Peer::of_topic(t).is_some() => {
                link.publish("", t, &bytes, persistent, deadline).await
            }
            (Endpoint::Agent { instance }, CONDUCTOR) => {
                link.publish(
                    CONDUCTOR_EXCHANGE,
                    &news_key(*instance),
                    &bytes,
                    persistent,
                    deadline,
                )
                .await
            }
            _ => Err(BusError::Refused(format!(
                "cannot send to {topic} from here"
            ))),
        }
    }

    async fn call(&self, topic: &str, body: Value, timeout: Duration) -> Result<Value, BusError> {
        let Endpoint::ControlPlane { process } = &self.shared.endpoint else {
            return Err(BusError::Refused("only the control plane calls".into()));
        };
        let Some(peer) = Peer::of_topic(topic) else {
            return Err(BusError::Refused(format!(
                "calls go to agents and compute hosts, not {topic}"
            )));
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| BusError::Codec(e.to_string()))?;
        let corr = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .expect("pending lock")
            .insert(corr.clone(), (peer, tx));
        let _forget = PendingGuard(&self.shared, &corr);
        let deadline = Instant::now() + timeout;
        // Expires on the broker with the caller's patience.
        let props = self
            .props()
            .with_correlation_id(corr.as_str().into())
            .with_reply_to(process.as_str().into())
            .with_expiration(timeout.as_millis().max(1).to_string().as_str().into());
        self.shared
            .link
            .publish("", topic, &bytes, props, deadline)
            .await?;
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => Err(BusError::Timeout(topic.to_string(), timeout)),
            Ok(Err(_)) => Err(BusError::NoRoute(topic.to_string())),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(BusError::Remote(e)),
        }
    }

    async fn register_agent(&self, id: InstanceId) -> Result<Option<String>, BusError> {
        self.register_peer(&Peer::Agent(id)).await.map(Some)
    }

    async fn unregister_agent(&self, id: InstanceId) -> Result<(), BusError> {
        self.unregister_peer(&Peer::Agent(id)).await
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        self.shared.queue_of(topic)?;
        let (tx, rx) = mpsc::channel(256);
        self.shared
            .subs
            .lock()
            .expect("subs lock")
            .insert(topic.to_string(), tx);
        // The live connection needs a consumer for a new topic; every later
        // connection starts one for each topic in `subs`.
        if let Some(session) = self.shared.link.session() {
            self.shared
                .clone()
                .consume(&session, topic)
                .await
                .map_err(lapin_err)?;
        }
        Ok(Subscription { rx })
    }
}

/// Forgets a call's pending entry however the call ends.
struct PendingGuard<'a>(&'a Shared, &'a str);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.lock().expect("pending lock").remove(self.1);
    }
}

#![forbid(unsafe_code)]
//! How roles talk: the [`Bus`] trait (cast and call on named topics), the
//! typed messages that travel on it, and the local implementation.
//!
//! The local bus is an in-process router ([`InProcessBus`]); guest agents,
//! which are separate processes, attach to it through a Unix socket
//! ([`socket`]): the control plane serves the socket, each agent proves who
//! it is with its own token, may only cast to the conductor, and receives
//! only its own topic. [`amqp`] is the bus over RabbitMQ, for roles in separate processes.

pub mod amqp;
mod error;
mod in_process;
pub mod messages;
pub mod socket;

pub use error::BusError;
pub use in_process::InProcessBus;

use async_trait::async_trait;
use coffer_model::InstanceId;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Topic of the task manager (wake-ups for new tasks).
pub const TASKMANAGER: &str = "taskmanager";
/// Topic of the conductor (agent news: heartbeats, status).
pub const CONDUCTOR: &str = "conductor";

/// The topic one instance's agent listens on.
pub fn agent_topic(instance: InstanceId) -> String {
    format!("agent.{instance}")
}

/// The topic of one compute host's `coffer compute` daemon.
pub fn compute_topic(host: &str) -> String {
    format!("compute.{host}")
}

/// Messages between roles. Delivery is at most once: a message to a topic
/// nobody listens on fails with `NoRoute` (callers that must not lose work
/// keep it in the metadata store and retry).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Send without waiting for an answer.
    async fn cast(&self, topic: &str, body: Value) -> Result<(), BusError>;
    /// Send and wait up to `timeout` for the one reply.
    async fn call(&self, topic: &str, body: Value, timeout: Duration) -> Result<Value, BusError>;
    /// Receive what is sent to `topic`. One subscriber per topic: a new
    /// subscription replaces the old one.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError>;

    /// Make what instance `id`'s agent needs to join this bus, before the
    /// agent starts: `Some(url)` with the agent's own credentials, or `None`
    /// when the bus needs nothing (the local socket checks a token the
    /// compute driver issues). Repeating it for the same instance gives the
    /// same answer.
    async fn register_agent(&self, _id: InstanceId) -> Result<Option<String>, BusError> {
        Ok(None)
    }

    /// Undo [`Bus::register_agent`] when the instance is deleted: the agent
    /// can no longer log in, and what waited for it is dropped.
    async fn unregister_agent(&self, _id: InstanceId) -> Result<(), BusError> {
        Ok(())
    }
}

/// A stream of messages for one topic.
pub struct Subscription {
    pub(crate) rx: mpsc::Receiver<Incoming>,
}

impl Subscription {
    /// The next message, or `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }
}

/// One received message. `from` is the sender's identity as the bus
/// established it (e.g. `agent.<id>` for an authenticated agent), never what
/// the sender claimed in the body.
pub struct Incoming {
    pub from: String,
    pub body: Value,
    pub(crate) reply: Option<oneshot::Sender<Result<Value, String>>>,
    /// Acknowledges a broker delivery once the receiver is done with it.
    pub(crate) settle: Option<amqp::Settle>,
}

impl Incoming {
    /// Answer a call (a cast has nobody to answer; the reply is dropped).
    pub fn reply(mut self, result: Result<Value, String>) {
        if let Some(tx) = self.reply.take() {
            let _ = tx.send(result);
        }
    }

    /// True when the sender waits for a reply.
    pub fn expects_reply(&self) -> bool {
        self.reply.is_some()
    }
}

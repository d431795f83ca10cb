//! Turning broker deliveries into [`Incoming`] messages: who sent it (from
//! the broker-checked `user_id`, never from the body), the reply path of a
//! call, and the acknowledgement once the receiver is done.

use super::link::Session;
use super::names::{news_key, Peer, CONDUCTOR_EXCHANGE};
use super::{Endpoint, Shared};
use crate::{agent_topic, Incoming, CONDUCTOR, TASKMANAGER};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::{Acker, BasicProperties, Consumer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Acknowledges a delivery when the receiver drops the message (handled or
/// answered), or gives it back to the queue if no receiver took it.
pub(crate) struct Settle {
    acker: Option<Acker>,
    requeue: bool,
}

impl Drop for Settle {
    fn drop(&mut self) {
        let Some(acker) = self.acker.take() else {
            return;
        };
        let requeue = self.requeue;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let done = if requeue {
                    acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await
                } else {
                    acker.ack(BasicAckOptions::default()).await
                };
                // A lost connection returns unacknowledged messages to the
                // queue by itself.
                if let Err(e) = done {
                    tracing::debug!("could not settle a delivery: {e}");
                }
            });
        }
    }
}

/// Feed one subscription from its queue until the consumer ends (then the
/// connection is treated as lost, and a new one starts a new consumer).
pub(super) async fn deliveries(
    shared: Arc<Shared>,
    session: Arc<Session>,
    topic: String,
    mut consumer: Consumer,
) {
    while let Some(next) = consumer.next().await {
        let delivery = match next {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%topic, "consumer ended: {e}");
                break;
            }
        };
        let Some(incoming) = shared.incoming(&session, &topic, delivery) else {
            continue;
        };
        let tx = shared.subs.lock().expect("subs lock").get(&topic).cloned();
        let undelivered = match tx {
            Some(tx) => tx.send(incoming).await.err().map(|e| e.0),
            None => Some(incoming),
        };
        if let Some(mut incoming) = undelivered {
            if let Some(settle) = incoming.settle.as_mut() {
                settle.requeue = true;
            }
        }
    }
    session.lost.cancel();
}

/// Hand each reply to the call waiting for it, if the peer it called sent it.
pub(super) async fn replies(shared: Arc<Shared>, session: Arc<Session>, mut consumer: Consumer) {
    while let Some(Ok(delivery)) = consumer.next().await {
        let props = &delivery.properties;
        let (Some(corr), Some(user)) = (props.correlation_id(), props.user_id()) else {
            tracing::warn!("dropped a reply without correlation id or user id");
            continue;
        };
        let sender = Peer::of_user(user.as_str());
        let mut pending = shared.pending.lock().expect("pending lock");
        match pending.get(corr.as_str()) {
            Some((expected, _)) if Some(expected) == sender.as_ref() => {
                let (_, tx) = pending
                    .remove(corr.as_str())
                    .expect("entry seen under the same lock");
                let _ = tx.send(decode_reply(&delivery.data));
            }
            Some((expected, _)) => tracing::warn!(
                from = %user, expected = %expected.prefix(),
                "refused a reply from a peer that was not called"
            ),
            None => tracing::debug!("a reply nobody waits for any more"),
        }
    }
    session.lost.cancel();
}

fn decode_reply(data: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(mut m)) => match (m.remove("ok"), m.remove("err")) {
            (Some(v), _) => Ok(v),
            (None, Some(Value::String(e))) => Err(e),
            _ => Err("malformed reply".into()),
        },
        _ => Err("malformed reply".into()),
    }
}

impl Shared {
    /// The message a delivery carries, or `None` (acknowledged and
    /// dropped, with a warning) when its sender may not say it.
    fn incoming(&self, session: &Arc<Session>, topic: &str, d: Delivery) -> Option<Incoming> {
        let settle = Settle {
            acker: Some(d.acker.clone()),
            requeue: false,
        };
        let props = &d.properties;
        let user = props.user_id().as_ref().map(|u| u.as_str().to_string());
        let from = match (&self.endpoint, topic) {
            // News about instance X only from X's agent, under X's key.
            (Endpoint::ControlPlane { .. }, CONDUCTOR) => match user.as_deref() {
                Some(u) => match Peer::of_user(u) {
                    Some(Peer::Agent(id)) if d.routing_key.as_str() == news_key(id) => {
                        Some(agent_topic(id))
                    }
                    Some(_) => None,
                    None => Some("control-plane".to_string()),
                },
                None => None,
            },
            (Endpoint::ControlPlane { .. }, TASKMANAGER) => match user.as_deref() {
                Some(u) if Peer::of_user(u).is_none() => Some("control-plane".to_string()),
                _ => None,
            },
            // Only the control plane can write to a peer's queue.
            (Endpoint::Agent { .. } | Endpoint::ComputeHost { .. }, _) => {
                Some("control-plane".to_string())
            }
            _ => None,
        };
        let Some(from) = from else {
            tracing::warn!(
                %topic, user = ?user, routing_key = %d.routing_key,
                "refused a message whose sender may not send it"
            );
            return None;
        };
        let body: Value = match serde_json::from_slice(&d.data) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%topic, "dropped an undecodable message: {e}");
                return None;
            }
        };
        let reply = match (
            self.endpoint.peer(),
            props.reply_to(),
            props.correlation_id(),
        ) {
            (Some(peer), Some(to), Some(corr)) => {
                let (tx, rx) = oneshot::channel();
                let key = peer.reply_key(to.as_str());
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_user_id(self.user.as_str().into())
                    .with_correlation_id(corr.clone());
                let link = self.link.clone();
                let session = session.clone();
                tokio::spawn(async move {
                    let Ok(result) = rx.await else { return };
                    let body = match result {
                        Ok(v) => json!({ "ok": v }),
                        Err(e) => json!({ "err": e }),
                    };
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
                    if let Err(e) = link
                        .publish(CONDUCTOR_EXCHANGE, &key, &bytes, props, deadline)
                        .await
                    {
                        tracing::warn!("could not send a reply: {e}");
                    }
                    drop(session);
                });
                Some(tx)
            }
            _ => None,
        };
        Some(Incoming {
            from,
            body,
            reply,
            settle: Some(settle),
        })
    }
}

use crate::{Bus, BusError, Incoming, Subscription};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Topic router inside one process.
#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<String, mpsc::Sender<Incoming>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn route(&self, topic: &str) -> Result<mpsc::Sender<Incoming>, BusError> {
        let topics = self.topics.lock().expect("bus lock poisoned");
        match topics.get(topic) {
            Some(tx) if !tx.is_closed() => Ok(tx.clone()),
            _ => Err(BusError::NoRoute(topic.to_string())),
        }
    }

    /// Deliver with an explicit sender identity; the socket bridge uses this
    /// to stamp messages with the identity an agent authenticated as.
    pub async fn cast_from(&self, from: &str, topic: &str, body: Value) -> Result<(), BusError> {
        let tx = self.route(topic)?;
        let msg = Incoming {
            from: from.to_string(),
            body,
            reply: None,
            settle: None,
        };
        tx.send(msg)
            .await
            .map_err(|_| BusError::NoRoute(topic.to_string()))
    }

    /// Remove `topic`'s subscriber if it is still the one given (a newer
    /// subscription is left alone).
    pub fn unsubscribe_if_closed(&self, topic: &str) {
        let mut topics = self.topics.lock().expect("bus lock poisoned");
        if topics.get(topic).is_some_and(|tx| tx.is_closed()) {
            topics.remove(topic);
        }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn cast(&self, topic: &str, body: Value) -> Result<(), BusError> {
        self.cast_from("control-plane", topic, body).await
    }

    async fn call(&self, topic: &str, body: Value, timeout: Duration) -> Result<Value, BusError> {
        let tx = self.route(topic)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let msg = Incoming {
            from: "control-plane".into(),
            body,
            reply: Some(reply_tx),
            settle: None,
        };
        tx.send(msg)
            .await
            .map_err(|_| BusError::NoRoute(topic.to_string()))?;
        match tokio::time::timeout(timeout, reply_rx).await {
            Err(_) => Err(BusError::Timeout(topic.to_string(), timeout)),
            // The receiver dropped the message without answering (it went away).
            Ok(Err(_)) => Err(BusError::NoRoute(topic.to_string())),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(BusError::Remote(e)),
        }
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(256);
        self.topics
            .lock()
            .expect("bus lock poisoned")
            .insert(topic.to_string(), tx);
        Ok(Subscription { rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn call_cast_and_no_route() {
        let bus = std::sync::Arc::new(InProcessBus::new());
        assert!(matches!(
            bus.cast("t", json!(1)).await,
            Err(BusError::NoRoute(_))
        ));
        let mut sub = bus.subscribe("t").await.unwrap();
        let b = bus.clone();
        let caller =
            tokio::spawn(async move { b.call("t", json!({"x": 2}), Duration::from_secs(5)).await });
        let m = sub.next().await.unwrap();
        assert_eq!(m.body, json!({"x": 2}));
        m.reply(Ok(json!("ok")));
        assert_eq!(caller.await.unwrap().unwrap(), json!("ok"));

        bus.cast("t", json!(3)).await.unwrap();
        let m = sub.next().await.unwrap();
        assert!(!m.expects_reply());

        let b = bus.clone();
        let caller =
            tokio::spawn(async move { b.call("t", json!(4), Duration::from_millis(50)).await });
        let _unanswered = sub.next().await.unwrap();
        assert!(matches!(caller.await.unwrap(), Err(BusError::Timeout(..))));
        drop(sub);
        assert!(matches!(
            bus.cast("t", json!(5)).await,
            Err(BusError::NoRoute(_))
        ));
    }
}

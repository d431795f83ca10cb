//! One broker connection kept alive: connect, let the owner lay out its
//! queues and consumers on it, notice when it breaks (broker restart,
//! connection closed by an operator, network cut), and connect again with
//! backoff. Publishing waits for a live connection and for the broker's
//! confirm.

use crate::BusError;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A live connection and its publishing channel (in confirm mode).
pub(crate) struct Session {
    pub conn: Connection,
    publisher: Mutex<Option<Channel>>,
    /// Fired when something using this session saw it break.
    pub lost: CancellationToken,
    /// Consumers started on this connection (set-up runs twice, see
    /// [`Link::run`], and must not start one twice).
    started: Mutex<std::collections::HashSet<String>>,
}

impl Session {
    async fn open(url: &str, name: &str) -> Result<Arc<Session>, lapin::Error> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let conn = Connection::connect(url, props).await?;
        let session = Arc::new(Session {
            conn,
            publisher: Mutex::new(None),
            lost: CancellationToken::new(),
            started: Mutex::new(Default::default()),
        });
        session.publisher().await?;
        Ok(session)
    }

    /// The publishing channel, opened again when the broker closed it (it
    /// closes a channel that published where it may not).
    async fn publisher(&self) -> Result<Channel, lapin::Error> {
        if let Some(ch) = self.publisher.lock().expect("publisher lock").as_ref() {
            if ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let ch = self.conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *self.publisher.lock().expect("publisher lock") = Some(ch.clone());
        Ok(ch)
    }

    /// True the first time `what` is claimed on this connection.
    pub fn claim(&self, what: &str) -> bool {
        self.started
            .lock()
            .expect("started lock")
            .insert(what.to_string())
    }

    pub fn is_alive(&self) -> bool {
        self.conn.status().connected() && !self.lost.is_cancelled()
    }
}

/// The refusals the broker reports as channel or connection errors.
pub(crate) fn is_refusal(e: &lapin::Error) -> bool {
    let s = e.to_string();
    s.contains("ACCESS_REFUSED") || s.contains("PRECONDITION_FAILED") || s.contains("NOT_FOUND")
}

pub(crate) fn lapin_err(e: lapin::Error) -> BusError {
    if is_refusal(&e) {
        BusError::Refused(e.to_string())
    } else {
        BusError::Io(std::io::Error::other(format!("broker: {e}")))
    }
}

/// What a link does each time it (re)connects.
pub(crate) type OnConnect = Arc<
    dyn Fn(Arc<Session>) -> futures::future::BoxFuture<'static, Result<(), lapin::Error>>
        + Send
        + Sync,
>;

pub(crate) struct Link {
    url: String,
    name: String,
    current: watch::Sender<Option<Arc<Session>>>,
}

impl Link {
    pub fn new(url: &str, name: &str) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_string(),
            name: name.to_string(),
            current: watch::channel(None).0,
        })
    }

    /// The live session, if there is one now.
    pub fn session(&self) -> Option<Arc<Session>> {
        self.current.borrow().clone().filter(|s| s.is_alive())
    }

    /// Keep connected until `cancel`; `on_connect` lays out each new
    /// connection before it is offered to publishers, and runs once more
    /// right after (it must be idempotent: see [`Session::claim`]).
    pub async fn run(self: Arc<Self>, on_connect: OnConnect, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let opened = match Session::open(&self.url, &self.name).await {
                Ok(s) => match on_connect(s.clone()).await {
                    Ok(()) => Ok(s),
                    Err(e) => {
                        let _ = s.conn.close(320, "setup failed".into()).await;
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match opened {
                Ok(session) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!(link = %self.name, "connected to the broker");
                    self.current.send_replace(Some(session.clone()));
                    // Once more now that it is published: a subscription
                    // made while the first set-up ran found no session and
                    // was not in the first set-up's list either.
                    if let Err(e) = on_connect(session.clone()).await {
                        tracing::warn!(link = %self.name, "broker set-up failed: {e}");
                        session.lost.cancel();
                    }
                    // Watch it: lapin reports a closed or failed connection
                    // in its status; users of the session report what they
                    // saw break through `lost`.
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = session.lost.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                                if !session.conn.status().connected() { break }
                            }
                        }
                    }
                    session.lost.cancel();
                    self.current.send_replace(None);
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        session.conn.close(200, "reconnecting".into()),
                    )
                    .await;
                    if !cancel.is_cancelled() {
                        tracing::warn!(link = %self.name, "broker connection lost; reconnecting");
                    }
                }
                Err(e) => {
                    tracing::warn!(link = %self.name, "broker connection failed: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.current.send_replace(None);
    }

    /// Wait until a session is live, or `deadline`.
    pub async fn wait_session(&self, deadline: Instant) -> Result<Arc<Session>, BusError> {
        let mut rx = self.current.subscribe();
        loop {
            if let Some(s) = rx.borrow_and_update().clone().filter(|s| s.is_alive()) {
                return Ok(s);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(BusError::NoRoute("broker (link stopped)".into())),
                Err(_) => {
                    // The watched session may have died without a change
                    // being sent yet; either way there is none in time.
                    return Err(BusError::Io(std::io::Error::other(
                        "broker unreachable: no connection in time",
                    )));
                }
            }
        }
    }

    /// Publish and wait for the broker's confirm; sent again on a new
    /// connection when the old one broke before the confirm, until
    /// `deadline`. `mandatory` makes an unroutable message a `NoRoute`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
        deadline: Instant,
    ) -> Result<(), BusError> {
        loop {
            let session = self.wait_session(deadline).await?;
            let attempt = async {
                let ch = session.publisher().await?;
                let confirm = ch
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        body,
                        props.clone(),
                    )
                    .await?;
                confirm.await
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => {
                    return Err(BusError::Timeout(
                        format!("broker confirm for {routing_key}"),
                        Duration::ZERO,
                    ))
                }
                Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => return Ok(()),
                Ok(Ok(Confirmation::Ack(Some(_)))) => {
                    return Err(BusError::NoRoute(routing_key.to_string()))
                }
                Ok(Ok(Confirmation::Nack(_))) => {
                    return Err(BusError::Io(std::io::Error::other(format!(
                        "broker refused to store a message for {routing_key} (nack)"
                    ))))
                }
                Ok(Err(e)) if is_refusal(&e) => return Err(BusError::Refused(e.to_string())),
                Ok(Err(e)) => {
                    tracing::debug!(link = %self.name, "publish failed, will retry: {e}");
                    if !session.conn.status().connected() {
                        session.lost.cancel();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

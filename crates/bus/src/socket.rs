//! Agents attach to the local bus over a Unix socket.
//!
//! Frames are JSON, one per line. An agent opens with `hello` (its instance
//! id and token); the server answers `welcome` or `refused`. Afterwards the
//! server forwards what is sent to `agent.<id>` as `request` frames, and the
//! agent answers with `reply` frames and sends news with `cast` frames. The
//! server stamps every cast with the identity the agent proved and lets it
//! reach only the conductor.

use crate::{agent_topic, Bus, BusError, InProcessBus, Incoming, Subscription, CONDUCTOR};
use async_trait::async_trait;
use coffer_model::InstanceId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Frame {
    Hello {
        instance_id: InstanceId,
        token: String,
    },
    Welcome,
    Refused(String),
    Request {
        corr: u64,
        body: Value,
        wants_reply: bool,
    },
    Reply {
        corr: u64,
        ok: Option<Value>,
        err: Option<String>,
    },
    Cast {
        topic: String,
        body: Value,
    },
}

/// Decides whether `token` proves the caller is `instance`'s agent.
pub type TokenCheck = Arc<dyn Fn(InstanceId, &str) -> bool + Send + Sync>;

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), frame: &Frame) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(frame).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

fn parse_frame(line: &str) -> Result<Frame, BusError> {
    serde_json::from_str(line).map_err(|e| BusError::Codec(e.to_string()))
}

/// Serve agents on `path` until `cancel` fires. A stale socket file is replaced.
pub async fn serve(
    bus: Arc<InProcessBus>,
    path: PathBuf,
    check: TokenCheck,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let (bus, check, cancel) = (bus.clone(), check.clone(), cancel.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_agent(bus, stream, check, cancel).await {
                        tracing::debug!("agent connection ended: {e}");
                    }
                });
            }
        }
    }
}

async fn serve_agent(
    bus: Arc<InProcessBus>,
    stream: UnixStream,
    check: TokenCheck,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let first = lines
        .next_line()
        .await?
        .ok_or_else(|| BusError::Codec("no hello".into()))?;
    let instance = match parse_frame(&first)? {
        Frame::Hello { instance_id, token } if check(instance_id, &token) => instance_id,
        _ => {
            write_frame(&mut write, &Frame::Refused("bad hello or token".into())).await?;
            return Err(BusError::Refused("agent failed to authenticate".into()));
        }
    };
    write_frame(&mut write, &Frame::Welcome).await?;
    let topic = agent_topic(instance);
    let identity = topic.clone();
    let mut sub = bus.subscribe(&topic).await?;
    let mut pending: HashMap<u64, oneshot::Sender<Result<Value, String>>> = HashMap::new();
    let mut next_corr = 0u64;
    tracing::debug!(%instance, "agent connected");
    let result = loop {
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            msg = sub.next() => {
                let Some(mut msg) = msg else { break Ok(()) };
                next_corr += 1;
                let wants_reply = msg.reply.is_some();
                if let Some(tx) = msg.reply.take() {
                    pending.insert(next_corr, tx);
                }
                let frame = Frame::Request { corr: next_corr, body: msg.body, wants_reply };
                if let Err(e) = write_frame(&mut write, &frame).await {
                    break Err(e.into());
                }
            }
            line = lines.next_line() => {
                let line = match line { Ok(Some(l)) => l, Ok(None) => break Ok(()), Err(e) => break Err(e.into()) };
                match parse_frame(&line)? {
                    Frame::Reply { corr, ok, err } => {
                        if let Some(tx) = pending.remove(&corr) {
                            let _ = tx.send(match err { Some(e) => Err(e), None => Ok(ok.unwrap_or(Value::Null)) });
                        }
                    }
                    Frame::Cast { topic, body } if topic == CONDUCTOR => {
                        if let Err(e) = bus.cast_from(&identity, &topic, body).await {
                            tracing::warn!(%instance, "dropping agent message: {e}");
                        }
                    }
                    other => tracing::warn!(%instance, "agent sent a forbidden frame: {other:?}"),
                }
            }
        }
    };
    drop(sub);
    bus.unsubscribe_if_closed(&topic);
    tracing::debug!(%instance, "agent disconnected");
    result
}

/// The agent's side: a [`Bus`] that reaches the control plane through the
/// socket, reconnecting whenever the connection drops (e.g. while the
/// control plane restarts). It can cast to the conductor and subscribe to
/// its own topic only.
pub struct SocketClient {
    instance: InstanceId,
    out: mpsc::Sender<Frame>,
    connected: Arc<AtomicBool>,
    inbox: Mutex<Option<mpsc::Receiver<Incoming>>>,
}

impl SocketClient {
    /// Start connecting in the background; returns at once.
    pub fn start(
        path: PathBuf,
        instance: InstanceId,
        token: String,
        cancel: CancellationToken,
    ) -> Self {
        let (out_tx, out_rx) = mpsc::channel(64);
        let (in_tx, in_rx) = mpsc::channel(64);
        let connected = Arc::new(AtomicBool::new(false));
        let state = connected.clone();
        tokio::spawn(async move {
            run_client(path, instance, token, out_rx, in_tx, state, cancel).await;
        });
        Self {
            instance,
            out: out_tx,
            connected,
            inbox: Mutex::new(Some(in_rx)),
        }
    }

    /// True while the control plane is reachable.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

async fn run_client(
    path: PathBuf,
    instance: InstanceId,
    token: String,
    mut out_rx: mpsc::Receiver<Frame>,
    in_tx: mpsc::Sender<Incoming>,
    connected: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        match connect_once(
            &path,
            instance,
            &token,
            &mut out_rx,
            &in_tx,
            &connected,
            &cancel,
        )
        .await
        {
            Ok(()) => {}
            Err(BusError::Refused(e)) => tracing::error!("control plane refused this agent: {e}"),
            Err(e) => tracing::debug!("bus connection: {e}"),
        }
        connected.store(false, Ordering::SeqCst);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn connect_once(
    path: &Path,
    instance: InstanceId,
    token: &str,
    out_rx: &mut mpsc::Receiver<Frame>,
    in_tx: &mpsc::Sender<Incoming>,
    connected: &AtomicBool,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let stream = UnixStream::connect(path).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write_frame(
        &mut write,
        &Frame::Hello {
            instance_id: instance,
            token: token.to_string(),
        },
    )
    .await?;
    match lines
        .next_line()
        .await?
        .map(|l| parse_frame(&l))
        .transpose()?
    {
        Some(Frame::Welcome) => {}
        Some(Frame::Refused(why)) => return Err(BusError::Refused(why)),
        _ => return Err(BusError::Codec("unexpected answer to hello".into())),
    }
    connected.store(true, Ordering::SeqCst);
    // Replies are produced by handler tasks; they come back through here.
    let (reply_tx, mut reply_rx) = mpsc::channel::<Frame>(64);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            Some(frame) = out_rx.recv() => write_frame(&mut write, &frame).await?,
            Some(frame) = reply_rx.recv() => write_frame(&mut write, &frame).await?,
            line = lines.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                let Frame::Request { corr, body, wants_reply } = parse_frame(&line)? else {
                    return Err(BusError::Codec("unexpected frame from control plane".into()));
                };
                let (tx, rx) = oneshot::channel();
                let msg = Incoming { from: "control-plane".into(), body, reply: wants_reply.then_some(tx), settle: None };
                if in_tx.send(msg).await.is_err() {
                    return Ok(());
                }
                let reply_tx = reply_tx.clone();
                tokio::spawn(async move {
                    if let Ok(result) = rx.await {
                        let (ok, err) = match result { Ok(v) => (Some(v), None), Err(e) => (None, Some(e)) };
                        let _ = reply_tx.send(Frame::Reply { corr, ok, err }).await;
                    }
                });
            }
        }
    }
}

#[async_trait]
impl Bus for SocketClient {
    async fn cast(&self, topic: &str, body: Value) -> Result<(), BusError> {
        if !self.is_connected() {
            return Err(BusError::NoRoute(topic.to_string()));
        }
        let frame = Frame::Cast {
            topic: topic.to_string(),
            body,
        };
        self.out
            .try_send(frame)
            .map_err(|_| BusError::NoRoute(topic.to_string()))
    }

    async fn call(&self, topic: &str, _body: Value, _timeout: Duration) -> Result<Value, BusError> {
        Err(BusError::Refused(format!("an agent may not call {topic}")))
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        if topic != agent_topic(self.instance) {
            return Err(BusError::Refused(format!(
                "an agent may only receive its own topic, not {topic}"
            )));
        }
        let rx = self.inbox.lock().expect("inbox lock poisoned").take();
        rx.map(|rx| Subscription { rx })
            .ok_or_else(|| BusError::Refused("already subscribed".into()))
    }
}

#![forbid(unsafe_code)]
//! The guest agent: one per instance. It owns the datastore process through
//! the instance's `DatastoreManager`, answers the control plane's requests
//! from the bus, heartbeats to the conductor, and enforces the volume size.
//!
//! It never touches the metadata store. It survives its own restart without
//! restarting the datastore: the server runs in its own process group and
//! is adopted from its pid file.

mod accounts;
mod backup;
mod configuration;
mod handler;
mod memory;
mod progress;
mod volume;

use anyhow::Context;
use coffer_bus::amqp::{AmqpBus, Endpoint};
use coffer_bus::socket::SocketClient;
use coffer_bus::{agent_topic, Bus};
use coffer_model::AgentConfig;
use coffer_strategy::InstanceContext;
pub use handler::Agent;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The instance context a manager gets, laid out inside the instance dir.
pub fn instance_context(dir: &Path, config: &AgentConfig, port: u16) -> InstanceContext {
    InstanceContext {
        instance_id: config.instance_id,
        data_dir: dir.join("data"),
        conf_dir: dir.join("conf"),
        run_dir: dir.join("run"),
        log_dir: dir.join("log"),
        secret_dir: dir.join("secret"),
        ip: config.ip,
        port,
        ram_mb: config.ram_mb,
        volume_size_bytes: (config.volume_size_gb.max(0) as u64) << 30,
        overrides: Default::default(),
        sandbox: config.sandbox.clone().map(|mut s| {
            s.writable.push(work_root(dir));
            s
        }),
    }
}

/// The agent's scratch space for backups and restores.
pub(crate) fn work_root(dir: &Path) -> std::path::PathBuf {
    dir.join("work")
}

/// The exclusive lock on `dir/agent.lock`, held for the agent's lifetime
/// (the kernel drops it when the process ends, however it ends); `None`
/// when another process holds it.
fn single_agent_lock(dir: &Path) -> anyhow::Result<Option<Flock<std::fs::File>>> {
    let path = dir.join("agent.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(anyhow::anyhow!("locking {}: {e}", path.display())),
    }
}

/// Run the agent of the instance in `dir` until SIGTERM/SIGINT.
pub async fn run(dir: &Path) -> anyhow::Result<()> {
    let raw = std::fs::read(dir.join("agent.json")).context("reading agent.json")?;
    let config: AgentConfig = serde_json::from_slice(&raw).context("parsing agent.json")?;
    let registry = coffer_datastores::registry();
    let manager = registry.get(&config.manager)?;
    let ctx = instance_context(dir, &config, manager.default_port());
    for d in [&ctx.conf_dir, &ctx.run_dir, &ctx.log_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // The datastore's directories belong to its sandbox's account.
    coffer_datastores::sandbox::prepare(&ctx).context("preparing the sandbox's directories")?;
    // One agent per instance: two control-plane processes that both start
    // an agent (one died between starting it and recording its pid) leave
    // the second to find the lock taken and leave.
    let Some(_lock) = single_agent_lock(dir)? else {
        tracing::warn!(instance = %config.instance_id, "another agent runs for this instance; leaving");
        return Ok(());
    };
    tracing::info!(instance = %config.instance_id, manager = %config.manager, ip = %config.ip, "agent starting");

    let cancel = CancellationToken::new();
    let bus: Arc<dyn Bus> = match &config.bus_url {
        // Separate roles: RabbitMQ, as this instance's own broker user.
        Some(url) => Arc::new(
            AmqpBus::start(
                url,
                Endpoint::Agent {
                    instance: config.instance_id,
                },
            )
            .context("joining the broker")?,
        ),
        // `coffer up`: the control plane's local socket.
        None => Arc::new(SocketClient::start(
            config.bus_socket.clone(),
            config.instance_id,
            config.token.clone(),
            cancel.clone(),
        )),
    };
    let mut inbox = bus.subscribe(&agent_topic(config.instance_id)).await?;
    let mut agent = Agent::new(manager, ctx, dir.join("agent.state"));
    // COFFER_AGENT_PROTOCOL=N: act as an agent of protocol N (an older
    // release), to test a newer control plane against it.
    if let Some(v) = std::env::var("COFFER_AGENT_PROTOCOL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tracing::warn!(protocol = v, "speaking an older agent protocol, as asked");
        agent = agent.with_protocol(v);
    }
    let agent = Arc::new(agent);
    agent.attach_bus(bus.clone());
    agent.adopt_or_restart().await;

    let heartbeat = Duration::from_millis(config.heartbeat_interval_ms.max(100));
    tokio::spawn(handler::heartbeat_loop(
        agent.clone(),
        bus.clone(),
        heartbeat,
        cancel.clone(),
    ));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            msg = inbox.next() => {
                let Some(msg) = msg else { break };
                let agent = agent.clone();
                tokio::spawn(async move {
                    let result = agent.handle(msg.body.clone()).await.map_err(|e| e.encode());
                    msg.reply(result);
                });
            }
        }
    }
    // The datastore keeps running: stopping it is an explicit request.
    tracing::info!("agent stopping");
    cancel.cancel();
    Ok(())
}

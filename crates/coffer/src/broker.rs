//! The control plane on RabbitMQ: its broker connection (with the
//! management access that makes agents' and compute hosts' broker users),
//! and the `coffer compute-host` commands.

use crate::config::Config;
use crate::roles::{in_state, load_config};
use crate::ServerArgs;
use anyhow::Context;
use coffer_bus::amqp::names::{valid_host_name, Peer};
use coffer_bus::amqp::{admin, broker_of, url_credentials, AgentAccess, AmqpBus, Endpoint};
use std::path::Path;
use std::time::Duration;

/// `url` (amqp://host:port/vhost) with a login in it.
pub fn login(url: &str, user: &str, password: &str) -> String {
    let rest = url.trim_start_matches("amqp://");
    format!(
        "amqp://{}:{}@{rest}",
        admin::encode(user),
        admin::encode(password)
    )
}

/// A control-plane endpoint on the broker `[bus]` names (connecting in
/// the background); with `manage_peers`, able to make and remove agents'
/// and compute hosts' broker users.
pub fn control_plane(
    state_dir: &Path,
    config: &Config,
    manage_peers: bool,
) -> anyhow::Result<AmqpBus> {
    let b = &config.bus;
    let (host, port, vhost) = broker_of(&b.url).context("bus.url")?;
    let process = uuid::Uuid::new_v4().simple().to_string();
    let url = login(&b.url, &b.user, &b.password);
    let bus = AmqpBus::start(&url, Endpoint::ControlPlane { process })?;
    if !manage_peers {
        return Ok(bus);
    }
    let (user, password) = if b.management_user.is_empty() {
        (&b.user, &b.password)
    } else {
        (&b.management_user, &b.management_password)
    };
    let broker = if b.agent_broker.is_empty() {
        format!("{host}:{port}")
    } else {
        b.agent_broker.clone()
    };
    let secret = coffer_secrets::key_file(&in_state(state_dir, &b.agent_secret_file))?;
    Ok(bus.with_agent_access(AgentAccess {
        admin: admin::BrokerAdmin::new(&b.management_url, user, password, &vhost)?,
        broker,
        secret,
    }))
}

/// The control plane's broker, connected, with management access. Only
/// on a control-plane host: a host's password derives from the control
/// plane's `broker-agents.key`, which this never makes.
async fn managing(args: &ServerArgs) -> anyhow::Result<AmqpBus> {
    let (state_dir, config) = load_config(args)?;
    if config.bus.kind != "amqp" {
        anyhow::bail!("compute hosts need bus.kind = \"amqp\" in the control plane's coffer.toml");
    }
    let key = in_state(&state_dir, &config.bus.agent_secret_file);
    if !key.exists() {
        anyhow::bail!(
            "{} does not exist: run this with the state dir of a control-plane host whose task manager has started (--state-dir)",
            key.display()
        );
    }
    let bus = control_plane(&state_dir, &config, true)?;
    bus.wait_connected(Duration::from_secs(10))
        .await
        .context("connecting to the broker")?;
    Ok(bus)
}

fn host_peer(name: &str) -> anyhow::Result<Peer> {
    if !valid_host_name(name) {
        anyhow::bail!(
            "bad host name {name:?}: use lower-case letters, digits and dashes (at most 63)"
        );
    }
    Ok(Peer::ComputeHost(name.to_string()))
}

/// Register compute host `name` on the broker (its user and queue; the
/// same password every time) and return the `[bus]` and `[compute]` lines
/// of its coffer.toml.
pub async fn add_compute_host(args: &ServerArgs, name: &str) -> anyhow::Result<String> {
    let peer = host_peer(name)?;
    let url = managing(args).await?.register_peer(&peer).await?;
    let (_, password) = url_credentials(&url)?;
    let (host, port, vhost) = broker_of(&url)?;
    let vhost = admin::encode(&vhost);
    Ok(format!(
        "[bus]\nkind = \"amqp\"\nurl = \"amqp://{host}:{port}/{vhost}\"\npassword = \"{password}\"\n\n\
         [compute]\nhost = \"{name}\"\n"
    ))
}

/// Remove compute host `name`'s broker user (its connections close) and
/// queue. Its servers keep running; delete their instances first.
pub async fn remove_compute_host(args: &ServerArgs, name: &str) -> anyhow::Result<()> {
    let peer = host_peer(name)?;
    managing(args).await?.unregister_peer(&peer).await?;
    Ok(())
}

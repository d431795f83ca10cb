//! The server roles. `up` runs them all in one process.

use crate::config::{Config, DEFAULT_TOML};
use crate::ServerArgs;
use anyhow::Context;
use coffer_api::{ApiConfig, ApiState};
use coffer_bus::{Bus, InProcessBus};
use coffer_compute::{ComputeDriver, LocalProcessDriver, RemoteCompute};
use coffer_meta::Store;
use coffer_secrets::Sealer;
use coffer_taskmanager::{TaskManager, TaskManagerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every role starts from.
struct Context_ {
    config: Config,
    state_dir: PathBuf,
    store: Store,
    sealer: Sealer,
}

/// The local-process driver of this host's instances, each in its sandbox
/// (which hides the state dir too) unless the configuration opts out.
fn local_driver(state_dir: &Path, config: &Config) -> anyhow::Result<LocalProcessDriver> {
    let instances = in_state(state_dir, &config.compute.instances_dir);
    let mut sandbox = config.compute.sandbox.clone();
    sandbox.hidden.push(state_dir.to_path_buf());
    Ok(LocalProcessDriver::new(instances, agent_binary()?)?
        .with_sandbox(&sandbox)?
        .with_volumes(config.compute.volume_driver))
}

pub(crate) fn in_state(state_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        state_dir.join(p)
    }
}

/// The metadata store of the state dir `args` names (for admin commands).
pub async fn open_store(args: &ServerArgs) -> anyhow::Result<Store> {
    Ok(prepare(args).await?.store)
}

async fn prepare(args: &ServerArgs) -> anyhow::Result<Context_> {
    let (state_dir, config) = load_config(args)?;
    let url = match config.metadata.url.strip_prefix("sqlite://") {
        Some(path) => format!(
            "sqlite://{}",
            in_state(&state_dir, Path::new(path)).display()
        ),
        None => config.metadata.url.clone(),
    };
    let store = coffer_meta::open(&url)
        .await
        .context("opening the metadata store")?;
    crate::seed::seed(&store, &config).await?;
    let sealer = Sealer::from_key_file(&state_dir.join("secret.key"))?;
    Ok(Context_ {
        config,
        state_dir,
        store,
        sealer,
    })
}

/// The state dir (made if absent) and its configuration (the documented
/// defaults written first if there is none).
pub(crate) fn load_config(args: &ServerArgs) -> anyhow::Result<(PathBuf, Config)> {
    crate::state_perms::owner_only_from_now_on();
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating {}", args.state_dir.display()))?;
    let state_dir = args.state_dir.canonicalize()?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| state_dir.join("coffer.toml"));
    if args.config.is_none() && !config_path.exists() {
        // Whole or not at all: a role starting at the same moment on the
        // same state dir must never read half a file.
        let staging = config_path.with_extension(format!("toml.new-{}", std::process::id()));
        std::fs::write(&staging, DEFAULT_TOML)
            .and_then(|()| std::fs::rename(&staging, &config_path))
            .context("writing the default coffer.toml")?;
        tracing::info!(path = %config_path.display(), "wrote the default configuration");
    }
    let config = Config::load(&config_path)?;
    crate::state_perms::warn_about_open_files(
        &state_dir,
        &in_state(&state_dir, &config.compute.instances_dir),
    );
    Ok((state_dir, config))
}

fn api_state(ctx: &Context_, bus: Arc<dyn Bus>) -> anyhow::Result<ApiState> {
    let api = &ctx.config.api;
    let config = ApiConfig {
        address_range: ctx.config.address_range()?,
        default_datastore: api.default_datastore.clone(),
        max_volume_gb: api.max_volume_gb,
        default_page_size: api.default_page_size,
        max_page_size: 1000,
        // Several missed heartbeats, never less than 10 s.
        agent_silence: (ctx.config.agent.heartbeat_interval * 5)
            .max(std::time::Duration::from_secs(10)),
        backups: backup_policies(&ctx.config)?,
        parameters: crate::parameters::catalog(&ctx.config)?,
        quotas: coffer_model::QuotaSet {
            instances: ctx.config.quotas.instances,
            volumes: ctx.config.quotas.volumes,
            backups: ctx.config.quotas.backups,
        },
    };
    Ok(ApiState {
        store: ctx.store.clone(),
        bus,
        sealer: ctx.sealer.clone(),
        config: Arc::new(config),
        auth: Arc::new(auth(&ctx.config)?),
    })
}

/// The authentication mode `[auth]` selects.
fn auth(config: &Config) -> anyhow::Result<coffer_api::auth::Auth> {
    use coffer_api::auth::{Auth, Keystone, KeystoneConfig};
    let a = &config.auth;
    Ok(match a.mode.as_str() {
        "tokens" => Auth::Tokens,
        "keystone" => Auth::Keystone(Box::new(Keystone::new(KeystoneConfig {
            url: a.keystone_url.trim_end_matches('/').to_string(),
            service_user: a.service_user.clone(),
            service_password: a.service_password.clone(),
            service_project: a.service_project.clone(),
            domain: a.domain.clone(),
            cache_ttl: a.cache_ttl,
            admin_roles: a.admin_roles.clone(),
        })?)),
        _ => Auth::NoAuth,
    })
}

/// Each datastore's backup strategy, checked against the compiled-in ones:
/// an unknown name stops start-up with the list of known names.
fn backup_policies(
    config: &Config,
) -> anyhow::Result<std::collections::BTreeMap<String, coffer_api::BackupPolicy>> {
    let known = coffer_datastores::backup_strategies();
    let restores = coffer_datastores::restore_strategies();
    let mut out = std::collections::BTreeMap::new();
    for (name, ds) in &config.datastores {
        let Some(strategy) = &ds.backup_strategy else {
            continue;
        };
        let imp = known
            .get(strategy)
            .with_context(|| format!("datastores.{name}.backup_strategy"))?;
        restores
            .get(strategy)
            .with_context(|| format!("datastores.{name}.backup_strategy has no restore"))?;
        out.insert(
            name.clone(),
            coffer_api::BackupPolicy {
                strategy: strategy.clone(),
                incremental: imp.supports_incremental(),
            },
        );
    }
    Ok(out)
}

/// The task manager's backup settings, with the master key loaded (or
/// created) and a relative filesystem root placed in the state dir.
fn backup_settings(ctx: &Context_) -> anyhow::Result<coffer_taskmanager::BackupSettings> {
    let b = &ctx.config.backup;
    let master_key =
        coffer_pipeline::MasterKey::load_or_create(&in_state(&ctx.state_dir, &b.master_key_file))
            .context("loading the backup master key")?;
    let storage = match &b.storage {
        coffer_storage::StorageConfig::Fs { root } => coffer_storage::StorageConfig::Fs {
            root: in_state(&ctx.state_dir, root),
        },
        other => other.clone(),
    };
    Ok(coffer_taskmanager::BackupSettings {
        master_key,
        storage,
        codec: b.codec.clone(),
        chunk_size: b.chunk_size_kib * 1024,
        timeout: b.timeout,
    })
}

async fn serve_api(
    ctx: &Context_,
    bus: Arc<dyn Bus>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listen = ctx.config.api.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    coffer_api::serve(listener, api_state(ctx, bus)?, cancel).await?;
    Ok(())
}

/// The bus `[bus]` selects, for a control-plane process: the in-process
/// router (returned twice: agents attach to it over the socket), or
/// RabbitMQ (with the management access that makes agents' users when
/// `manage_agents`).
async fn control_bus(
    ctx: &Context_,
    manage_agents: bool,
) -> anyhow::Result<(Arc<dyn Bus>, Option<Arc<InProcessBus>>)> {
    let b = &ctx.config.bus;
    if b.kind != "amqp" {
        let local = Arc::new(InProcessBus::new());
        return Ok((local.clone(), Some(local)));
    }
    let bus = crate::broker::control_plane(&ctx.state_dir, &ctx.config, manage_agents)?;
    if let Err(e) = bus.wait_connected(std::time::Duration::from_secs(10)).await {
        // It keeps trying in the background; say so now.
        tracing::warn!("the broker is not reachable yet ({e}); retrying");
    }
    Ok((Arc::new(bus), None))
}

/// What the compute driver starts per instance: `coffer-agent` next to this
/// binary (built and shipped with it; far smaller per agent), else this
/// binary's own `guest-agent` subcommand.
pub(crate) fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the coffer binary for agents")?;
    let slim = exe.with_file_name("coffer-agent");
    Ok(if slim.is_file() { slim } else { exe })
}

/// Start the conductor: the only writer of what agents report.
fn start_conductor(ctx: &Context_, bus: Arc<dyn Bus>, cancel: &CancellationToken) {
    let (store, c) = (ctx.store.clone(), cancel.clone());
    tokio::spawn(async move {
        if let Err(e) = coffer_taskmanager::run_conductor(store, bus, c).await {
            tracing::error!("conductor failed: {e:#}");
        }
    });
}

/// Start the task manager, the conductor and, on the local bus, the agents'
/// bus socket.
fn start_taskmanager(
    ctx: &Context_,
    bus: Arc<dyn Bus>,
    local: Option<Arc<InProcessBus>>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let socket = in_state(&ctx.state_dir, &ctx.config.bus.socket);
    let compute: Arc<dyn ComputeDriver> = match ctx.config.compute.driver.as_str() {
        "remote" => Arc::new(RemoteCompute::new(
            bus.clone(),
            ctx.config.compute.hosts.clone(),
            Arc::new(coffer_taskmanager::StorePlacements(ctx.store.clone())),
        )?),
        _ => Arc::new(local_driver(&ctx.state_dir, &ctx.config)?),
    };

    if let Some(local) = local {
        let check_compute = compute.clone();
        let check: coffer_bus::socket::TokenCheck =
            Arc::new(move |id, token| check_compute.verify_agent_token(id, token));
        let (c, path) = (cancel.clone(), socket.clone());
        tokio::spawn(async move {
            if let Err(e) = coffer_bus::socket::serve(local, path, check, c).await {
                tracing::error!("agent bus socket failed: {e}");
            }
        });
    }
    start_conductor(ctx, bus.clone(), cancel);

    let t = &ctx.config.taskmanager;
    let tm_config = TaskManagerConfig {
        agent_connect_timeout: t.agent_connect_timeout,
        prepare_timeout: t.prepare_timeout,
        action_timeout: t.action_timeout,
        max_attempts: t.max_attempts,
        heartbeat_interval: ctx.config.agent.heartbeat_interval,
        bus_socket: socket,
        poll_interval: t.poll_interval,
        task_lease: t.task_lease,
        owner: Some(match t.lease_name.as_str() {
            "" => owner_name(&ctx.state_dir)?,
            name => name.to_string(),
        }),
        parameters: crate::parameters::catalog(&ctx.config)?,
    };
    let tm = TaskManager::new(
        ctx.store.clone(),
        bus,
        compute,
        ctx.sealer.clone(),
        tm_config,
        Some(Arc::new(backup_settings(ctx)?)),
    );
    let c = cancel.clone();
    tokio::spawn(async move {
        if let Err(e) = tm.run(c).await {
            tracing::error!("task manager failed: {e:#}");
        }
    });
    Ok(())
}

/// Cancel on SIGTERM or Ctrl-C.
fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down; instances keep running");
        c.cancel();
    });
    cancel
}

/// The name this state dir's task manager holds leases under, kept in the
/// state dir: a task manager restarted after a crash takes its own
/// unfinished tasks back at once instead of waiting for their leases.
/// Two task managers must not share a state dir.
fn owner_name(state_dir: &Path) -> anyhow::Result<String> {
    let path = state_dir.join("taskmanager.id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => {
            let name = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &name).with_context(|| format!("writing {}", path.display()))?;
            Ok(name)
        }
    }
}

pub async fn up(args: &ServerArgs) -> anyhow::Result<()> {
    let ctx = prepare(args).await?;
    let cancel = cancel_on_signal();
    let (bus, local) = control_bus(&ctx, true).await?;
    start_taskmanager(&ctx, bus.clone(), local, &cancel)?;
    tracing::info!(state_dir = %ctx.state_dir.display(), "coffer is up");
    serve_api(&ctx, bus, cancel).await
}

pub async fn api(args: &ServerArgs) -> anyhow::Result<()> {
    let ctx = prepare(args).await?;
    // On the local bus the API reaches no task manager or agent: the task
    // manager finds new tasks by polling, and agent requests are 503.
    let (bus, _) = control_bus(&ctx, false).await?;
    serve_api(&ctx, bus, cancel_on_signal()).await
}

pub async fn taskmanager(args: &ServerArgs) -> anyhow::Result<()> {
    let ctx = prepare(args).await?;
    let cancel = cancel_on_signal();
    let (bus, local) = control_bus(&ctx, true).await?;
    start_taskmanager(&ctx, bus, local, &cancel)?;
    cancel.cancelled().await;
    Ok(())
}

pub async fn conductor(args: &ServerArgs) -> anyhow::Result<()> {
    let ctx = prepare(args).await?;
    let cancel = cancel_on_signal();
    let (bus, _) = control_bus(&ctx, false).await?;
    start_conductor(&ctx, bus, &cancel);
    cancel.cancelled().await;
    Ok(())
}

/// `coffer compute`: serve this host's servers to the task managers over
/// RabbitMQ, as the broker user `compute-<host>` (made on the control
/// plane by `coffer compute-host add`). Needs no metadata store.
pub async fn compute(args: &ServerArgs) -> anyhow::Result<()> {
    use coffer_bus::amqp::{names::Peer, AmqpBus, Endpoint};
    let (state_dir, config) = load_config(args)?;
    let host = config.compute.host.clone();
    if host.is_empty() {
        anyhow::bail!("compute.host is not set: name this host as it was registered (coffer compute-host add NAME)");
    }
    if config.bus.kind != "amqp" {
        anyhow::bail!("a compute host needs bus.kind = \"amqp\"");
    }
    let user = Peer::ComputeHost(host.clone()).user();
    let url = crate::broker::login(&config.bus.url, &user, &config.bus.password);
    let bus = AmqpBus::start(&url, Endpoint::ComputeHost { host: host.clone() })?;
    if let Err(e) = bus.wait_connected(std::time::Duration::from_secs(10)).await {
        tracing::warn!("the broker is not reachable yet ({e}); retrying");
    }
    let driver = Arc::new(local_driver(&state_dir, &config)?);
    let cancel = cancel_on_signal();
    coffer_compute::host::serve(
        driver,
        Arc::new(bus),
        &host,
        config.compute.supervise_interval,
        cancel,
    )
    .await
}

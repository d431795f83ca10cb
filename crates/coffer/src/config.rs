//! `coffer.toml`: one typed configuration, with environment overrides.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The documented default file, written on first run.
pub const DEFAULT_TOML: &str = include_str!("../coffer.toml");

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub metadata: MetadataSection,
    #[serde(default)]
    pub bus: BusSection,
    #[serde(default)]
    pub compute: ComputeSection,
    #[serde(default)]
    pub agent: AgentSection,
    #[serde(default)]
    pub taskmanager: TaskManagerSection,
    #[serde(default)]
    pub backup: BackupSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub quotas: QuotasSection,
    /// Datastores offered, by name.
    #[serde(default = "default_datastores")]
    pub datastores: BTreeMap<String, DatastoreSection>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Address the REST API listens on.
    pub listen: SocketAddr,
    /// Largest volume a tenant may ask for, in GB.
    pub max_volume_gb: i64,
    /// Page size when a list names no `limit`.
    pub default_page_size: usize,
    /// Datastore used when a create names none.
    pub default_datastore: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8779)),
            max_volume_gb: 100,
            default_page_size: 20,
            default_datastore: "mariadb".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSection {
    /// `sqlite://PATH` (relative to the state dir) or `postgres://...`.
    pub url: String,
}

impl Default for MetadataSection {
    fn default() -> Self {
        Self {
            url: "sqlite://coffer.db".into(),
        }
    }
}

#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BusSection {
    /// `local` (in-process; agents on a Unix socket) or `amqp` (RabbitMQ).
    pub kind: String,
    /// The agents' Unix socket, relative to the state dir (`local`).
    pub socket: PathBuf,
    /// `amqp`: the broker and vhost, without credentials, e.g.
    /// `amqp://127.0.0.1:5672/coffer`.
    pub url: String,
    /// `amqp`: the control plane's broker login (full rights on the vhost).
    pub user: String,
    pub password: String,
    /// `amqp`: RabbitMQ's HTTP management API, where the task manager makes
    /// one broker user per agent (an `administrator` login; empty user:
    /// the control plane's login).
    pub management_url: String,
    pub management_user: String,
    pub management_password: String,
    /// `amqp`: `host:port` of the broker as agents reach it (empty: the
    /// host and port of `url`).
    pub agent_broker: String,
    /// `amqp`: the secret agents' broker passwords derive from, relative
    /// to the state dir (made on first start; control-plane hosts share it,
    /// like `secret.key`).
    pub agent_secret_file: PathBuf,
}

impl std::fmt::Debug for BusSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusSection")
            .field("kind", &self.kind)
            .field("socket", &self.socket)
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("management_url", &self.management_url)
            .field("management_user", &self.management_user)
            .field("management_password", &"<redacted>")
            .field("agent_broker", &self.agent_broker)
            .field("agent_secret_file", &self.agent_secret_file)
            .finish()
    }
}

impl Default for BusSection {
    fn default() -> Self {
        Self {
            kind: "local".into(),
            socket: "bus.sock".into(),
            url: "amqp://127.0.0.1:5672/coffer".into(),
            user: "coffer".into(),
            password: String::new(),
            management_url: "http://127.0.0.1:15672".into(),
            management_user: String::new(),
            management_password: String::new(),
            agent_broker: String::new(),
            agent_secret_file: "broker-agents.key".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeSection {
    /// `local-process` (instances on the task manager's own host) or
    /// `remote` (on the `hosts` below, each running `coffer compute`).
    pub driver: String,
    /// Instance directories, relative to the state dir (`local-process`,
    /// and on a `coffer compute` host).
    pub instances_dir: PathBuf,
    /// CIDR the instances' addresses come from.
    pub address_range: String,
    /// `remote`: the compute hosts new servers are placed on, by name.
    pub hosts: Vec<String>,
    /// On a `coffer compute` host: its name (registered on the control
    /// plane with `coffer compute-host add NAME`).
    pub host: String,
    /// On a `coffer compute` host: how often dead agents are looked for.
    #[serde(with = "humantime_serde")]
    pub supervise_interval: Duration,
    /// The wall around each instance (`local-process`, and on a `coffer
    /// compute` host): its own OS account, cgroups, mount namespace.
    pub sandbox: coffer_compute::SandboxSettings,
    /// What an instance's volume is: `loop` (a size-limited ext4 image,
    /// loop-mounted; directories instead where the host cannot) or
    /// `directory` (its size enforced by the agent).
    pub volume_driver: coffer_compute::VolumeDriver,
}

impl Default for ComputeSection {
    fn default() -> Self {
        Self {
            driver: "local-process".into(),
            instances_dir: "instances".into(),
            address_range: "127.10.0.0/16".into(),
            hosts: Vec::new(),
            host: String::new(),
            supervise_interval: Duration::from_secs(2),
            sandbox: Default::default(),
            volume_driver: coffer_compute::VolumeDriver::Loop,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// How often agents report.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
}

impl Default for AgentSection {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TaskManagerSection {
    /// How long a new agent may take to connect.
    #[serde(with = "humantime_serde")]
    pub agent_connect_timeout: Duration,
    /// How long preparing a datastore may take.
    #[serde(with = "humantime_serde")]
    pub prepare_timeout: Duration,
    /// How long a restart or stop may take.
    #[serde(with = "humantime_serde")]
    pub action_timeout: Duration,
    /// Runs of one task before it fails.
    pub max_attempts: i64,
    /// How often to poll for tasks and dead agents.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a task stays claimed by the task manager running it without
    /// a renewal (renewed every third of it); a task of a task manager that
    /// died is taken over by another this long after its last renewal.
    #[serde(with = "humantime_serde")]
    pub task_lease: Duration,
    /// The name this task manager holds leases under; empty: one made on
    /// first start and kept in the state dir (`taskmanager.id`). Task
    /// managers sharing a state dir need names of their own.
    pub lease_name: String,
}

impl Default for TaskManagerSection {
    fn default() -> Self {
        Self {
            agent_connect_timeout: Duration::from_secs(30),
            prepare_timeout: Duration::from_secs(300),
            action_timeout: Duration::from_secs(120),
            max_attempts: 3,
            poll_interval: Duration::from_secs(1),
            task_lease: Duration::from_secs(30),
            lease_name: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSection {
    /// Where backups are stored: `{ kind = "fs", root = "backups" }` (relative
    /// roots are inside the state dir), `{ kind = "swift", auth_url, user,
    /// key, container }` or `{ kind = "s3", endpoint, bucket, region,
    /// access_key_id, secret_access_key }`.
    pub storage: coffer_storage::StorageConfig,
    /// Compression: `zstd:LEVEL` (default `zstd:1`), `gzip:LEVEL` or `none`.
    pub codec: String,
    /// Size of the chunks compressed, encrypted and authenticated one by one.
    pub chunk_size_kib: usize,
    /// The master key that wraps every backup's own data key; created
    /// (random, mode 0600) if missing. Relative paths are in the state dir.
    /// Without it no backup can be restored: keep a copy somewhere safe.
    pub master_key_file: PathBuf,
    /// How long one backup or restore may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            storage: coffer_storage::StorageConfig::Fs {
                root: "backups".into(),
            },
            codec: "zstd:1".into(),
            chunk_size_kib: 1024,
            master_key_file: "backup-master.key".into(),
            timeout: Duration::from_secs(6 * 3600),
        }
    }
}

/// Every project's limits, unless an admin set its own
/// (`PUT /mgmt/quotas/{project}`); -1 = unlimited.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasSection {
    pub instances: i64,
    /// Volume gigabytes across the project's instances.
    pub volumes: i64,
    pub backups: i64,
}

impl Default for QuotasSection {
    fn default() -> Self {
        Self {
            instances: 10,
            volumes: 100,
            backups: 50,
        }
    }
}

#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// `noauth` (development only: every request is an admin's),
    /// `tokens` (tokens made by `coffer token create`, stored hashed) or
    /// `keystone` (tokens validated against `keystone_url`).
    pub mode: String,
    /// Keystone's v3 endpoint.
    pub keystone_url: String,
    /// Coffer's own Keystone user, which validates tenants' tokens.
    pub service_user: String,
    pub service_password: String,
    pub service_project: String,
    /// Domain of the service user and project.
    pub domain: String,
    /// How long a validated Keystone token is trusted without asking again.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Keystone roles that make a user an admin of Coffer.
    pub admin_roles: Vec<String>,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            mode: "noauth".into(),
            keystone_url: "http://127.0.0.1:5000/v3".into(),
            service_user: "coffer".into(),
            service_password: String::new(),
            service_project: "service".into(),
            domain: "Default".into(),
            cache_ttl: Duration::from_secs(60),
            admin_roles: vec!["admin".into()],
        }
    }
}

impl std::fmt::Debug for AuthSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSection")
            .field("mode", &self.mode)
            .field("keystone_url", &self.keystone_url)
            .field("service_user", &self.service_user)
            .field("service_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatastoreSection {
    /// The DatastoreManager strategy that runs it.
    pub manager: String,
    /// Versions offered; the first is the default.
    pub versions: Vec<String>,
    /// The BackupStrategy (and same-named RestoreStrategy) of its backups;
    /// none means the datastore takes no backups.
    #[serde(default)]
    pub backup_strategy: Option<String>,
}

fn default_datastores() -> BTreeMap<String, DatastoreSection> {
    let ds = |manager: &str, version: &str, backup: &str| {
        let section = DatastoreSection {
            manager: manager.into(),
            versions: vec![version.into()],
            backup_strategy: Some(backup.into()),
        };
        (manager.to_string(), section)
    };
    BTreeMap::from([
        ds("mariadb", "10.11", "mariabackup"),
        ds("postgresql", "15", "pg_basebackup"),
        ds("redis", "7.0", "redis-rdb"),
    ])
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api: ApiSection::default(),
            metadata: MetadataSection::default(),
            bus: BusSection::default(),
            compute: ComputeSection::default(),
            agent: AgentSection::default(),
            taskmanager: TaskManagerSection::default(),
            backup: BackupSection::default(),
            auth: AuthSection::default(),
            quotas: QuotasSection::default(),
            datastores: default_datastores(),
        }
    }
}

impl Config {
    /// Parse TOML text, then apply `COFFER__SECTION__FIELD` overrides from `env`.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut doc: toml::Table = toml::from_str(text).context("coffer.toml is not valid TOML")?;
        for (key, value) in env {
            let Some(path) = key.strip_prefix("COFFER__") else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            set_path(&mut doc, &parts, &value)
                .with_context(|| format!("environment override {key}"))?;
        }
        let cfg: Config = toml::Value::Table(doc).try_into().context("coffer.toml")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Load `path`, or the defaults if it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::parse(&text, std::env::vars()).with_context(|| format!("in {}", path.display()))
    }

    fn validate(&self) -> anyhow::Result<()> {
        use coffer_bus::amqp::names::valid_host_name;
        match self.compute.driver.as_str() {
            "local-process" => {}
            "remote" => {
                if self.bus.kind != "amqp" {
                    bail!("compute.driver = \"remote\" needs bus.kind = \"amqp\" (compute hosts are reached over RabbitMQ)");
                }
                if self.compute.hosts.is_empty() {
                    bail!("compute.driver = \"remote\" needs compute.hosts");
                }
            }
            other => bail!("unknown compute driver {other:?}; known: local-process, remote"),
        }
        for host in self
            .compute
            .hosts
            .iter()
            .chain(Some(&self.compute.host).filter(|h| !h.is_empty()))
        {
            if !valid_host_name(host) {
                bail!("compute host name {host:?}: use lower-case letters, digits and dashes (at most 63)");
            }
        }
        self.address_range()?;
        if !["noauth", "tokens", "keystone"].contains(&self.auth.mode.as_str()) {
            bail!(
                "unknown auth.mode {:?}; known: noauth, tokens, keystone",
                self.auth.mode
            );
        }
        if self.auth.mode == "keystone" && self.auth.service_password.is_empty() {
            bail!(
                "auth.mode = \"keystone\" needs auth.service_password (Coffer's own Keystone user)"
            );
        }
        for (name, ds) in &self.datastores {
            if ds.versions.is_empty() {
                bail!("datastore {name} offers no versions");
            }
        }
        self.backup
            .codec
            .parse::<coffer_pipeline::Codec>()
            .map_err(|e| anyhow::anyhow!("backup.codec {:?}: {e}", self.backup.codec))?;
        if !(64..=65536).contains(&self.backup.chunk_size_kib) {
            bail!("backup.chunk_size_kib must be from 64 to 65536");
        }
        match self.bus.kind.as_str() {
            "local" => {}
            "amqp" => {
                if !self.bus.url.starts_with("amqp://") || self.bus.url.contains('@') {
                    bail!("bus.url must be amqp://host:port/vhost, without credentials (set bus.user and bus.password)");
                }
            }
            other => bail!("unknown bus kind {other:?}; known: local, amqp"),
        }
        if self.taskmanager.task_lease < Duration::from_secs(1) {
            bail!("taskmanager.task_lease must be at least 1s");
        }
        Ok(())
    }

    /// The instance address range as (network, prefix).
    pub fn address_range(&self) -> anyhow::Result<(Ipv4Addr, u8)> {
        let raw = &self.compute.address_range;
        let (net, prefix) = raw
            .split_once('/')
            .with_context(|| format!("address_range {raw:?} is not a CIDR"))?;
        let net: Ipv4Addr = net
            .parse()
            .with_context(|| format!("address_range {raw:?}"))?;
        let prefix: u8 = prefix
            .parse()
            .with_context(|| format!("address_range {raw:?}"))?;
        if !(8..=30).contains(&prefix) || !net.is_loopback() {
            bail!("address_range {raw:?} must be a loopback range with a prefix from /8 to /30");
        }
        Ok((net, prefix))
    }
}

/// Set `doc[a][b]... = value`, reading `value` as a TOML value when it is
/// one (numbers, booleans, arrays) and as a string otherwise.
fn set_path(doc: &mut toml::Table, parts: &[String], value: &str) -> anyhow::Result<()> {
    let (last, parents) = parts.split_last().context("empty key")?;
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("{p} is not a section"))?;
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_is_the_defaults() {
        assert_eq!(Config::parse(DEFAULT_TOML, []).unwrap(), Config::default());
        assert_eq!(Config::parse("", []).unwrap(), Config::default());
    }

    #[test]
    fn env_overrides() {
        let env = [
            (
                "COFFER__API__LISTEN".to_string(),
                "127.0.0.1:9000".to_string(),
            ),
            (
                "COFFER__AGENT__HEARTBEAT_INTERVAL".to_string(),
                "500ms".to_string(),
            ),
            (
                "COFFER__TASKMANAGER__MAX_ATTEMPTS".to_string(),
                "5".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::parse(DEFAULT_TOML, env).unwrap();
        assert_eq!(c.api.listen.port(), 9000);
        assert_eq!(c.agent.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(c.taskmanager.max_attempts, 5);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(Config::parse("[api]\nlisten = 5", []).is_err());
        assert!(
            Config::parse("[api]\nnope = 1", []).is_err(),
            "unknown fields are refused"
        );
        assert!(Config::parse("[bus]\nkind = \"zeromq\"", []).is_err());
        assert!(Config::parse("[backup]\ncodec = \"lzma\"", []).is_err());
        assert!(Config::parse("[backup]\nstorage = { kind = \"tape\" }", []).is_err());
        assert!(Config::parse("[compute]\naddress_range = \"10.0.0.0/8\"", []).is_err());
        let e = Config::parse("[taskmanager]\nprepare_timeout = \"soon\"", []).unwrap_err();
        assert!(format!("{e:#}").contains("prepare_timeout"), "{e:#}");
    }
}

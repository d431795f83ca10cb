//! The wall around each instance of the local-process driver: its own OS
//! account ([`accounts`]), cgroups sized from its flavor ([`cgroups`]), and
//! the description of its mount namespace that the agent applies to every
//! datastore process ([`coffer_model::Sandbox`]).
//!
//! The driver makes the account and the cgroups; the agent (which keeps
//! root, outside the sandbox) starts the datastore's processes inside.

mod accounts;
mod cgroups;

use accounts::Accounts;
use anyhow::{bail, Context};
use cgroups::{Cgroups, Limits};
use coffer_model::{InstanceId, Sandbox};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `[compute.sandbox]` in `coffer.toml`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Confine every instance (the default). A host that cannot (not
    /// root, no bubblewrap, no cgroup controllers) makes Coffer refuse to
    /// start rather than run instances without walls; set `false` to run
    /// them unconfined, as the host's root, knowingly.
    pub enabled: bool,
    /// The first uid (and gid) of the instances' OS accounts.
    pub first_uid: u32,
    /// How many accounts the range holds: the most instances a host runs.
    pub uids: u32,
    /// Processes and threads an instance may run at once (the cgroup's
    /// `pids.max`): a fork bomb stops there.
    pub max_processes: u32,
    /// More paths the datastores must not see (the control plane's state
    /// directory is added by Coffer itself).
    pub hidden: Vec<PathBuf>,
    /// The host's record of which instance holds which uid: one for the
    /// whole host, shared by every Coffer process on it whatever its state
    /// directory (hidden from the datastores).
    pub accounts_dir: PathBuf,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            first_uid: 70000,
            uids: 10000,
            max_processes: 1024,
            hidden: Vec::new(),
            accounts_dir: PathBuf::from("/var/lib/coffer/sandbox-accounts"),
        }
    }
}

/// Paths every sandbox hides besides the configured ones: home directories
/// and the host's database servers' data.
const ALWAYS_HIDDEN: &[&str] = &["/root", "/home", "/var/lib/postgresql", "/var/lib/mysql"];

/// What the driver needs to confine instances on this host.
pub(crate) struct Sandboxes {
    accounts: Accounts,
    cgroups: Cgroups,
    max_processes: u32,
    hidden: Vec<PathBuf>,
}

impl Sandboxes {
    /// Check that this host can confine instances (root, `setpriv`,
    /// `bwrap` with user namespaces, cgroup v1 memory, cpu and pids) and
    /// prepare it. The error says what is missing and how to opt out.
    pub(crate) fn open(settings: &SandboxSettings, instances_root: &Path) -> anyhow::Result<Self> {
        check_host(settings).context(
            "the instance sandbox cannot run on this host \
             (set `enabled = false` under [compute.sandbox] in coffer.toml to run instances \
             unconfined, as the host's root)",
        )?;
        let accounts = Accounts::new(&settings.accounts_dir, settings.first_uid, settings.uids)?;
        // What an instance's account cannot reach anyway (a parent without
        // the search bit for others) needs no cover, and could not be
        // covered: bubblewrap mounts as that account.
        let hidden: Vec<PathBuf> = [instances_root.to_path_buf(), settings.accounts_dir.clone()]
            .into_iter()
            .chain(settings.hidden.iter().cloned())
            .chain(ALWAYS_HIDDEN.iter().map(PathBuf::from))
            .filter(|p| reachable_by_others(p))
            .collect();
        Ok(Self {
            accounts,
            cgroups: Cgroups::open()?,
            max_processes: settings.max_processes,
            hidden,
        })
    }

    /// The sandbox of instance `id` (its account claimed now if it has
    /// none), with its cgroups made and sized. Idempotent: after a reboot
    /// it makes the cgroups again.
    pub(crate) fn provision(
        &self,
        id: InstanceId,
        dir: &Path,
        ram_mb: i64,
        vcpus: i64,
    ) -> anyhow::Result<Sandbox> {
        let account = self.accounts.claim(dir)?;
        let cgroups = self.cgroups.ensure(id, &self.limits(ram_mb, vcpus))?;
        Ok(Sandbox {
            user: account.name,
            uid: account.uid,
            gid: account.gid,
            cgroups,
            hidden: self.hidden.clone(),
            writable: Vec::new(),
        })
    }

    /// New flavor limits for a running instance.
    pub(crate) fn resize(&self, id: InstanceId, ram_mb: i64, vcpus: i64) -> anyhow::Result<()> {
        self.cgroups
            .ensure(id, &self.limits(ram_mb, vcpus))
            .map(drop)
    }

    /// Kill whatever is left in the instance's cgroups (a tenant's process
    /// that outlived its server).
    pub(crate) async fn kill_leftovers(&self, id: InstanceId) {
        self.cgroups.kill_all(id).await;
    }

    /// Remove the cgroups and give the account back (the OS account stays
    /// in /etc/passwd, for the next instance that claims it).
    pub(crate) async fn release(&self, id: InstanceId, dir: &Path) -> anyhow::Result<()> {
        self.cgroups.kill_all(id).await;
        self.cgroups.remove(id)?;
        self.accounts.release(dir)
    }

    fn limits(&self, ram_mb: i64, vcpus: i64) -> Limits {
        Limits {
            memory_bytes: (ram_mb.max(64) as u64) << 20,
            cpus: u32::try_from(vcpus).ok().filter(|v| *v > 0),
            max_processes: self.max_processes,
        }
    }
}

fn check_host(settings: &SandboxSettings) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("it needs root (to give each instance its own OS account and cgroups)");
    }
    if settings.uids == 0 || settings.first_uid < 1000 {
        bail!("[compute.sandbox] first_uid must be at least 1000 and uids more than 0");
    }
    if settings.first_uid.checked_add(settings.uids).is_none() {
        bail!("[compute.sandbox] first_uid + uids is past the largest uid");
    }
    // The recipe every datastore process runs through, tried as nobody.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ])
        .args([
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--unshare-user",
            "--disable-userns",
        ])
        .args(["--cap-drop", "ALL", "--", "true"])
        .output();
    match out {
        Err(e) => bail!("cannot run setpriv: {e} (apt-get install util-linux)"),
        Ok(out) if !out.status.success() => {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No such file") || err.contains("bwrap") && err.contains("not found") {
                bail!("bubblewrap is missing (apt-get install bubblewrap)");
            }
            bail!("bubblewrap cannot make a sandbox here: {}", err.trim());
        }
        Ok(_) => Ok(()),
    }
}

/// Whether `path` exists and every directory above it lets others search.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.exists()
        && path
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Add the search bit (`o+x`, never read or write) to `dir` and every
/// directory above it, so that an instance's account can reach its own
/// directories under `dir` by path.
pub(crate) fn allow_search(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    for d in dir.ancestors() {
        let meta = std::fs::metadata(d).with_context(|| format!("reading {}", d.display()))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            tracing::info!(
                "adding o+x to {} so that instances reach their directories",
                d.display()
            );
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o001))
                .with_context(|| format!("adding o+x to {}", d.display()))?;
        }
    }
    Ok(())
}

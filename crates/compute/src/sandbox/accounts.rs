//! The instances' OS accounts: one uid (and a group of the same number)
//! per instance, from a configured range. A uid is claimed by creating
//! `<claims dir>/<uid>` exclusively, holding the instance's directory: the
//! claims dir is the host's (not a state dir's), so every driver on the
//! host, whatever its state dir, hands out each uid once. A claim whose
//! directory is gone is free. The account itself (`coffer-<uid>` in
//! /etc/passwd, no home, no shell) is made once and kept for the next
//! instance that claims the uid.

use crate::host_tools::run;
use anyhow::{anyhow, bail, Context};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An instance's OS account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

pub(crate) struct Accounts {
    claims: PathBuf,
    first: u32,
    count: u32,
}

impl Accounts {
    pub(crate) fn new(claims: &Path, first: u32, count: u32) -> anyhow::Result<Self> {
        let claims = claims.to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&claims)
            .with_context(|| format!("creating {}", claims.display()))?;
        Ok(Self {
            claims,
            first,
            count,
        })
    }

    /// The account of the instance in `dir`: the uid it claimed before, or
    /// the lowest free one claimed now.
    pub(crate) fn claim(&self, dir: &Path) -> anyhow::Result<Account> {
        let held = self.read_claims()?;
        if let Some((&uid, _)) = held.iter().find(|(_, owner)| owner.as_deref() == Some(dir)) {
            return ensure_account(uid);
        }
        let passwd = read_passwd()?;
        for uid in self.first..self.first + self.count {
            if let Some(owner) = held.get(&uid) {
                let stale = owner.as_ref().is_none_or(|o| !o.exists());
                if !stale {
                    continue;
                }
                // The instance is gone; its claim is free again. Removing
                // it races only with another driver doing the same, and
                // the exclusive create below decides who gets it.
                let _ = std::fs::remove_file(self.claims.join(uid.to_string()));
            }
            if passwd
                .by_uid(uid)
                .is_some_and(|name| name != account_name(uid))
            {
                continue; // someone else's account
            }
            if self.try_claim(uid, dir)? {
                return ensure_account(uid);
            }
        }
        bail!(
            "every sandbox uid ({}..{}) is in use: raise [compute.sandbox] uids",
            self.first,
            self.first + self.count
        )
    }

    /// Give the uid of the instance in `dir` back. Nothing claimed is fine.
    pub(crate) fn release(&self, dir: &Path) -> anyhow::Result<()> {
        for (uid, owner) in self.read_claims()? {
            if owner.as_deref() == Some(dir) {
                let path = self.claims.join(uid.to_string());
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn try_claim(&self, uid: u32, dir: &Path) -> anyhow::Result<bool> {
        let path = self.claims.join(uid.to_string());
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        };
        file.write_all(dir.as_os_str().as_encoded_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(true)
    }

    /// Every claim: uid to the instance directory named in it (`None` when
    /// the file is unreadable or empty, e.g. cut short by a crash: stale).
    fn read_claims(&self) -> anyhow::Result<HashMap<u32, Option<PathBuf>>> {
        let entries = std::fs::read_dir(&self.claims)
            .with_context(|| format!("listing {}", self.claims.display()))?;
        Ok(entries
            .filter_map(|e| {
                let e = e.ok()?;
                let uid: u32 = e.file_name().to_str()?.parse().ok()?;
                let owner = std::fs::read_to_string(e.path())
                    .ok()
                    .filter(|s| s.starts_with('/'))
                    .map(PathBuf::from);
                Some((uid, owner))
            })
            .collect())
    }
}

fn account_name(uid: u32) -> String {
    format!("coffer-{uid}")
}

/// One `useradd`/`groupadd` at a time in this process: each locks
/// /etc/passwd and /etc/group and fails at once when another holds them.
static ACCOUNT_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The account `coffer-<uid>` with its group, made if missing.
/// PostgreSQL's initdb refuses to run as a uid without a passwd entry.
fn ensure_account(uid: u32) -> anyhow::Result<Account> {
    let _one = ACCOUNT_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let name = account_name(uid);
    if let Some(account) = read_passwd()?.account(&name) {
        return Ok(account);
    }
    let group_exists = std::fs::read_to_string("/etc/group")
        .context("reading /etc/group")?
        .lines()
        .any(|l| l.split(':').next() == Some(name.as_str()));
    if !group_exists {
        run_locked(Command::new("groupadd").args(["--gid", &uid.to_string(), &name]))?;
    }
    run_locked(
        Command::new("useradd")
            .args(["--uid", &uid.to_string(), "--gid", &name])
            .args(["--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", "--no-user-group", &name]),
    )?;
    read_passwd()?
        .account(&name)
        .ok_or_else(|| anyhow!("useradd made no passwd entry for {name}"))
}

/// `run`, tried again for a few seconds while another process (another
/// Coffer on this host, an administrator) holds the account files' lock.
fn run_locked(cmd: &mut Command) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match run(cmd) {
            Err(e) if e.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

/// The lines of /etc/passwd that matter here.
struct Passwd(Vec<Account>);

fn read_passwd() -> anyhow::Result<Passwd> {
    let text = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    Ok(parse_passwd(&text))
}

fn parse_passwd(text: &str) -> Passwd {
    Passwd(
        text.lines()
            .filter_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?.to_string();
                let _password = f.next()?;
                let uid = f.next()?.parse().ok()?;
                let gid = f.next()?.parse().ok()?;
                Some(Account { name, uid, gid })
            })
            .collect(),
    )
}

impl Passwd {
    fn by_uid(&self, uid: u32) -> Option<&str> {
        self.0
            .iter()
            .find(|a| a.uid == uid)
            .map(|a| a.name.as_str())
    }

    fn account(&self, name: &str) -> Option<Account> {
        self.0.iter().find(|a| a.name == name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookups() {
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\ncoffer-70000:x:70000:70000::/nonexistent:/usr/sbin/nologin\nbad\n",
        );
        assert_eq!(p.by_uid(70000), Some("coffer-70000"));
        assert_eq!(p.by_uid(1), None);
        assert_eq!(
            p.account("coffer-70000"),
            Some(Account {
                name: "coffer-70000".into(),
                uid: 70000,
                gid: 70000
            })
        );
    }

    /// Accounts made at once, as 200 creates at once make them, all come
    /// out whole (useradd fails at once while another holds its lock).
    #[test]
    fn accounts_made_at_once_are_all_made() {
        let uids: Vec<u32> = (0..6).map(|i| 3_999_999_900 + i).collect();
        let remove = |uid: u32| {
            let name = account_name(uid);
            let _ = Command::new("userdel").arg(&name).output();
            let _ = Command::new("groupdel").arg(&name).output();
        };
        uids.iter().copied().for_each(remove);
        let made: Vec<Account> = std::thread::scope(|s| {
            let handles: Vec<_> = uids
                .iter()
                .map(|&uid| s.spawn(move || ensure_account(uid)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        for (account, uid) in made.iter().zip(&uids) {
            assert_eq!((account.uid, account.gid), (*uid, *uid));
            assert_eq!(ensure_account(*uid).unwrap(), *account, "made once");
        }
        uids.iter().copied().for_each(remove);
    }

    #[test]
    fn claims_are_exclusive_and_freed_with_their_instance() {
        let root = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(&root.path().join("claims"), 4_000_000_000, 2).unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        for dir in [&a, &b] {
            std::fs::create_dir(dir).unwrap();
        }
        assert!(accounts.try_claim(4_000_000_000, &a).unwrap());
        assert!(!accounts.try_claim(4_000_000_000, &b).unwrap());
        let claims = accounts.read_claims().unwrap();
        assert_eq!(claims.get(&4_000_000_000), Some(&Some(a.clone())));
        accounts.release(&b).unwrap();
        assert_eq!(accounts.read_claims().unwrap().len(), 1);
        accounts.release(&a).unwrap();
        assert!(accounts.read_claims().unwrap().is_empty());
    }
}

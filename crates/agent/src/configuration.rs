//! Configuration groups on the agent's side. The overrides in force are
//! kept in `configuration.json` beside the agent's state, so a restarted
//! agent (and every later start of the server) renders them, together
//! with the names of changes that still wait for a restart.

use crate::handler::Agent;
use anyhow::Context;
use coffer_bus::messages::ConfigureReport;
use coffer_model::Overrides;
use coffer_strategy::{ConfigChange, Health};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What `configuration.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub overrides: Overrides,
    /// Parameters changed since the server last started whose new values
    /// take effect only at the next start.
    pub pending_restart: BTreeSet<String>,
}

fn path(state_file: &Path) -> PathBuf {
    state_file.with_file_name("configuration.json")
}

/// The saved configuration; none (a new instance) is the empty one.
pub(crate) fn saved(state_file: &Path) -> Saved {
    let file = path(state_file);
    match std::fs::read(&file) {
        Ok(raw) => serde_json::from_slice(&raw).unwrap_or_else(|e| {
            tracing::error!(
                "{} is unreadable ({e}); running without overrides",
                file.display()
            );
            Saved::default()
        }),
        Err(_) => Saved::default(),
    }
}

fn save(state_file: &Path, saved: &Saved) -> anyhow::Result<()> {
    let file = path(state_file);
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(saved)?)?;
    std::fs::rename(&tmp, &file).with_context(|| format!("saving {}", file.display()))
}

/// The parameters whose values differ between `old` and `new`.
fn changes(old: &Overrides, new: &Overrides) -> Vec<ConfigChange> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (before, after) = (old.get(name), new.get(name));
            if before.map(|s| &s.value) == after.map(|s| &s.value) {
                return None;
            }
            Some(ConfigChange {
                name: name.clone(),
                value: after.map(|s| s.value.clone()),
                restart_required: after.or(before).is_some_and(|s| s.restart_required),
            })
        })
        .collect()
}

impl Agent {
    /// Start from `overrides` (a new instance: nothing waits for a restart).
    pub(crate) fn set_overrides(&self, overrides: Overrides) -> anyhow::Result<()> {
        let saved = Saved {
            overrides: overrides.clone(),
            pending_restart: BTreeSet::new(),
        };
        save(self.state_file(), &saved)?;
        self.update_ctx(|ctx| ctx.overrides = overrides);
        Ok(())
    }

    /// The server just started with the rendered configuration: nothing
    /// waits for a restart any more.
    pub(crate) fn started_with_configuration(&self) -> anyhow::Result<()> {
        let mut saved = saved(self.state_file());
        if saved.pending_restart.is_empty() {
            return Ok(());
        }
        saved.pending_restart.clear();
        save(self.state_file(), &saved)
    }

    /// Make `overrides` the instance's configuration. Rendered first, then
    /// applied live, then saved: a crash before the save repeats the apply
    /// on the retried request. A failed apply puts the old values back.
    pub(crate) async fn configure(&self, overrides: Overrides) -> anyhow::Result<ConfigureReport> {
        let _guard = self.op.lock().await;
        let mut saved = saved(self.state_file());
        let changes = changes(&saved.overrides, &overrides);
        tracing::info!(changes = changes.len(), "configure");
        let old = std::mem::replace(&mut saved.overrides, overrides.clone());
        self.update_ctx(|ctx| ctx.overrides = overrides);
        let ctx = self.ctx();
        let applied = async {
            self.manager.render_config(&ctx).await?;
            if changes.is_empty() {
                return Ok(Vec::new());
            }
            if self.manager.health(&ctx).await != Health::Healthy {
                // Not running: everything applies at its next start.
                return Ok(changes.iter().map(|c| c.name.clone()).collect());
            }
            self.manager.apply_configuration(&ctx, &changes).await
        }
        .await;
        let pending = match applied {
            Ok(pending) => pending,
            Err(e) => {
                self.revert(old.clone(), &saved.overrides).await;
                return Err(anyhow::Error::new(e).context("applying the configuration"));
            }
        };
        saved.pending_restart.extend(pending);
        save(self.state_file(), &saved)?;
        Ok(ConfigureReport {
            restart_required: saved.pending_restart.into_iter().collect(),
        })
    }

    /// Best effort after a failed apply: the old overrides rendered and,
    /// where the new ones got applied live, the old values again.
    async fn revert(&self, old: Overrides, failed: &Overrides) {
        self.update_ctx(|ctx| ctx.overrides = old.clone());
        let ctx = self.ctx();
        if let Err(e) = self.manager.render_config(&ctx).await {
            tracing::error!("could not render the previous configuration again: {e:#}");
        }
        let back = changes(failed, &old);
        if let Err(e) = self.manager.apply_configuration(&ctx, &back).await {
            tracing::warn!("could not re-apply the previous values: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::{ConfigValue, Setting};

    fn set(pairs: &[(&str, i64, bool)]) -> Overrides {
        pairs
            .iter()
            .map(|(n, v, r)| {
                let s = Setting {
                    value: ConfigValue::Integer(*v),
                    restart_required: *r,
                };
                (n.to_string(), s)
            })
            .collect()
    }

    #[test]
    fn changes_cover_added_changed_and_removed() {
        let old = set(&[("a", 1, false), ("b", 2, true), ("c", 3, false)]);
        let new = set(&[("a", 1, false), ("b", 5, true), ("d", 4, false)]);
        let got = changes(&old, &new);
        let names: Vec<_> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "d"]);
        assert_eq!(got[0].value, Some(ConfigValue::Integer(5)));
        assert!(got[0].restart_required);
        assert_eq!(got[1].value, None, "removed");
        assert!(!got[1].restart_required);
        assert!(changes(&new, &new).is_empty());
    }

    #[test]
    fn saved_round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("agent.state");
        assert_eq!(saved(&state), Saved::default());
        let s = Saved {
            overrides: set(&[("a", 1, false)]),
            pending_restart: BTreeSet::from(["b".to_string()]),
        };
        save(&state, &s).unwrap();
        assert_eq!(saved(&state), s);
        std::fs::write(path(&state), b"{broken").unwrap();
        assert_eq!(saved(&state), Saved::default());
    }
}

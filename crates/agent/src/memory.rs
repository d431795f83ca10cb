//! The datastore's memory cgroup, as the sandbox made it: how many of the
//! datastore's processes the kernel killed for going past the flavor's
//! memory. The server among them is restarted like any crashed one; the
//! count goes to the conductor, which records it on the instance.

use coffer_strategy::InstanceContext;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct MemoryWatch {
    /// `memory.oom_control` of the instance's cgroup; none unconfined.
    file: Option<PathBuf>,
    /// The count already reported (or found at the agent's start).
    seen: AtomicU64,
}

impl MemoryWatch {
    pub(crate) fn new(ctx: &InstanceContext) -> Self {
        let file = ctx
            .sandbox
            .as_ref()
            .and_then(|s| s.memory_cgroup())
            .map(|d| d.join("memory.oom_control"));
        let seen = file.as_ref().and_then(|f| oom_kills(f)).unwrap_or(0);
        Self {
            file,
            seen: AtomicU64::new(seen),
        }
    }

    /// Kills since the previous call (or the agent's start).
    pub(crate) fn take_new_kills(&self) -> u64 {
        let Some(now) = self.file.as_ref().and_then(|f| oom_kills(f)) else {
            return 0;
        };
        now.saturating_sub(self.seen.swap(now, Ordering::SeqCst))
    }
}

/// The `oom_kill` line of a v1 `memory.oom_control` file.
fn oom_kills(file: &std::path::Path) -> Option<u64> {
    parse(&std::fs::read_to_string(file).ok()?)
}

fn parse(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kill_count() {
        assert_eq!(
            parse("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(parse("oom_kill_disable 0\n"), None);
    }

    #[test]
    fn counts_only_new_kills() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.oom_control");
        std::fs::write(&file, "oom_kill 2\n").unwrap();
        let watch = MemoryWatch {
            seen: AtomicU64::new(oom_kills(&file).unwrap()),
            file: Some(file.clone()),
        };
        assert_eq!(watch.take_new_kills(), 0);
        std::fs::write(&file, "oom_kill 5\n").unwrap();
        assert_eq!(watch.take_new_kills(), 3);
        assert_eq!(watch.take_new_kills(), 0);
    }
}

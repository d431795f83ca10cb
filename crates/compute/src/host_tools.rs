//! Running the host's administration tools (mount, mkfs, useradd...) for
//! the local-process driver: a failure is an error with what the tool said.

use anyhow::{bail, Context};
use std::process::{Command, Output};

/// Run `cmd` to its end; a non-zero exit is an error with the tail of
/// what it printed.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", tail(&out));
    }
    Ok(())
}

/// The last lines a tool printed (stdout, then stderr), for an error.
pub(crate) fn tail(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

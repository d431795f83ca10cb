//! `coffer-agent guest-agent --instance-dir DIR`: the guest agent alone, as
//! a binary of its own. One agent runs per instance, so its memory is paid
//! hundreds of times on a host; this binary links only the agent's code
//! (no HTTP API, SQL store or CLI), so each agent maps and touches far fewer
//! pages than `coffer guest-agent` would. Same arguments, same behaviour:
//! the compute driver starts it when it sits next to `coffer`.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: coffer-agent guest-agent --instance-dir DIR";

/// The instance dir from `[guest-agent] --instance-dir DIR`.
fn instance_dir(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<PathBuf> {
    let mut first = args.next()?;
    if first == "guest-agent" {
        first = args.next()?;
    }
    if first != "--instance-dir" {
        return None;
    }
    let dir = PathBuf::from(args.next()?);
    args.next().is_none().then_some(dir)
}

fn main() -> ExitCode {
    let Some(dir) = instance_dir(std::env::args_os().skip(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // RUST_LOG as targets (`info,coffer_agent=debug`), without a regex engine.
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| "info".parse().expect("a valid default filter"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(coffer_agent::run(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::instance_dir;

    fn parse(args: &[&str]) -> Option<std::path::PathBuf> {
        instance_dir(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&["guest-agent", "--instance-dir", "/d"]),
            Some("/d".into())
        );
        assert_eq!(parse(&["--instance-dir", "/d"]), Some("/d".into()));
        assert_eq!(parse(&["guest-agent"]), None);
        assert_eq!(parse(&["--instance-dir"]), None);
        assert_eq!(parse(&["--instance-dir", "/d", "extra"]), None);
        assert_eq!(parse(&["up"]), None);
    }
}

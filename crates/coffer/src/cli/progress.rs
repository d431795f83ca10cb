//! A one-line progress bar on stderr for `--wait` on long operations.

use serde_json::Value;
use std::io::Write;

const WIDTH: usize = 30;

/// `[#######.......]  42.0%  1.2 GiB of 2.9 GiB  85.3 MiB/s` when the total
/// is known, `1.2 GiB  85.3 MiB/s` otherwise, from a `progress` object.
pub fn line(progress: &Value) -> Option<String> {
    let done = progress["bytes_done"].as_u64()?;
    let rate = progress["bytes_per_second"].as_u64().unwrap_or(0);
    let phase = progress["phase"].as_str().unwrap_or("");
    Some(match progress["bytes_total"].as_u64().filter(|&t| t > 0) {
        Some(total) => {
            let frac = (done as f64 / total as f64).clamp(0.0, 1.0);
            let filled = (frac * WIDTH as f64).round() as usize;
            format!(
                "{phase} [{}{}] {:>5.1}%  {} of {}  {}/s",
                "#".repeat(filled),
                ".".repeat(WIDTH - filled),
                frac * 100.0,
                bytes(done),
                bytes(total),
                bytes(rate)
            )
        }
        None => format!("{phase} {}  {}/s", bytes(done), bytes(rate)),
    })
}

/// Redraw the bar in place (a terminal) or print it as a line (a pipe).
pub fn draw(text: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r\x1b[2K{text}");
    let _ = err.flush();
}

/// Leave the bar's line.
pub fn finish() {
    let _ = writeln!(std::io::stderr());
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars() {
        let p = json!({"phase": "restore", "bytes_done": 512u64 << 20, "bytes_total": 1u64 << 30, "bytes_per_second": 100u64 << 20});
        let l = line(&p).unwrap();
        assert!(
            l.starts_with("restore [###############...............]  50.0%"),
            "{l}"
        );
        assert!(
            l.contains("512.0 MiB of 1.0 GiB") && l.ends_with("100.0 MiB/s"),
            "{l}"
        );
        let p = json!({"phase": "backup", "bytes_done": 1536, "bytes_per_second": 10});
        assert_eq!(line(&p).unwrap(), "backup 1.5 KiB  10 B/s");
        assert_eq!(line(&json!({})), None);
    }
}

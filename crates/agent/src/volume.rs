//! Volume size enforcement for directory volumes: the agent measures what
//! the data dir really occupies on disk and, past the size, makes the
//! datastore refuse writes until usage drops below the low-water mark.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Writes are allowed again below this fraction of the size.
const LOW_WATER: f64 = 0.9;

/// Bytes of disk the tree under `dir` occupies (allocated blocks, so sparse
/// files count for what they use).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            }
            total += md.blocks() * 512;
        }
    }
    total
}

/// Whether the volume should be read-only now, given whether it is now.
pub fn should_be_full(used: u64, size: u64, currently_full: bool) -> bool {
    if size == 0 {
        return false;
    }
    if currently_full {
        (used as f64) >= (size as f64) * LOW_WATER
    } else {
        used >= size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis() {
        assert!(!should_be_full(99, 100, false));
        assert!(should_be_full(100, 100, false));
        assert!(should_be_full(95, 100, true));
        assert!(!should_be_full(89, 100, true));
        assert!(!should_be_full(5, 0, false));
    }

    #[test]
    fn measures_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![1u8; 1 << 20]).unwrap();
        let used = disk_usage(d.path());
        assert!(used >= 1 << 20, "{used}");
    }
}

//! Volume size enforcement: the agent measures the volume and, past its
//! size, makes the datastore refuse writes until usage drops below the
//! low-water mark. A directory volume is measured by what the data dir
//! really occupies on the host's disk, against the configured size (the
//! only limit there is). A volume that is a filesystem of its own (a loop
//! volume) is measured by that filesystem, and writes stop a little before
//! it is full: the filesystem itself is the hard limit, and a datastore
//! that meets ENOSPC mid-write (PostgreSQL's WAL) is worse off than one
//! refusing writes cleanly.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Writes are allowed again below this fraction of the size.
const LOW_WATER: f64 = 0.9;
/// A filesystem of its own counts as full at this fraction.
const OWN_FILESYSTEM_FULL: f64 = 0.97;

/// What the volume holds and how much it can, in bytes; `size` is where
/// writes stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    pub used: u64,
    /// The volume's size, as reported.
    pub capacity: u64,
    /// Where writes stop.
    pub size: u64,
}

/// Measure the volume whose data directory is `data_dir`, configured at
/// `configured` bytes.
pub fn measure(data_dir: &Path, configured: u64) -> Measure {
    if let Some((used, total)) = own_filesystem(data_dir) {
        return Measure {
            used,
            capacity: total,
            size: (total as f64 * OWN_FILESYSTEM_FULL) as u64,
        };
    }
    Measure {
        used: disk_usage(data_dir),
        capacity: configured,
        size: configured,
    }
}

/// Used and total bytes of the filesystem `data_dir` is on, if it is not
/// the one of the directory holding it (which is the instance directory,
/// or the volume's mount point behind the instance directory's link).
fn own_filesystem(data_dir: &Path) -> Option<(u64, u64)> {
    let real = data_dir.canonicalize().ok()?;
    let volume = real.parent()?;
    let holder = volume.parent()?;
    let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
    if dev(volume)? == dev(holder)? {
        return None;
    }
    let stat = nix::sys::statvfs::statvfs(&real).ok()?;
    let unit = stat.fragment_size() as u64;
    let total = stat.blocks() as u64 * unit;
    let free = stat.blocks_free() as u64 * unit;
    Some((total.saturating_sub(free), total))
}

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
    fn a_directory_volume_is_measured_against_its_configured_size() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("f"), vec![1u8; 1 << 20]).unwrap();
        let m = measure(&data, 4 << 20);
        assert_eq!((m.capacity, m.size), (4 << 20, 4 << 20));
        assert!(m.used >= 1 << 20, "{m:?}");
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

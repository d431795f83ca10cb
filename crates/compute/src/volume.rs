//! An instance's volume: where everything its datastore writes lives. The
//! `loop` driver (the default where the host can loop-mount) makes it a
//! real, size-limited filesystem, the way a Cinder volume is for a Trove
//! VM: a sparse ext4 image loop-mounted (`nosuid,nodev,noexec`) on the
//! instance's `volume/`, holding `data/`, `run/`, `log/` and `work/`, which
//! the instance directory links to. A tenant filling any of them gets
//! ENOSPC from its own filesystem, and the host's free space moves by at
//! most the volume's size. The `directory` driver leaves them plain
//! directories, the data's size enforced by the agent (a soft limit). An
//! instance keeps the kind it was made with: an image in its directory
//! says `loop`.
//!
//! ```text
//! <instance>/volume.img           the image (0600, sparse)
//! <instance>/volume/              its mount point
//! <instance>/volume/{data,run,log,work}
//! <instance>/{data,run,log,work} -> volume/...   (root's links)
//! ```
//!
//! `mount -o loop` ties the loop device to the mount (autoclear): a volume
//! holds a loop device exactly while it is mounted, in this namespace or
//! any sandbox's (the instances root is a shared mount, so an unmount
//! reaches them all).

use crate::host_tools::{run, tail};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image's name in the instance directory.
const IMAGE: &str = "volume.img";
/// The mount point's name in the instance directory.
const MOUNT_POINT: &str = "volume";
/// What the volume holds, each linked from the instance directory.
const SUBDIRS: [&str; 4] = ["data", "run", "log", "work"];
/// Mount options: nothing on a tenant's volume is a device or runs.
const MOUNT_OPTIONS: &str = "loop,nosuid,nodev,noexec";

/// `compute.volume_driver`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeDriver {
    /// A loop-mounted ext4 image per instance: a hard limit.
    Loop,
    /// Plain directories, the data's size enforced by the agent.
    Directory,
}

/// The account that owns what the volume holds (the sandbox's).
pub(crate) type Owner = Option<(u32, u32)>;

pub(crate) struct Volumes {
    driver: VolumeDriver,
}

impl Volumes {
    /// Plain directories: what a driver without a volume setting uses.
    pub(crate) fn directories() -> Self {
        Self {
            driver: VolumeDriver::Directory,
        }
    }

    /// `wanted`, if this host can do it: `loop` is tried once on a small
    /// image under `root`; where it fails (not root, no loop devices) new
    /// volumes are directories, and the log says why.
    pub(crate) fn open(wanted: VolumeDriver, root: &Path) -> Self {
        let driver = match wanted {
            VolumeDriver::Directory => VolumeDriver::Directory,
            VolumeDriver::Loop => match share(root).and_then(|()| probe(root)) {
                Ok(()) => VolumeDriver::Loop,
                Err(e) => {
                    tracing::warn!(
                        "loop-mounted volumes are not possible here ({e:#}); new volumes are directories whose size the agent enforces"
                    );
                    VolumeDriver::Directory
                }
            },
        };
        Self { driver }
    }

    pub(crate) fn driver(&self) -> VolumeDriver {
        self.driver
    }

    /// Give the new instance in `dir` its volume of `size_gb` and mount
    /// it. Idempotent: an image made before is kept (a create resumed after
    /// a crash) and only mounted.
    pub(crate) fn create(&self, dir: &Path, size_gb: i64, owner: Owner) -> anyhow::Result<()> {
        let image = dir.join(IMAGE);
        if self.driver == VolumeDriver::Loop && !image.exists() {
            // Made aside and renamed: an image is either whole or absent.
            let new = dir.join(format!("{IMAGE}.new"));
            let file = std::fs::File::create(&new)
                .with_context(|| format!("creating {}", new.display()))?;
            file.set_len(bytes(size_gb)?)
                .with_context(|| format!("sizing {}", new.display()))?;
            drop(file);
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-L", "coffer"])
                .args(["-E", "lazy_itable_init=1,lazy_journal_init=1"])
                .arg(&new))?;
            std::fs::rename(&new, &image).with_context(|| format!("renaming {}", new.display()))?;
        }
        self.ensure_mounted(dir, owner)
    }

    /// Mount the instance's volume if it has one and it is not mounted
    /// (after a reboot of the host, or a grow cut short), and lay it out.
    pub(crate) fn ensure_mounted(&self, dir: &Path, owner: Owner) -> anyhow::Result<()> {
        let image = dir.join(IMAGE);
        if !image.exists() {
            return Ok(());
        }
        let mount_point = dir.join(MOUNT_POINT);
        if !is_mount_point(&mount_point)? {
            std::fs::create_dir_all(&mount_point)
                .with_context(|| format!("creating {}", mount_point.display()))?;
            run(Command::new("mount")
                .args(["-o", MOUNT_OPTIONS])
                .arg(&image)
                .arg(&mount_point))?;
        }
        lay_out(dir, &mount_point, owner)
    }

    /// Grow the volume of the instance in `dir` to `size_gb` (never
    /// shrinks): offline, as this host cannot grow a mounted ext4, so
    /// nothing of the instance may use it (its datastore stopped). Unmount,
    /// grow the image, check and grow the filesystem, mount again.
    pub(crate) fn grow(&self, dir: &Path, size_gb: i64, owner: Owner) -> anyhow::Result<()> {
        let image = dir.join(IMAGE);
        if !image.exists() {
            return Ok(());
        }
        let wanted = bytes(size_gb)?;
        let now = std::fs::metadata(&image)
            .with_context(|| format!("reading {}", image.display()))?
            .len();
        if now < wanted {
            unmount(&dir.join(MOUNT_POINT))?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&image)
                .and_then(|f| f.set_len(wanted))
                .with_context(|| format!("growing {}", image.display()))?;
            // e2fsck: 0 clean, 1 errors fixed, 2 fixed (reboot advised);
            // more means errors left, which resize2fs would refuse anyway.
            let out = Command::new("e2fsck")
                .args(["-f", "-y"])
                .arg(&image)
                .output()
                .context("running e2fsck")?;
            if out.status.code().is_none_or(|c| c > 2) {
                bail!("e2fsck of {} failed: {}", image.display(), tail(&out));
            }
            run(Command::new("resize2fs").arg(&image))?;
            tracing::info!(image = %image.display(), size_gb, "volume grown");
        }
        self.ensure_mounted(dir, owner)
    }

    /// Unmount the instance's volume (nothing of the instance runs),
    /// giving its loop device back; the image goes with the directory.
    pub(crate) fn release(&self, dir: &Path) -> anyhow::Result<()> {
        unmount(&dir.join(MOUNT_POINT))
    }
}

/// The volume's directories (the owner's, 0700) and the instance
/// directory's links to them; its root searchable by the owner.
fn lay_out(dir: &Path, mount_point: &Path, owner: Owner) -> anyhow::Result<()> {
    std::fs::set_permissions(mount_point, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("setting the mode of {}", mount_point.display()))?;
    for sub in SUBDIRS {
        let inner = mount_point.join(sub);
        if !inner.exists() {
            std::fs::create_dir(&inner).with_context(|| format!("creating {}", inner.display()))?;
            std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&inner, Some(uid), Some(gid))
                    .with_context(|| format!("giving {} to uid {uid}", inner.display()))?;
            }
        }
        let link = dir.join(sub);
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            Ok(_) => bail!(
                "{} is not the link to the instance's volume it should be",
                link.display()
            ),
            Err(_) => std::os::unix::fs::symlink(Path::new(MOUNT_POINT).join(sub), &link)
                .with_context(|| format!("linking {}", link.display()))?,
        }
    }
    // mkfs and e2fsck make lost+found; nothing of the instance needs it.
    let _ = std::fs::remove_dir(mount_point.join("lost+found"));
    Ok(())
}

fn bytes(size_gb: i64) -> anyhow::Result<u64> {
    u64::try_from(size_gb)
        .ok()
        .filter(|g| *g > 0)
        .and_then(|g| g.checked_mul(1 << 30))
        .with_context(|| format!("a volume of {size_gb} GB"))
}

/// Unmount `mount_point` if it is one. Busy is an error (something of the
/// instance still uses it); a lazy unmount would keep the loop device.
fn unmount(mount_point: &Path) -> anyhow::Result<()> {
    if !is_mount_point(mount_point)? {
        return Ok(());
    }
    run(Command::new("umount").arg(mount_point))
}

/// Whether something is mounted on `path` (in this process's mount
/// namespace).
pub(crate) fn is_mount_point(path: &Path) -> anyhow::Result<bool> {
    let Ok(path) = path.canonicalize() else {
        return Ok(false);
    };
    let table =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mounted = mount_points(&table).any(|p| p == path);
    Ok(mounted)
}

/// The mount points of a mountinfo table (field 5, octal escapes undone).
fn mount_points(table: &str) -> impl Iterator<Item = PathBuf> + '_ {
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digits = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match digits {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Make `root` a shared mount (bound onto itself first if it is not a
/// mount point), so that the volumes mounted under it are shared too. Each
/// datastore's sandbox is a mount namespace that starts as a copy of the
/// host's, volumes of every other instance included (hidden, but there):
/// with private mounts an unmount here would leave those copies mounted,
/// holding the filesystem and its loop device for as long as the other
/// sandboxes live. Shared, the unmount reaches every copy (bubblewrap makes
/// them slaves).
fn share(root: &Path) -> anyhow::Result<()> {
    if !is_mount_point(root)? {
        run(Command::new("mount").arg("--bind").arg(root).arg(root))?;
    }
    run(Command::new("mount").arg("--make-shared").arg(root))
}

/// Make, mount and unmount a small volume under `root`.
fn probe(root: &Path) -> anyhow::Result<()> {
    let dir = root.join(".volume-probe");
    let _ = unmount(&dir.join(MOUNT_POINT));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let volumes = Volumes {
        driver: VolumeDriver::Loop,
    };
    let tried = volumes
        .create(&dir, 1, None)
        .and_then(|()| volumes.release(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    tried
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn mountinfo_paths() {
        let table = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                     95 22 7:3 / /srv/coffer/i\\0401/volume rw,nosuid - ext4 /dev/loop3 rw\n";
        let points: Vec<PathBuf> = mount_points(table).collect();
        assert_eq!(
            points,
            vec![PathBuf::from("/"), PathBuf::from("/srv/coffer/i 1/volume")]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(1).unwrap(), 1 << 30);
        assert!(bytes(0).is_err() && bytes(-1).is_err());
    }

    /// Unmounts the test's shared root when dropped.
    struct Unmount(PathBuf);

    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-R").arg(&self.0).output();
        }
    }

    /// The image's loop device, if one is attached.
    fn loop_device(image: &Path) -> Option<String> {
        let out = Command::new("losetup")
            .args(["-j"])
            .arg(image)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// Fill a file until the filesystem refuses; the bytes written.
    fn fill(path: &Path) -> (u64, std::io::Error) {
        let mut f = std::fs::File::create(path).unwrap();
        let block = vec![7u8; 1 << 20];
        let mut written = 0;
        loop {
            match f.write_all(&block).and_then(|()| f.sync_data()) {
                Ok(()) => written += block.len() as u64,
                Err(e) => return (written, e),
            }
        }
    }

    #[test]
    fn a_loop_volume_is_a_hard_limit_that_grows_and_goes() {
        let root = tempfile::tempdir().unwrap();
        let _unshare = Unmount(root.path().to_path_buf());
        let volumes = Volumes::open(VolumeDriver::Loop, root.path());
        assert_eq!(
            volumes.driver(),
            VolumeDriver::Loop,
            "this host loop-mounts"
        );
        let dir = root.path().join("i1");
        std::fs::create_dir(&dir).unwrap();
        volumes.create(&dir, 1, Some((70999, 70999))).unwrap();
        volumes.create(&dir, 1, Some((70999, 70999))).unwrap();
        let image = dir.join(IMAGE);
        assert!(loop_device(&image).is_some());
        assert!(is_mount_point(&dir.join(MOUNT_POINT)).unwrap());
        use std::os::unix::fs::MetadataExt;
        for sub in SUBDIRS {
            let meta = std::fs::metadata(dir.join(sub)).unwrap();
            assert!(meta.is_dir() && meta.uid() == 70999, "{sub}");
        }
        assert!(!dir.join(MOUNT_POINT).join("lost+found").exists());

        // Full at the volume's size: the host's disk never sees more.
        let (written, e) = fill(&dir.join("data/fill"));
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
        assert!(written > 900 << 20 && written <= 1 << 30, "{written}");
        let allocated = std::fs::metadata(&image).unwrap().blocks() * 512;
        assert!(allocated <= 1 << 30, "{allocated}");

        // Busy: refused while a file is open on it.
        let open = std::fs::File::open(dir.join("data/fill")).unwrap();
        assert!(volumes.grow(&dir, 2, None).is_err());
        drop(open);
        volumes.grow(&dir, 2, None).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("data/fill")).unwrap().len(),
            written
        );
        std::fs::write(dir.join("data/more"), vec![1u8; 100 << 20]).unwrap();

        // A mount namespace copied from this one meanwhile (as every
        // datastore's sandbox is) does not keep the volume mounted.
        let mut other = Command::new("unshare")
            .args(["--mount", "--propagation", "slave", "sleep", "30"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        volumes.release(&dir).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(loop_device(&image).is_none(), "held by another namespace");
        assert!(!is_mount_point(&dir.join(MOUNT_POINT)).unwrap());
        let _ = other.kill();
        let _ = other.wait();
        // Mounted again (a reboot), the data is there.
        volumes.ensure_mounted(&dir, None).unwrap();
        assert!(dir.join("data/more").exists());
        volumes.release(&dir).unwrap();
        assert!(loop_device(&image).is_none());
    }
}

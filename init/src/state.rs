//! The state directory: layout, and the lock that keeps two berths off one state dir.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/berth";
pub const DEFAULT_SOCKET: &str = "/run/berth/control.sock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use state directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "another berth (pid {pid}) is running with state directory {dir}; stop it first (`berth down`)"
    )]
    Locked { dir: PathBuf, pid: String },
}

/// An exclusive hold on a state directory for as long as it lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    pub dir: PathBuf,
}

impl StateLock {
    pub fn acquire(dir: &Path) -> Result<StateLock, StateError> {
        let io = |source| StateError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        // A berth killed a moment ago can leave the lock held for a little while by a
        // container it had just cloned: the child shares the open file description until
        // it closes its descriptors before exec. When the recorded holder is gone, wait
        // for that to pass (bounded) instead of refusing to start.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            file.rewind().map_err(io)?;
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim().to_string();
            if holder_alive(&pid) || std::time::Instant::now() >= deadline {
                return Err(StateError::Locked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StateLock {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
}

/// Whether the process whose pid the lock file records still exists (an unreadable
/// record counts as alive: refuse rather than guess).
fn holder_alive(pid: &str) -> bool {
    match pid.parse::<i32>() {
        Ok(pid) if pid > 0 => {
            // SAFETY: signal 0 only checks that the process exists; nothing is sent.
            let ret = unsafe { libc::kill(pid, 0) };
            ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
        }
        _ => true,
    }
}

/// The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo
/// (`/sys/fs/cgroup` on a pure v2 system, `/sys/fs/cgroup/unified` on a hybrid one).
/// With several, the last one that is reachable: a later mount over a path hides the
/// earlier ones (as when a private mount namespace mounts cgroup2 over the hybrid
/// /sys/fs/cgroup).
pub fn cgroup2_mount() -> Option<PathBuf> {
    // The usual place first: one statfs instead of reading and parsing mountinfo
    // (which grows with every mount of the machine). Whatever is visible at the path is
    // its last mount, as the search below would find.
    const USUAL: &str = "/sys/fs/cgroup";
    if rustix::fs::statfs(USUAL)
        .is_ok_and(|fs| fs.f_type as u64 == libc::CGROUP2_SUPER_MAGIC as u64)
    {
        return Some(PathBuf::from(USUAL));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup2_mounts(&info)
        .map(|(_, mount_point)| PathBuf::from(mount_point))
        .filter(|p| p.join("cgroup.procs").exists())
        .last()
}

/// Every cgroup2 mount in `mountinfo` (the text of /proc/PID/mountinfo), in order, as
/// (root within the hierarchy, mount point).
pub fn cgroup2_mounts(mountinfo: &str) -> impl Iterator<Item = (String, String)> + '_ {
    mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut fields = left.split(' ');
        let root = unescape(fields.nth(3)?);
        Some((root, unescape(fields.next()?)))
    })
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// berth's cgroup subtree name: `berth` for the default state dir; with another state
/// dir (tests, several instances) a name derived from it, so they never share cgroups.
pub fn cgroup_name(state_dir: &Path) -> String {
    if state_dir == Path::new(DEFAULT_STATE_DIR) {
        "berth".to_string()
    } else {
        let h = blake3::hash(state_dir.as_os_str().as_encoded_bytes());
        format!("berth-{}", &h.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Holds the lock of `dir` through a second open file description, as a freshly
    /// cloned child of a killed berth does, with `pid` recorded as its holder.
    fn hold(dir: &Path, pid: &str) -> File {
        std::fs::write(dir.join("lock"), pid).unwrap();
        let f = File::open(dir.join("lock")).unwrap();
        flock(&f, FlockOperation::NonBlockingLockExclusive).unwrap();
        f
    }

    #[test]
    fn a_lock_held_for_a_dead_berth_is_waited_for_a_live_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above pid_max's ceiling of 2^22).
        let held = hold(tmp.path(), "4194305");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let lock = StateLock::acquire(tmp.path()).expect("acquired once released");
        release.join().unwrap();
        let recorded = std::fs::read_to_string(tmp.path().join("lock")).unwrap();
        assert_eq!(recorded, std::process::id().to_string());
        drop(lock);

        let _held = hold(tmp.path(), &std::process::id().to_string());
        let start = std::time::Instant::now();
        match StateLock::acquire(tmp.path()) {
            Err(StateError::Locked { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // Refused at once, not after the wait meant for a dead holder.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}

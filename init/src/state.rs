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
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(StateError::Locked {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_string(),
            });
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

/// The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo
/// (`/sys/fs/cgroup` on a pure v2 system, `/sys/fs/cgroup/unified` on a hybrid one).
/// With several, the last one that is reachable: a later mount over a path hides the
/// earlier ones (as when a private mount namespace mounts cgroup2 over the hybrid
/// /sys/fs/cgroup).
pub fn cgroup2_mount() -> Option<PathBuf> {
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

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
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next() != Some("cgroup2") {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
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

//! A small cgroup v2 writer.
//!
//! It works on files below a directory given to it (the real hierarchy, e.g.
//! /sys/fs/cgroup or /sys/fs/cgroup/unified on a hybrid host, or a temp dir in tests)
//! and never assumes a controller exists: limits whose controller is not available are
//! reported back as [`Unenforced`], so the caller can warn instead of pretending.
//!
//! Layout: `<root>/<subtree>` is berth's (e.g. `berth`), with one leaf cgroup per
//! container below it. Only leaves hold processes (cgroup v2's no-internal-process
//! rule), so berth's subtree can delegate controllers to the containers.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

/// A cgroup operation that failed: which cgroup (container name or berth's subtree),
/// what was done, on which file.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup of {owner}: cannot {action} {path}: {source}")]
    Io {
        owner: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup of {owner}: {path} still has processes after {waited:?}")]
    Busy {
        owner: String,
        path: PathBuf,
        waited: Duration,
    },
    #[error("cgroup of {owner}: invalid name {name:?} (must be one path component)")]
    InvalidName { owner: String, name: String },
    #[error("cgroup of {owner}: cannot parse {path}: {content:?}")]
    Parse {
        owner: String,
        path: PathBuf,
        content: String,
    },
}

/// Resource limits for one container, in cgroup v2 terms. `None` leaves the kernel's
/// default (no limit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// memory.max, bytes.
    pub memory_max: Option<u64>,
    /// memory.high, bytes.
    pub memory_high: Option<u64>,
    /// memory.swap.max, bytes.
    pub memory_swap_max: Option<u64>,
    /// cpu.max as a number of CPUs (1.5 = 150000 per 100000 µs period).
    pub cpus: Option<f64>,
    /// cpu.weight, 1..=10000.
    pub cpu_weight: Option<u64>,
    /// pids.max.
    pub pids_max: Option<u64>,
    /// io.weight, 1..=10000.
    pub io_weight: Option<u64>,
    /// cpuset.cpus, e.g. "0-1,3".
    pub cpuset_cpus: Option<String>,
}

/// The CFS period berth uses for cpu.max, in µs.
pub const CPU_PERIOD_US: u64 = 100_000;

/// A limit that was asked for but could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unenforced {
    pub container: String,
    /// The limit in user terms: "memory", "memory high", "swap", "cpu", "cpu weight",
    /// "pids", "io weight", "cpuset".
    pub limit: &'static str,
    pub controller: &'static str,
    /// Why: the controller is not available, or (controller available) the kernel has no
    /// such file, e.g. memory.swap.max without swap accounting.
    pub missing_file: Option<&'static str>,
}

impl fmt::Display for Unenforced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {}: {} limit not enforced: ",
            self.container, self.limit
        )?;
        match self.missing_file {
            None => write!(f, "cgroup controller `{}` not available", self.controller),
            Some(file) => write!(
                f,
                "the kernel has no {file} (controller `{}`)",
                self.controller
            ),
        }
    }
}

/// What cgroup.events says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events {
    /// Some process lives in this cgroup or below.
    pub populated: bool,
    /// The cgroup is frozen (all processes stopped).
    pub frozen: bool,
}

/// berth's subtree of a cgroup v2 hierarchy.
#[derive(Debug, Clone)]
pub struct CgroupTree {
    path: PathBuf,
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    container: String,
    path: PathBuf,
}

fn io_err(owner: &str, action: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        owner: owner.to_owned(),
        action,
        path: path.to_owned(),
        source,
    }
}

fn read(owner: &str, path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| io_err(owner, "read", path, e))
}

/// One write() of `value`, as cgroup files expect (no create, no truncate games).
fn write(owner: &str, path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(owner, "open", path, e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| io_err(owner, "write", path, e))
}

fn check_name(owner: &str, name: &str) -> Result<(), CgroupError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CgroupError::InvalidName {
            owner: owner.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The controllers listed in `dir/cgroup.controllers`.
pub fn available_controllers(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let path = dir.join("cgroup.controllers");
    Ok(read("berth", &path)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Enables the `wanted` controllers that `dir` has for its children (writes
/// `+name` to `dir/cgroup.subtree_control`); returns the wanted ones `dir` does not
/// have. For berth's own subtree, or, when berth owns the machine, the root.
pub fn enable_controllers(dir: &Path, wanted: &[&str]) -> Result<Vec<String>, CgroupError> {
    let available = available_controllers(dir)?;
    let (have, missing): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .partition(|c| available.iter().any(|a| a == *c));
    if !have.is_empty() {
        let line = have
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        write("berth", &dir.join("cgroup.subtree_control"), &line)?;
    }
    Ok(missing.into_iter().map(str::to_owned).collect())
}

/// Every controller a limit may need.
pub const CONTROLLERS: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];

impl CgroupTree {
    /// Creates (or reuses) `root/name` and delegates to its children every controller it
    /// has. Does not touch `root`'s own files: enabling controllers there is the
    /// business of whoever owns the root (berth as PID 1: `enable_controllers(root)`).
    pub fn create(root: &Path, name: &str) -> Result<CgroupTree, CgroupError> {
        check_name("berth", name)?;
        let path = root.join(name);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("berth", "create", &path, e)),
        }
        enable_controllers(&path, &CONTROLLERS)?;
        Ok(CgroupTree { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (or reuses) the cgroup of `container`.
    pub fn create_cgroup(&self, container: &str) -> Result<Cgroup, CgroupError> {
        check_name(container, container)?;
        let path = self.path.join(container);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(container, "create", &path, e)),
        }
        Ok(Cgroup {
            container: container.to_owned(),
            path,
        })
    }

    /// The cgroup of `container`, without creating it.
    pub fn cgroup(&self, container: &str) -> Cgroup {
        Cgroup {
            container: container.to_owned(),
            path: self.path.join(container),
        }
    }

    /// The container cgroups in the subtree (sorted), e.g. those a berth that died left.
    pub fn children(&self) -> Result<Vec<String>, CgroupError> {
        let rd = fs::read_dir(&self.path).map_err(|e| io_err("berth", "read", &self.path, e))?;
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes berth's subtree (only when every container cgroup is gone).
    pub fn remove(self) -> Result<(), CgroupError> {
        fs::remove_dir(&self.path).map_err(|e| io_err("berth", "remove", &self.path, e))
    }
}

impl Cgroup {
    /// A cgroup at an arbitrary path (e.g. found again after a berth upgrade).
    pub fn at(container: impl Into<String>, path: impl Into<PathBuf>) -> Cgroup {
        Cgroup {
            container: container.into(),
            path: path.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    /// An fd of the directory, for clone3's CLONE_INTO_CGROUP.
    pub fn open_fd(&self) -> Result<OwnedFd, CgroupError> {
        rustix::fs::open(
            &self.path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&self.container, "open", &self.path, e.into()))
    }

    /// The controllers this cgroup can use (enabled in its parent).
    pub fn controllers(&self) -> Result<Vec<String>, CgroupError> {
        let path = self.path.join("cgroup.controllers");
        Ok(read(&self.container, &path)?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Writes every limit whose controller is available; returns the limits that are
    /// not enforced (nothing is written for them). A write the kernel refuses (e.g. a
    /// value out of range) is an error.
    pub fn apply_limits(&self, limits: &Limits) -> Result<Vec<Unenforced>, CgroupError> {
        let controllers = self.controllers()?;
        let mut writes: Vec<(&'static str, &'static str, &'static str, String)> = Vec::new();
        let mut add = |limit, controller, file, value: Option<String>| {
            if let Some(value) = value {
                writes.push((limit, controller, file, value));
            }
        };
        add(
            "memory",
            "memory",
            "memory.max",
            limits.memory_max.map(|v| v.to_string()),
        );
        add(
            "memory high",
            "memory",
            "memory.high",
            limits.memory_high.map(|v| v.to_string()),
        );
        add(
            "swap",
            "memory",
            "memory.swap.max",
            limits.memory_swap_max.map(|v| v.to_string()),
        );
        add("cpu", "cpu", "cpu.max", limits.cpus.map(cpu_max));
        add(
            "cpu weight",
            "cpu",
            "cpu.weight",
            limits.cpu_weight.map(|v| v.to_string()),
        );
        add(
            "pids",
            "pids",
            "pids.max",
            limits.pids_max.map(|v| v.to_string()),
        );
        add(
            "io weight",
            "io",
            "io.weight",
            limits.io_weight.map(|v| format!("default {v}")),
        );
        add(
            "cpuset",
            "cpuset",
            "cpuset.cpus",
            limits.cpuset_cpus.clone(),
        );

        let mut unenforced = Vec::new();
        for (limit, controller, file, value) in writes {
            let mut skipped = Unenforced {
                container: self.container.clone(),
                limit,
                controller,
                missing_file: None,
            };
            if !controllers.iter().any(|c| c == controller) {
                unenforced.push(skipped);
                continue;
            }
            let path = self.path.join(file);
            if !path.exists() {
                skipped.missing_file = Some(file);
                unenforced.push(skipped);
                continue;
            }
            write(&self.container, &path, &value)?;
        }
        Ok(unenforced)
    }

    /// The pids in this cgroup (not below it).
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let path = self.path.join("cgroup.procs");
        let text = read(&self.container, &path)?;
        text.lines()
            .map(|l| {
                l.trim().parse().map_err(|_| CgroupError::Parse {
                    owner: self.container.clone(),
                    path: path.clone(),
                    content: l.to_owned(),
                })
            })
            .collect()
    }

    pub fn events(&self) -> Result<Events, CgroupError> {
        let path = self.path.join("cgroup.events");
        let text = read(&self.container, &path)?;
        let mut events = Events::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("populated", v)) => events.populated = v.trim() == "1",
                Some(("frozen", v)) => events.frozen = v.trim() == "1",
                _ => {}
            }
        }
        Ok(events)
    }

    pub fn populated(&self) -> Result<bool, CgroupError> {
        Ok(self.events()?.populated)
    }

    /// SIGKILLs every process in the cgroup and below, atomically with respect to
    /// forks (cgroup.kill, Linux 5.14).
    pub fn kill(&self) -> Result<(), CgroupError> {
        write(&self.container, &self.path.join("cgroup.kill"), "1")
    }

    /// Asks the kernel to freeze the cgroup; see `wait_frozen`.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        write(&self.container, &self.path.join("cgroup.freeze"), "1")
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        write(&self.container, &self.path.join("cgroup.freeze"), "0")
    }

    /// Waits until cgroup.events says `frozen` is `frozen`.
    pub fn wait_frozen(&self, frozen: bool, timeout: Duration) -> Result<bool, CgroupError> {
        self.wait_until(timeout, |e| e.frozen == frozen)
    }

    /// Waits until no process is left in the cgroup.
    pub fn wait_empty(&self, timeout: Duration) -> Result<bool, CgroupError> {
        self.wait_until(timeout, |e| !e.populated)
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(Events) -> bool,
    ) -> Result<bool, CgroupError> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self.events()?) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the (empty) cgroup.
    pub fn remove(&self) -> Result<(), CgroupError> {
        fs::remove_dir(&self.path).map_err(|e| io_err(&self.container, "remove", &self.path, e))
    }

    /// Kills everything in it, waits until it is empty, removes it.
    pub fn kill_and_remove(&self, timeout: Duration) -> Result<(), CgroupError> {
        // Usually its processes are gone already: one rmdir, which the kernel refuses
        // (EBUSY) while a process is left.
        match fs::remove_dir(&self.path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {}
        }
        if self.populated()? {
            self.kill()?;
            if !self.wait_empty(timeout)? {
                return Err(CgroupError::Busy {
                    owner: self.container.clone(),
                    path: self.path.clone(),
                    waited: timeout,
                });
            }
        }
        self.remove()
    }
}

/// cpu.max for a number of CPUs: "150000 100000" for 1.5; "max 100000" for 0 or less
/// (no limit).
pub fn cpu_max(cpus: f64) -> String {
    if cpus.is_finite() && cpus > 0.0 {
        let quota = ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000);
        format!("{quota} {CPU_PERIOD_US}")
    } else {
        format!("max {CPU_PERIOD_US}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fake hierarchy: the kernel's files are plain files here.
    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(dir.path().join("cgroup.subtree_control"), "").unwrap();
        dir
    }

    fn fake_files(dir: &Path, controllers: &str, files: &[&str]) {
        fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        for file in files {
            fs::write(dir.join(file), "").unwrap();
        }
    }

    #[test]
    fn limits_are_written_where_the_controller_exists_and_reported_where_not() {
        let root = fake_root("cpu memory pids");
        let berth_dir = root.path().join("berth");
        fs::create_dir(&berth_dir).unwrap();
        fake_files(&berth_dir, "cpu memory", &[]);
        let tree = CgroupTree::create(root.path(), "berth").unwrap();
        assert_eq!(
            fs::read_to_string(berth_dir.join("cgroup.subtree_control")).unwrap(),
            "+cpu +memory"
        );

        let cg = tree.create_cgroup("db").unwrap();
        fake_files(
            cg.path(),
            "cpu memory",
            &["memory.max", "memory.high", "cpu.max", "cpu.weight"],
        );
        let limits = Limits {
            memory_max: Some(512 << 20),
            memory_swap_max: Some(0),
            cpus: Some(1.5),
            pids_max: Some(256),
            ..Limits::default()
        };
        let unenforced = cg.apply_limits(&limits).unwrap();
        assert_eq!(
            fs::read_to_string(cg.path().join("memory.max")).unwrap(),
            "536870912"
        );
        assert_eq!(
            fs::read_to_string(cg.path().join("cpu.max")).unwrap(),
            "150000 100000"
        );
        assert_eq!(
            fs::read_to_string(cg.path().join("memory.high")).unwrap(),
            "",
            "not asked"
        );
        let messages: Vec<String> = unenforced.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "container db: swap limit not enforced: the kernel has no memory.swap.max (controller `memory`)",
                "container db: pids limit not enforced: cgroup controller `pids` not available",
            ]
        );
    }

    #[test]
    fn events_procs_and_errors_name_the_file_and_container() {
        let root = fake_root("");
        let tree = CgroupTree::create(root.path(), "berth");
        // No cgroup.controllers in the new (fake) dir: the error names the file.
        let err = tree.unwrap_err().to_string();
        assert!(err.starts_with("cgroup of berth: cannot read "), "{err}");
        assert!(err.contains("berth/cgroup.controllers"), "{err}");

        let cg = Cgroup::at("web", root.path());
        fs::write(root.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        fs::write(root.path().join("cgroup.procs"), "12\n34\n").unwrap();
        assert_eq!(
            cg.events().unwrap(),
            Events {
                populated: true,
                frozen: false
            }
        );
        assert_eq!(cg.procs().unwrap(), vec![12, 34]);
        let err = Cgroup::at("web", root.path().join("nope"))
            .kill()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cgroup of web: cannot open "), "{err}");
        assert!(
            err.ends_with("nope/cgroup.kill: No such file or directory (os error 2)"),
            "{err}"
        );
        assert!(CgroupTree::create(root.path(), "../x").is_err());
    }

    #[test]
    fn cpu_max_uses_a_100ms_period() {
        assert_eq!(cpu_max(0.5), "50000 100000");
        assert_eq!(cpu_max(2.0), "200000 100000");
        assert_eq!(cpu_max(0.0), "max 100000");
    }
}

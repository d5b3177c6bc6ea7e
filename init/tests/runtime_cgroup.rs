//! The cgroup v2 writer and CLONE_INTO_CGROUP against the real hierarchy (needs root and
//! a cgroup2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). Each
//! test works in its own subtree and removes it, whatever happens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::require;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_init::runtime::cgroup::{self, Cgroup, CgroupTree, Limits};
use berth_init::runtime::wait::{self, ExitStatus};
use berth_init::runtime::{NamespaceMode, SpawnConfig, spawn};

/// The cgroup v2 hierarchy of this machine.
fn v2_root() -> Option<PathBuf> {
    if !require(
        rustix::process::geteuid().is_root(),
        "cgroup tests must run as root",
    ) {
        return None;
    }
    let found = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists());
    require(
        found.is_some(),
        "a cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified",
    )
    .then_some(found)
    .flatten()
}

/// berth's test subtree; on drop kills what is left in its cgroups and removes them.
struct Subtree {
    tree: CgroupTree,
    cgroups: Vec<Cgroup>,
}

impl Subtree {
    fn new(root: &Path, test: &str) -> Subtree {
        let name = format!("berth-test-{test}-{}", std::process::id());
        Subtree {
            tree: CgroupTree::create(root, &name).unwrap(),
            cgroups: Vec::new(),
        }
    }

    fn cgroup(&mut self, container: &str) -> Cgroup {
        let cg = self.tree.create_cgroup(container).unwrap();
        self.cgroups.push(cg.clone());
        cg
    }
}

impl Drop for Subtree {
    fn drop(&mut self) {
        for cg in &self.cgroups {
            if let Err(e) = cg.kill_and_remove(Duration::from_secs(5)) {
                eprintln!("cleanup: {e}");
            }
        }
        if let Err(e) = fs::remove_dir(self.tree.path()) {
            eprintln!("cleanup: {}: {e}", self.tree.path().display());
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2500 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_container_is_born_in_its_cgroup_and_kill_takes_its_grandchildren() {
    let Some(root) = v2_root() else { return };
    let mut subtree = Subtree::new(&root, "kill");
    let cg = subtree.cgroup("web");

    let mut config = SpawnConfig::new(
        "web",
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 1000 & sleep 1000 & wait".into(),
        ],
    );
    // berth's pid namespace, so that the grandchild would outlive the container's init
    // if cgroup.kill did not take it too.
    config.namespaces.pid = NamespaceMode::Host;
    config.cgroup = Some(cg.open_fd().unwrap());
    let child = spawn(&config).unwrap();

    let relative = cg.path().strip_prefix(&root).unwrap();
    let line = fs::read_to_string(format!("/proc/{}/cgroup", child.pid)).unwrap();
    assert!(
        line.lines()
            .any(|l| l == format!("0::/{}", relative.display())),
        "born in the container's cgroup: {line}"
    );
    wait_for("sh and its two sleeps", || cg.procs().unwrap().len() == 3);
    assert!(cg.populated().unwrap());

    cg.freeze().unwrap();
    assert!(cg.wait_frozen(true, Duration::from_secs(5)).unwrap());
    cg.thaw().unwrap();
    assert!(cg.wait_frozen(false, Duration::from_secs(5)).unwrap());

    let procs = cg.procs().unwrap();
    cg.kill().unwrap();
    assert_eq!(
        wait::wait(&child.pidfd).unwrap(),
        ExitStatus::Signaled {
            signal: libc::SIGKILL,
            core_dumped: false
        }
    );
    assert!(
        cg.wait_empty(Duration::from_secs(5)).unwrap(),
        "every process is gone"
    );
    for pid in procs {
        // A pid still present could only be a zombie of ours (reaped above) or reused.
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(!status.contains("State:\tS"), "pid {pid} still sleeping");
    }
}

#[test]
fn limits_without_a_controller_are_reported_not_pretended() {
    let Some(root) = v2_root() else { return };
    let mut subtree = Subtree::new(&root, "limits");
    let cg = subtree.cgroup("db");
    let controllers = cg.controllers().unwrap();
    let limits = Limits {
        memory_max: Some(512 << 20),
        cpus: Some(1.5),
        pids_max: Some(256),
        ..Limits::default()
    };
    let unenforced = cg.apply_limits(&limits).unwrap();
    for (limit, controller, file, value) in [
        ("memory", "memory", "memory.max", "536870912"),
        ("cpu", "cpu", "cpu.max", "150000 100000"),
        ("pids", "pids", "pids.max", "256"),
    ] {
        let reported = unenforced.iter().find(|u| u.limit == limit);
        if controllers.iter().any(|c| c == controller) {
            assert!(reported.is_none(), "{limit} is enforceable here");
            assert_eq!(
                fs::read_to_string(cg.path().join(file)).unwrap().trim(),
                value
            );
        } else {
            let message = reported.map(ToString::to_string);
            assert_eq!(
                message.as_deref(),
                Some(format!("container db: {limit} limit not enforced: cgroup controller `{controller}` not available").as_str())
            );
            assert!(!cg.path().join(file).exists());
        }
    }
    // On the build machines (hybrid cgroups) the v2 hierarchy has none of them.
    let hybrid = root.ends_with("unified");
    if hybrid {
        assert_eq!(unenforced.len(), 3, "{unenforced:?}");
    }
    eprintln!("controllers here: {controllers:?}; unenforced: {unenforced:#?}");
    let _ = cgroup::available_controllers(&root).unwrap();
}

#[test]
fn an_empty_cgroup_is_removed_and_a_busy_one_is_not() {
    let Some(root) = v2_root() else { return };
    let mut subtree = Subtree::new(&root, "remove");
    let cg = subtree.cgroup("idle");
    let mut config = SpawnConfig::new("idle", vec!["/bin/sleep".into(), "1000".into()]);
    config.cgroup = Some(cg.open_fd().unwrap());
    let child = spawn(&config).unwrap();
    let err = cg.remove().unwrap_err().to_string();
    assert!(err.starts_with("cgroup of idle: cannot remove "), "{err}");
    cg.kill_and_remove(Duration::from_secs(5)).unwrap();
    assert!(!cg.path().exists());
    assert!(!wait::wait(&child.pidfd).unwrap().success());
}

//! `spawn` lets the container's init share berth's memory until it execs (CLONE_VM |
//! CLONE_VFORK, as posix_spawn does). Every fd the child opens while it sets the
//! container up (mount trees, resolved targets, the old root) is stored in the plan,
//! which is berth's memory: those are numbers in the child's fd table, and berth must
//! forget them, never close them. Closing them would close whatever berth's other
//! threads had opened under the same numbers meanwhile.
//!
//! A test binary of its own, so that no other test opens or closes fds or starts
//! processes meanwhile. Needs
//! root; under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_init::runtime::wait::{self, ExitStatus};
use berth_init::runtime::{Mount, Rootfs, SpawnConfig, Stdio, spawn};

/// The children of every thread of this process.
fn children() -> Vec<String> {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// This process's open fds.
fn open_fds() -> BTreeSet<i32> {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Opens batches of /dev/null fds and checks each batch is still open and still
/// /dev/null before closing it, until `stop`. Returns how many batches it checked and
/// the first fd it found closed or replaced under it.
fn guard_fds(stop: &AtomicBool) -> (u64, Option<String>) {
    let null = fs::metadata("/dev/null").unwrap().rdev();
    let mut batches = 0;
    while !stop.load(Ordering::Relaxed) {
        let fds: Vec<OwnedFd> = (0..16)
            .map(|_| fs::File::open("/dev/null").unwrap().into())
            .collect();
        std::thread::yield_now();
        for fd in &fds {
            match rustix::fs::fstat(fd) {
                Ok(st) if st.st_rdev == null => {}
                Ok(_) => return (batches, Some(format!("fd {} was replaced", fd.as_raw_fd()))),
                Err(e) => return (batches, Some(format!("fd {}: {e}", fd.as_raw_fd()))),
            }
        }
        batches += 1;
    }
    (batches, None)
}

#[test]
fn spawning_leaves_berths_fds_as_they_were() {
    if !common::root() {
        return;
    }
    // A directory rootfs with a bind, a volume and a tmpfs: the child fills a dozen
    // slots of its plan with fds.
    let Some(busybox) = common::busybox() else {
        return;
    };
    let (rootfs, busybox) = common::busybox_rootfs(&busybox);
    let volume = tempfile::tempdir().unwrap();
    let config = |argv: &[&str]| {
        let mut config = SpawnConfig::new("fds", argv.iter().map(|a| a.to_string()).collect());
        config.rootfs = Rootfs::Dir(rootfs.path().to_owned());
        config.stdio = [Stdio::Null, Stdio::Null, Stdio::Null];
        config.mounts = vec![
            busybox.clone(),
            Mount::Volume {
                src: volume.path().to_owned(),
                dst: "/data".into(),
                ro: false,
            },
            Mount::Tmpfs {
                dst: "/tmp".into(),
                size: Some(1 << 20),
                mode: 0o1777,
            },
        ];
        config
    };

    let before = open_fds();
    let stop = AtomicBool::new(false);
    let (batches, closed) = std::thread::scope(|s| {
        let guard = s.spawn(|| guard_fds(&stop));
        for i in 0..40 {
            let child = spawn(&config(&["/bin/sh", "-c", "echo x > /data/x"]))
                .unwrap_or_else(|e| panic!("spawn {i}: {e}"));
            assert_eq!(wait::wait(&child.pidfd).unwrap(), ExitStatus::Exited(0));
            // A child that fails after filling its slots (no such program).
            let err = spawn(&config(&["/nope"])).expect_err("/nope does not exist");
            assert!(err.to_string().contains("exec /nope"), "{err}");
        }
        stop.store(true, Ordering::Relaxed);
        guard.join().unwrap()
    });
    assert_eq!(closed, None, "after {batches} batches");
    assert!(batches > 0);
    assert_eq!(open_fds(), before, "no fd leaked or closed");
    // Every container was reaped above; the helpers that made their network
    // namespaces were reaped by spawn.
    assert_eq!(children(), Vec::<String>::new(), "no process left behind");
    assert_eq!(fs::read_to_string(volume.path().join("x")).unwrap(), "x\n");
}

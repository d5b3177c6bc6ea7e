//! `spawn` lets the container's init share berth's memory until it execs (CLONE_VM |
//! CLONE_VFORK). What the init then changes for its whole address space it changes for
//! berth too, so it may only do that in a child of its own:
//!
//! - switching to the container's user: the kernel makes the address space of a
//!   process whose ids change non-dumpable. Berth would stay non-dumpable (no core
//!   dump, and only CAP_SYS_PTRACE may then `setns` on the pidfd of the helper that
//!   makes a container's network namespace, see netns.rs);
//! - allowing transparent huge pages again when berth runs without them, also when
//!   berth inherited that setting instead of making it itself.
//!
//! A test binary of its own: it changes process-wide settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use berth_init::runtime::wait::{self, ExitStatus};
use berth_init::runtime::{Mount, Rootfs, SpawnConfig, Stdio, User, spawn};

fn config(rootfs: &Path, busybox: &Mount, uid: u32) -> SpawnConfig {
    let mut config = SpawnConfig::new("mm", vec!["/bin/sh".into(), "-c".into(), "true".into()]);
    config.rootfs = Rootfs::Dir(rootfs.to_owned());
    config.stdio = [Stdio::Null, Stdio::Null, Stdio::Null];
    config.mounts = vec![busybox.clone()];
    config.user = User {
        uid,
        gid: uid,
        groups: Vec::new(),
    };
    config
}

fn prctl_get(option: libc::c_int) -> libc::c_int {
    // SAFETY: a PR_GET_* prctl with integer arguments only.
    unsafe { libc::prctl(option, 0, 0, 0, 0) }
}

#[test]
fn spawning_leaves_berths_address_space_settings_as_they_were() {
    if !common::root() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let (rootfs, busybox) = common::busybox_rootfs(&busybox);
    let run = |uid: u32| {
        let child = spawn(&config(rootfs.path(), &busybox, uid))
            .unwrap_or_else(|e| panic!("uid {uid}: {e}"));
        assert_eq!(wait::wait(&child.pidfd).unwrap(), ExitStatus::Exited(0));
    };

    // This thread (the clones inherit its credentials) without CAP_SYS_PTRACE, as
    // berth may run where it lacks it.
    let mut caps = rustix::thread::capabilities(None).unwrap();
    caps.effective
        .remove(rustix::thread::CapabilitySet::SYS_PTRACE);
    caps.permitted
        .remove(rustix::thread::CapabilitySet::SYS_PTRACE);
    rustix::thread::set_capabilities(None, caps).unwrap();

    assert_eq!(prctl_get(libc::PR_GET_DUMPABLE), 1);
    run(1000);
    assert_eq!(
        prctl_get(libc::PR_GET_DUMPABLE),
        1,
        "a container's user made berth non-dumpable"
    );
    // The next container joins its helper's network namespace on the helper's pidfd,
    // which needs CAP_SYS_PTRACE if berth's memory is non-dumpable.
    run(0);

    // If the init cannot join its helper's namespace (here: berth non-dumpable and no
    // CAP_SYS_PTRACE; elsewhere a security module may deny the access), it makes one
    // itself: its own namespace, only loopback, and loopback up (flags 0x9).
    // SAFETY: prctl with integer arguments only.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }, 0);
    let mut own_net = config(rootfs.path(), &busybox, 0);
    own_net.argv = vec![
        "/bin/sh".into(),
        "-c".into(),
        "test \"$(/bin/busybox ls /sys/class/net)\" = lo && \
         test \"$(/bin/busybox cat /sys/class/net/lo/flags)\" = 0x9 && \
         test \"$(/bin/busybox readlink /proc/self/ns/net)\" != \"$BERTH_NET\""
            .into(),
    ];
    own_net.env = vec![(
        "BERTH_NET".into(),
        fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    )];
    let child = spawn(&own_net).unwrap_or_else(|e| panic!("non-dumpable berth: {e}"));
    assert_eq!(wait::wait(&child.pidfd).unwrap(), ExitStatus::Exited(0));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }, 0);

    // Huge pages off for this process, not through `disable_thp` (as a berth started
    // by one that disabled them inherits it).
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) },
        0
    );
    run(0);
    assert_eq!(
        prctl_get(libc::PR_GET_THP_DISABLE),
        1,
        "a container allowed huge pages for berth again"
    );
}

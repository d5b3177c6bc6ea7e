//! The container's filesystem layout that berth provides: the host rootfs, /proc,
//! /sys, /dev, and the paths hidden from or read-only in the container, as ops.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::mount::MountAttrFlags;

use super::config::NamespaceMode;
use super::ops::{Create, Op, Resolve};
use super::plan::Builder;
use super::spawn::SpawnError;

/// Host directories bound read-only into a `Rootfs::Host` container.
const HOST_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib64", "lib32", "etc"];

/// Paths hidden from the container (crun's and Docker's defaults), below /proc or /sys.
const MASKED_PROC: [&str; 10] = [
    "acpi",
    "asound",
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "scsi",
    "interrupts",
];
const MASKED_SYS: [&str; 2] = ["firmware", "devices/virtual/powercap"];
/// Paths below /proc made read-only.
const READONLY_PROC: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// The flags of the kernel's filesystems in the container: no setuid, exec or devices.
const NOSUID_NOEXEC_NODEV: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_NOSUID
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC)
    .union(MountAttrFlags::MOUNT_ATTR_NODEV);

/// Device nodes created in the container's /dev: (name, major, minor).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// The slots of berth's own mounts, for the ops that work below them.
#[derive(Debug, Clone, Copy)]
pub(super) struct System {
    pub proc_fs: usize,
    pub sys_fs: usize,
    pub dev: usize,
}

/// `Rootfs::Host`: a tmpfs root with the host's system directories bound read-only
/// (usr-merge symlinks recreated as symlinks) and private /tmp, /run, /var. Returns the
/// root's slot; the root is attached.
pub(super) fn host_root(b: &mut Builder<'_>, container: &str) -> Result<usize, SpawnError> {
    let mut host = Vec::new();
    for name in HOST_DIRS {
        let path = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let label = format!("rootfs host: /{name}");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| SpawnError::Prepare {
                container: container.to_owned(),
                what: format!("read symlink {}", path.display()),
                source: e,
            })?;
            host.push((label, name, Err(target)));
        } else if meta.is_dir() {
            let slot = b.slot();
            let cpath = b.cstring(&label, path.as_os_str().as_bytes())?;
            b.op(
                label.clone(),
                Op::CloneTree {
                    path: cpath,
                    readonly: true,
                    slot,
                },
            );
            host.push((label, name, Ok(slot)));
        }
    }
    let root = b.new_fs(
        "rootfs host: tmpfs root",
        "tmpfs",
        &[],
        &[("mode", "0755")],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?;
    b.op("rootfs host: attach root", Op::AttachRoot { slot: root });
    for (label, name, what) in host {
        match what {
            Err(target) => {
                let target = b.cstring(&label, target.as_os_str().as_bytes())?;
                let cname = b.cstring(&label, name)?;
                b.op(
                    label,
                    Op::Symlink {
                        base: root,
                        target,
                        name: cname,
                    },
                );
            }
            Ok(slot) => {
                let to = b.resolve(&label, root, Resolve::InRoot, Path::new(name), Create::Dir)?;
                b.attach(&label, slot, to);
            }
        }
    }
    for (name, mode) in [("tmp", "1777"), ("run", "0755"), ("var", "0755")] {
        let label = format!("rootfs host: tmpfs /{name}");
        let fs = b.new_fs(
            &label,
            "tmpfs",
            &[],
            &[("mode", mode)],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )?;
        let to = b.resolve(&label, root, Resolve::InRoot, Path::new(name), Create::Dir)?;
        b.attach(&label, fs, to);
    }
    Ok(root)
}

/// /proc, a minimal /dev with pts, shm and mqueue, and /sys (read-only, with
/// /sys/fs/cgroup in a new cgroup namespace). Sysfs shows the network namespace it is
/// mounted in, so a network namespace made beside the container (`join_net`, netns.rs)
/// is joined just before /sys, as late as it can be.
pub(super) fn system_mounts(
    b: &mut Builder<'_>,
    root: usize,
    cgroup_ns: &NamespaceMode,
    ipc_ns: &NamespaceMode,
    join_net: Option<Op>,
) -> Result<System, SpawnError> {
    // ---- /proc, /dev, /sys
    let proc_fs = b.new_fs("mount /proc", "proc", &[], &[], NOSUID_NOEXEC_NODEV)?;
    let to = b.resolve(
        "mount /proc",
        root,
        Resolve::InRoot,
        Path::new("proc"),
        Create::Dir,
    )?;
    b.attach("mount /proc", proc_fs, to);

    let dev = b.new_fs(
        "mount /dev",
        "tmpfs",
        &[],
        &[("mode", "0755"), ("size", "65536k")],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    let to = b.resolve(
        "mount /dev",
        root,
        Resolve::InRoot,
        Path::new("dev"),
        Create::Dir,
    )?;
    b.attach("mount /dev", dev, to);
    for (name, major, minor) in DEVICES {
        let cname = b.cstring("device", name)?;
        b.op(
            format!("create /dev/{name}"),
            Op::Mknod {
                base: dev,
                name: cname,
                mode: 0o666,
                major,
                minor,
            },
        );
    }
    for (name, target) in DEV_SYMLINKS {
        let (cname, ctarget) = (b.cstring("symlink", name)?, b.cstring("symlink", target)?);
        b.op(
            format!("create /dev/{name}"),
            Op::Symlink {
                base: dev,
                target: ctarget,
                name: cname,
            },
        );
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)] {
        let cname = b.cstring("dir", name)?;
        b.op(
            format!("create /dev/{name}"),
            Op::Mkdir {
                base: dev,
                name: cname,
                mode,
            },
        );
    }
    let pts = b.new_fs(
        "mount /dev/pts",
        "devpts",
        &["newinstance"],
        &[("ptmxmode", "0666"), ("mode", "0620"), ("gid", "5")],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    let to = b.resolve(
        "mount /dev/pts",
        dev,
        Resolve::Beneath,
        Path::new("pts"),
        Create::Nothing,
    )?;
    b.attach("mount /dev/pts", pts, to);
    let shm = b.new_fs(
        "mount /dev/shm",
        "tmpfs",
        &[],
        &[("mode", "1777"), ("size", "65536k")],
        NOSUID_NOEXEC_NODEV,
    )?;
    let to = b.resolve(
        "mount /dev/shm",
        dev,
        Resolve::Beneath,
        Path::new("shm"),
        Create::Nothing,
    )?;
    b.attach("mount /dev/shm", shm, to);
    if *ipc_ns == NamespaceMode::New {
        let mq = b.new_fs("mount /dev/mqueue", "mqueue", &[], &[], NOSUID_NOEXEC_NODEV)?;
        let to = b.resolve(
            "mount /dev/mqueue",
            dev,
            Resolve::Beneath,
            Path::new("mqueue"),
            Create::Nothing,
        )?;
        b.attach("mount /dev/mqueue", mq, to);
    }

    if let Some(join) = join_net {
        b.op("create the net namespace", join);
    }
    let sys_fs = b.new_fs(
        "mount /sys",
        "sysfs",
        &[],
        &[],
        NOSUID_NOEXEC_NODEV | MountAttrFlags::MOUNT_ATTR_RDONLY,
    )?;
    let to = b.resolve(
        "mount /sys",
        root,
        Resolve::InRoot,
        Path::new("sys"),
        Create::Dir,
    )?;
    b.attach("mount /sys", sys_fs, to);
    if *cgroup_ns == NamespaceMode::New {
        let label = "mount /sys/fs/cgroup";
        let cg = b.new_fs(
            label,
            "cgroup2",
            &[],
            &[],
            NOSUID_NOEXEC_NODEV | MountAttrFlags::MOUNT_ATTR_RDONLY,
        )?;
        let to = b.resolve(
            label,
            sys_fs,
            Resolve::Beneath,
            Path::new("fs/cgroup"),
            Create::Nothing,
        )?;
        b.attach(label, cg, to);
    }

    Ok(System {
        proc_fs,
        sys_fs,
        dev,
    })
}

/// Masked (crun's defaults) and read-only paths below /proc and /sys.
pub(super) fn hide(b: &mut Builder<'_>, system: System) -> Result<(), SpawnError> {
    let System {
        proc_fs,
        sys_fs,
        dev,
    } = system;
    // ---- masked and read-only paths
    for path in MASKED_PROC {
        let cpath = b.cstring("path", path)?;
        b.op(
            format!("mask /proc/{path}"),
            Op::Mask {
                base: proc_fs,
                path: cpath,
                devnull: dev,
            },
        );
    }
    for path in MASKED_SYS {
        let cpath = b.cstring("path", path)?;
        b.op(
            format!("mask /sys/{path}"),
            Op::Mask {
                base: sys_fs,
                path: cpath,
                devnull: dev,
            },
        );
    }
    for path in READONLY_PROC {
        let cpath = b.cstring("path", path)?;
        b.op(
            format!("make /proc/{path} read-only"),
            Op::ReadOnly {
                base: proc_fs,
                path: cpath,
            },
        );
    }

    Ok(())
}

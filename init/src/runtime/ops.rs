//! The contract between the parent and the container's child: the op list the parent
//! compiles (`plan.rs`) and the child interprets (`child.rs`), and the codes the child
//! reports failures with.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};

use rustix::mount::MountAttrFlags;
use rustix::thread::LinkNameSpaceType;

/// Where a path of an op is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Inside the container's root: symlinks are followed, but as if the root were
    /// `/` (RESOLVE_IN_ROOT), so nothing resolves outside of it. For user paths.
    InRoot,
    /// Strictly below the base, no symlinks at all. For berth's own fresh mounts
    /// (/dev, /proc, /sys), where a symlink can only be hostile.
    Beneath,
}

/// What to create when the last path component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    Nothing,
    Dir,
    File,
}

/// One of the container's standard fds, as the child installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdioFd {
    Keep,
    Null,
    Fd(RawFd),
}

/// Errors carry a sub-step (what inside the op failed) and the errno.
pub(crate) mod sub {
    pub const NONE: u32 = 0;
    pub const RESOLVE: u32 = 1;
    pub const CREATE: u32 = 2;
    pub const DANGLING: u32 = 3;
    pub const ATTACH: u32 = 4;
    pub const READONLY: u32 = 5;
    pub const CONFIGURE: u32 = 6;
    pub const CREATE_FS: u32 = 7;
    pub const OPEN: u32 = 8;
    pub const PIVOT: u32 = 9;
    pub const DETACH_OLD_ROOT: u32 = 10;
    pub const CHDIR: u32 = 11;
    pub const STAT: u32 = 12;

    pub fn describe(code: u32) -> &'static str {
        match code {
            RESOLVE => "resolve target",
            CREATE => "create target",
            DANGLING => {
                "target is (below) a symlink whose destination does not exist inside the \
                 rootfs"
            }
            ATTACH => "attach mount",
            READONLY => "make read-only",
            CONFIGURE => "configure filesystem",
            CREATE_FS => "create filesystem",
            OPEN => "open",
            PIVOT => "pivot_root",
            DETACH_OLD_ROOT => "detach old root",
            CHDIR => "chdir",
            STAT => "stat",
            _ => "",
        }
    }
}

/// One step of the child. Slots are fds the child creates and later ops refer to.
#[derive(Debug)]
pub(crate) enum Op {
    ResetSignals,
    Setsid,
    Umask(u32),
    /// Open this FIFO and read one byte (the test-only `SpawnConfig::hold`).
    Hold(CString),
    /// unshare(2) of the new namespaces other than the pid namespace (which clone3
    /// makes: the child must be its init). Done in the child, not by clone3, so that
    /// their creation (a network namespace is the dearest) runs in parallel with berth
    /// and with the other containers' setup instead of inside berth's clone3 call.
    Unshare(rustix::thread::UnshareFlags),
    /// setns(fd, nstype); the fd is owned by the plan.
    SetNs {
        fd: RawFd,
        ns: LinkNameSpaceType,
    },
    /// Make every mount in the new mount namespace private (nothing propagates to or
    /// from the host).
    MakeRootPrivate,
    /// Remember berth's root (`/`) in `slot`, for detaching it after pivot_root.
    OpenOldRoot {
        slot: usize,
    },
    /// open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) of a host path into `slot`: a detached
    /// copy, immune to whatever is mounted over that path later.
    CloneTree {
        path: CString,
        readonly: bool,
        slot: usize,
    },
    /// A new filesystem instance (fsopen/fsconfig/fsmount), detached, in `slot`.
    NewFs {
        fstype: CString,
        flags: Vec<CString>,
        options: Vec<(CString, CString)>,
        attrs: MountAttrFlags,
        slot: usize,
    },
    /// Attach the mount in `slot` over `/`; it becomes the container's root.
    AttachRoot {
        slot: usize,
    },
    /// Opens `prefixes.last()` below `base`, one prefix at a time, creating what is
    /// missing, and puts an O_PATH fd of it into `out`.
    Resolve {
        base: usize,
        how: Resolve,
        components: Vec<CString>,
        prefixes: Vec<CString>,
        create: Create,
        out: usize,
    },
    /// move_mount of the detached mount in `from` onto the path fd in `to`.
    Attach {
        from: usize,
        to: usize,
    },
    Mkdir {
        base: usize,
        name: CString,
        mode: u32,
    },
    Mknod {
        base: usize,
        name: CString,
        mode: u32,
        major: u32,
        minor: u32,
    },
    /// A symlink `name` -> `target` in `base`; an existing entry is left alone.
    Symlink {
        base: usize,
        target: CString,
        name: CString,
    },
    /// Hide `path` below `base`: /dev/null over a file, a read-only tmpfs over a dir.
    Mask {
        base: usize,
        path: CString,
        devnull: usize,
    },
    /// Bind `path` below `base` onto itself, read-only.
    ReadOnly {
        base: usize,
        path: CString,
    },
    /// Make the root mount read-only (not what is mounted below it).
    RootReadOnly {
        root: usize,
    },
    /// Enter the root in `root` and detach berth's root (`old_root`).
    Pivot {
        root: usize,
        old_root: usize,
    },
    Hostname(Vec<u8>),
    /// Bring `lo` up in the container's new network namespace (it starts down): every
    /// container can reach its own services on 127.0.0.1.
    LoopbackUp,
    /// Join the network namespace a helper made beside the container (see netns.rs):
    /// read its 4-byte report from `ready` (0, or the errno of what failed), then
    /// `setns` on its pidfd; if either fails, make a network namespace with loopback
    /// up as `Unshare` and `LoopbackUp` do.
    JoinNet {
        ready: RawFd,
        pidfd: RawFd,
    },
    Chdir(CString),
    /// Drop every capability not in `keep` from the bounding set, up to `last`.
    DropBounding {
        keep: u64,
        last: u32,
    },
    KeepCaps,
    SetGroups(Vec<rustix::process::Gid>),
    SetGid(u32),
    SetUid(u32),
    /// Effective = permitted = `keep`, inheritable and ambient empty.
    SetCaps {
        keep: u64,
    },
    NoNewPrivs,
    Stdio([StdioFd; 3]),
    /// Close every fd >= 3 but the error pipe (which is close-on-exec).
    CloseFds,
    /// Fork: the child goes on with the remaining ops (exec) as PID 2, this process
    /// stays as the container's minimal init ([`super::sys::init_loop`]).
    ForkInit,
    /// Try each candidate path in order (a PATH search prepared by the parent).
    Exec {
        candidates: Vec<CString>,
        argv: Vec<*const libc::c_char>,
        envp: Vec<*const libc::c_char>,
    },
}

/// Everything the child needs, built by the parent before the clone.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ops: Vec<Op>,
    /// Pre-sized: the child only writes into existing elements.
    pub slots: Vec<Option<OwnedFd>>,
    pub err_fd: RawFd,
    /// With step timing on (see `spawn::set_step_timing`): a pipe the child writes
    /// `(op index: u32, CLOCK_MONOTONIC ns: u64)` to after each op; -1 when off.
    pub timing_fd: RawFd,
}

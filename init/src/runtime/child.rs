//! The container's first moments: what runs in the cloned child before `execve`.
//!
//! The parent compiles a [`SpawnConfig`](super::SpawnConfig) into a list of [`Op`]s (see
//! `plan.rs`); the child only interprets that list. Everything the child touches was
//! allocated before the clone, and it calls only raw syscalls (rustix's linux_raw
//! backend, or `libc::syscall` in `sys.rs`): no allocation, no locks, no std I/O, no
//! panics (no indexing, no unchecked arithmetic). Other threads of berth may have held
//! the allocator's lock at the moment of the clone; touching it here would deadlock.
//!
//! On the first failing op the child writes `(op index, sub-step, errno)` to the
//! close-on-exec error pipe and `_exit`s; the parent turns it into a message using the
//! op's label. A successful `execve` closes the pipe: the parent reads EOF.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};
use rustix::thread::{CapabilitySet, CapabilitySets};

use super::ops::{ChildPlan, Create, Op, Resolve, StdioFd, sub};
use super::sys;

type OpResult = Result<(), (u32, Errno)>;

/// The child's whole life. Never returns: it execs or `_exit`s.
pub(crate) fn run(plan: &mut ChildPlan) -> ! {
    // The error pipe must not be clobbered when installing fds 0..2.
    let mut err_fd = plan.err_fd;
    if err_fd < 3 {
        match sys::dup_cloexec_above(err_fd, 3) {
            Ok(fd) => err_fd = fd,
            Err(_) => sys::exit_now(126),
        }
    }
    // Containers do not inherit berth's protection from the OOM killer (PID 1 sets
    // oom_score_adj -1000 on itself): back to the default, before the container runs.
    sys::reset_oom_score_adj();
    for (index, op) in plan.ops.iter().enumerate() {
        if let Err((step, errno)) = run_op(op, &mut plan.slots, err_fd) {
            report(err_fd, index as u32, step, errno.raw_os_error());
            sys::exit_now(127);
        }
        if matches!(op, Op::CloseFds) {
            // Closed now: later ops may open fds that get its number.
            plan.timing_fd = -1;
        }
        if plan.timing_fd > 2 {
            let ns = sys::monotonic_ns();
            let mut buf = [0u8; 12];
            let (a, b) = buf.split_at_mut(4);
            a.copy_from_slice(&(index as u32).to_ne_bytes());
            b.copy_from_slice(&ns.to_ne_bytes());
            sys::write_all(plan.timing_fd, &buf);
        }
    }
    // The last op is Exec, which only returns on failure, and reports it.
    sys::exit_now(127)
}

fn report(err_fd: RawFd, index: u32, step: u32, errno: i32) {
    let mut buf = [0u8; 12];
    let parts = [index.to_ne_bytes(), step.to_ne_bytes(), errno.to_ne_bytes()];
    for (chunk, part) in buf.chunks_exact_mut(4).zip(parts.iter()) {
        chunk.copy_from_slice(part);
    }
    sys::write_all(err_fd, &buf);
}

fn at(step: u32) -> impl Fn(Errno) -> (u32, Errno) {
    move |e| (step, e)
}

fn raw(step: u32) -> impl Fn(i32) -> (u32, Errno) {
    move |e| (step, Errno::from_raw_os_error(e))
}

/// The fd in `slot`, or EBADF (a plan bug) if it is empty.
fn slot(slots: &[Option<OwnedFd>], index: usize) -> Result<BorrowedFd<'_>, (u32, Errno)> {
    match slots.get(index) {
        Some(Some(fd)) => Ok(fd.as_fd()),
        _ => Err((sub::NONE, Errno::BADF)),
    }
}

fn put(slots: &mut [Option<OwnedFd>], index: usize, fd: OwnedFd) -> OpResult {
    match slots.get_mut(index) {
        Some(place) => {
            *place = Some(fd);
            Ok(())
        }
        None => Err((sub::NONE, Errno::BADF)),
    }
}

fn resolve_flags(how: Resolve) -> ResolveFlags {
    match how {
        Resolve::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        Resolve::Beneath => {
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
        }
    }
}

/// An O_PATH fd of `path` below `base`. With `Beneath` any symlink, also the last
/// component, fails with ELOOP; with `InRoot` symlinks are followed inside the root.
fn open_path(base: BorrowedFd<'_>, path: &CStr, how: Resolve, dir: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::openat2(base, path, flags, Mode::empty(), resolve_flags(how))
}

fn run_op(op: &Op, slots: &mut [Option<OwnedFd>], err_fd: RawFd) -> OpResult {
    match op {
        Op::ResetSignals => sys::reset_signals().map_err(raw(sub::NONE)),
        Op::Setsid => rustix::process::setsid().map(drop).map_err(at(sub::NONE)),
        Op::Hold(path) => {
            let fd = rustix::fs::open(
                path.as_c_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(at(sub::OPEN))?;
            let mut byte = [0u8; 1];
            loop {
                match rustix::io::read(&fd, &mut byte) {
                    Err(Errno::INTR) => {}
                    other => break other.map(drop).map_err(at(sub::NONE)),
                }
            }
        }
        Op::Umask(mask) => {
            rustix::process::umask(Mode::from_raw_mode(*mask));
            Ok(())
        }
        // SAFETY: the child is single-threaded (fork semantics) and the flags never
        // include CLONE_FILES, so no other thread can observe an unshared table.
        Op::Unshare(flags) => {
            unsafe { rustix::thread::unshare_unsafe(*flags) }.map_err(at(sub::NONE))
        }
        Op::SetNs { fd, ns } => {
            // SAFETY: the fd is owned by the plan, open for the child's whole life.
            let fd = unsafe { BorrowedFd::borrow_raw(*fd) };
            rustix::thread::move_into_link_name_space(fd, Some(*ns)).map_err(at(sub::NONE))
        }
        Op::MakeRootPrivate => rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .map_err(at(sub::NONE)),
        Op::OpenOldRoot { slot: out } => {
            let fd = rustix::fs::open(
                c"/",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(at(sub::OPEN))?;
            put(slots, *out, fd)
        }
        Op::CloneTree {
            path,
            readonly,
            slot: out,
        } => {
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                path.as_c_str(),
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE,
            )
            .map_err(at(sub::OPEN))?;
            if *readonly {
                sys::mount_setattr_readonly(tree.as_raw_fd(), true).map_err(raw(sub::READONLY))?;
            }
            put(slots, *out, tree)
        }
        Op::NewFs {
            fstype,
            flags,
            options,
            attrs,
            slot: out,
        } => {
            let fs = rustix::mount::fsopen(fstype.as_c_str(), FsOpenFlags::FSOPEN_CLOEXEC)
                .map_err(at(sub::CREATE_FS))?;
            for flag in flags {
                rustix::mount::fsconfig_set_flag(&fs, flag.as_c_str())
                    .map_err(at(sub::CONFIGURE))?;
            }
            for (key, value) in options {
                rustix::mount::fsconfig_set_string(&fs, key.as_c_str(), value.as_c_str())
                    .map_err(at(sub::CONFIGURE))?;
            }
            rustix::mount::fsconfig_create(&fs).map_err(at(sub::CREATE_FS))?;
            let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, *attrs)
                .map_err(at(sub::CREATE_FS))?;
            put(slots, *out, mnt)
        }
        Op::AttachRoot { slot: root } => {
            // Mounted on top of berth's `/` in this private namespace: no host
            // directory is needed as a mount point. Path lookups from the process root
            // still see berth's root until pivot_root.
            let root = slot(slots, *root)?;
            rustix::mount::move_mount(
                root,
                c"",
                rustix::fs::CWD,
                c"/",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .map_err(at(sub::ATTACH))
        }
        Op::Resolve {
            base,
            how,
            components,
            prefixes,
            create,
            out,
        } => {
            let fd = resolve(slot(slots, *base)?, *how, components, prefixes, *create)?;
            put(slots, *out, fd)
        }
        Op::Attach { from, to } => rustix::mount::move_mount(
            slot(slots, *from)?,
            c"",
            slot(slots, *to)?,
            c"",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(at(sub::ATTACH)),
        Op::Mkdir { base, name, mode } => {
            match rustix::fs::mkdirat(
                slot(slots, *base)?,
                name.as_c_str(),
                Mode::from_raw_mode(*mode),
            ) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err((sub::NONE, e)),
            }
        }
        Op::Mknod {
            base,
            name,
            mode,
            major,
            minor,
        } => rustix::fs::mknodat(
            slot(slots, *base)?,
            name.as_c_str(),
            FileType::CharacterDevice,
            Mode::from_raw_mode(*mode),
            rustix::fs::makedev(*major, *minor),
        )
        .map_err(at(sub::NONE)),
        Op::Symlink { base, target, name } => {
            match rustix::fs::symlinkat(target.as_c_str(), slot(slots, *base)?, name.as_c_str()) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err((sub::NONE, e)),
            }
        }
        Op::Mask {
            base,
            path,
            devnull,
        } => mask(slots, *base, path, *devnull),
        Op::ReadOnly { base, path } => {
            let target = match open_path(slot(slots, *base)?, path, Resolve::Beneath, false) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(()),
                Err(e) => return Err((sub::RESOLVE, e)),
            };
            let tree = rustix::mount::open_tree(
                &target,
                c"",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .map_err(at(sub::OPEN))?;
            sys::mount_setattr_readonly(tree.as_raw_fd(), true).map_err(raw(sub::READONLY))?;
            rustix::mount::move_mount(
                &tree,
                c"",
                &target,
                c"",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(at(sub::ATTACH))
        }
        Op::RootReadOnly { root } => {
            sys::mount_setattr_readonly(slot(slots, *root)?.as_raw_fd(), false)
                .map_err(raw(sub::READONLY))
        }
        Op::Pivot { root, old_root } => {
            rustix::process::fchdir(slot(slots, *root)?).map_err(at(sub::CHDIR))?;
            rustix::process::pivot_root(c".", c".").map_err(at(sub::PIVOT))?;
            // berth's old root now sits on top of the new one; enter it and detach it
            // (crun's trick), so nothing of the host stays reachable.
            rustix::process::fchdir(slot(slots, *old_root)?).map_err(at(sub::CHDIR))?;
            rustix::mount::unmount(c".", UnmountFlags::DETACH).map_err(at(sub::DETACH_OLD_ROOT))?;
            if let Some(place) = slots.get_mut(*old_root) {
                *place = None;
            }
            rustix::process::chdir(c"/").map_err(at(sub::CHDIR))
        }
        Op::Hostname(name) => rustix::system::sethostname(name).map_err(at(sub::NONE)),
        Op::LoopbackUp => super::netns::loopback_up().map_err(at(sub::NONE)),
        Op::JoinNet { ready, pidfd } => {
            // SAFETY: both fds are owned by berth's NetHelper, open for the child's life.
            let (ready, pidfd) = unsafe {
                (
                    BorrowedFd::borrow_raw(*ready),
                    BorrowedFd::borrow_raw(*pidfd),
                )
            };
            let mut word = [0u8; 4];
            let joined = loop {
                match rustix::io::read(ready, &mut word) {
                    Ok(4) if word == [0; 4] => {
                        break rustix::thread::move_into_thread_name_spaces(
                            pidfd,
                            rustix::thread::ThreadNameSpaceType::NETWORK,
                        )
                        .is_ok();
                    }
                    Err(Errno::INTR) => {}
                    // The helper failed, or died without a report.
                    Ok(_) | Err(_) => break false,
                }
            };
            if joined {
                return Ok(());
            }
            // Whatever kept the namespace from being joined (a security module that
            // denies ptrace-read access to the helper, which `setns` on a pidfd needs),
            // the init makes it itself, as without a helper; its error is the one told.
            // SAFETY: the child is single-threaded and the flags do not include
            // CLONE_FILES (see Op::Unshare).
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .map_err(at(sub::NONE))?;
            super::netns::loopback_up().map_err(at(sub::NONE))
        }
        Op::Chdir(dir) => rustix::process::chdir(dir.as_c_str()).map_err(at(sub::NONE)),
        Op::DropBounding { keep, last } => {
            for cap in 0..=(*last).min(63) {
                if keep & (1u64 << cap) != 0 {
                    continue;
                }
                let set = CapabilitySet::from_bits_retain(1u64 << cap);
                match rustix::thread::remove_capability_from_bounding_set(set) {
                    Ok(()) | Err(Errno::INVAL) => {}
                    Err(e) => return Err((sub::NONE, e)),
                }
            }
            Ok(())
        }
        Op::KeepCaps => rustix::thread::set_keep_capabilities(true).map_err(at(sub::NONE)),
        Op::SetGroups(groups) => rustix::thread::set_thread_groups(groups).map_err(at(sub::NONE)),
        Op::SetGid(gid) => {
            let gid = rustix::process::Gid::from_raw_unchecked(*gid);
            rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(at(sub::NONE))
        }
        Op::SetUid(uid) => {
            let uid = rustix::process::Uid::from_raw_unchecked(*uid);
            rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(at(sub::NONE))
        }
        Op::SetCaps { keep } => {
            let keep = CapabilitySet::from_bits_retain(*keep);
            rustix::thread::set_capabilities(
                None,
                CapabilitySets {
                    effective: keep,
                    permitted: keep,
                    inheritable: CapabilitySet::empty(),
                },
            )
            .map_err(at(sub::NONE))?;
            rustix::thread::clear_ambient_capability_set().map_err(at(sub::NONE))
        }
        Op::NoNewPrivs => rustix::thread::set_no_new_privs(true).map_err(at(sub::NONE)),
        Op::Stdio(fds) => install_stdio(fds),
        Op::CloseFds => {
            let err = err_fd as u32;
            sys::close_range(3, err.saturating_sub(1)).map_err(raw(sub::NONE))?;
            sys::close_range(err.saturating_add(1), u32::MAX).map_err(raw(sub::NONE))
        }
        Op::ForkInit => {
            // Blocked across the fork: a signal arriving before the loop waits stays
            // pending instead of being lost (or killing the init).
            sys::mask_all_signals(true).map_err(raw(sub::NONE))?;
            match sys::fork() {
                Ok(0) => sys::mask_all_signals(false).map_err(raw(sub::NONE)),
                Ok(program) => {
                    // The init holds nothing: the log pipes and the error pipe must
                    // reach EOF when the program is done with them.
                    let _ = sys::close_range(0, u32::MAX);
                    sys::init_loop(program)
                }
                Err(e) => {
                    let _ = sys::mask_all_signals(false);
                    Err((sub::NONE, Errno::from_raw_os_error(e)))
                }
            }
        }
        Op::Exec {
            candidates,
            argv,
            envp,
        } => {
            let mut result = Errno::NOENT;
            let mut seen_eacces = false;
            for path in candidates {
                let errno = Errno::from_raw_os_error(sys::execve(path, argv, envp));
                match errno {
                    Errno::NOENT | Errno::NOTDIR => result = errno,
                    Errno::ACCESS => seen_eacces = true,
                    other => return Err((sub::NONE, other)),
                }
            }
            Err((sub::NONE, if seen_eacces { Errno::ACCESS } else { result }))
        }
    }
}

/// Walks `prefixes` ("a", "a/b", "a/b/c") from `base`, creating the missing
/// component `components[i]` in the already-resolved parent, never through a symlink.
fn resolve(
    base: BorrowedFd<'_>,
    how: Resolve,
    components: &[CString],
    prefixes: &[CString],
    create: Create,
) -> Result<OwnedFd, (u32, Errno)> {
    let last_index = prefixes.len().checked_sub(1);
    let mut parent: Option<OwnedFd> = None;
    for (i, (prefix, name)) in prefixes.iter().zip(components.iter()).enumerate() {
        let last = Some(i) == last_index;
        let dir = !last || create == Create::Dir;
        let opened = open_path(base, prefix, how, dir);
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create != Create::Nothing => {
                let parent_fd = match &parent {
                    Some(fd) => fd.as_fd(),
                    None => base,
                };
                let made = if last && create == Create::File {
                    rustix::fs::openat(
                        parent_fd,
                        name.as_c_str(),
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::CLOEXEC
                            | OFlags::NOFOLLOW,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                } else {
                    rustix::fs::mkdirat(parent_fd, name.as_c_str(), Mode::from_raw_mode(0o755))
                };
                match made {
                    Ok(()) => {}
                    // The name exists but did not resolve: a symlink to nowhere.
                    Err(Errno::EXIST) => return Err((sub::DANGLING, Errno::NOENT)),
                    Err(e) => return Err((sub::CREATE, e)),
                }
                open_path(base, prefix, how, dir).map_err(at(sub::RESOLVE))?
            }
            Err(e) => return Err((sub::RESOLVE, e)),
        };
        parent = Some(fd);
    }
    parent.ok_or((sub::RESOLVE, Errno::INVAL))
}

fn mask(slots: &[Option<OwnedFd>], base: usize, path: &CStr, devnull: usize) -> OpResult {
    let target = match open_path(slot(slots, base)?, path, Resolve::Beneath, false) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err((sub::RESOLVE, e)),
    };
    let stat = rustix::fs::fstat(&target).map_err(at(sub::STAT))?;
    let cover = if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
        let fs = rustix::mount::fsopen(c"tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(at(sub::CREATE_FS))?;
        rustix::mount::fsconfig_set_string(&fs, c"size", c"0").map_err(at(sub::CONFIGURE))?;
        rustix::mount::fsconfig_create(&fs).map_err(at(sub::CREATE_FS))?;
        rustix::mount::fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_RDONLY
                | MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )
        .map_err(at(sub::CREATE_FS))?
    } else {
        rustix::mount::open_tree(
            slot(slots, devnull)?,
            c"null",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(at(sub::OPEN))?
    };
    rustix::mount::move_mount(
        &cover,
        c"",
        &target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(at(sub::ATTACH))
}

fn install_stdio(fds: &[StdioFd; 3]) -> OpResult {
    // First move every source above 2 (a source may itself be 0..2 and be clobbered by
    // an earlier dup2), then install.
    let mut sources: [RawFd; 3] = [-1; 3];
    let mut null: Option<OwnedFd> = None;
    for (source, fd) in sources.iter_mut().zip(fds.iter()) {
        match fd {
            StdioFd::Keep => {}
            StdioFd::Fd(raw_fd) => {
                *source = sys::dup_cloexec_above(*raw_fd, 3).map_err(raw(sub::NONE))?
            }
            StdioFd::Null => {
                if null.is_none() {
                    let fd = rustix::fs::open(
                        c"/dev/null",
                        OFlags::RDWR | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(at(sub::OPEN))?;
                    null = Some(fd);
                }
                if let Some(fd) = &null {
                    *source = fd.as_raw_fd();
                }
            }
        }
    }
    for (target, source) in (0..3).zip(sources.iter()) {
        if *source >= 0 {
            sys::dup2(*source, target).map_err(raw(sub::NONE))?;
        }
    }
    // The temporary copies are close-on-exec (and closed by CloseFds anyway).
    Ok(())
}

//! The few raw syscalls rustix does not wrap, each a thin function over
//! `libc::syscall` (a plain syscall instruction: no libc locks, no allocation, so every
//! function here is async-signal-safe and may run in the child between clone and exec),
//! and clone3 on a stack of the child's own (a small x86_64 trampoline).

use std::os::fd::RawFd;

/// `CLONE_INTO_CGROUP` (Linux 5.7), not exported by the libc crate.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`, Linux 5.7).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// What `clone3` returned: in the parent the child's pid, in the child 0.
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    Parent(i32),
    Child,
}

/// clone3(2) without a new stack and without CLONE_VM: fork semantics, the child
/// continues here on a copy of the caller's stack.
///
/// # Safety
/// The caller must make the child run only async-signal-safe code (no allocation, no
/// locks) until it execs or `_exit`s, since other threads of the parent may have held
/// locks at the moment of the clone, and `args` must not ask for CLONE_VM, CLONE_VFORK,
/// CLONE_THREAD, CLONE_SETTLS or a stack.
pub unsafe fn clone3(args: &mut CloneArgs) -> std::io::Result<Forked> {
    // SAFETY: args points to a live, correctly sized clone_args; the caller guarantees
    // fork semantics (no shared VM, no new stack), so returning twice is sound.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// A stack for a child that shares berth's memory until it execs
/// ([`clone3_vfork`]): anonymous memory, its lowest page inaccessible so that an
/// overflow faults instead of writing into berth's heap. Unmapped on drop.
#[derive(Debug)]
pub struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    /// `len` bytes (a multiple of the page size) including the guard page.
    pub fn new(len: usize) -> std::io::Result<ChildStack> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; nothing runs on it any more (the child
        // exec'ed or exited before clone3_vfork returned).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// clone3(2) with `args` plus `CLONE_VM | CLONE_VFORK` and `stack`, as posix_spawn does:
/// the child runs `entry(arg)` on `stack`, in berth's memory (no page tables are
/// copied, no page is copied on write), and the calling thread sleeps until the child
/// execs or exits. Returns the child's pid. `None`: not available on this architecture
/// (the caller falls back to [`clone3`]).
///
/// # Safety
/// `entry` must not return and must run only async-signal-safe code; everything it
/// writes is berth's memory (the caller must treat what `arg` points to as written by
/// another process: fds stored there are the child's, not berth's). It must not fork
/// without exec'ing or `_exit`ing soon (berth sleeps until then), nor change what the
/// whole address space shares (mm-wide settings such as `PR_SET_THP_DISABLE` would be
/// changed for berth too; so would a change of its effective or filesystem user or
/// group id, which makes the address space non-dumpable). `args` must not ask for
/// CLONE_THREAD, CLONE_SETTLS or a stack of its own.
pub unsafe fn clone3_vfork(
    args: &CloneArgs,
    stack: &ChildStack,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> Option<std::io::Result<i32>> {
    let flags = args.flags | (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
    // SAFETY: the caller's guarantees, as documented above.
    unsafe { clone3_on_stack(CloneArgs { flags, ..*args }, stack, entry, arg) }
}

/// clone3(2) with `args` plus `CLONE_VM` and `stack`: a process that runs `entry(arg)`
/// on `stack` in berth's memory while berth goes on. `None`: not available on this
/// architecture.
///
/// # Safety
/// As for [`clone3_vfork`], and more: the child runs while berth's threads do, in the
/// same memory. It must touch nothing but its stack and what `arg` points to (which
/// must stay alive and unchanged until the child exits), must not use libc (whose errno
/// is the calling thread's, in its thread-local storage) but raw system calls that keep
/// no state (rustix's), and must keep every signal blocked (berth's handlers would run
/// on its stack). `stack` must stay mapped until the child has exited.
pub unsafe fn clone3_vm(
    args: &CloneArgs,
    stack: &ChildStack,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> Option<std::io::Result<i32>> {
    let flags = args.flags | libc::CLONE_VM as u64;
    // SAFETY: the caller's guarantees, as documented above.
    unsafe { clone3_on_stack(CloneArgs { flags, ..*args }, stack, entry, arg) }
}

/// clone3 with `stack`: the child calls `entry(arg)` on it.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(
    args: CloneArgs,
    stack: &ChildStack,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> Option<std::io::Result<i32>> {
    let mut args = CloneArgs {
        stack: stack.base as u64,
        stack_size: stack.len as u64,
        ..args
    };
    let ret: i64;
    // SAFETY: clone3 with a stack starts the child at the instruction after `syscall`
    // with rax = 0 and rsp = stack + stack_size (page-aligned, so 16-byte aligned as the
    // call below needs); rcx and r11 are clobbered by `syscall`, r12 and r13 survive it.
    // The child calls `entry(arg)`, which never returns (`ud2` traps if it did); it
    // never comes back into this function's frame. The parent (rax != 0) falls through.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    Some(if ret < 0 {
        Err(std::io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as i32)
    })
}

/// Elsewhere berth does without (the callers fall back).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone3_on_stack(
    _args: CloneArgs,
    _stack: &ChildStack,
    _entry: extern "C" fn(*mut libc::c_void) -> !,
    _arg: *mut libc::c_void,
) -> Option<std::io::Result<i32>> {
    None
}

/// Blocks every signal for the calling thread; returns the mask it had. Around a
/// clone: no handler of berth may run in the child before it resets them all.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write into the
    // sets passed, which live on this stack.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Gives the calling thread back the mask [`block_all_signals`] returned.
pub fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is the mask pthread_sigmask returned for this thread.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// Errno of the last failed libc call, read without libc's helpers that may not be
/// async-signal-safe.
fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the mount at `fd` (and with `recursive` every mount below it) read-only.
/// Linux 5.12. Async-signal-safe.
pub fn mount_setattr_readonly(fd: RawFd, recursive: bool) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid empty C string, attr lives across the call and its
    // size is passed; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == 0 { Ok(()) } else { Err(errno()) }
}

/// Gives the process what a freshly booted one inherits: every signal (1..=64 but
/// SIGKILL and SIGSTOP) set to SIG_DFL and unblocked, and transparent huge pages allowed
/// again (a long-running berth disables them for itself, see [`disable_thp`], and the
/// setting survives fork and exec). Uses rt_sigaction directly, so it also resets the
/// signals glibc reserves for itself (32, 33), which its sigaction wrapper refuses.
/// Async-signal-safe.
pub fn reset_signals() -> Result<(), i32> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) } != 0 {
        return Err(errno());
    }
    // The kernel's `struct sigaction` with SIG_DFL (0), no flags, no restorer and an
    // empty mask is all zeros on every architecture; four words cover its size.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: dfl is a valid (zeroed) kernel sigaction; the old action is not read;
        // 8 is the kernel's sigset size on Linux.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if ret != 0 {
            return Err(errno());
        }
    }
    let empty = 0u64;
    // SAFETY: empty is a valid kernel sigset of 8 bytes; the old mask is not read.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if ret == 0 { Ok(()) } else { Err(errno()) }
}

/// Keeps transparent huge pages away from this process (`PR_SET_THP_DISABLE`). The
/// allocator asks for huge pages, which suits a short `berth eval` of a big host but
/// would pin 2 MiB pages under the few hundred KiB a supervising berth keeps alive.
/// Containers get the system's setting back through [`reset_signals`].
pub fn disable_thp() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether transparent huge pages are disabled for berth: by [`disable_thp`], or
/// inherited (the setting survives fork and exec, so a berth started by a resident one
/// has it too). A child sharing berth's memory cannot then reset them for itself
/// without resetting them for berth. If the kernel cannot tell, they count as disabled.
pub fn thp_disabled() -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) != 0 }
}

/// Closes every fd from `first` up to and including `last`. Async-signal-safe.
pub fn close_range(first: u32, last: u32) -> Result<(), i32> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range only closes descriptors of this process; the child owns all
    // of them and uses none of those in the range afterwards.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == 0 { Ok(()) } else { Err(errno()) }
}

/// dup2(2) (the target loses FD_CLOEXEC). Async-signal-safe.
pub fn dup2(from: RawFd, to: RawFd) -> Result<(), i32> {
    // SAFETY: plain fd syscall; the child owns both descriptors.
    let ret = unsafe { libc::dup2(from, to) };
    if ret == to { Ok(()) } else { Err(errno()) }
}

/// A close-on-exec duplicate of `fd` numbered at least `min`. Async-signal-safe.
pub fn dup_cloexec_above(fd: RawFd, min: RawFd) -> Result<RawFd, i32> {
    // SAFETY: plain fcntl on a descriptor the child owns.
    let ret = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if ret >= 0 { Ok(ret) } else { Err(errno()) }
}

/// CLOCK_MONOTONIC in nanoseconds (the vDSO: async-signal-safe, no locks).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// Writes all of `buf` (once; pipes are atomic below PIPE_BUF). Async-signal-safe.
pub fn write_all(fd: RawFd, buf: &[u8]) {
    // SAFETY: buf is valid for buf.len() bytes; nothing can be done on failure.
    unsafe {
        libc::write(fd, buf.as_ptr().cast(), buf.len());
    }
}

/// Sets the signal mask to every signal (`all`) or none. Async-signal-safe.
pub fn mask_all_signals(all: bool) -> Result<(), i32> {
    let set: u64 = if all { !0 } else { 0 };
    // SAFETY: set is a valid kernel sigset of 8 bytes; the old mask is not read.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if ret == 0 { Ok(()) } else { Err(errno()) }
}

/// fork(2) as the raw system call: glibc's wrapper runs atfork handlers, which are not
/// async-signal-safe. Returns 0 in the child and the child's pid in the parent.
pub fn fork() -> Result<i32, i32> {
    // SAFETY: clone with only SIGCHLD as flags and no new stack is fork(); the child
    // continues on a copy of this stack.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret >= 0 {
        Ok(ret as i32)
    } else {
        Err(errno())
    }
}

/// The container's minimal init (`init #true`): PID 1 of the container's pid namespace
/// with `program` (its child, PID 2) as the workload. Expects every signal blocked and
/// every fd closed. Reaps every process that ends up as its child (orphans of the
/// workload are reparented to PID 1), passes every other signal on to the program
/// (PID 1 of a namespace ignores signals it has no handler for, so without this a
/// program that is PID 1 would ignore SIGTERM), and exits with the program's status
/// (128 + N if signal N killed it) once it ended; the kernel then kills whatever is
/// left in the namespace. Only raw system calls: async-signal-safe. Never returns.
pub fn init_loop(program: i32) -> ! {
    let all: u64 = !0;
    let mut info = [0u64; 16]; // siginfo_t is 128 bytes
    loop {
        // SAFETY: all is a valid 8-byte kernel sigset, info is 128 writable bytes, no
        // timeout (NULL) blocks until a signal is pending.
        let sig = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &all as *const u64,
                info.as_mut_ptr(),
                std::ptr::null::<libc::timespec>(),
                8usize,
            )
        } as i32;
        if sig <= 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill with integer arguments; the program may already be gone.
            unsafe { libc::kill(program, sig) };
            continue;
        }
        let mut exit = None;
        loop {
            let mut status = 0;
            // SAFETY: status is a valid int; no rusage.
            let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, std::ptr::null_mut()) };
            if pid <= 0 {
                break;
            }
            if pid == program {
                exit = Some(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                });
            }
        }
        if let Some(code) = exit {
            exit_now(code);
        }
    }
}

/// `_exit(2)`: no atexit handlers, no stdio flushing. Async-signal-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no userspace state.
    unsafe { libc::_exit(code) }
}

/// execve(2); returns only on failure, with the errno. Async-signal-safe.
///
/// `argv` and `envp` must be NULL-terminated arrays of pointers to NUL-terminated
/// strings that stay alive for the call.
pub fn execve(
    path: &std::ffi::CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    if argv.last().is_some_and(|p| !p.is_null()) || envp.last().is_some_and(|p| !p.is_null()) {
        return libc::EINVAL;
    }
    // SAFETY: path is NUL-terminated; argv and envp end with NULL (checked above) and
    // the caller keeps their strings alive.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// Writes 0 to /proc/self/oom_score_adj (raising it needs no privilege); errors are
/// ignored (no /proc). Async-signal-safe: open, write and close only.
pub fn reset_oom_score_adj() {
    use rustix::fs::{Mode, OFlags};
    if let Ok(fd) = rustix::fs::open(
        c"/proc/self/oom_score_adj",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::io::write(&fd, b"0");
    }
}

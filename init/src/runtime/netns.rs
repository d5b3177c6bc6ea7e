//! A container's new network namespace, made beside the container's init instead of
//! by it.
//!
//! Creating a network namespace is the largest single cost of starting a container
//! (about 0.45 ms on the machines berth is measured on: every network subsystem sets up
//! its per-namespace state and loopback is registered; bringing loopback up adds
//! 0.06 ms). The init's other work before its program runs — the mount namespace, the
//! rootfs, /proc, /dev and its nodes — takes about as long and needs nothing of the
//! network namespace. So [`NetHelper::start`] clones a helper process first, which
//! unshares a network namespace, brings loopback up and reports on a pipe, while the
//! init sets up its mounts; the init joins the helper's namespace (`setns` on its pidfd)
//! just before it mounts /sys, the one mount that shows the network namespace it is
//! made in (`Op::JoinNet`, see plan.rs).
//!
//! The helper shares berth's memory (CLONE_VM: berth's page tables are not copied) and
//! runs while berth's threads do. So it:
//! - touches only its own stack and the [`HelperFds`] berth keeps alive for it;
//! - makes raw system calls that keep no state: rustix's, as libc's errno would be the
//!   cloning thread's; libc's `syscall()` serves only the two calls rustix lacks,
//!   rt_sigprocmask and close_range, and it touches errno only when they fail, which
//!   they do not here;
//! - keeps every signal blocked, also the two glibc reserves for itself;
//! - dies with the thread that made it (`PR_SET_PDEATHSIG`);
//! - closes every fd but its two pipe ends;
//! - exits once nobody holds the write end of its "done" pipe: berth drops its copy
//!   after cloning the init, and the init's copy is close-on-exec, so that is when the
//!   init exec'ed or died. By then the init holds the namespace itself.
//!
//! If the init cannot join the helper's namespace, it makes one itself (`Op::JoinNet`).
//!
//! The helper stays in berth's cgroup: born in the container's, it would count against
//! the container's `pids.max` while it lives, and a container limited to one process
//! could not be cloned. So the kernel memory of the namespace is charged to berth's
//! cgroup, not the container's, for the namespace's life.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use rustix::io::Errno;

use super::sys::{self, ChildStack, CloneArgs};

/// The helper's stack: it needs a few hundred bytes; untouched pages cost nothing.
const STACK: usize = 64 * 1024;

/// The helper's end of its two pipes, where it can read them for its whole life.
#[derive(Debug)]
#[repr(C)]
struct HelperFds {
    /// Write end: 4 bytes, 0 once the namespace is ready, else the errno of what failed.
    ready: RawFd,
    /// Read end: EOF when the helper may go.
    done: RawFd,
}

/// A helper process that makes a network namespace with loopback up (see the module
/// documentation), for one container started by [`super::spawn::spawn_with`]: the
/// earlier it starts, the less the container's init waits for it. Dropping it lets the
/// helper go and reaps it.
#[derive(Debug)]
pub struct NetHelper {
    /// The helper's pidfd: the init joins its network namespace with `setns` on it.
    pub(crate) pidfd: OwnedFd,
    /// The read end of the helper's report: 4 bytes, 0 or an errno.
    pub(crate) ready: OwnedFd,
    /// The write end of the "done" pipe (close-on-exec; the init inherits it with the
    /// rest of berth's fds).
    done: Option<OwnedFd>,
    // Both must outlive the helper: fields are dropped after `drop` reaped it.
    _fds: Box<HelperFds>,
    _stack: ChildStack,
}

impl NetHelper {
    /// Clones the helper. `None` where berth cannot clone on a stack of its own, or if
    /// the pipes, the stack or the clone failed: the init then makes the namespace
    /// itself, and meets any lasting cause of the failure there, named.
    pub fn start() -> Option<NetHelper> {
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok();
        let (ready, ready_w) = pipe()?;
        let (done_r, done) = pipe()?;
        let stack = ChildStack::new(STACK).ok()?;
        let fds = Box::new(HelperFds {
            ready: ready_w.as_raw_fd(),
            done: done_r.as_raw_fd(),
        });
        let mut pidfd: libc::c_int = -1;
        let args = CloneArgs {
            flags: libc::CLONE_PIDFD as u64,
            pidfd: &mut pidfd as *mut libc::c_int as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..CloneArgs::default()
        };
        // Every signal blocked from its first instruction on: the helper never
        // unblocks them, and berth's handlers must not run on its stack.
        let old = sys::block_all_signals();
        // SAFETY: `helper` makes only raw system calls (see the module documentation)
        // on its own stack and reads `fds`, which stays alive (boxed, owned by the
        // NetHelper) until the helper is reaped in `drop`, as does `stack`; it keeps
        // every signal blocked.
        let cloned = unsafe {
            sys::clone3_vm(
                &args,
                &stack,
                helper,
                (&*fds as *const HelperFds).cast_mut().cast(),
            )
        };
        sys::restore_signals(&old);
        // The helper has its own copies; berth's go.
        drop((ready_w, done_r));
        let pid = cloned?.ok()?;
        away_from_this_cpu(pid);
        Some(NetHelper {
            // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd nothing else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
            ready,
            done: Some(done),
            _fds: fds,
            _stack: stack,
        })
    }

    /// Berth's copy of the "done" pipe goes: the helper exits once the init's is gone
    /// too (at its exec or exit). Call it as soon as the init is cloned.
    pub(crate) fn release(&mut self) {
        self.done = None;
    }
}

impl Drop for NetHelper {
    fn drop(&mut self) {
        self.release();
        // Only dropped once the init exec'ed or failed (or was never cloned): nobody
        // needs the helper any more, and its stack must stay mapped until it is gone.
        let _ = super::wait::signal(&self.pidfd, rustix::process::Signal::KILL);
        let _ = super::wait::wait(&self.pidfd);
    }
}

/// Keeps the helper off the CPU berth runs on, where the scheduler tends to put a new
/// child: there it would wait for berth to sleep (0.36 ms in one trace) instead of
/// making the namespace beside berth. Nothing happens with only one CPU allowed.
fn away_from_this_cpu(pid: i32) {
    use rustix::thread::{sched_getaffinity, sched_getcpu, sched_setaffinity};
    let Ok(mut set) = sched_getaffinity(None) else {
        return;
    };
    set.unset(sched_getcpu());
    if set.count() > 0 {
        // A failure costs speed, nothing else.
        let _ = sched_setaffinity(rustix::process::Pid::from_raw(pid), &set);
    }
}

/// The helper's whole life. Never returns.
extern "C" fn helper(arg: *mut libc::c_void) -> ! {
    // SAFETY: `start` passes a HelperFds that outlives the helper.
    let fds = unsafe { &*arg.cast::<HelperFds>() };
    let ready = fds.ready;
    let done = fds.done;
    let result = (|| {
        // Also the two signals glibc keeps for itself, which sigfillset leaves out.
        sys::mask_all_signals(true).map_err(Errno::from_raw_os_error)?;
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        // Everything berth had open but these two (among them other containers' error
        // pipes, which must reach EOF when those containers exec). close_range only
        // fails on bad arguments, so libc's syscall() never touches errno here.
        let (low, high) = (ready.min(done) as u32, ready.max(done) as u32);
        let ranges = [
            (0, low.checked_sub(1)),
            (low + 1, high.checked_sub(1)),
            (high + 1, Some(!0)),
        ];
        for (first, last) in ranges {
            if let Some(last) = last.filter(|&last| first <= last) {
                sys::close_range(first, last).map_err(Errno::from_raw_os_error)?;
            }
        }
        // SAFETY: the helper is a process of its own (no CLONE_THREAD, no CLONE_FILES);
        // unsharing its network namespace affects nobody else.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?;
        loopback_up()
    })();
    let code = match result {
        Ok(()) => 0,
        Err(e) => e.raw_os_error(),
    };
    // SAFETY: the fds are this process's own, open until it exits.
    let (ready, done) = unsafe {
        (
            rustix::fd::BorrowedFd::borrow_raw(ready),
            rustix::fd::BorrowedFd::borrow_raw(done),
        )
    };
    let _ = rustix::io::write(ready, &code.to_ne_bytes());
    let mut byte = [0u8; 1];
    while let Err(Errno::INTR) | Ok(1) = rustix::io::read(done, &mut byte) {}
    sys::exit_now(0)
}

/// `ifconfig lo up` in the caller's network namespace: one socket and two ioctls, raw
/// system calls only (async-signal-safe, no errno).
pub(crate) fn loopback_up() -> Result<(), Errno> {
    use rustix::ioctl::{Opcode, Updater, ioctl};
    const SIOCGIFFLAGS: Opcode = libc::SIOCGIFFLAGS as Opcode;
    const SIOCSIFFLAGS: Opcode = libc::SIOCSIFFLAGS as Opcode;
    let socket = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?
    .into_raw_fd();
    // SAFETY: the socket just made, closed below.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(socket) };
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write a `struct ifreq`; the flags
    // member is the one the kernel just filled in.
    let result = unsafe {
        ioctl(fd, Updater::<SIOCGIFFLAGS, libc::ifreq>::new(&mut req)).and_then(|()| {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            ioctl(fd, Updater::<SIOCSIFFLAGS, libc::ifreq>::new(&mut req))
        })
    };
    // SAFETY: closes the socket made above, by a system call (an OwnedFd would close
    // it through libc, which the helper must not call).
    unsafe { rustix::io::close(socket) };
    result
}

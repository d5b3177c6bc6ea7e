//! Container creation: one `clone3` with CLONE_PIDFD | CLONE_INTO_CGROUP and the
//! namespace flags, then the child interprets a prepared op list (`child.rs`) and execs.
//! When berth waits for the exec at once ([`spawn`], `berth run`) the child shares
//! berth's memory until then (CLONE_VM | CLONE_VFORK, as posix_spawn), and a helper
//! makes its new network namespace meanwhile (`netns.rs`); see `clone` for when not.
//!
//! Why rustix, and libc for a few calls: after the clone the child may only make raw
//! syscalls (berth's other threads may have held libc or allocator locks at the moment
//! of the clone). rustix's linux_raw backend issues syscalls directly, without libc and
//! without allocating when given `&CStr` paths, and it has typed wrappers for nearly
//! every step (openat2, the new mount API, pivot_root, capabilities, setns, uid/gid
//! changes that are per-thread like the kernel's, unlike glibc's setuid, which signals
//! the parent's other threads that no longer exist in the child). libc is used only for
//! what rustix lacks, each behind a small function in `sys.rs`: clone3, mount_setattr,
//! rt_sigaction/rt_sigprocmask for all 64 signals, close_range, dup2, execve, _exit.
//! nix was not chosen: it wraps libc (so glibc's setuid broadcast) and allocates in
//! places (paths as `NixPath` may).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use rustix::io::Errno;

use super::config::{NamespaceMode, SpawnConfig};
use super::netns::NetHelper;
use super::ops::{ChildPlan, Op};
use super::plan;
use super::sys::{self, CloneArgs, Forked};

/// Why a container could not be created. Every message starts with the container.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The config cannot work; nothing was done.
    #[error("container {container}: {reason}")]
    Invalid { container: String, reason: String },
    /// Preparing in berth (before the clone) failed.
    #[error("container {container}: {what}: {source}")]
    Prepare {
        container: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// clone3 itself failed.
    #[error("container {container}: clone3: {}", errno_text(*.errno))]
    Clone { container: String, errno: i32 },
    /// A step in the new container failed; `step` names it (e.g. "mount /data
    /// (volume /srv/v): resolve target"). The child has been reaped.
    #[error("container {container}: {step}: {}", errno_text(*.errno))]
    Child {
        container: String,
        step: String,
        errno: i32,
    },
}

impl SpawnError {
    /// The errno behind the error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Invalid { .. } => None,
            SpawnError::Prepare { source, .. } => source.raw_os_error(),
            SpawnError::Clone { errno, .. } | SpawnError::Child { errno, .. } => Some(*errno),
        }
    }
}

/// "ENOENT (No such file or directory)".
pub fn errno_text(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "",
    };
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let text = text
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        format!("errno {errno} ({text})")
    } else {
        format!("{name} ({text})")
    }
}

/// A running container's init process.
#[derive(Debug)]
pub struct Child {
    /// Its pid in berth's pid namespace.
    pub pid: i32,
    /// A pidfd: poll it for exit, reap with `wait`, signal with `signal`. No pid reuse
    /// race.
    pub pidfd: OwnedFd,
}

/// Creates the container described by `config` and starts its program.
///
/// Returns once the program was exec'ed (or the container failed, with the failing step
/// named). The caller keeps ownership of the fds in `config` (stdio, cgroup); drop them
/// after this returns. [`begin`] is the same without the wait.
pub fn spawn(config: &SpawnConfig) -> Result<Child, SpawnError> {
    let net = (config.namespaces.net == NamespaceMode::New)
        .then(NetHelper::start)
        .flatten();
    clone(config, true, net)?.wait()
}

/// [`spawn`] with the container's new network namespace made by `net`, a helper the
/// caller started earlier (`None`: the init makes it). Ignored, and reaped, if the
/// container does not get a new network namespace.
pub fn spawn_with(config: &SpawnConfig, net: Option<NetHelper>) -> Result<Child, SpawnError> {
    clone(config, true, net)?.wait()
}

/// A container whose init was cloned and is setting itself up (mounts, pivot_root,
/// privileges) until it execs its program: [`Starting::wait`] blocks until then; a
/// caller with an event loop makes it non-blocking ([`Starting::set_nonblocking`]),
/// polls [`Starting::fd`] (readable on the exec, or when the child reports a failed
/// step) and calls [`Starting::poll`], so several containers set themselves up at
/// once.
#[derive(Debug)]
pub struct Starting {
    /// The child: its pid is in the process table from the clone on (a supervisor
    /// reaping with `waitpid(-1)` must recognise it).
    pub child: Child,
    name: String,
    labels: Vec<String>,
    err_read: OwnedFd,
    report: [u8; 12],
    got: usize,
    /// With step timing: the read end of the child's timing pipe, and when the
    /// clone began.
    timing: Option<(OwnedFd, std::time::Instant)>,
    /// The helper whose network namespace the child joins; reaped when this is
    /// dropped, after the child exec'ed or failed.
    net_helper: Option<NetHelper>,
}

/// What [`Starting::poll`] found.
#[derive(Debug)]
pub enum Progress {
    /// Still setting up.
    Pending,
    /// The program was exec'ed (or the child died without reporting a step: its exit
    /// tells how).
    Execed,
    /// A step failed; the child `_exit`s (reap it, e.g. [`super::wait::wait`]).
    Failed(SpawnError),
}

/// Clones the container described by `config` and returns at once, while the child
/// sets itself up (see [`Starting`]). Errors before the clone (invalid config,
/// preparation, clone3) are returned here. The caller keeps ownership of the fds in
/// `config`; they may be dropped as soon as this returns (the child has its copies).
pub fn begin(config: &SpawnConfig) -> Result<Starting, SpawnError> {
    clone(config, false, None)
}

/// Bytes of stack for a child that shares berth's memory (see [`clone`]): its deepest
/// path (resolving a mount target) uses a few KiB; untouched pages cost nothing.
const CHILD_STACK: usize = 256 * 1024;

/// [`begin`], and with `blocking` (the caller waits for the exec at once) the child may
/// share berth's memory until it execs, as with posix_spawn: berth sleeps meanwhile, and
/// neither berth's page tables nor, afterwards, its written pages are copied. Not when
/// the child would keep running without exec'ing (a minimal init forks the program and
/// stays) or waits on a hold, nor when transparent huge pages are disabled for berth
/// (the child resets that for its program, which would reset it for berth), nor when
/// the container runs as another user or group than berth's effective ones (the kernel
/// makes the address space of a process whose ids change non-dumpable: berth's, for
/// good).
///
/// With `net_helper` (kept only for a new network namespace) the child joins the
/// namespace the helper makes instead of making it (netns.rs).
fn clone(
    config: &SpawnConfig,
    blocking: bool,
    net_helper: Option<NetHelper>,
) -> Result<Starting, SpawnError> {
    let name = &config.name;
    // A new network namespace made beside the child while it sets up its mounts
    // (netns.rs), if the caller started a helper.
    let mut net_helper = net_helper.filter(|_| config.namespaces.net == NamespaceMode::New);
    let mut plan = plan::build(
        config,
        net_helper.as_ref().map(|h| plan::NetHelperFds {
            ready: h.ready.as_raw_fd(),
            pidfd: h.pidfd.as_raw_fd(),
        }),
    )?;
    let prepare = |what: &str, e: Errno| SpawnError::Prepare {
        container: name.clone(),
        what: what.to_owned(),
        source: e.into(),
    };
    let (err_read, err_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| prepare("error pipe", e))?;
    plan.child.err_fd = err_write.as_raw_fd();
    let timing = if STEP_TIMING.load(std::sync::atomic::Ordering::Relaxed) {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| prepare("timing pipe", e))?;
        plan.child.timing_fd = w.as_raw_fd();
        Some((r, w, std::time::Instant::now()))
    } else {
        None
    };

    let mut pidfd: libc::c_int = -1;
    let mut flags = libc::CLONE_PIDFD as u64 | plan.namespace_flags;
    let mut cgroup = 0;
    if let Some(fd) = &config.cgroup {
        flags |= sys::CLONE_INTO_CGROUP;
        cgroup = fd.as_raw_fd() as u64;
    }
    let mut args = CloneArgs {
        flags,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup,
        ..CloneArgs::default()
    };

    let same_ids = config.user.uid == rustix::process::geteuid().as_raw()
        && config.user.gid == rustix::process::getegid().as_raw();
    let stack = if blocking
        && same_ids
        && !sys::thp_disabled()
        && !plan
            .child
            .ops
            .iter()
            .any(|op| matches!(op, Op::ForkInit | Op::Hold(_)))
    {
        // Without a stack, the copying clone.
        sys::ChildStack::new(CHILD_STACK).ok()
    } else {
        None
    };

    // Block every signal across the clone so that no handler of berth runs in the
    // child before it resets them all (the child unblocks after resetting).
    let old_mask = sys::block_all_signals();
    let child_plan: *mut ChildPlan = &mut plan.child;
    // SAFETY: the child runs only `child::run` on the plan, which is async-signal-safe,
    // never returns (it execs or _exits), does not fork without exec'ing (no ForkInit),
    // and changes no mm-wide setting berth keeps (THP is allowed for berth and the ids
    // stay berth's, checked above). The fds it stores in the plan's slots are forgotten
    // below.
    let shared = stack.as_ref().and_then(|stack| unsafe {
        sys::clone3_vfork(&args, stack, child_entry, child_plan.cast())
    });
    let forked = match shared {
        Some(Ok(pid)) => {
            // The slots hold the child's fds, numbers in its fd table, not berth's.
            for slot in &mut plan.child.slots {
                if let Some(fd) = slot.take() {
                    let _ = fd.into_raw_fd();
                }
            }
            Ok(Forked::Parent(pid))
        }
        // A kernel that refuses the shared child (nothing was created) gets the copying
        // clone below.
        Some(Err(e)) if e.raw_os_error() != Some(libc::EINVAL) => Err(e),
        Some(Err(_)) | None => {
            // SAFETY: `args` asks for fork semantics (no CLONE_VM, no stack); the child
            // runs only `child::run`, which is async-signal-safe and never returns.
            let forked = unsafe { sys::clone3(&mut args) };
            if let Ok(Forked::Child) = forked {
                super::child::run(&mut plan.child);
            }
            forked
        }
    };
    sys::restore_signals(&old_mask);
    drop(stack);
    drop(err_write);
    if let Some(helper) = &mut net_helper {
        helper.release();
    }
    let timing = timing.map(|(r, w, t)| {
        drop(w);
        (r, t)
    });

    let pid = match forked {
        Ok(Forked::Parent(pid)) => pid,
        Ok(Forked::Child) => unreachable_child(),
        Err(e) => {
            return Err(SpawnError::Clone {
                container: name.clone(),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            });
        }
    };
    // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Starting {
        child: Child { pid, pidfd },
        name: name.clone(),
        labels: plan.labels,
        err_read,
        report: [0; 12],
        got: 0,
        timing,
        net_helper,
    })
}

static STEP_TIMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Profiling (PID 1's test-only `berth.test-timing=1`): children created from now on
/// report when each of their steps ended; see [`Starting::step_times`].
pub fn set_step_timing(on: bool) {
    STEP_TIMING.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Starting {
    /// The read end of the error pipe: readable (data or EOF) once the child exec'ed
    /// or failed.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.err_read.as_fd()
    }

    /// Makes [`Starting::poll`] return `Pending` instead of blocking.
    pub fn set_nonblocking(&self) -> std::io::Result<()> {
        rustix::io::ioctl_fionbio(&self.err_read, true).map_err(std::io::Error::from)
    }

    /// Reads what the child reported so far. Blocks (unless non-blocking) until the
    /// child exec'ed or failed. `Err`: the pipe could not be read (the child is still
    /// there; kill it).
    pub fn poll(&mut self) -> Result<Progress, SpawnError> {
        while self.got < self.report.len() {
            match rustix::io::read(&self.err_read, &mut self.report[self.got..]) {
                Ok(0) => break,
                Ok(n) => self.got += n,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Ok(Progress::Pending),
                Err(e) => return Err(self.pipe_error(e.into())),
            }
        }
        if self.got == 0 {
            return Ok(Progress::Execed);
        }
        Ok(Progress::Failed(self.failure()))
    }

    /// Waits until the program was exec'ed (`Ok`) or a step failed (`Err`, the child
    /// reaped).
    pub fn wait(mut self) -> Result<Child, SpawnError> {
        let progress = self.poll();
        // The child has its network namespace now, or never will.
        drop(self.net_helper.take());
        match progress {
            Ok(Progress::Execed) => Ok(self.child),
            Ok(Progress::Failed(e)) => {
                // The child failed and _exit'ed: reap it so no zombie is left.
                let _ = super::wait::wait(&self.child.pidfd);
                Err(e)
            }
            Ok(Progress::Pending) => {
                // Only a non-blocking pipe (set_nonblocking) says "not yet".
                let _ = super::wait::kill_and_reap(&self.child);
                Err(self.pipe_error(std::io::Error::from_raw_os_error(libc::EAGAIN)))
            }
            Err(e) => {
                let _ = super::wait::kill_and_reap(&self.child);
                Err(e)
            }
        }
    }

    /// With step timing on, once the child exec'ed: its `n` slowest steps, as "LABEL
    /// 1.2" (ms), and the time from the clone to its first step.
    pub fn step_times(&self, n: usize) -> Option<String> {
        let (fd, began) = self.timing.as_ref()?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(k) = rustix::io::read(fd, &mut buf) {
            if k == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..k]);
        }
        let now = std::time::Instant::now();
        let mono_ns = sys::monotonic_ns();
        // The clone's start on the monotonic clock (Instant is CLOCK_MONOTONIC).
        let began_ns = mono_ns.saturating_sub(now.duration_since(*began).as_nanos() as u64);
        let mut prev = began_ns;
        let mut steps = Vec::new();
        for rec in raw.chunks_exact(12) {
            let index = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
            let mut t = [0u8; 8];
            t.copy_from_slice(&rec[4..12]);
            let t = u64::from_ne_bytes(t);
            let label = self.labels.get(index).cloned().unwrap_or_default();
            steps.push((t.saturating_sub(prev), label));
            prev = t;
        }
        let total = prev.saturating_sub(began_ns);
        steps.sort_by_key(|s| std::cmp::Reverse(s.0));
        let top: Vec<String> = steps
            .iter()
            .take(n)
            .map(|(d, l)| format!("{l} {:.1}", *d as f64 / 1e6))
            .collect();
        Some(format!(
            "{} steps in {:.1} ms (until it closes the inherited fds); slowest: {}",
            steps.len(),
            total as f64 / 1e6,
            top.join(", ")
        ))
    }

    /// The error pipe could not be read.
    fn pipe_error(&self, source: std::io::Error) -> SpawnError {
        SpawnError::Prepare {
            container: self.name.clone(),
            what: "read the error pipe".into(),
            source,
        }
    }

    /// The error the child's report (`got` > 0 bytes) describes.
    fn failure(&self) -> SpawnError {
        let word = |i: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&self.report[i * 4..i * 4 + 4]);
            bytes
        };
        if self.got < self.report.len() {
            return SpawnError::Child {
                container: self.name.clone(),
                step: "(truncated report)".into(),
                errno: libc::EIO,
            };
        }
        let index = u32::from_ne_bytes(word(0)) as usize;
        let sub = u32::from_ne_bytes(word(1));
        let errno = i32::from_ne_bytes(word(2));
        let mut step = self
            .labels
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("step {index}"));
        let detail = super::ops::sub::describe(sub);
        if !detail.is_empty() {
            step = format!("{step}: {detail}");
        }
        SpawnError::Child {
            container: self.name.clone(),
            step,
            errno,
        }
    }
}

/// Where a child sharing berth's memory starts ([`sys::clone3_vfork`]).
extern "C" fn child_entry(plan: *mut libc::c_void) -> ! {
    // SAFETY: `clone` passes its live, exclusively borrowed plan and sleeps until the
    // child exec'ed or exited.
    super::child::run(unsafe { &mut *plan.cast::<ChildPlan>() })
}

/// Marks a branch only the child could take; the child never gets here because
/// `child::run` does not return.
fn unreachable_child() -> ! {
    sys::exit_now(127)
}

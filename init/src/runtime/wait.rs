//! Waiting for and reaping a container's init through its pidfd.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{Signal, WaitId, WaitIdOptions};

use super::spawn::Child;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by `signal`.
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by signal {signal}")?;
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// Reaps the process if it has exited; `None` if it is still running.
pub fn try_wait(pidfd: &impl AsFd) -> std::io::Result<Option<ExitStatus>> {
    waitid(pidfd.as_fd(), WaitIdOptions::EXITED | WaitIdOptions::NOHANG)
}

/// Blocks until the process exits, and reaps it.
pub fn wait(pidfd: &impl AsFd) -> std::io::Result<ExitStatus> {
    loop {
        if let Some(status) = waitid(pidfd.as_fd(), WaitIdOptions::EXITED)? {
            return Ok(status);
        }
    }
}

/// Waits at most `timeout` (polling the pidfd, which becomes readable on exit), and
/// reaps the process if it exited.
pub fn wait_timeout(pidfd: &impl AsFd, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = try_wait(pidfd)? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let spec = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&spec)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `signal` to the process (not to a recycled pid: the pidfd pins it).
pub fn signal(pidfd: &impl AsFd, signal: Signal) -> std::io::Result<()> {
    Ok(rustix::process::pidfd_send_signal(pidfd, signal)?)
}

/// SIGKILL and reap. For cleaning up after a failure.
pub fn kill_and_reap(child: &Child) -> std::io::Result<ExitStatus> {
    match signal(&child.pidfd, Signal::KILL) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
        Err(e) => return Err(e),
    }
    wait(&child.pidfd)
}

fn waitid(pidfd: BorrowedFd<'_>, options: WaitIdOptions) -> std::io::Result<Option<ExitStatus>> {
    let status = loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd), options) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let Some(status) = status else {
        return Ok(None);
    };
    if let Some(code) = status.exit_status() {
        return Ok(Some(ExitStatus::Exited(code)));
    }
    if let Some(signal) = status.terminating_signal() {
        return Ok(Some(ExitStatus::Signaled {
            signal,
            core_dumped: status.dumped(),
        }));
    }
    // WNOHANG with nothing to report yields a zeroed siginfo.
    Ok(None)
}

//! Readiness and health checks, each a short-lived child process so the supervisor's
//! single thread never blocks and never changes namespace: `tcp` connects to
//! 127.0.0.1:PORT inside the container's network namespace; `exec` runs a command inside
//! all of the container's namespaces and root. The exit status is the verdict (0 = ok);
//! the supervisor learns it from SIGCHLD like any other exit.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use crate::cmd::exec::{ExecOptions, exec_in};

fn fork() -> io::Result<i32> {
    // SAFETY: the supervisor is single-threaded, so the child inherits no lock held by
    // another thread (allocating in it is safe); it leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// Child side: never returns.
fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// Starts a TCP check; returns the checking child's pid.
pub fn tcp(
    pidfd: BorrowedFd<'_>,
    port: u16,
    timeout: Duration,
    host_network: bool,
) -> io::Result<i32> {
    let fd = pidfd.as_raw_fd();
    let pid = fork()?;
    if pid > 0 {
        return Ok(pid);
    }
    // SAFETY (whole block): raw syscalls on values prepared before the fork.
    unsafe {
        if !host_network && libc::setns(fd, libc::CLONE_NEWNET) != 0 {
            exit(2);
        }
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            exit(2);
        }
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let ok = libc::connect(
            s,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        ) == 0;
        exit(if ok { 0 } else { 1 })
    }
}

/// Starts an exec check of `argv` inside the container whose init is `pid` and whose
/// cgroup is `cgroup_dir`; returns the checking child's pid. The command runs exactly as
/// `berth exec` runs it (the container's namespaces, root, cgroup, user, environment and
/// capabilities), with its stdio on /dev/null; its exit status is the verdict.
pub fn exec(pid: i32, cgroup_dir: &Path, argv: &[String]) -> io::Result<i32> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let child = fork()?;
    if child > 0 {
        return Ok(child);
    }
    let fd = null.as_fd();
    let opts = ExecOptions {
        tty: false,
        stdio: [Some(fd), Some(fd), Some(fd)],
    };
    let code = exec_in(pid, cgroup_dir, argv, &opts).unwrap_or(126);
    exit(code)
}

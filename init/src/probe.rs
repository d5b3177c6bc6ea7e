//! Readiness and health checks, each a short-lived child process so the supervisor's
//! single thread never blocks and never changes namespace: `tcp` connects to
//! 127.0.0.1:PORT inside the container's network namespace; `exec` runs a command inside
//! all of the container's namespaces and root. The exit status is the verdict (0 = ok);
//! the supervisor learns it from SIGCHLD like any other exit.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Everything the child needs, allocated before the fork.
fn cstrings(v: &[String]) -> io::Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_str())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in command"))
        })
        .collect()
}

fn fork() -> io::Result<i32> {
    // SAFETY: the supervisor is single-threaded, so the child inherits no lock held by
    // another thread; the child only makes raw syscalls and leaves with _exit.
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

/// Starts an exec check of `argv` inside the container whose init is `pid`; returns the
/// checking child's pid. The command gets the container's root, namespaces, cwd `/`,
/// and a minimal environment.
pub fn exec(pid: i32, argv: &[String], timeout: Duration) -> io::Result<i32> {
    let _ = timeout; // enforced by the supervisor, which kills the check after it
    let argv_c = cstrings(argv)?;
    if argv_c.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    }
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let path = CString::new("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let envp = [path.as_ptr(), std::ptr::null()];
    let root = CString::new(format!("/proc/{pid}/root"))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let slash = c"/";
    let dot = c".";
    // SAFETY: pidfd_open takes a pid and flags.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open of a NUL-terminated path.
    let rootfd = unsafe {
        libc::open(
            root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if rootfd < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: closing the fd opened above.
        unsafe { libc::close(pidfd) };
        return Err(e);
    }
    let child = fork();
    if !matches!(child, Ok(0)) {
        // SAFETY: closing fds this function opened; the child keeps its own copies.
        unsafe {
            libc::close(pidfd);
            libc::close(rootfd);
        }
        return child;
    }
    // SAFETY (whole block): raw syscalls on values prepared before the fork. The root
    // is taken from /proc/PID/root before setns: after pivot_root, the mount
    // namespace's own root is not the container's root.
    unsafe {
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWCGROUP;
        if libc::setns(pidfd, flags) != 0
            || libc::fchdir(rootfd) != 0
            || libc::chroot(dot.as_ptr()) != 0
            || libc::chdir(slash.as_ptr()) != 0
        {
            exit(2);
        }
        // setns(CLONE_NEWPID) applies to children: fork once more to be inside.
        let inner = libc::fork();
        if inner < 0 {
            exit(2);
        }
        if inner == 0 {
            libc::execvpe(argv_p[0], argv_p.as_ptr(), envp.as_ptr());
            exit(127);
        }
        let mut status = 0;
        while libc::waitpid(inner, &mut status, 0) < 0 {}
        exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        })
    }
}

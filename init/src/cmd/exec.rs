//! `berth exec NAME [--] CMD…`: runs a command inside a running container, like
//! `nsenter` + the container's identity.
//!
//! berth (the supervisor) is never involved beyond telling the container's pid: the CLI
//! does it all, so berth never re-executes itself inside a container (DESIGN.md).
//!
//! Three processes:
//! - **P**, the caller: checks and reads everything about the target (pidfd, cgroup,
//!   namespaces, root, cwd, credentials, capabilities, environment), prepares every
//!   string and fd, forks C1, then waits (or relays a pty) and returns C2's exit code.
//! - **C1**: moves itself into the container's cgroup, joins the container's
//!   namespaces with one `setns(pidfd, …)`, forks C2 (a child is needed to be *in* the
//!   pid namespace), waits for it and exits with its code (128+N if killed by signal N).
//! - **C2**: the container's root and cwd, a new session on the pty (if any),
//!   the capability bounding set, groups, gid, uid and capability sets of the container's
//!   init, no_new_privs, default signal handling, then execve with the container's
//!   environment.
//!
//! C1 and C2 run only async-signal-safe code (raw syscalls on prepared data): the caller
//! may be multi-threaded (the tests are). A failure in C1 or C2 is written as
//! (step, errno) to a CLOEXEC pipe, so P reports the failing step by name.

use std::ffi::{CString, OsStr, c_char, c_int};
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::thread::{CapabilitySet, CapabilitySets, ThreadNameSpaceType};

use super::ctl::{self, fail};
use crate::runtime::spawn::errno_text;
use crate::runtime::wait::{self, ExitStatus};

/// PATH used when the container's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How `exec_in` connects the command.
#[derive(Debug, Default)]
pub struct ExecOptions<'a> {
    /// Allocate a pty in the container (from its /dev/ptmx), make it the command's
    /// controlling terminal, and relay it to this process's stdin/stdout, with stdin in
    /// raw mode while it runs and the window size passed on (SIGWINCH). Blocks SIGWINCH,
    /// SIGHUP, SIGTERM and SIGINT in the calling thread meanwhile.
    pub tty: bool,
    /// Without `tty`: the command's stdin, stdout and stderr (`None`: this process's).
    pub stdio: [Option<BorrowedFd<'a>>; 3],
}

/// Why a command could not be run in a container.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no command given")]
    NoCommand,
    #[error(
        "process {pid} is not running any more (the container stopped or restarted; try again)"
    )]
    Gone { pid: i32 },
    #[error(
        "process {pid} is in cgroup {actual}, not in {expected}: the container was restarted or replaced; try again"
    )]
    Moved {
        pid: i32,
        expected: PathBuf,
        actual: String,
    },
    #[error("cannot {what} of process {pid}: {source}")]
    Inspect {
        pid: i32,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot {what}: {source}")]
    Prepare {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("entering the container failed: {step}: {}", errno_text(*errno))]
    Step { step: &'static str, errno: i32 },
    #[error("{program}: command not found in the container (PATH={path})")]
    NotFound { program: String, path: String },
    #[error("cannot run {program} in the container: {}", errno_text(*errno))]
    CannotRun { program: String, errno: i32 },
}

impl ExecError {
    /// The exit code for the CLI: 127 command not found, 126 not runnable (like
    /// shells), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::CannotRun { .. } => 126,
            _ => ctl::FAILED,
        }
    }
}

/// `berth exec`: asks berth for the container's pid, checks it, runs `argv` in it.
/// Returns the command's exit code (128+N if killed by signal N).
pub fn exec(socket: &Path, name: &str, argv: &[String], no_tty: bool, err: &mut dyn Write) -> u8 {
    let containers = match ctl::containers(socket, err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(container) = containers.iter().find(|c| c.name == name) else {
        return fail(err, &format!("no container `{name}`"));
    };
    let Some(pid) = container.pid else {
        return fail(
            err,
            &format!(
                "container {name} is not running (state: {})",
                serde_json::to_string(&container.state)
                    .unwrap_or_default()
                    .trim_matches('"')
            ),
        );
    };
    let cgroup = match container_cgroup(pid, name) {
        Ok(dir) => dir,
        Err(e) => return fail(err, &format!("container {name}: {e}")),
    };
    let tty = !no_tty && io::stdin().is_terminal();
    if !tty {
        // Ctrl-C reaches the command directly (same process group); berth exec stays to
        // report how it ended.
        ignore_interrupts();
    }
    match exec_in(
        pid,
        &cgroup,
        argv,
        &ExecOptions {
            tty,
            ..ExecOptions::default()
        },
    ) {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => {
            let code = e.exit_code();
            let _ = writeln!(err, "error: container {name}: {e}");
            code
        }
    }
}

fn ignore_interrupts() {
    for sig in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: SIG_IGN involves no handler code; the CLI's only thread calls this.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

/// The cgroup v2 directory of process `pid`, checked to be the cgroup of container
/// `name` (berth puts each container in a cgroup named after it).
pub fn container_cgroup(pid: i32, name: &str) -> Result<PathBuf, ExecError> {
    let dir = process_cgroup_dir(pid)?;
    if dir.file_name() != Some(OsStr::new(name)) {
        return Err(ExecError::Moved {
            pid,
            expected: PathBuf::from(format!(".../{name}")),
            actual: dir.display().to_string(),
        });
    }
    Ok(dir)
}

/// Where process `pid`'s cgroup v2 directory is, in this mount namespace.
pub fn process_cgroup_dir(pid: i32) -> Result<PathBuf, ExecError> {
    let inspect = |what: &str| {
        let what = what.to_owned();
        move |source| ExecError::Inspect { pid, what, source }
    };
    let cgroups =
        fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ESRCH) => ExecError::Gone { pid },
            _ => inspect("read the cgroup")(e),
        })?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| ExecError::Prepare {
        what: "read /proc/self/mountinfo".into(),
        source: e,
    })?;
    cgroup_dir(&mountinfo, &cgroups).ok_or_else(|| {
        inspect("find the cgroup v2 directory")(io::Error::other(format!(
            "no cgroup2 mount holds it (its cgroups: {})",
            cgroups.trim().replace('\n', ", ")
        )))
    })
}

/// The directory of the v2 cgroup named in `proc_cgroup` (`/proc/PID/cgroup`), under a
/// cgroup2 mount listed in `mountinfo` (`/proc/self/mountinfo`).
pub fn cgroup_dir(mountinfo: &str, proc_cgroup: &str) -> Option<PathBuf> {
    let path = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_end();
    if !path.starts_with('/') {
        return None;
    }
    crate::state::cgroup2_mounts(mountinfo).find_map(|(root, mount_point)| {
        let rel = if root == "/" {
            path
        } else {
            path.strip_prefix(root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))?
        };
        let rel = rel.trim_start_matches('/');
        Some(if rel.is_empty() {
            PathBuf::from(mount_point)
        } else {
            Path::new(&mount_point).join(rel)
        })
    })
}

/// The identity of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    /// Real, effective, saved.
    pub uid: [u32; 3],
    pub gid: [u32; 3],
    pub groups: Vec<u32>,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    /// The file mode creation mask (`Umask`, Linux 4.7+).
    pub umask: Option<u32>,
}

/// Parses the `Uid`, `Gid`, `Groups` and `Cap*` lines of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Option<Creds> {
    let mut creds = Creds::default();
    let (mut uid, mut gid, mut bnd) = (false, false, false);
    let ids = |v: &str| -> Option<[u32; 3]> {
        let mut it = v.split_whitespace().map(str::parse::<u32>);
        Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let hex = || u64::from_str_radix(value.trim(), 16).ok();
        match key {
            "Uid" => (creds.uid, uid) = (ids(value)?, true),
            "Gid" => (creds.gid, gid) = (ids(value)?, true),
            "Groups" => {
                creds.groups = value
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?
            }
            "CapInh" => creds.cap_inh = hex()?,
            "CapPrm" => creds.cap_prm = hex()?,
            "CapEff" => creds.cap_eff = hex()?,
            "CapBnd" => (creds.cap_bnd, bnd) = (hex()?, true),
            "Umask" => creds.umask = Some(u32::from_str_radix(value.trim(), 8).ok()?),
            _ => {}
        }
    }
    (uid && gid && bnd).then_some(creds)
}

/// The namespaces `setns` must join: those of `pid` that differ from this process's.
fn differing_namespaces(pid: i32) -> Result<ThreadNameSpaceType, ExecError> {
    const KINDS: [(&str, ThreadNameSpaceType); 7] = [
        ("user", ThreadNameSpaceType::USER),
        ("mnt", ThreadNameSpaceType::MOUNT),
        ("uts", ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME),
        ("ipc", ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION),
        ("net", ThreadNameSpaceType::NETWORK),
        ("pid", ThreadNameSpaceType::PROCESS_ID),
        ("cgroup", ThreadNameSpaceType::CONTROL_GROUP),
    ];
    let mut flags = ThreadNameSpaceType::empty();
    for (name, flag) in KINDS {
        let theirs = match fs::metadata(format!("/proc/{pid}/ns/{name}")) {
            Ok(m) => m,
            // A kernel without this kind of namespace.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && Path::new(&format!("/proc/{pid}")).exists() =>
            {
                continue;
            }
            Err(e) => {
                return Err(ExecError::Inspect {
                    pid,
                    what: format!("read the {name} namespace"),
                    source: e,
                });
            }
        };
        let ours =
            fs::metadata(format!("/proc/self/ns/{name}")).map_err(|e| ExecError::Prepare {
                what: format!("read this process's {name} namespace"),
                source: e,
            })?;
        if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
            flags |= flag;
        }
    }
    Ok(flags)
}

/// Runs `argv` inside the running container whose init is `pid` and whose cgroup v2
/// directory is `cgroup_dir`, and returns its exit code (128+N if killed by signal N).
///
/// `pid` is pinned with a pidfd and then checked to be in `cgroup_dir`, so a pid reused
/// after the container restarted is refused ([`ExecError::Moved`] / [`ExecError::Gone`]).
pub fn exec_in(
    pid: i32,
    cgroup_dir: &Path,
    argv: &[String],
    opts: &ExecOptions<'_>,
) -> Result<i32, ExecError> {
    if argv.is_empty() {
        return Err(ExecError::NoCommand);
    }
    let prepare = |what: &str| {
        let what = what.to_owned();
        move |source: io::Error| ExecError::Prepare { what, source }
    };
    let inspect = |what: &str| {
        let what = what.to_owned();
        move |source: io::Error| match source.raw_os_error() {
            Some(libc::ESRCH | libc::ENOENT) => ExecError::Gone { pid },
            _ => ExecError::Inspect { pid, what, source },
        }
    };

    // Pin the process, then check that it is the container's: whatever is read from
    // /proc/PID below belongs to the pinned process as long as it has not exited, which
    // is checked last.
    let raw_pid = rustix::process::Pid::from_raw(pid).ok_or(ExecError::Gone { pid })?;
    let pidfd = rustix::process::pidfd_open(raw_pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| inspect("open a pidfd")(e.into()))?;
    let actual = process_cgroup_dir(pid)?;
    if actual != cgroup_dir {
        return Err(ExecError::Moved {
            pid,
            expected: cgroup_dir.to_path_buf(),
            actual: actual.display().to_string(),
        });
    }
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).map_err(inspect("read the status"))?;
    let creds = parse_status(&status)
        .ok_or_else(|| inspect("parse the status")(io::Error::other("no Uid/Gid/CapBnd lines")))?;
    let environ =
        fs::read(format!("/proc/{pid}/environ")).map_err(inspect("read the environment"))?;
    let proc_dir = |what: &str| {
        rustix::fs::open(
            format!("/proc/{pid}/{what}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| inspect(&format!("open the {what} directory"))(e.into()))
    };
    let root = proc_dir("root")?;
    let cwd = proc_dir("cwd")?;
    let namespaces = differing_namespaces(pid)?;
    if exited(&pidfd) {
        return Err(ExecError::Gone { pid });
    }

    // Everything the children need, prepared here: they may not allocate.
    let mut env: Vec<CString> = environ
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .filter_map(|v| CString::new(v).ok())
        .collect();
    if opts.tty && !env.iter().any(|v| v.as_bytes().starts_with(b"TERM=")) {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        env.extend(CString::new(format!("TERM={term}")).ok());
    }
    let path_var = env
        .iter()
        .find_map(|v| v.as_bytes().strip_prefix(b"PATH="))
        .map_or_else(
            || DEFAULT_PATH.to_owned(),
            |p| String::from_utf8_lossy(p).into_owned(),
        );
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            prepare("pass the command")(io::Error::other("an argument contains a NUL byte"))
        })?;
    let programs: Vec<CString> = if argv[0].contains('/') {
        vec![args[0].clone()]
    } else {
        path_var
            .split(':')
            .map(|dir| if dir.is_empty() { "." } else { dir })
            .filter_map(|dir| CString::new(format!("{dir}/{}", argv[0])).ok())
            .collect()
    };
    let arg_ptrs = null_terminated(&args);
    let env_ptrs = null_terminated(&env);
    let groups: Vec<rustix::process::Gid> = creds
        .groups
        .iter()
        .map(|&g| rustix::process::Gid::from_raw(g))
        .collect();
    let last_cap: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let procs = rustix::fs::open(
        cgroup_dir.join("cgroup.procs"),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| prepare(&format!("open {}/cgroup.procs", cgroup_dir.display()))(e.into()))?;
    let (err_read, err_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| prepare("create a pipe")(e.into()))?;

    let pty = if opts.tty {
        Some(Pty::open_in(&root)?)
    } else {
        None
    };
    let stdio: [RawFd; 3] = match &pty {
        Some(p) => [p.slave.as_raw_fd(); 3],
        None => opts.stdio.map(|fd| fd.map_or(-1, |f| f.as_raw_fd())),
    };
    let plan = ChildPlan {
        parent: rustix::process::getpid().as_raw_nonzero().get(),
        procs: procs.as_raw_fd(),
        pidfd: pidfd.as_raw_fd(),
        namespaces: namespaces.bits() as c_int,
        err_fd: err_write.as_raw_fd(),
        pty_fds: pty
            .as_ref()
            .map_or([-1, -1], |p| [p.master.as_raw_fd(), p.slave.as_raw_fd()]),
        tty: pty.as_ref().map_or(-1, |p| p.slave.as_raw_fd()),
        stdio,
        root: root.as_raw_fd(),
        cwd: cwd.as_raw_fd(),
        creds: &creds,
        groups: &groups,
        last_cap,
        programs: &programs,
        argv: arg_ptrs.as_ptr(),
        envp: env_ptrs.as_ptr(),
    };

    // Signals blocked across the fork: no handler of this process runs in C1 or C2
    // (C2 resets every disposition and the mask before exec).
    let mask = SignalMask::block_all();
    // SAFETY: fork semantics (no shared memory, no new stack); the child runs only
    // `stage1`, which is async-signal-safe and never returns.
    let forked = unsafe { fork(true) };
    if let Ok(Forked::Child) = forked {
        stage1(&plan);
    }
    drop(mask);
    drop(err_write);
    let c1_pidfd = match forked {
        Ok(Forked::Parent(_, Some(fd))) => fd,
        Ok(_) => {
            return Err(prepare("fork")(io::Error::other(
                "clone3 returned no pidfd",
            )));
        }
        Err(e) => return Err(prepare("fork")(e)),
    };
    let pty = pty.map(Pty::into_master);

    // Wait until C2 exec'd (the pipe closes) or a step failed (a report arrives).
    if let Some((step, errno)) = read_report(&err_read) {
        let _ = wait::wait(&c1_pidfd);
        return Err(match step {
            Step::Exec if errno == libc::ENOENT || errno == libc::ENOTDIR => ExecError::NotFound {
                program: argv[0].clone(),
                path: path_var,
            },
            Step::Exec => ExecError::CannotRun {
                program: argv[0].clone(),
                errno,
            },
            step => ExecError::Step {
                step: step.describe(),
                errno,
            },
        });
    }
    drop(err_read);

    let status = match pty {
        Some(master) => relay::run(master, &c1_pidfd).map_err(prepare("relay the terminal"))?,
        None => wait::wait(&c1_pidfd).map_err(prepare("wait for the command"))?,
    };
    Ok(match status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled { signal, .. } => 128 + signal,
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The process behind `pidfd` has exited (its pidfd is readable).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// A pty pair from the container's own devpts (its /dev/ptmx), so that inside the
/// container the terminal is one of its /dev/pts/N.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open_in(root: &OwnedFd) -> Result<Pty, ExecError> {
        let prepare = |what: &'static str| {
            move |e: Errno| ExecError::Prepare {
                what: what.to_owned(),
                source: e.into(),
            }
        };
        // Resolved as if `root` were "/": /dev/ptmx is usually a symlink to pts/ptmx,
        // and an absolute symlink must not lead out of the container.
        let master = rustix::fs::openat2(
            root,
            "dev/ptmx",
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(prepare("open the container's /dev/ptmx"))?;
        rustix::pty::unlockpt(&master).map_err(prepare("unlock the pty"))?;
        // The peer by fd, not by a /dev/pts path looked up in this mount namespace.
        let slave = rustix::pty::ioctl_tiocgptpeer(
            &master,
            rustix::pty::OpenptFlags::RDWR
                | rustix::pty::OpenptFlags::NOCTTY
                | rustix::pty::OpenptFlags::CLOEXEC,
        )
        .map_err(prepare("open the pty's terminal side"))?;
        if let Ok(size) = rustix::termios::tcgetwinsize(io::stdin()) {
            let _ = rustix::termios::tcsetwinsize(&master, size);
        }
        Ok(Pty { master, slave })
    }

    /// Closes this process's copy of the terminal side (C2 holds its own).
    fn into_master(self) -> OwnedFd {
        self.master
    }
}

// ---------------------------------------------------------------------------------------
// The children. Everything below runs between fork and exec: raw syscalls only, on data
// prepared above, no allocation, no locks, no panics.

/// The steps of C1 and C2, reported by number through the error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Step {
    JoinCgroup = 1,
    Setns,
    Fork,
    Setsid,
    Ctty,
    Stdio,
    Root,
    Bounding,
    Groups,
    Gid,
    Uid,
    Capabilities,
    NoNewPrivs,
    Exec,
}

impl Step {
    const ALL: [Step; 14] = [
        Step::JoinCgroup,
        Step::Setns,
        Step::Fork,
        Step::Setsid,
        Step::Ctty,
        Step::Stdio,
        Step::Root,
        Step::Bounding,
        Step::Groups,
        Step::Gid,
        Step::Uid,
        Step::Capabilities,
        Step::NoNewPrivs,
        Step::Exec,
    ];

    fn describe(self) -> &'static str {
        match self {
            Step::JoinCgroup => "join the container's cgroup",
            Step::Setns => "join the container's namespaces (setns)",
            Step::Fork => "fork inside the pid namespace",
            Step::Setsid => "start a session",
            Step::Ctty => "make the pty the controlling terminal",
            Step::Stdio => "set up stdin/stdout/stderr",
            Step::Root => "enter the container's root directory",
            Step::Bounding => "reduce the capability bounding set",
            Step::Groups => "set the supplementary groups",
            Step::Gid => "set the group id",
            Step::Uid => "set the user id",
            Step::Capabilities => "set the capabilities",
            Step::NoNewPrivs => "set no_new_privs",
            Step::Exec => "exec",
        }
    }
}

/// What C1 and C2 need, as raw values and pointers into memory owned by `exec_in`.
struct ChildPlan<'a> {
    parent: i32,
    procs: RawFd,
    pidfd: RawFd,
    namespaces: c_int,
    err_fd: RawFd,
    /// Closed in C1 after forking C2.
    pty_fds: [RawFd; 2],
    /// The pty's terminal side, or -1.
    tty: RawFd,
    /// -1: keep this process's.
    stdio: [RawFd; 3],
    root: RawFd,
    cwd: RawFd,
    creds: &'a Creds,
    groups: &'a [rustix::process::Gid],
    last_cap: u32,
    programs: &'a [CString],
    argv: *const *const c_char,
    envp: *const *const c_char,
}

enum Forked {
    Parent(i32, Option<OwnedFd>),
    Child,
}

/// `struct clone_args` of clone3(2), the first version (64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// fork(2) as a raw clone3, without libc's fork handlers; with a pidfd if asked.
///
/// # Safety
/// The child must run only async-signal-safe code until it execs or `_exit`s.
unsafe fn fork(with_pidfd: bool) -> io::Result<Forked> {
    let mut pidfd: c_int = -1;
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if with_pidfd {
        args.flags = libc::CLONE_PIDFD as u64;
        args.pidfd = &mut pidfd as *mut c_int as u64;
    }
    // SAFETY: `args` is a live clone_args of the size passed; without CLONE_VM and a
    // stack the child continues on a copy of this stack (fork semantics), which the
    // caller makes sound by running only async-signal-safe code there.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd that nothing else owns.
            let fd = with_pidfd.then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
            Ok(Forked::Parent(pid as i32, fd))
        }
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot; reading it is
    // async-signal-safe.
    unsafe { *libc::__errno_location() }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process without running atexit handlers or destructors,
    // which is what a forked child must do.
    unsafe { libc::_exit(code) }
}

/// Sends (step, errno) to `exec_in` and exits.
fn report(err_fd: RawFd, step: Step, errno: i32) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: a write of a stack buffer to an fd this process owns.
    unsafe {
        libc::write(err_fd, buf.as_ptr().cast(), buf.len());
    }
    exit_now(if step == Step::Exec { 127 } else { 126 })
}

fn read_report(pipe: &OwnedFd) -> Option<(Step, i32)> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(pipe, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(_) => break,
        }
    }
    if got < buf.len() {
        return None;
    }
    let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let step = Step::ALL
        .into_iter()
        .find(|s| *s as u32 == step)
        .unwrap_or(Step::Exec);
    Some((step, errno))
}

fn check(err_fd: RawFd, step: Step, result: Result<(), Errno>) {
    if let Err(e) = result {
        report(err_fd, step, e.raw_os_error());
    }
}

fn check_libc(err_fd: RawFd, step: Step, ret: libc::c_long) {
    if ret == -1 {
        report(err_fd, step, errno());
    }
}

/// C1: cgroup, namespaces, fork C2, wait for it, exit with its code.
fn stage1(plan: &ChildPlan<'_>) -> ! {
    let e = plan.err_fd;
    // Do not outlive `exec_in`'s process (its death kills C1; C2 is told by its own
    // parent-death signal).
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(plan.parent) {
        exit_now(1);
    }
    // "0": the writing process. Before joining the cgroup namespace, where the
    // container's cgroup is the root and this process's current cgroup is out of sight.
    // SAFETY: a write of a static buffer to an fd this process owns.
    check_libc(
        e,
        Step::JoinCgroup,
        unsafe { libc::write(plan.procs, b"0".as_ptr().cast(), 1) } as libc::c_long,
    );
    if plan.namespaces != 0 {
        // SAFETY: the pidfd is valid for the lifetime of this process (inherited).
        let pidfd = unsafe { BorrowedFd::borrow_raw(plan.pidfd) };
        // One call for all: the kernel orders them (user first) and applies all or none.
        check(
            e,
            Step::Setns,
            rustix::thread::move_into_thread_name_spaces(
                pidfd,
                ThreadNameSpaceType::from_bits_retain(plan.namespaces as u32),
            ),
        );
    }
    // SAFETY: C2 runs only `stage2`, which is async-signal-safe and never returns.
    let c2 = match unsafe { fork(false) } {
        Ok(Forked::Child) => stage2(plan),
        Ok(Forked::Parent(pid, _)) => pid,
        Err(err) => report(e, Step::Fork, err.raw_os_error().unwrap_or(libc::EIO)),
    };
    for fd in [plan.err_fd, plan.pty_fds[0], plan.pty_fds[1]] {
        if fd >= 0 {
            // SAFETY: closing this process's copies of inherited fds it does not use.
            unsafe {
                libc::close(fd);
            }
        }
    }
    let mut status: c_int = 0;
    loop {
        // SAFETY: waitpid on our own child with a pointer to a local.
        let r = unsafe { libc::waitpid(c2, &mut status, 0) };
        if r == c2 {
            break;
        }
        if r == -1 && errno() != libc::EINTR {
            exit_now(126);
        }
    }
    if libc::WIFSIGNALED(status) {
        exit_now(128 + libc::WTERMSIG(status));
    }
    exit_now(libc::WEXITSTATUS(status))
}

/// C2: in the namespaces already; becomes the container's process and execs.
fn stage2(plan: &ChildPlan<'_>) -> ! {
    let e = plan.err_fd;
    let creds = plan.creds;
    if plan.tty >= 0 {
        check(e, Step::Setsid, rustix::process::setsid().map(drop));
        // SAFETY: a valid fd inherited from `exec_in`, borrowed for one call.
        let tty = unsafe { BorrowedFd::borrow_raw(plan.tty) };
        check(e, Step::Ctty, rustix::process::ioctl_tiocsctty(tty));
        // Owned by the user it runs as, like a login terminal (best effort).
        let _ = rustix::fs::fchown(
            tty,
            Some(rustix::process::Uid::from_raw(creds.uid[1])),
            Some(rustix::process::Gid::from_raw(creds.gid[1])),
        );
    }
    // Sources below 3 could be overwritten by an earlier dup2: move them up first.
    let mut stdio = plan.stdio;
    for fd in stdio.iter_mut().filter(|fd| (0..3).contains(&**fd)) {
        // SAFETY: fcntl on an fd number; no memory involved.
        let moved = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3) };
        check_libc(e, Step::Stdio, moved as libc::c_long);
        *fd = moved;
    }
    for (target, &fd) in stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: dup2 on fd numbers; the result is not CLOEXEC, as stdio must be.
            check_libc(e, Step::Stdio, unsafe { libc::dup2(fd, target as c_int) }
                as libc::c_long);
        }
    }

    // After setns(CLONE_NEWNS) root and cwd are the namespace's root; the container's
    // process may have a different root (a chroot) and has its own cwd: take both from it.
    // SAFETY: fds inherited from `exec_in`, borrowed for these calls.
    let (root, cwd) = unsafe {
        (
            BorrowedFd::borrow_raw(plan.root),
            BorrowedFd::borrow_raw(plan.cwd),
        )
    };
    check(e, Step::Root, rustix::process::fchdir(root));
    check(e, Step::Root, rustix::process::chroot(c"."));
    if rustix::process::fchdir(cwd).is_err() {
        check(e, Step::Root, rustix::process::chdir(c"/"));
    }

    // Capabilities and identity, while this process still has CAP_SETPCAP, CAP_SETUID…
    // SAFETY: prctl with integer arguments (EINVAL on kernels without ambient caps).
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    for cap in 0..=plan.last_cap.min(63) {
        if creds.cap_bnd & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r == -1 && errno() != libc::EINVAL {
                report(e, Step::Bounding, errno());
            }
        }
    }
    check(
        e,
        Step::Groups,
        rustix::thread::set_thread_groups(plan.groups),
    );
    let gid = creds.gid.map(rustix::process::Gid::from_raw);
    check(
        e,
        Step::Gid,
        rustix::thread::set_thread_res_gid(gid[0], gid[1], gid[2]).map(drop),
    );
    let uid = creds.uid.map(rustix::process::Uid::from_raw);
    check(
        e,
        Step::Uid,
        rustix::thread::set_thread_res_uid(uid[0], uid[1], uid[2]).map(drop),
    );
    // The container's sets, limited to what is still held (a uid change cleared them).
    let held = match rustix::thread::capabilities(None) {
        Ok(sets) => sets,
        Err(err) => report(e, Step::Capabilities, err.raw_os_error()),
    };
    let permitted = creds.cap_prm & held.permitted.bits();
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(creds.cap_eff & permitted),
        permitted: CapabilitySet::from_bits_retain(permitted),
        inheritable: CapabilitySet::from_bits_retain(
            creds.cap_inh & creds.cap_bnd & (held.permitted.bits() | held.inheritable.bits()),
        ),
    };
    check(
        e,
        Step::Capabilities,
        rustix::thread::set_capabilities(None, sets),
    );
    check(e, Step::NoNewPrivs, rustix::thread::set_no_new_privs(true));
    if let Some(mask) = creds.umask {
        rustix::process::umask(Mode::from_bits_truncate(mask));
    }
    // The command ends if `berth exec` is killed (after the uid change, which clears it).
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
    }

    // Default dispositions and an empty mask, as a fresh process has; a failure leaves
    // berth exec's own (harmless) settings.
    let _ = crate::runtime::sys::reset_signals();
    // Every other fd is closed by exec, whatever the caller left without CLOEXEC.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }

    // PATH search in the container's PATH; the most telling error wins (EACCES over
    // ENOENT, like execvp).
    let mut failure = libc::ENOENT;
    for program in plan.programs {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays prepared before the
        // fork, alive in the parent's frame (this process has a copy).
        unsafe {
            libc::execve(program.as_ptr(), plan.argv, plan.envp);
        }
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => failure = libc::EACCES,
            other => {
                failure = other;
                break;
            }
        }
    }
    report(e, Step::Exec, failure)
}

/// Blocks every signal in this thread until dropped.
struct SignalMask(libc::sigset_t);

impl SignalMask {
    fn block(signals: Option<&[c_int]>) -> SignalMask {
        // SAFETY: sigset_t is plain data; the calls only write into these locals.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            match signals {
                None => {
                    libc::sigfillset(&mut set);
                }
                Some(list) => {
                    libc::sigemptyset(&mut set);
                    for &s in list {
                        libc::sigaddset(&mut set, s);
                    }
                }
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SignalMask(old)
        }
    }

    fn block_all() -> SignalMask {
        SignalMask::block(None)
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        // SAFETY: restores the mask pthread_sigmask returned for this thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}

/// Relaying between the local terminal and the container's pty.
mod relay {
    use super::*;

    /// Puts the terminal in raw mode until dropped (on every path, panics included).
    struct RawMode {
        saved: Option<rustix::termios::Termios>,
    }

    impl RawMode {
        fn enter() -> RawMode {
            let stdin = io::stdin();
            let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
                return RawMode { saved: None };
            };
            let mut raw = saved.clone();
            raw.make_raw();
            if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
                .is_err()
            {
                return RawMode { saved: None };
            }
            RawMode { saved: Some(saved) }
        }
    }

    impl Drop for RawMode {
        fn drop(&mut self) {
            if let Some(saved) = &self.saved {
                let _ = rustix::termios::tcsetattr(
                    io::stdin(),
                    rustix::termios::OptionalActions::Now,
                    saved,
                );
            }
        }
    }

    /// Reads a signalfd for the signals the relay handles.
    struct Signals {
        fd: OwnedFd,
        _mask: SignalMask,
    }

    impl Signals {
        fn new() -> io::Result<Signals> {
            let list = [libc::SIGWINCH, libc::SIGHUP, libc::SIGTERM, libc::SIGINT];
            let mask = SignalMask::block(Some(&list));
            // SAFETY: sigset_t is plain data, filled by the libc calls; signalfd returns a
            // new fd (or -1) that is then owned here.
            let fd = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for s in list {
                    libc::sigaddset(&mut set, s);
                }
                libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a new fd nothing else owns.
            Ok(Signals {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                _mask: mask,
            })
        }

        /// The next pending signal number.
        fn next(&self) -> Option<u32> {
            // SAFETY: signalfd_siginfo is plain data of 128 bytes.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            (n == size as isize).then_some(info.ssi_signo)
        }
    }

    const BUF: usize = 64 * 1024;
    /// Bytes written to stdout per wakeup: at most PIPE_BUF, so a blocking pipe or
    /// terminal never blocks after POLLOUT.
    const OUT_STEP: usize = 4096;

    /// Relays stdin → master and master → stdout until the command ends; returns its
    /// status (C1's).
    pub(super) fn run(master: OwnedFd, c1: &OwnedFd) -> io::Result<ExitStatus> {
        let signals = Signals::new()?;
        let flags = rustix::fs::fcntl_getfl(&master)?;
        rustix::fs::fcntl_setfl(&master, flags | OFlags::NONBLOCK)?;
        let raw = RawMode::enter();
        let (stdin, stdout) = (io::stdin(), io::stdout());
        let (stdin, stdout) = (stdin.as_fd(), stdout.as_fd());
        let mut to_master: Vec<u8> = Vec::new();
        let mut to_out: Vec<u8> = Vec::new();
        let mut stdin_open = true;
        let mut master_open = true;
        let mut buf = vec![0u8; BUF];
        let mut ended_by: Option<u32> = None;
        loop {
            let mut fds = Vec::with_capacity(5);
            let mut want = |fd, flags: PollFlags| {
                fds.push(PollFd::from_borrowed_fd(fd, flags));
                fds.len() - 1
            };
            let i_c1 = want(c1.as_fd(), PollFlags::IN);
            let i_sig = want(signals.fd.as_fd(), PollFlags::IN);
            let mut master_flags = PollFlags::empty();
            if to_out.len() < BUF {
                master_flags |= PollFlags::IN;
            }
            if !to_master.is_empty() {
                master_flags |= PollFlags::OUT;
            }
            // Once the terminal side is closed the master reports HUP forever: stop
            // watching it (the command may still run, e.g. with its output redirected).
            let i_master = master_open.then(|| want(master.as_fd(), master_flags));
            let i_in = (stdin_open && to_master.len() < BUF).then(|| want(stdin, PollFlags::IN));
            let i_out = (!to_out.is_empty()).then(|| want(stdout, PollFlags::OUT));
            match rustix::event::poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |i: usize| fds[i].revents();
            if !ready(i_sig).is_empty() {
                while let Some(sig) = signals.next() {
                    if sig == libc::SIGWINCH as u32 {
                        if let Ok(size) = rustix::termios::tcgetwinsize(stdin) {
                            let _ = rustix::termios::tcsetwinsize(&master, size);
                        }
                    } else {
                        ended_by = Some(sig);
                    }
                }
            }
            if let Some(i) = i_in
                && !ready(i).is_empty()
            {
                match rustix::io::read(stdin, &mut buf[..BUF - to_master.len()]) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => to_master.extend_from_slice(&buf[..n]),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    Err(_) => stdin_open = false,
                }
            }
            let master_ready = i_master.map_or(PollFlags::empty(), ready);
            if master_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                master_open = read_master(&master, &mut to_out, &mut buf);
            }
            if !to_master.is_empty() && master_ready.contains(PollFlags::OUT) {
                match rustix::io::write(&master, &to_master) {
                    Ok(n) => drop(to_master.drain(..n)),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    Err(_) => to_master.clear(),
                }
            }
            if let Some(i) = i_out
                && !ready(i).is_empty()
            {
                let step = to_out.len().min(OUT_STEP);
                match rustix::io::write(stdout, &to_out[..step]) {
                    Ok(n) => drop(to_out.drain(..n)),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    // Nobody reads our output any more; keep the command running.
                    Err(_) => to_out.clear(),
                }
            }
            if !ready(i_c1).is_empty() {
                break;
            }
            if let Some(sig) = ended_by {
                drop(raw);
                let _ = writeln!(io::stderr(), "berth exec: signal {sig}, hanging up");
                return hang_up(master, c1, sig);
            }
        }
        // The command ended: what it wrote last may still be on its way through the pty
        // (the kernel flushes pty buffers asynchronously). Read until the terminal side
        // is closed (EIO), or until nothing came for a moment (a background process of
        // the command may keep it open).
        write_all_blocking(stdout, &mut to_out);
        let linger = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while master_open && std::time::Instant::now() < deadline {
            let mut fds = [PollFd::new(&master, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&linger)) {
                Ok(0) => break,
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => break,
            }
            master_open = read_master(&master, &mut to_out, &mut buf);
            write_all_blocking(stdout, &mut to_out);
        }
        drop(raw);
        wait::wait(c1)
    }

    /// Reads what the master has; false once the terminal side is closed (EIO).
    fn read_master(master: &OwnedFd, to_out: &mut Vec<u8>, buf: &mut [u8]) -> bool {
        let room = BUF.saturating_sub(to_out.len()).min(buf.len());
        if room == 0 {
            return true;
        }
        match rustix::io::read(master, &mut buf[..room]) {
            Ok(0) => false,
            Ok(n) => {
                to_out.extend_from_slice(&buf[..n]);
                true
            }
            // Nothing right now.
            Err(Errno::INTR | Errno::AGAIN) => true,
            Err(_) => false,
        }
    }

    fn write_all_blocking(fd: BorrowedFd<'_>, data: &mut Vec<u8>) {
        while !data.is_empty() {
            match rustix::io::write(fd, data) {
                Ok(n) => drop(data.drain(..n)),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => data.clear(),
            }
        }
    }

    /// Closes the master, which hangs up the terminal: the command's session gets
    /// SIGHUP, as when a terminal window closes. Waits a moment for it to end.
    fn hang_up(master: OwnedFd, c1: &OwnedFd, sig: u32) -> io::Result<ExitStatus> {
        drop(master);
        match wait::wait_timeout(c1, Duration::from_secs(2))? {
            Some(status) => Ok(status),
            None => Ok(ExitStatus::Signaled {
                signal: sig as i32,
                core_dumped: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 35 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
";
    const CGROUP_HYBRID: &str = "12:memory:/user.slice\n1:name=systemd:/berth/web\n0::/berth/web\n";

    #[test]
    fn cgroup_dir_in_a_hybrid_hierarchy() {
        assert_eq!(
            cgroup_dir(MOUNTINFO_HYBRID, CGROUP_HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified/berth/web"))
        );
    }

    #[test]
    fn cgroup_dir_with_a_mount_root_and_escapes() {
        let mountinfo = "40 1 0:40 /berth /run/my\\040cgroups rw - cgroup2 none rw\n";
        assert_eq!(
            cgroup_dir(mountinfo, "0::/berth/db\n"),
            Some(PathBuf::from("/run/my cgroups/db"))
        );
        assert_eq!(
            cgroup_dir(mountinfo, "0::/berth\n"),
            Some(PathBuf::from("/run/my cgroups"))
        );
        assert_eq!(cgroup_dir(mountinfo, "0::/berthold/x\n"), None);
        assert_eq!(cgroup_dir(MOUNTINFO_HYBRID, "1:name=systemd:/x\n"), None);
        assert_eq!(
            cgroup_dir("1 2 0:1 / / rw - ext4 /dev/sda rw\n", "0::/x\n"),
            None
        );
    }

    #[test]
    fn status_lines_give_the_identity() {
        let status = "Name:\tsleep\nUid:\t1000\t1001\t1002\t1001\nGid:\t50\t50\t50\t50\nGroups:\t5 27 \n\
Umask:\t0027\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n";
        let creds = parse_status(status);
        assert_eq!(
            creds,
            Some(Creds {
                uid: [1000, 1001, 1002],
                gid: [50; 3],
                groups: vec![5, 27],
                cap_inh: 0,
                cap_prm: 0xa804_25fb,
                cap_eff: 0xa804_25fb,
                cap_bnd: 0xa804_25fb,
                umask: Some(0o027),
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        assert_eq!(
            parse_status("Uid:\tx\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapBnd:\t0\n"),
            None
        );
    }

    #[test]
    fn this_process_has_a_readable_identity() {
        let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
        assert!(parse_status(&text).is_some(), "{text}");
    }
}

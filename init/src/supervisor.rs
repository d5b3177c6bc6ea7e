//! The supervisor: one thread, one epoll loop over a signalfd, the containers' log
//! pipes and notify sockets, the error pipes of containers still setting themselves up
//! (so the containers of a layer set themselves up at once, and berth answers
//! meanwhile), the control socket, and the inotify fd of the host files when watching
//! (`supervisor/follow.rs`). Deadlines (restart delays, stop
//! timeouts, health checks, watchdogs) become the epoll timeout, so an idle host makes
//! no wake-ups at all.
//!
//! Exits are learnt from SIGCHLD and `waitpid(-1)`: berth is a child subreaper, so every
//! orphan of a container ends up here and is reaped too; a pid that belongs to a
//! container's init or a health check is dispatched, any other is just reaped.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::control::proto::{ContainerStatus, Request, Response, State};
use crate::control::server::ControlServer;
use crate::generations::{Generations, Journal, Pending};
use crate::logs::{LogWriter, Stream};
use crate::pid1::Power;
use crate::runtime::{Cgroup, CgroupTree, Mount, Progress, Stdio, begin};
use crate::unit::{Ready, Restart, UnitSpec};

mod follow;
use follow::Follow;
pub use follow::host_watch;

const TOKEN_SIGNAL: u64 = 1 << 32;
const TOKEN_CONTROL: u64 = 2 << 32;
const TOKEN_STDOUT: u64 = 3 << 32;
const TOKEN_STDERR: u64 = 4 << 32;
const TOKEN_NOTIFY: u64 = 5 << 32;
const TOKEN_WATCH: u64 = 6 << 32;
/// A container's error pipe while it sets itself up (see [`Unit::spawning`]).
const TOKEN_SPAWN: u64 = 7 << 32;

/// Where the notify socket appears inside a container.
const NOTIFY_DIR_IN_CONTAINER: &str = "/run/berth";

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SupervisorError {
    let what = what.into();
    move |source| SupervisorError::Io { what, source }
}

/// Paths and handles the supervisor runs with.
#[derive(Debug)]
pub struct Setup {
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    pub cgroups: CgroupTree,
    /// The cgroup2 mount point, to recognise our cgroups in /proc/PID/cgroup.
    pub cgroup_mount: PathBuf,
    pub control: ControlServer,
    /// `$NOTIFY_SOCKET` of whoever started berth (systemd), for READY=1 and STATUS=.
    pub notify_parent: Option<String>,
    /// The networks, set up before the first start (containers join their namespace).
    pub net: Option<crate::net::NetHost>,
}

/// Lifecycle of one container (see `State` for the user-facing meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Stopped,
    Starting,
    Running,
    Stopping,
    Backoff,
    Failed,
}

#[derive(Debug)]
struct HealthProbe {
    pid: i32,
    deadline: Instant,
}

#[derive(Debug)]
struct Unit {
    spec: UnitSpec,
    phase: Phase,
    /// The admin (or the policy) wants it running.
    wanted: bool,
    /// Start again as soon as the current stop completes.
    restart_after_stop: bool,
    pid: Option<i32>,
    pidfd: Option<OwnedFd>,
    /// Cloned and setting itself up (mounts, pivot_root...) until it execs its program:
    /// its error pipe is in the epoll set, so the containers of a layer set themselves
    /// up at once. `pid`/`pidfd` are set once it exec'ed.
    spawning: Option<(crate::runtime::Starting, Instant)>,
    pipes: [Option<OwnedFd>; 2],
    notify: Option<UnixDatagram>,
    log: Option<LogWriter>,
    cgroup: Option<Cgroup>,
    ready: bool,
    restarts: u32,
    starts: VecDeque<Instant>,
    delay: Duration,
    /// Backoff: when to start; Stopping: when to kill; Starting: start timeout.
    deadline: Option<Instant>,
    started_at: Option<Instant>,
    last_exit: Option<String>,
    status_text: Option<String>,
    warnings: Vec<String>,
    next_check: Option<Instant>,
    probe: Option<HealthProbe>,
    failures: u32,
    watchdog: Option<Instant>,
    /// Gone from the configuration by a switch: stopped, hidden, never started again.
    removed: bool,
    /// The process said STOPPING=1: shown as `stopping` until it exits.
    stopping_notified: bool,
}

pub struct Supervisor {
    setup: Setup,
    epoll: OwnedFd,
    signals: OwnedFd,
    units: Vec<Unit>,
    by_pid: HashMap<i32, usize>,
    shutting_down: bool,
    announced_ready: bool,
    /// Set when berth is the machine's init (see [`Supervisor::pid1_mode`]).
    pid1: Option<Pid1>,
    /// A switch made with `--confirm-within`: when berth switches back unless
    /// `berth confirm` comes first.
    confirm: Option<(Instant, Pending)>,
    /// The host file `berth up` reads again on SIGHUP and, when watching, on changes
    /// (see [`Supervisor::follow`]).
    follow: Option<Follow>,
}

/// How `berth switch` applies a host (see [`Request::Switch`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SwitchMode {
    pub dry_run: bool,
    pub test: bool,
    pub boot: bool,
    pub confirm_within: Option<Duration>,
}

/// PID 1 mode: the power signals and requests, and who hears of readiness.
struct Pid1 {
    power: Option<Power>,
    on_ready: Box<dyn FnMut(usize)>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("units", &self.units.len())
            .finish()
    }
}

/// The signals the loop reads from its signalfd.
const LOOP_SIGNALS: [i32; 5] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGPIPE,
];

/// Blocks the loop's signals and `extra` and makes `existing` read them, or returns a
/// new signalfd for them.
fn signalfd_with(existing: Option<&OwnedFd>, extra: &[i32]) -> io::Result<Option<OwnedFd>> {
    let all: Vec<i32> = LOOP_SIGNALS.iter().chain(extra).copied().collect();
    signalfd_for(existing, &all)
}

/// Blocks `signals` and makes `existing` (a signalfd) read exactly them, or returns a
/// new non-blocking signalfd for them.
pub(crate) fn signalfd_for(
    existing: Option<&OwnedFd>,
    signals: &[i32],
) -> io::Result<Option<OwnedFd>> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; the process
    // mask is changed before any container is spawned (spawn saves and restores it).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        // With an existing signalfd, signalfd(2) replaces its set and returns it.
        let raw = existing.map_or(-1, |f| f.as_raw_fd());
        let fd = libc::signalfd(raw, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(existing.is_none().then(|| OwnedFd::from_raw_fd(fd)))
    }
}

fn signalfd() -> io::Result<OwnedFd> {
    signalfd_with(None, &[])?.ok_or_else(|| io::Error::other("signalfd"))
}

/// Reads pending signal numbers from a signalfd.
pub(crate) fn read_signals(fd: &OwnedFd) -> Vec<i32> {
    read_signals_with_sender(fd)
        .into_iter()
        .map(|(sig, _)| sig)
        .collect()
}

/// Reads pending signals from a signalfd: their number and the pid that sent them.
fn read_signals_with_sender(fd: &OwnedFd) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n < buf.len() {
            break;
        }
        // signalfd_siginfo starts with u32 ssi_signo, i32 ssi_errno, i32 ssi_code,
        // u32 ssi_pid.
        let word = |at: usize| u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        out.push((word(0) as i32, word(12)));
    }
    out
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::io::ioctl_fionbio(fd, true).map_err(io::Error::from)
}

impl Supervisor {
    pub fn new(setup: Setup, specs: Vec<UnitSpec>) -> Result<Self, SupervisorError> {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(io_err("become a child subreaper")(
                io::Error::last_os_error(),
            ));
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| io_err("epoll_create")(e.into()))?;
        let signals = signalfd().map_err(io_err("signalfd"))?;
        epoll::add(
            &epoll,
            &signals,
            epoll::EventData::new_u64(TOKEN_SIGNAL),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io_err("epoll add signalfd")(e.into()))?;
        epoll::add(
            &epoll,
            setup.control.fd(),
            epoll::EventData::new_u64(TOKEN_CONTROL),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io_err("epoll add control socket")(e.into()))?;
        let units = specs.into_iter().map(Unit::new).collect();
        Ok(Supervisor {
            setup,
            epoll,
            signals,
            units,
            by_pid: HashMap::new(),
            shutting_down: false,
            announced_ready: false,
            pid1: None,
            confirm: None,
            follow: None,
        })
    }
}

impl Unit {
    fn new(spec: UnitSpec) -> Unit {
        Unit {
            delay: spec.backoff_initial,
            warnings: spec.warnings.clone(),
            spec,
            phase: Phase::Stopped,
            wanted: true,
            restart_after_stop: false,
            pid: None,
            pidfd: None,
            spawning: None,
            pipes: [None, None],
            notify: None,
            log: None,
            cgroup: None,
            ready: false,
            restarts: 0,
            starts: VecDeque::new(),
            deadline: None,
            started_at: None,
            last_exit: None,
            status_text: None,
            next_check: None,
            probe: None,
            failures: 0,
            watchdog: None,
            removed: false,
            stopping_notified: false,
        }
    }
}

impl Supervisor {
    /// Makes this the supervisor of berth as PID 1: the power signals of busybox,
    /// sysvinit and systemd (see [`crate::pid1::signal_action`]) and the
    /// reboot/poweroff/halt requests stop everything and end [`Supervisor::run`] with
    /// [`Supervisor::power`] set; `on_ready` hears once when every container is ready
    /// (with their number).
    pub fn pid1_mode(&mut self, on_ready: Box<dyn FnMut(usize)>) -> Result<(), SupervisorError> {
        signalfd_with(Some(&self.signals), &crate::pid1::power_signals())
            .map_err(io_err("signalfd"))?;
        self.pid1 = Some(Pid1 {
            power: None,
            on_ready,
        });
        Ok(())
    }

    /// The power action a signal or request asked for (PID 1 mode).
    pub fn power(&self) -> Option<Power> {
        self.pid1.as_ref().and_then(|p| p.power)
    }

    fn power_off(&mut self, power: Power) {
        if let Some(p) = &mut self.pid1
            && p.power.is_none()
        {
            p.power = Some(power);
            eprintln!("berth: {}: stopping every container", power.verb());
        }
        self.shutdown();
    }

    /// Runs until every container is stopped after SIGTERM, SIGINT or `berth down`.
    pub fn run(&mut self) -> Result<(), SupervisorError> {
        self.notify_parent(&format!("STATUS=starting {} containers", self.units.len()));
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        loop {
            self.schedule();
            if self.shutting_down
                && self
                    .units
                    .iter()
                    .all(|u| matches!(u.phase, Phase::Stopped | Phase::Failed))
            {
                self.notify_parent("STATUS=all containers stopped");
                return Ok(());
            }
            let timeout = self.next_deadline().map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::event::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err("epoll_wait")(e.into())),
            }
            for ev in &events {
                let token = ev.data.u64();
                let idx = (token & 0xffff_ffff) as usize;
                match token & !0xffff_ffff {
                    TOKEN_SIGNAL => self.on_signals(),
                    TOKEN_CONTROL => self.on_control(),
                    TOKEN_STDOUT => {
                        self.on_output(idx, 0);
                    }
                    TOKEN_STDERR => {
                        self.on_output(idx, 1);
                    }
                    TOKEN_NOTIFY => self.on_notify(idx),
                    TOKEN_WATCH => self.on_watch(),
                    TOKEN_SPAWN => self.on_spawn_report(idx, None),
                    _ => {}
                }
            }
            self.on_deadlines(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.units
            .iter()
            .flat_map(|u| {
                [
                    u.deadline,
                    u.next_check,
                    u.probe.as_ref().map(|p| p.deadline),
                    u.watchdog,
                ]
            })
            .flatten()
            .chain(self.confirm.as_ref().map(|c| c.0))
            .chain(self.follow.as_ref().and_then(|f| f.due))
            .min()
    }

    fn on_signals(&mut self) {
        for (sig, sender) in read_signals_with_sender(&self.signals) {
            match sig {
                libc::SIGCHLD => self.reap(),
                libc::SIGHUP if self.follow.is_some() => {
                    eprintln!("berth: SIGHUP from pid {sender}: reading the host file again");
                    self.reread("sighup");
                }
                _ if self.pid1.is_some() => {
                    if let Some(power) = crate::pid1::signal_action(sig) {
                        self.power_off(power);
                    }
                }
                libc::SIGTERM | libc::SIGINT => {
                    if !self.shutting_down {
                        eprintln!(
                            "berth: {} from pid {sender}: stopping every container",
                            berth_modules::units::signal_name(sig)
                        );
                    }
                    self.shutdown();
                }
                _ => {}
            }
        }
    }

    pub fn shutdown(&mut self) {
        if !self.shutting_down {
            self.shutting_down = true;
            self.notify_parent("STOPPING=1\nSTATUS=stopping containers");
        }
    }

    /// Reaps every exited child; dispatches those that are ours.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid pointer to an int.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let Some(&i) = self.by_pid.get(&pid) else {
                continue;
            };
            self.by_pid.remove(&pid);
            let exit = describe_status(status);
            let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            if self.units[i]
                .spawning
                .as_ref()
                .is_some_and(|(s, _)| s.child.pid == pid)
            {
                self.on_spawn_report(i, Some((&exit, success)));
            } else if self.units[i].probe.as_ref().is_some_and(|p| p.pid == pid) {
                self.units[i].probe = None;
                self.on_probe(i, success);
            } else {
                self.on_exit(i, &exit, success);
            }
        }
    }

    fn event(&mut self, i: usize, text: &str) {
        let u = &mut self.units[i];
        if let Some(log) = &mut u.log {
            let _ = log.event(text);
        }
        eprintln!("berth: container {}: {text}", u.spec.name);
        // As PID 1, also in the kernel log (a no-op under `berth up`).
        crate::pid1::console::kmsg(&format!("container {}: {text}", u.spec.name));
    }

    /// Starts what may start and stops what must stop.
    fn schedule(&mut self) {
        let now = Instant::now();
        if self.shutting_down {
            for i in 0..self.units.len() {
                let dependents_down = self.units.iter().all(|d| {
                    !d.spec.after.contains(&i) || matches!(d.phase, Phase::Stopped | Phase::Failed)
                });
                match self.units[i].phase {
                    Phase::Backoff => self.units[i].phase = Phase::Stopped,
                    Phase::Starting | Phase::Running if dependents_down => self.stop(i, false),
                    _ => {}
                }
            }
            return;
        }
        // Again after any start: a container that became ready at once (no readiness
        // check) may let one that comes earlier in the list start now.
        let mut started = true;
        while started {
            started = false;
            for i in 0..self.units.len() {
                let u = &self.units[i];
                let due = match u.phase {
                    Phase::Stopped => u.wanted,
                    Phase::Backoff => u.deadline.is_some_and(|d| d <= now),
                    _ => false,
                };
                let deps_ready = u
                    .spec
                    .after
                    .iter()
                    .all(|&d| self.units[d].phase == Phase::Running && self.units[d].ready);
                if due && deps_ready {
                    self.start(i);
                    started = true;
                }
            }
        }
        if !self.announced_ready
            && self
                .units
                .iter()
                .all(|u| !u.wanted || (u.phase == Phase::Running && u.ready))
        {
            self.announced_ready = true;
            if let Some(p) = &mut self.pid1 {
                (p.on_ready)(self.units.len());
            }
            self.notify_parent(&format!(
                "READY=1\nSTATUS={} containers running",
                self.units
                    .iter()
                    .filter(|u| u.phase == Phase::Running)
                    .count()
            ));
        }
    }

    fn start(&mut self, i: usize) {
        let now = Instant::now();
        match self.try_start(i) {
            Ok(()) => {}
            Err(e) => {
                self.event(i, &format!("start failed: {e}"));
                self.units[i].last_exit = Some(format!("start failed: {e}"));
                self.after_exit(i, false, now);
            }
        }
    }

    fn try_start(&mut self, i: usize) -> Result<(), String> {
        let now = Instant::now();
        let timing = crate::pid1::console::timing_on();
        let mut times = Vec::new();
        let mut mark = |what: &'static str| {
            if timing {
                times.push((what, now.elapsed()));
            }
        };
        let setup = &self.setup;
        let u = &mut self.units[i];
        let name = u.spec.name.clone();
        if u.log.is_none() {
            u.log = Some(
                LogWriter::open(&setup.log_dir, &name, u.spec.log_max_size, u.spec.log_keep)
                    .map_err(|e| format!("open its log in {}: {e}", setup.log_dir.display()))?,
            );
        }
        mark("log");
        u.spec.create_volumes()?;
        mark("volumes");
        // A cgroup left by a berth that died is emptied and replaced, never reused.
        setup
            .cgroups
            .cgroup(&name)
            .kill_and_remove(Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        let cgroup = setup
            .cgroups
            .create_cgroup(&name)
            .map_err(|e| e.to_string())?;
        let unenforced = cgroup
            .apply_limits(&u.spec.limits)
            .map_err(|e| e.to_string())?;
        for w in unenforced {
            let w = w.to_string();
            if !u.warnings.contains(&w) {
                eprintln!("berth: warning: {w}");
                u.warnings.push(w);
            }
        }
        let cgroup_fd = cgroup.open_fd().map_err(|e| e.to_string())?;
        mark("cgroup");
        let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        let mut extra_mounts = Vec::new();
        let mut extra_env = Vec::new();
        let mut notify = None;
        if u.spec.ready == Ready::Notify {
            let dir = setup.run_dir.join("notify").join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            let path = dir.join("notify.sock");
            let _ = std::fs::remove_file(&path);
            let sock =
                UnixDatagram::bind(&path).map_err(|e| format!("bind {}: {e}", path.display()))?;
            sock.set_nonblocking(true)
                .map_err(|e| format!("notify socket: {e}"))?;
            rustix::net::sockopt::set_socket_passcred(&sock, true)
                .map_err(|e| format!("notify socket: {e}"))?;
            extra_mounts.push(Mount::Bind {
                src: dir,
                dst: NOTIFY_DIR_IN_CONTAINER.into(),
                ro: false,
            });
            extra_env.push((
                "NOTIFY_SOCKET".to_string(),
                format!("{NOTIFY_DIR_IN_CONTAINER}/notify.sock"),
            ));
            notify = Some(sock);
        }
        let netns = setup.net.as_ref().and_then(|n| n.of(&name));
        if let Some(net) = netns {
            extra_mounts.extend(net.mounts.iter().cloned());
        }
        let mut config = u.spec.spawn_config(
            [Stdio::Null, Stdio::Fd(out_w), Stdio::Fd(err_w)],
            Some(cgroup_fd),
            extra_mounts,
            extra_env,
        );
        if let Some(net) = netns {
            config.namespaces.net = crate::runtime::NamespaceMode::Path(net.netns.clone());
        }
        config.hold = test_hold(&name);
        mark("prepare");
        let starting = begin(&config).map_err(|e| e.to_string())?;
        drop(config);
        mark("clone");
        let pid = starting.child.pid;
        self.by_pid.insert(pid, i);
        let registered = starting
            .set_nonblocking()
            .map_err(|e| format!("error pipe: {e}"))
            .and_then(|()| {
                epoll::add(
                    &self.epoll,
                    starting.fd(),
                    epoll::EventData::new_u64(TOKEN_SPAWN | i as u64),
                    epoll::EventFlags::IN,
                )
                .map_err(|e| format!("epoll: {e}"))
            });
        if let Err(e) = registered {
            self.by_pid.remove(&pid);
            let _ = crate::runtime::wait::kill_and_reap(&starting.child);
            return Err(e);
        }
        for (fd, token) in [(&out_r, TOKEN_STDOUT), (&err_r, TOKEN_STDERR)] {
            set_nonblocking(fd.as_fd()).map_err(|e| format!("log pipe: {e}"))?;
            epoll::add(
                &self.epoll,
                fd,
                epoll::EventData::new_u64(token | i as u64),
                epoll::EventFlags::IN,
            )
            .map_err(|e| format!("epoll: {e}"))?;
        }
        if let Some(sock) = &notify {
            epoll::add(
                &self.epoll,
                sock,
                epoll::EventData::new_u64(TOKEN_NOTIFY | i as u64),
                epoll::EventFlags::IN,
            )
            .map_err(|e| format!("epoll: {e}"))?;
        }
        let u = &mut self.units[i];
        u.spawning = Some((starting, now));
        u.pipes = [Some(out_r), Some(err_r)];
        u.notify = notify;
        u.cgroup = Some(cgroup);
        u.phase = Phase::Starting;
        u.ready = false;
        u.status_text = None;
        u.failures = 0;
        // The start timeout covers the setup too.
        u.deadline = Some(now + u.spec.start_timeout);
        crate::pid1::console::timing(|| {
            let t: Vec<String> = times
                .iter()
                .map(|(what, t)| format!("{what} {:.1}", t.as_secs_f64() * 1e3))
                .collect();
            format!("container {name}: ms since start: {}", t.join(", "))
        });
        Ok(())
    }

    /// The error pipe of a container that is setting itself up is readable, or (with
    /// `exited`: how, success) its init was reaped before that was seen. Finishes the
    /// start: `started` when it exec'ed, `start failed: STEP` when a step failed.
    fn on_spawn_report(&mut self, i: usize, exited: Option<(&str, bool)>) {
        let Some((starting, _)) = &mut self.units[i].spawning else {
            return;
        };
        let progress = match starting.poll() {
            // Reaped: everything it wrote is in the pipe; no report means it exec'ed.
            Ok(Progress::Pending) if exited.is_some() => Ok(Progress::Execed),
            Ok(Progress::Pending) => return,
            other => other,
        };
        let Some((starting, began)) = self.units[i].spawning.take() else {
            return;
        };
        let pid = starting.child.pid;
        let _ = epoll::delete(&self.epoll, starting.fd());
        match progress {
            Ok(Progress::Execed | Progress::Pending) => {
                let u = &mut self.units[i];
                crate::pid1::console::timing(|| {
                    format!(
                        "container {}: exec'ed {:.1} ms after its start; {}",
                        u.spec.name,
                        began.elapsed().as_secs_f64() * 1e3,
                        starting.step_times(8).unwrap_or_default()
                    )
                });
                u.pid = Some(pid);
                u.pidfd = Some(starting.child.pidfd);
                u.started_at = Some(began);
                u.starts.push_back(began);
                if u.phase == Phase::Starting {
                    u.next_check =
                        matches!(u.spec.ready, Ready::Tcp(_) | Ready::Exec(_)).then(Instant::now);
                    self.event(i, &format!("started, pid {pid}"));
                    if self.units[i].spec.ready == Ready::Started {
                        self.became_ready(i);
                    }
                }
                if let Some((how, success)) = exited {
                    self.on_exit(i, how, success);
                }
            }
            Ok(Progress::Failed(e)) | Err(e) => {
                if exited.is_none() {
                    // It _exits after its report (or is killed here when the pipe
                    // could not be read): reap it before `reap` sees it.
                    self.by_pid.remove(&pid);
                    let _ = crate::runtime::wait::kill_and_reap(&starting.child);
                }
                let now = Instant::now();
                let u = &mut self.units[i];
                u.pipes = [None, None];
                u.notify = None;
                u.deadline = None;
                if let Some(cg) = u.cgroup.take()
                    && let Err(e) = cg.kill_and_remove(Duration::from_secs(2))
                {
                    u.warnings.push(format!("cannot remove cgroup: {e}"));
                }
                let was = u.phase;
                self.event(i, &format!("start failed: {e}"));
                self.units[i].last_exit = Some(format!("start failed: {e}"));
                if was == Phase::Stopping {
                    self.stopped(i);
                } else {
                    self.after_exit(i, false, now);
                }
            }
        }
    }

    fn became_ready(&mut self, i: usize) {
        let u = &mut self.units[i];
        if u.phase != Phase::Starting {
            return;
        }
        u.phase = Phase::Running;
        u.ready = true;
        u.deadline = None;
        u.watchdog = u.spec.watchdog.map(|w| Instant::now() + w);
        if matches!(u.spec.ready, Ready::Tcp(_) | Ready::Exec(_)) {
            u.next_check = Some(Instant::now() + u.spec.check.interval);
        }
        self.event(i, "ready");
    }

    /// Sends the stop signal; the stop timeout ends in `cgroup.kill`.
    fn stop(&mut self, i: usize, restart: bool) {
        let u = &mut self.units[i];
        u.restart_after_stop = restart;
        match u.phase {
            Phase::Starting | Phase::Running => {}
            Phase::Backoff => {
                u.phase = Phase::Stopped;
                u.deadline = None;
                return;
            }
            _ => return,
        }
        u.phase = Phase::Stopping;
        u.next_check = None;
        u.watchdog = None;
        u.deadline = Some(Instant::now() + u.spec.stop_timeout);
        let sig = u.spec.stop_signal;
        if let Some((starting, _)) = &u.spawning {
            // Its program has not started: nothing to stop gracefully.
            let _ = rustix::process::pidfd_send_signal(
                &starting.child.pidfd,
                rustix::process::Signal::KILL,
            );
        }
        if let Some(fd) = &u.pidfd {
            // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        self.event(i, &format!("stopping with signal {sig}"));
    }

    fn on_exit(&mut self, i: usize, how: &str, success: bool) {
        let now = Instant::now();
        self.drain_output(i);
        let u = &mut self.units[i];
        u.pid = None;
        u.pidfd = None;
        u.notify = None;
        u.probe = None;
        u.ready = false;
        u.stopping_notified = false;
        u.next_check = None;
        u.watchdog = None;
        u.last_exit = Some(how.to_string());
        // The pid namespace died with its init; anything left in the cgroup goes too,
        // and the cgroup itself: each start gets a fresh one. (On Linux 6.18 a cgroup
        // that was ever `cgroup.kill`ed kills every later CLONE_INTO_CGROUP child at
        // birth, so a cgroup must never be reused.)
        if let Some(cg) = u.cgroup.take()
            && let Err(e) = cg.kill_and_remove(Duration::from_secs(2))
        {
            u.warnings.push(format!("cannot remove cgroup: {e}"));
        }
        let was = u.phase;
        self.event(i, how);
        if was == Phase::Stopping {
            self.stopped(i);
            return;
        }
        self.after_exit(i, success, now);
    }

    /// A stop completed: restart if it was a restart, else leave it stopped.
    fn stopped(&mut self, i: usize) {
        let u = &mut self.units[i];
        u.phase = Phase::Stopped;
        u.deadline = None;
        if u.restart_after_stop {
            u.restart_after_stop = false;
            u.restarts += 1;
        } else {
            u.wanted = false;
        }
    }

    /// An unexpected exit (or a failed start): restart per policy, with backoff and the
    /// start limit.
    fn after_exit(&mut self, i: usize, success: bool, now: Instant) {
        // Containers that `require` this one restart with it.
        let dependents: Vec<usize> = (0..self.units.len())
            .filter(|&d| self.units[d].spec.requires.contains(&i))
            .collect();
        for d in dependents {
            if matches!(self.units[d].phase, Phase::Starting | Phase::Running) {
                self.stop(d, true);
            }
        }
        let u = &mut self.units[i];
        let restart = !self.shutting_down
            && match u.spec.restart {
                Restart::Always => true,
                Restart::OnFailure => !success,
                Restart::Never => false,
            };
        if !restart {
            u.phase = Phase::Stopped;
            u.wanted = false;
            u.deadline = None;
            return;
        }
        while u
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > u.spec.start_interval)
        {
            u.starts.pop_front();
        }
        if u.starts.len() as u32 >= u.spec.start_burst {
            u.phase = Phase::Failed;
            u.wanted = false;
            u.deadline = None;
            let msg = format!(
                "failed: {} starts within {:?}; `berth restart {}` to try again",
                u.starts.len(),
                u.spec.start_interval,
                u.spec.name
            );
            self.event(i, &msg);
            return;
        }
        let ran = u
            .started_at
            .map_or(Duration::ZERO, |s| now.duration_since(s));
        if ran >= u.spec.backoff_reset {
            u.delay = u.spec.backoff_initial;
        }
        let delay = u.delay;
        u.delay = Duration::from_secs_f64(
            (u.delay.as_secs_f64() * u.spec.backoff_factor).min(u.spec.backoff_max.as_secs_f64()),
        );
        u.phase = Phase::Backoff;
        u.deadline = Some(now + delay);
        u.restarts += 1;
        self.event(i, &format!("restarting in {delay:?}"));
    }

    fn on_deadlines(&mut self, now: Instant) {
        if self.confirm.as_ref().is_some_and(|c| c.0 <= now) {
            self.confirm_expired();
        }
        if self
            .follow
            .as_ref()
            .and_then(|f| f.due)
            .is_some_and(|d| d <= now)
        {
            self.reread("watch");
        }
        for i in 0..self.units.len() {
            let u = &mut self.units[i];
            if u.deadline.is_some_and(|d| d <= now) {
                match u.phase {
                    Phase::Stopping => {
                        u.deadline = None;
                        if let Some(cg) = &u.cgroup {
                            let _ = cg.kill();
                        }
                        self.event(i, "stop timeout: killed");
                    }
                    Phase::Starting => {
                        u.deadline = None;
                        self.event(i, "not ready within its start timeout: restarting");
                        self.stop(i, true);
                    }
                    _ => {}
                }
            }
            let u = &mut self.units[i];
            if u.watchdog.is_some_and(|w| w <= now) {
                u.watchdog = None;
                self.event(i, "watchdog timeout: no WATCHDOG=1 in time, restarting");
                self.stop(i, true);
            }
            let u = &mut self.units[i];
            if let Some(p) = &u.probe {
                if p.deadline <= now {
                    let pid = p.pid;
                    // SAFETY: kill of a child we forked and have not reaped yet.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            } else if u.next_check.is_some_and(|t| t <= now) {
                u.next_check = None;
                self.probe(i);
            }
        }
    }

    /// Runs one readiness / health check as a child process inside the container's
    /// network namespace (tcp) or all its namespaces (exec).
    fn probe(&mut self, i: usize) {
        let u = &self.units[i];
        let (Some(pid), Some(pidfd)) = (u.pid, &u.pidfd) else {
            return;
        };
        let timeout = u.spec.check.timeout;
        let result = match &u.spec.ready {
            Ready::Tcp(port) => {
                crate::probe::tcp(pidfd.as_fd(), *port, timeout, u.spec.host_network)
            }
            Ready::Exec(argv) => match &u.cgroup {
                Some(cg) => crate::probe::exec(pid, cg.path(), argv),
                None => return,
            },
            _ => return,
        };
        match result {
            Ok(child) => {
                self.by_pid.insert(child, i);
                self.units[i].probe = Some(HealthProbe {
                    pid: child,
                    deadline: Instant::now() + timeout + Duration::from_millis(100),
                });
            }
            Err(e) => {
                self.event(i, &format!("cannot run check: {e}"));
                self.on_probe(i, false);
            }
        }
    }

    fn on_probe(&mut self, i: usize, ok: bool) {
        let u = &mut self.units[i];
        let interval = u.spec.check.interval;
        match (u.phase, ok) {
            (Phase::Starting, true) => {
                self.became_ready(i);
            }
            (Phase::Starting, false) => {
                u.next_check = Some(Instant::now() + interval.min(Duration::from_millis(500)))
            }
            (Phase::Running, true) => {
                u.failures = 0;
                u.next_check = Some(Instant::now() + interval);
            }
            (Phase::Running, false) => {
                u.failures += 1;
                if u.failures >= u.spec.check.retries {
                    let n = u.failures;
                    self.event(i, &format!("health check failed {n} times: restarting"));
                    self.stop(i, true);
                } else {
                    u.next_check = Some(Instant::now() + interval);
                }
            }
            _ => {}
        }
    }

    /// Copies what a log pipe has into the log. Returns true when it stopped early
    /// with more possibly pending.
    fn on_output(&mut self, i: usize, which: usize) -> bool {
        let stream = if which == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let u = &mut self.units[i];
        let Some(fd) = &u.pipes[which] else {
            return false;
        };
        let mut buf = [0u8; 65536];
        // At most 16 reads per wake-up, so a flooding container cannot starve the others
        // or the control socket; the rest is read on the next round.
        for _ in 0..16 {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => {
                    if let Some(fd) = u.pipes[which].take() {
                        let _ = epoll::delete(&self.epoll, &fd);
                    }
                    if let Some(log) = &mut u.log {
                        let _ = log.flush_partial(stream);
                    }
                    return false;
                }
                Ok(n) => {
                    if let Some(log) = &mut u.log
                        && let Err(e) = log.write(stream, &buf[..n])
                    {
                        eprintln!(
                            "berth: container {}: cannot write its log: {e}",
                            u.spec.name
                        );
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what is left in the pipes after an exit (the writers are gone with the
    /// pid namespace, so this ends).
    fn drain_output(&mut self, i: usize) {
        for which in 0..2 {
            while self.on_output(i, which) {}
        }
    }

    fn on_notify(&mut self, i: usize) {
        let cgroup_rel = self.units[i].cgroup.as_ref().and_then(|c| {
            c.path()
                .strip_prefix(&self.setup.cgroup_mount)
                .ok()
                .map(|p| format!("/{}", p.display()))
        });
        loop {
            let Some(sock) = &self.units[i].notify else {
                return;
            };
            let mut buf = [0u8; 4096];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let n = match rustix::net::recvmsg(
                sock,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::DONTWAIT,
            ) {
                Ok(r) => r.bytes,
                Err(_) => return,
            };
            let mut sender = None;
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmCredentials(c) = msg {
                    sender = Some(c.pid.as_raw_nonzero().get());
                }
            }
            // Only this container's processes can reach its socket (it exists only in
            // the container's mount namespace); the cgroup check refuses anything else
            // that got hold of it. A sender that already exited (systemd-notify does
            // not wait) cannot be checked and is accepted.
            let trusted = match (sender, &cgroup_rel) {
                (Some(pid), Some(rel)) => {
                    match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
                        Ok(c) => c
                            .lines()
                            .any(|l| l.strip_prefix("0::") == Some(rel.as_str())),
                        Err(_) => true,
                    }
                }
                _ => false,
            };
            if !trusted {
                continue;
            }
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            for line in text.lines() {
                let (k, v) = line.split_once('=').unwrap_or((line, ""));
                match k {
                    "READY" if v == "1" => self.became_ready(i),
                    "STATUS" => self.units[i].status_text = Some(v.to_string()),
                    "WATCHDOG" if v == "1" => {
                        let u = &mut self.units[i];
                        u.watchdog = u.spec.watchdog.map(|w| Instant::now() + w);
                    }
                    "EXTEND_TIMEOUT_USEC" => {
                        if let Ok(us) = v.parse::<u64>() {
                            let u = &mut self.units[i];
                            if u.phase == Phase::Starting {
                                u.deadline = Some(Instant::now() + Duration::from_micros(us));
                            }
                        }
                    }
                    "STOPPING" if v == "1" => {
                        // Shown as `stopping` until it exits; its restart policy
                        // still decides what follows (as systemd's deactivating).
                        self.units[i].stopping_notified = true;
                        self.units[i].ready = false;
                        self.event(i, "stopping (STOPPING=1)");
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_control(&mut self) {
        for (client, req) in self.setup.control.poll() {
            let resp = self.handle(req);
            self.setup.control.reply(client, &resp);
        }
    }

    /// `berth switch`: evaluates `file` and switches to it (see [`Self::switch_to`]).
    fn switch(&mut self, file: &Path, mode: SwitchMode) -> Response {
        match berth_modules::evaluate(&berth_config::FsSource, file) {
            Ok(ev) => self.switch_to(ev, file, "switch", mode),
            Err(f) => Response::Error {
                message: not_valid(file, &f),
            },
        }
    }

    /// `berth rollback [N]`: switches to generation N, or to the newest generation before
    /// the current one that differs from it, re-evaluated from its stored sources.
    fn rollback(&mut self, target: Option<u64>, dry_run: bool) -> Response {
        let err = |message: String| Response::Error { message };
        let gens = Generations::new(&self.setup.state_dir);
        let Some(current) = gens.current() else {
            return err("no current generation (see `berth generations`)".into());
        };
        let target = match target {
            Some(n) => n,
            None => match gens.previous(current) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return err(format!(
                        "generation {current} is the only one; there is nothing to roll back to"
                    ));
                }
                Err(e) => return err(e.to_string()),
            },
        };
        let (ev, root) = match gens.meta(target).map(|m| (gens.evaluate(target), m)) {
            Ok((Ok(Ok(ev)), meta)) => (ev, gens.path(target).join("sources").join(meta.root)),
            Ok((Ok(Err(f)), _)) => {
                return err(format!(
                    "generation {target} no longer evaluates; nothing changed:\n{}",
                    berth_config::diag::render_all(&f.diagnostics, &f.tree.sources, false)
                ));
            }
            Ok((Err(e), _)) | Err(e) => return err(e.to_string()),
        };
        let mode = SwitchMode {
            dry_run,
            ..SwitchMode::default()
        };
        self.switch_to(ev, &root, "rollback", mode)
    }

    /// `berth confirm`: keeps a switch made with `--confirm-within`.
    fn confirm(&mut self) -> Response {
        let Some((_, p)) = self.confirm.take() else {
            return Response::Error {
                message: "no switch is waiting for `berth confirm`".into(),
            };
        };
        let gens = Generations::new(&self.setup.state_dir);
        match gens
            .set_booted(p.generation)
            .and_then(|()| gens.clear_pending())
        {
            Ok(()) => Response::Ok {
                message: Some(format!(
                    "generation {} confirmed; it is the boot default",
                    p.generation
                )),
            },
            Err(e) => {
                self.confirm = Some((Instant::now(), p));
                Response::Error {
                    message: format!("could not confirm: {e}; retry `berth confirm`"),
                }
            }
        }
    }

    /// The time given by `--confirm-within` is up: back to the generation before.
    fn confirm_expired(&mut self) {
        let Some((_, p)) = self.confirm.take() else {
            return;
        };
        eprintln!(
            "berth: generation {} was not confirmed in time; switching back to generation {}",
            p.generation, p.previous
        );
        match self.rollback(Some(p.previous), false) {
            Response::Ok { message } => {
                eprintln!("berth: {}", message.unwrap_or_default());
            }
            other => {
                // The generation could not be applied (its sources were damaged, …):
                // the boot default is still the previous one, so a restart reverts.
                eprintln!(
                    "berth: switching back failed: {other:?}; `booted` still names generation {}",
                    p.previous
                );
                let _ = Generations::new(&self.setup.state_dir).clear_pending();
            }
        }
    }

    /// Plans from the current generation to `new` (read from `root`), records `new` as a
    /// generation (reason `reason`) and applies the plan. Unchanged containers are not
    /// touched (same pid); `live` changes are written in place (cgroup limits,
    /// policies); `reload` sends the reload signal; `restart`/`recreate` stop the
    /// container and start it again with its new definition (a container gets new
    /// namespaces at every start, so a restart is a recreate), after what it starts
    /// `after`; new containers start, removed ones stop; changed networks are recreated
    /// with their members, volumes prepared, and the host's `live` settings written
    /// (`reboot` ones wait for the next boot).
    ///
    /// The switch is journaled (`STATE/journal`, before the first step and after each):
    /// a berth that dies mid-switch finishes it or rolls it back when it starts again
    /// ([`Generations::start`]), whichever generation `booted` names. So `booted` moves
    /// before the first step for a plain switch and not at all for `--test` and
    /// `--confirm-within` (until `berth confirm`).
    fn switch_to(
        &mut self,
        new: berth_modules::Evaluation,
        root: &Path,
        reason: &str,
        mode: SwitchMode,
    ) -> Response {
        let err = |message: String| Response::Error { message };
        let gens = Generations::new(&self.setup.state_dir);
        let Some(current) = gens.current() else {
            return err("no current generation to switch from (see `berth generations`)".into());
        };
        let old = match gens.evaluate(current) {
            Ok(Ok(ev)) => ev,
            Ok(Err(_)) => return err(format!("generation {current} no longer evaluates")),
            Err(e) => return err(e.to_string()),
        };
        let plan = crate::plan::plan(Some(&old), &new);
        let text = format!(
            "From generation {current} to {}:\n\n{}",
            root.display(),
            plan.render()
        );
        if mode.dry_run {
            return Response::Ok {
                message: Some(text),
            };
        }
        if reason != "rollback"
            && let Some((_, p)) = &self.confirm
        {
            return err(format!(
                "generation {} waits for `berth confirm` (or `berth rollback`); nothing changed",
                p.generation
            ));
        }
        let meta = match gens.record(&new, root, reason) {
            Ok(m) => m,
            Err(e) => return err(format!("could not record the generation: {e}")),
        };
        if reason != "rollback"
            && let Err(e) = gens.note_read(root, &new)
        {
            eprintln!("berth: warning: {e}");
        }
        let n = meta.number;
        if mode.boot {
            return match gens.set_booted(n) {
                Ok(()) => Response::Ok {
                    message: Some(format!(
                        "{text}\ngeneration {n} is the boot default; nothing applied now"
                    )),
                },
                Err(e) => err(e.to_string()),
            };
        }
        // A rollback ends a switch waiting for confirmation.
        if self.confirm.take().is_some()
            && let Err(e) = gens.clear_pending()
        {
            return err(e.to_string());
        }
        let keep_boot_default = mode.test || mode.confirm_within.is_some();
        let booted_before = gens.booted();
        let mut journal = Journal {
            from: current,
            to: n,
            steps: plan
                .steps
                .iter()
                .map(|st| format!("{} {} {}", st.action.name(), st.kind.name(), st.name))
                .collect(),
            done: 0,
        };
        let pending = mode.confirm_within.map(|d| {
            (
                Instant::now() + d,
                Pending {
                    generation: n,
                    previous: current,
                    deadline: crate::generations::now() + d.as_secs().max(1),
                },
            )
        });
        let prepared = gens
            .write_journal(&journal)
            .and_then(|()| match &pending {
                Some((_, p)) => gens.set_pending(p),
                None => Ok(()),
            })
            .and_then(|()| gens.set_current(n))
            .and_then(|()| {
                if keep_boot_default {
                    Ok(())
                } else {
                    gens.set_booted(n)
                }
            });
        if let Err(e) = prepared {
            // Nothing was applied: what runs is still `current`'s.
            let _ = gens.clear_journal();
            let _ = gens.clear_pending();
            let _ = gens.set_current(current);
            return err(format!(
                "could not journal the switch; nothing changed: {e}"
            ));
        }
        crash_point(0);
        let mut done = || {
            journal.done += 1;
            if let Err(e) = gens.write_journal(&journal) {
                eprintln!("berth: warning: {e}");
            }
            crash_point(journal.done);
        };
        // Networks first: a container to recreate must find its new namespace.
        let rewired = match self.switch_networks(&old, &new) {
            Ok(r) => r,
            Err(e) => {
                let _ = gens.clear_journal();
                let _ = gens.clear_pending();
                let _ = gens.set_current(current);
                if let Some(b) = booted_before {
                    let _ = gens.set_booted(b);
                }
                return err(format!("{text}\nnot applied: {e}"));
            }
        };
        let mut notes = self.switch_host_and_volumes(&plan, &new, &mut done);
        self.apply(&plan, &new, &rewired, &mut done);
        notes.extend(self.host_watch_setting(&new));
        if let Err(e) = gens.clear_journal() {
            eprintln!("berth: warning: {e}");
        }
        let mut message = format!("{text}\n");
        for note in notes {
            message += &format!("{note}\n");
        }
        match pending {
            Some((at, p)) => {
                message += &format!(
                    "switched to generation {n}; `berth confirm` within {:?} keeps it, otherwise berth switches back to generation {current}",
                    mode.confirm_within.unwrap_or_default()
                );
                self.confirm = Some((at, p));
            }
            None if mode.test => {
                message += &format!("switched to generation {n} (the boot default stays as it was)")
            }
            None => message += &format!("switched to generation {n}"),
        }
        Response::Ok {
            message: Some(message),
        }
    }

    /// The network part of a switch: moves the running networks to `new`'s (see
    /// [`crate::net::NetHost::switch`]); returns the containers rewired, which must
    /// start again. On failure the networks are put back as `old` had them.
    fn switch_networks(
        &mut self,
        old: &berth_modules::Evaluation,
        new: &berth_modules::Evaluation,
    ) -> Result<BTreeSet<String>, String> {
        use crate::net::{NetHost, NetPlan};
        let plan = NetPlan::from_evaluation(new);
        let state = self.setup.state_dir.clone();
        match &mut self.setup.net {
            Some(net) => net.switch(plan, &state).map_err(|e| {
                let back = net.switch(NetPlan::from_evaluation(old), &state);
                match back {
                    Ok(_) => format!("networks: {e}; the networks are as they were"),
                    Err(e2) => format!("networks: {e}; putting them back failed too: {e2}"),
                }
            }),
            None if plan.networks.is_empty() => Ok(BTreeSet::new()),
            None => {
                let names = plan.containers.iter().map(|c| c.name.clone()).collect();
                let net = NetHost::up(plan, &state).map_err(|e| format!("networks: {e}"))?;
                self.setup.net = Some(net);
                Ok(names)
            }
        }
    }

    /// The host and volume steps of a switch. The host's `live` settings (hostname,
    /// sysctls) are PID 1's: applied when berth is the machine's init, recorded only
    /// under `berth up`; `reboot` ones wait for the next boot. Volumes get their
    /// directory, owner and mode; a removed volume's data is kept. Returns what the
    /// admin should know, one line each.
    fn switch_host_and_volumes(
        &mut self,
        plan: &crate::plan::Plan,
        new: &berth_modules::Evaluation,
        done: &mut dyn FnMut(),
    ) -> Vec<String> {
        use crate::plan::Action;
        use berth_modules::Kind;
        let mut notes = Vec::new();
        let volumes = crate::unit::volumes(new, &self.setup.state_dir);
        for st in &plan.steps {
            match st.kind {
                Kind::Container => continue,
                Kind::Host => {
                    let at_boot: Vec<&str> = st
                        .changes
                        .iter()
                        .filter(|c| c.class == berth_modules::ApplyClass::Reboot)
                        .map(|c| c.path)
                        .collect();
                    // `watch` is berth's own (see `host_watch_setting`).
                    let own = st.changes.iter().filter(|c| c.path == "watch").count();
                    if !at_boot.is_empty() {
                        notes.push(format!(
                            "host: {} changed; applied at the next boot",
                            at_boot.join(", ")
                        ));
                    }
                    if st.changes.len() > at_boot.len() + own {
                        if self.pid1.is_some() {
                            notes.extend(crate::pid1::host_settings(new.host()));
                        } else {
                            notes.push(
                                "host: berth up leaves the machine's own settings (hostname, sysctl) to its init; recorded only".into(),
                            );
                        }
                    }
                }
                Kind::Volume if st.action == Action::Remove => notes.push(format!(
                    "volume {}: no longer used; its data stays in {}",
                    st.name,
                    self.setup
                        .state_dir
                        .join("volumes")
                        .join(&st.name)
                        .display()
                )),
                Kind::Volume => match &volumes {
                    Ok(vs) => {
                        if let Some(v) = vs.iter().find(|v| v.name == st.name)
                            && let Err(e) = v.prepare()
                        {
                            notes.push(e);
                        }
                    }
                    Err(e) => notes.push(e.clone()),
                },
                Kind::Network => {}
            }
            done();
        }
        notes
    }

    /// Applies a plan of container steps (checked by `switch_to`); `done` hears of each
    /// step once it is issued.
    fn apply(
        &mut self,
        plan: &crate::plan::Plan,
        new: &berth_modules::Evaluation,
        rewired: &BTreeSet<String>,
        done: &mut dyn FnMut(),
    ) {
        use crate::plan::Action;
        let specs = crate::unit::units(new, &self.setup.state_dir);
        // Where each container of the new host lives in `units`: its unit if it has
        // one, else a new one appended.
        let mut slot = Vec::with_capacity(specs.len());
        for spec in &specs {
            match self
                .units
                .iter()
                .position(|u| u.spec.name == spec.name && !u.removed)
            {
                Some(i) => slot.push(i),
                None => {
                    self.units.push(Unit::new(spec.clone()));
                    slot.push(self.units.len() - 1);
                }
            }
        }
        let actions: HashMap<&str, Action> = plan
            .steps
            .iter()
            .map(|st| (st.name.as_str(), st.action))
            .collect();
        // Removed containers stop and disappear.
        for i in 0..self.units.len() {
            if !self.units[i].removed
                && actions.get(self.units[i].spec.name.as_str()) == Some(&Action::Remove)
            {
                self.units[i].wanted = false;
                self.units[i].removed = true;
                self.stop(i, false);
                self.event(i, "removed by switch");
                done();
            }
        }
        for (k, mut spec) in specs.into_iter().enumerate() {
            let i = slot[k];
            // Dependencies as indexes into `units`.
            spec.after = spec.after.iter().map(|&d| slot[d]).collect();
            spec.requires = spec.requires.iter().map(|&d| slot[d]).collect();
            let planned = actions.contains_key(spec.name.as_str());
            let mut action = actions.get(spec.name.as_str()).copied();
            // A container with a new network namespace starts again to join it.
            if rewired.contains(&spec.name) && action != Some(Action::Create) {
                action = Some(action.map_or(Action::Recreate, |a| a.max(Action::Recreate)));
            }
            let u = &mut self.units[i];
            let limits_changed = u.spec.limits != spec.limits;
            u.warnings = spec.warnings.clone();
            u.spec = spec;
            match action {
                None | Some(Action::Create) => {}
                Some(Action::Live) | Some(Action::Reload) => {
                    if limits_changed && let Some(cg) = &u.cgroup {
                        match cg.apply_limits(&u.spec.limits) {
                            Ok(unenforced) => {
                                for w in unenforced {
                                    let w = w.to_string();
                                    if !u.warnings.contains(&w) {
                                        u.warnings.push(w);
                                    }
                                }
                            }
                            Err(e) => u.warnings.push(format!("limits not applied: {e}")),
                        }
                    }
                    if action == Some(Action::Reload)
                        && let Some(fd) = &u.pidfd
                    {
                        let _ = rustix::process::pidfd_send_signal(
                            fd,
                            rustix::process::Signal::from_named_raw(u.spec.reload_signal)
                                .unwrap_or(rustix::process::Signal::HUP),
                        );
                    }
                    let what = if action == Some(Action::Live) {
                        "changed in place"
                    } else {
                        "reloaded"
                    };
                    self.event(i, &format!("{what} by switch"));
                }
                Some(_) => {
                    u.wanted = true;
                    u.starts.clear();
                    u.delay = u.spec.backoff_initial;
                    if matches!(u.phase, Phase::Starting | Phase::Running) {
                        self.stop(i, true);
                    } else if u.phase != Phase::Stopping {
                        u.phase = Phase::Stopped;
                    }
                    self.event(i, "restarting for switch");
                }
            }
            if planned {
                done();
            }
        }
    }

    fn find(&self, name: &str) -> Result<usize, Response> {
        self.units
            .iter()
            .position(|u| u.spec.name == name && !u.removed)
            .ok_or_else(|| {
                let names: Vec<&str> = self.units.iter().map(|u| u.spec.name.as_str()).collect();
                let hint = berth_config::diag::did_you_mean(name, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                Response::Error {
                    message: format!("no container `{name}`{hint}"),
                }
            })
    }

    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status {
                rejected: self.follow.as_ref().and_then(|f| f.rejected.clone()),
                containers: self
                    .units
                    .iter()
                    .filter(|u| !u.removed)
                    .map(|u| {
                        let mut s = status(u);
                        if let Some(net) = &self.setup.net {
                            s.addresses = net.addresses(&u.spec.name);
                        }
                        s
                    })
                    .collect(),
            },
            Request::Info => Response::Info {
                pid: std::process::id(),
                state_dir: self.setup.state_dir.display().to_string(),
                log_dir: self.setup.log_dir.display().to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            Request::Net => {
                let (networks, forwards) = self
                    .setup
                    .net
                    .as_ref()
                    .map(|n| n.report())
                    .unwrap_or_default();
                Response::Net { networks, forwards }
            }
            Request::Switch {
                file,
                dry_run,
                test,
                boot,
                confirm_within_ms,
            } => self.switch(
                Path::new(&file),
                SwitchMode {
                    dry_run,
                    test,
                    boot,
                    confirm_within: confirm_within_ms.map(Duration::from_millis),
                },
            ),
            Request::Rollback {
                generation,
                dry_run,
            } => self.rollback(generation, dry_run),
            Request::Confirm => self.confirm(),
            Request::Down if self.pid1.is_some() => Response::Error {
                message: "berth is the machine's init (PID 1): use `berth poweroff`, `berth reboot` or `berth halt`".into(),
            },
            Request::Down => {
                if !self.shutting_down {
                    eprintln!("berth: `berth down`: stopping every container");
                }
                self.shutdown();
                Response::Ok {
                    message: Some("stopping every container".into()),
                }
            }
            Request::Reboot | Request::Poweroff | Request::Halt => {
                let power = match req {
                    Request::Reboot => Power::Reboot,
                    Request::Poweroff => Power::Poweroff,
                    _ => Power::Halt,
                };
                if self.pid1.is_none() {
                    return Response::Error {
                        message: format!(
                            "this berth is not the machine's init (PID 1); use the system's own `{}`",
                            power.verb()
                        ),
                    };
                }
                self.power_off(power);
                Response::Ok {
                    message: Some(format!("{}: stopping every container", power.verb())),
                }
            }
            Request::Start { name } => match self.find(&name) {
                Err(e) => e,
                Ok(i) => {
                    let u = &mut self.units[i];
                    u.wanted = true;
                    if matches!(u.phase, Phase::Failed | Phase::Backoff) {
                        u.phase = Phase::Stopped;
                        u.starts.clear();
                        u.delay = u.spec.backoff_initial;
                    }
                    Response::Ok {
                        message: Some(format!("starting {name}")),
                    }
                }
            },
            Request::Stop { name } => match self.find(&name) {
                Err(e) => e,
                Ok(i) => {
                    self.units[i].wanted = false;
                    self.stop(i, false);
                    Response::Ok {
                        message: Some(format!("stopping {name}")),
                    }
                }
            },
            Request::Restart { name } => match self.find(&name) {
                Err(e) => e,
                Ok(i) => {
                    let u = &mut self.units[i];
                    u.wanted = true;
                    u.starts.clear();
                    u.delay = u.spec.backoff_initial;
                    if matches!(u.phase, Phase::Starting | Phase::Running) {
                        self.stop(i, true);
                    } else {
                        self.units[i].phase = Phase::Stopped;
                    }
                    Response::Ok {
                        message: Some(format!("restarting {name}")),
                    }
                }
            },
        }
    }

    /// Tells whoever started berth (systemd's `Type=notify`) how things stand.
    fn notify_parent(&self, msg: &str) {
        let Some(path) = &self.setup.notify_parent else {
            return;
        };
        let Ok(sock) = UnixDatagram::unbound() else {
            return;
        };
        let _ = match path.strip_prefix('@') {
            Some(abs) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(abs.as_bytes())
                    .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
            }
            None => sock.send_to(msg.as_bytes(), Path::new(path)),
        };
    }
}

/// Why a host file berth was to switch to is refused: its diagnostics, as `berth check`
/// renders them.
fn not_valid(file: &Path, f: &berth_modules::Failure) -> String {
    format!(
        "{} is not valid; nothing changed:\n{}",
        file.display(),
        berth_config::diag::render_all(&f.diagnostics, &f.tree.sources, false)
    )
}

/// Fault injection for tests (a test-only switch): with `BERTH_TEST_CRASH_AT_STEP=K` in
/// its environment, berth kills itself with SIGKILL once K steps of a switch are issued
/// (0: right after the journal is written), as a crash or power loss would stop it.
/// PID 1 (which gets it from the kernel command line) cannot kill itself, so it panics:
/// its panic hook reboots the machine mid-switch.
fn crash_point(done: usize) {
    if std::env::var("BERTH_TEST_CRASH_AT_STEP")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        == Some(done)
    {
        eprintln!("berth: BERTH_TEST_CRASH_AT_STEP={done}: killing myself");
        if std::process::id() == 1 {
            panic!("test-only crash after {done} steps of a switch (BERTH_TEST_CRASH_AT_STEP)");
        }
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

fn status(u: &Unit) -> ContainerStatus {
    let state = match u.phase {
        Phase::Starting | Phase::Running if u.stopping_notified => State::Stopping,
        Phase::Stopped => State::Stopped,
        Phase::Starting => State::Starting,
        Phase::Running => State::Running,
        Phase::Stopping => State::Stopping,
        Phase::Backoff => State::Backoff,
        Phase::Failed => State::Failed,
    };
    let memory = u
        .cgroup
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c.path().join("memory.current")).ok())
        .and_then(|s| s.trim().parse().ok());
    ContainerStatus {
        name: u.spec.name.clone(),
        state,
        pid: u.pid,
        uptime: u
            .started_at
            .filter(|_| u.pid.is_some())
            .map(|s| s.elapsed().as_secs_f64()),
        restarts: u.restarts,
        ready: u.ready,
        memory,
        last_exit: u.last_exit.clone(),
        status_text: u.status_text.clone(),
        warnings: u.warnings.clone(),
        addresses: Vec::new(),
    }
}

/// TEST-ONLY: `BERTH_TEST_HOLD_SETUP=NAME:FIFO[,NAME:FIFO...]` in berth's environment
/// holds each named container at the start of its setup until a byte is written to its
/// FIFO (see `SpawnConfig::hold`): tests use it to see that a container in its setup
/// does not hold up the others, and that stopping it then kills it.
fn test_hold(name: &str) -> Option<PathBuf> {
    let all = std::env::var("BERTH_TEST_HOLD_SETUP").ok()?;
    all.split(',').find_map(|pair| {
        let (n, fifo) = pair.split_once(':')?;
        (n == name).then(|| PathBuf::from(fifo))
    })
}

/// "exited 3", "killed by SIGKILL".
fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!(
            "killed by {}",
            berth_modules::units::signal_name(libc::WTERMSIG(status))
        )
    } else {
        format!("ended (status {status})")
    }
}

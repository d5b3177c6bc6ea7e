//! berth as the machine's init (PID 1): mounts the API file systems, loads the host's
//! kernel modules, mounts its file systems, enables every cgroup controller for berth's
//! subtree, then runs the same supervisor as `berth up` until a reboot, power-off or
//! halt is asked for (signal or control request), and shuts the machine down cleanly.
//!
//! PID 1 never exits: every error is logged on the console and boot goes on; an
//! invalid or missing host config starts the rescue shell (when the image's boot record
//! has one) or waits for a power signal; a panic reboots (see [`rescue`]).
//!
//! Kernel command line (read from /proc/cmdline):
//! - `berth.config=PATH`: boot another host file of the image (e.g. for recovery).
//! - `berth.test-panic=boot|ready`: TEST-ONLY switch used by vmtests/: panic at that
//!   point of the boot, to check that the machine reboots instead of the kernel's
//!   "Attempted to kill init". Never set it on a real machine.
//! - `berth.test-orphans=N`: TEST-ONLY switch used by vmtests/: once every container is
//!   ready, fork a process that forks N children and exits, so N orphans are reparented
//!   to PID 1 at once; they exit 10 s later (PID 1 must reap them all).
//! - `berth.test-shell=1`: TEST-ONLY switch used by vmtests/: once every container is
//!   ready, start the host's `rescue-shell` on the console, in PID 1's namespaces, so a
//!   test can type what an admin at the console would (`busybox reboot`, `kill -PWR 1`,
//!   `berth halt`); without a controlling terminal, so its end does not hang the console
//!   up. PID 1 reaps it like any orphan; shutdown stops it with the rest.
//! - `berth.test-timing=1`: TEST-ONLY switch used by the boot benchmark (vmtests/):
//!   the times of the boot's phases and of each container's start on the console.
//! - `BERTH_TEST_CRASH_AT_STEP=K` (the kernel passes it into PID 1's environment):
//!   TEST-ONLY, as for `berth up`: a switch crashes after K steps; in PID 1 a panic, so
//!   the machine reboots mid-switch and the next boot resolves the journal.

pub mod console;
pub mod machine;
pub mod mounts;
pub mod rescue;
pub mod shutdown;

use std::path::{Path, PathBuf};

use berth_config::FsSource;
use berth_config::diag::render_all;
use berth_modules::{Kind, Value};
use serde::{Deserialize, Serialize};

use crate::control::ControlServer;
use crate::generations::Generations;
use crate::runtime::CgroupTree;
use crate::runtime::cgroup::{available_controllers, enable_controllers};
use crate::state::StateLock;
use crate::supervisor::{Setup, Supervisor};
use console::log;
use machine::Machine;
use rescue::PanicPolicy;

/// The host's `live` settings PID 1 owns: the hostname and the sysctls. Applied at
/// boot and by a switch; returns what could not be applied.
pub fn host_settings(host: &berth_modules::Node) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(name) = host.get("name").and_then(Value::as_str)
        && let Err(e) = rustix::system::sethostname(name.as_bytes())
    {
        problems.push(format!("cannot set the hostname {name:?}: {e}"));
    }
    if let Some(Value::Map(m)) = host.get("sysctl") {
        for (k, v) in m {
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            if let Err(e) = std::fs::write(&path, &v) {
                problems.push(format!("sysctl {k}={v}: {e}"));
            }
        }
    }
    problems
}

/// Where `berth build` puts the host file and its imports.
pub const CONFIG_DIR: &str = "/etc/berth";
/// The boot record `berth build` writes next to them.
pub const BOOT_RECORD: &str = "/etc/berth/boot.json";

/// What the machine does once everything is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    Poweroff,
    Halt,
}

impl Power {
    pub fn verb(self) -> &'static str {
        match self {
            Power::Reboot => "reboot",
            Power::Poweroff => "poweroff",
            Power::Halt => "halt",
        }
    }
    fn doing(self) -> &'static str {
        match self {
            Power::Reboot => "restarting",
            Power::Poweroff => "powering off",
            Power::Halt => "halting",
        }
    }
    fn command(self) -> rustix::system::RebootCommand {
        match self {
            Power::Reboot => rustix::system::RebootCommand::Restart,
            Power::Poweroff => rustix::system::RebootCommand::PowerOff,
            Power::Halt => rustix::system::RebootCommand::Halt,
        }
    }
}

/// What a signal to PID 1 asks for, by the conventions of the other inits:
/// busybox `reboot`/`halt`/`poweroff` send SIGTERM/SIGUSR1/SIGUSR2; the kernel sends
/// SIGINT on ctrl-alt-del (once berth disabled the hard reboot); SIGPWR is a power
/// failure (sysvinit's powerfail: shut down); systemd's SIGRTMIN+3/+4/+5 are halt,
/// poweroff and reboot.
pub fn signal_action(sig: i32) -> Option<Power> {
    let rt = libc::SIGRTMIN();
    match sig {
        libc::SIGTERM | libc::SIGINT => Some(Power::Reboot),
        libc::SIGUSR1 => Some(Power::Halt),
        libc::SIGUSR2 | libc::SIGPWR => Some(Power::Poweroff),
        s if s == rt + 3 => Some(Power::Halt),
        s if s == rt + 4 => Some(Power::Poweroff),
        s if s == rt + 5 => Some(Power::Reboot),
        _ => None,
    }
}

/// The power signals besides SIGTERM and SIGINT.
pub fn power_signals() -> Vec<i32> {
    let rt = libc::SIGRTMIN();
    vec![
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPWR,
        rt + 3,
        rt + 4,
        rt + 5,
    ]
}

/// What `berth build` records about the image (etc/berth/boot.json): the host file to
/// boot and the settings of the last host that evaluated (at build time), which PID 1
/// uses when the host at boot does not evaluate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BootRecord {
    /// The host file, absolute inside the image.
    pub config: String,
    pub on_panic: String,
    pub rescue_shell: Vec<String>,
    /// The kernel release the modules are for.
    pub kernel: String,
    /// Its modules, file systems and state dir: how to reach the generations.
    #[serde(default)]
    pub machine: Machine,
}

impl BootRecord {
    fn read() -> BootRecord {
        std::fs::read(BOOT_RECORD)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| BootRecord {
                config: format!("{CONFIG_DIR}/host.kdl"),
                on_panic: "reboot".into(),
                ..BootRecord::default()
            })
    }
}

/// The kernel command line's `berth.NAME=VALUE`.
fn cmdline(name: &str) -> Option<String> {
    let line = std::fs::read_to_string("/proc/cmdline").ok()?;
    let key = format!("berth.{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key).map(str::to_string))
}

fn block_signals() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset/sigaddset; blocking
    // makes the kernel queue these for PID 1 (it drops signals PID 1 has no handler for
    // and does not block).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in power_signals().into_iter().chain([
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
        ]) {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs berth as PID 1 (or `berth init`) with the host file `config` (default: the
/// boot record's). Never returns.
pub fn main(config: Option<PathBuf>) -> ! {
    block_signals();
    rescue::install_panic_hook();
    let is_init = std::process::id() == 1;
    if is_init && let Err(e) = mounts::leave_rootfs() {
        log(&format!(
            "cannot leave the initramfs root (containers cannot pivot_root): {e}"
        ));
    }
    mounts::api_filesystems();
    console::open_kmsg();
    log(&format!(
        "berth {} starting as PID 1",
        env!("CARGO_PKG_VERSION")
    ));
    console::set_timing(cmdline("test-timing").as_deref() == Some("1"));
    crate::runtime::spawn::set_step_timing(console::timing_on());
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    if is_init {
        // ctrl-alt-del sends SIGINT to PID 1 instead of restarting at once.
        let _ = rustix::system::reboot(rustix::system::RebootCommand::CadOff);
    }
    let boot = BootRecord::read();
    rescue::set_policy(PanicPolicy {
        on_panic: boot.on_panic.clone(),
        rescue_shell: boot.rescue_shell.clone(),
    });
    let config = config
        .or_else(|| cmdline("config").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(&boot.config));
    let test_panic = cmdline("test-panic");
    if test_panic.as_deref() == Some("boot") {
        panic!("test-only panic at boot (berth.test-panic=boot)");
    }
    let power = match boot_host(&config, &boot.machine, test_panic.as_deref()) {
        Ok(power) => power,
        Err(why) => {
            log(&format!("cannot boot the host {}: {why}", config.display()));
            if boot.rescue_shell.is_empty() {
                log(
                    "no rescue-shell in the last good host: waiting for ctrl-alt-del or a power signal",
                );
                rescue::wait_for_power(None)
            } else {
                log("starting the rescue shell of the last good host (from the image)");
                rescue::run_shell(&boot.rescue_shell)
            }
        }
    };
    shutdown::finish(power)
}

/// Evaluates the host, prepares the machine, starts the generation that boots (see
/// [`Generations::start`]: `file` when it is new, else the one marked `booted`; when
/// `file` does not evaluate, the last good one) and supervises its containers until a
/// power action. `Err`: nothing can run (the diagnostics are on the console).
/// `last_built` is how the image's last host that built reaches its state dir, for
/// when `file` does not evaluate.
fn boot_host(file: &Path, last_built: &Machine, test_panic: Option<&str>) -> Result<Power, String> {
    let file_ev = match berth_modules::evaluate(&FsSource, file) {
        Ok(ev) => {
            for line in render_all(&ev.warnings, &ev.tree.sources, false).lines() {
                log(line);
            }
            Some(ev)
        }
        Err(f) => {
            let text = render_all(&f.diagnostics, &f.tree.sources, false);
            for line in text.lines() {
                log(line);
            }
            log(&format!(
                "the host {} does not evaluate ({} error(s)): starting the last good generation",
                file.display(),
                f.diagnostics.len()
            ));
            None
        }
    };
    console::timing(|| "evaluated".into());
    let machine = file_ev
        .as_ref()
        .map_or_else(|| last_built.clone(), |ev| Machine::of_host(ev.host()));
    machine.prepare();
    console::timing(|| "modules and file systems".into());
    let cgroup_root = PathBuf::from("/sys/fs/cgroup");
    // The root cgroup may hold processes and still delegate: enable everything there,
    // then everything in berth's subtree.
    let all = available_controllers(&cgroup_root).unwrap_or_default();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    if let Err(e) = enable_controllers(&cgroup_root, &names) {
        log(&format!("cannot enable the cgroup controllers: {e}"));
    }
    console::timing(|| "root cgroup controllers".into());
    let lock = StateLock::acquire(&machine.state_dir).map_err(|e| e.to_string())?;
    // What starts, the same way `berth up` decides; an interrupted or unconfirmed switch
    // is resolved here.
    let gens = Generations::new(&lock.dir);
    // What the host file's read loaded: the files to watch (only itself when it does
    // not evaluate, so fixing it is seen).
    let files = file_ev.as_ref().map_or_else(
        || vec![file.to_path_buf()],
        |ev| crate::watch::files_of(file, &ev.tree.sources),
    );
    console::timing(|| "cgroups, state lock".into());
    let start = match file_ev {
        Some(ev) => Ok(gens.start(file, ev, "boot")),
        None => gens.start_last_good(),
    };
    console::timing(|| "generation recorded".into());
    let report = match &start {
        Ok(s) => &s.report,
        Err(r) => r,
    };
    for line in report.iter().flat_map(|l| l.lines()) {
        log(line);
    }
    let start = start.map_err(|_| {
        format!(
            "it does not evaluate and no generation in {} does",
            lock.dir.display()
        )
    })?;
    let ev = start.evaluation;
    let host = ev.host();
    rescue::set_policy(PanicPolicy::of_host(host));
    for problem in host_settings(host) {
        log(&problem);
    }
    let wanted = Machine::of_host(host);
    if wanted.state_dir != machine.state_dir {
        log(&format!(
            "the generation's state-dir {} differs from {}, where it was read from: staying there until a boot from a host file with it",
            wanted.state_dir.display(),
            machine.state_dir.display()
        ));
    }
    machine.missing_from(&wanted).prepare();
    console::timing(|| "host settings".into());
    let control = ControlServer::bind(crate::control::DEFAULT_SOCKET).map_err(|e| e.to_string())?;
    console::timing(|| "control socket".into());
    let cgroups = CgroupTree::create(&cgroup_root, &crate::state::cgroup_name(&lock.dir))
        .map_err(|e| e.to_string())?;
    console::timing(|| "berth's cgroup".into());
    if let Err(e) = enable_controllers(cgroups.path(), &names) {
        log(&format!(
            "cannot enable the cgroup controllers for berth: {e}"
        ));
    }
    console::timing(|| "berth's cgroup controllers".into());
    // A network that cannot be set up costs its containers their network, not the
    // machine: they start with loopback only and the log says why.
    let net = match crate::net::NetHost::up(crate::net::NetPlan::from_evaluation(&ev), &lock.dir) {
        Ok(n) => Some(n),
        Err(e) => {
            log(&format!("networks: {e}; containers get loopback only"));
            None
        }
    };
    console::timing(|| "control socket, networks".into());
    for problem in crate::unit::prepare_volumes(&ev, &lock.dir) {
        log(&problem);
    }
    let specs = crate::unit::units(&ev, &lock.dir);
    let count = ev.of_kind(Kind::Container).count();
    let setup = Setup {
        state_dir: lock.dir.clone(),
        log_dir: lock.logs(),
        run_dir: lock.run(),
        cgroups: cgroups.clone(),
        cgroup_mount: cgroup_root,
        control,
        notify_parent: None,
        net,
    };
    let mut sup = Supervisor::new(setup, specs).map_err(|e| e.to_string())?;
    // SIGHUP reads the host file again, and `host { watch #true }` watches it (a host
    // file on a writable file system, or edited in the running image).
    sup.follow(file, files, false, crate::supervisor::host_watch(&ev));
    let panic_when_ready = test_panic == Some("ready");
    let orphans: u32 = cmdline("test-orphans")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let test_shell = (cmdline("test-shell").as_deref() == Some("1"))
        .then(|| rescue::strings(host.get("rescue-shell")));
    sup.pid1_mode(Box::new(move |n| {
        log(&format!("all {n} containers ready"));
        if orphans > 0 {
            make_orphans(orphans);
        }
        if let Some(argv) = &test_shell {
            match rescue::spawn_shell(argv, false) {
                Ok(pid) => log(&format!("test: console shell {argv:?} started (pid {pid})")),
                Err(e) => log(&format!(
                    "test: cannot start the console shell {argv:?}: {e}"
                )),
            }
        }
        if panic_when_ready {
            panic!("test-only panic once every container is ready (berth.test-panic=ready)");
        }
    }))
    .map_err(|e| e.to_string())?;
    log(&format!(
        "{}: {count} containers, state in {}",
        start
            .generation
            .map_or_else(|| file.display().to_string(), |n| format!("generation {n}")),
        lock.dir.display()
    ));
    // As `berth up`: the evaluation goes back to the system before berth settles.
    drop(ev);
    crate::cmd::release_free_memory();
    console::timing(|| "supervisor ready".into());
    let result = sup.run();
    let power = sup.power().unwrap_or(Power::Reboot);
    if let Err(e) = result {
        log(&format!("the supervisor stopped: {e}; rebooting"));
    }
    drop(sup);
    let _ = cgroups.remove();
    drop(lock);
    Ok(power)
}

/// The `berth.test-orphans=N` switch (tests only): N orphans for PID 1 to reap. A
/// child forks N grandchildren and exits; they wait for its exit (EOF on a pipe only
/// it still writes to), so all become orphans at once, then live 10 s more.
fn make_orphans(n: u32) {
    log(&format!("test: making {n} orphans"));
    // SAFETY: fork in the single-threaded PID 1; the children call only pipe, fork,
    // prctl, close, read, nanosleep and _exit (async-signal-safe).
    unsafe {
        if libc::fork() == 0 {
            // The orphans are named, so a test can count them in /proc.
            libc::prctl(libc::PR_SET_NAME, c"berth-orphan".as_ptr());
            let mut fds = [0; 2];
            if libc::pipe(fds.as_mut_ptr()) != 0 {
                libc::_exit(1);
            }
            for _ in 0..n {
                if libc::fork() == 0 {
                    libc::close(fds[1]);
                    let mut b = 0u8;
                    while libc::read(fds[0], (&raw mut b).cast(), 1) > 0 {}
                    let t = libc::timespec {
                        tv_sec: 10,
                        tv_nsec: 0,
                    };
                    libc::nanosleep(&t, std::ptr::null_mut());
                    libc::_exit(0);
                }
            }
            libc::_exit(0);
        }
    }
}

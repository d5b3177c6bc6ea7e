//! The rescue shell and the panic hook: PID 1 never exits.

use std::ffi::CString;
use std::sync::RwLock;

use super::console::log;
use super::shutdown::{finish, reap_all};
use super::{Power, signal_action};

/// What the panic hook does: the host's `on-panic` and `rescue-shell`.
#[derive(Debug, Clone, Default)]
pub struct PanicPolicy {
    pub on_panic: String,
    pub rescue_shell: Vec<String>,
}

impl PanicPolicy {
    /// The host's `on-panic` and `rescue-shell`.
    pub fn of_host(host: &berth_modules::Node) -> PanicPolicy {
        use berth_modules::Value;
        PanicPolicy {
            on_panic: host
                .get("on-panic")
                .and_then(Value::as_str)
                .unwrap_or("reboot")
                .to_string(),
            rescue_shell: strings(host.get("rescue-shell")),
        }
    }
}

/// The strings of a list value (argv, module names).
pub fn strings(v: Option<&berth_modules::Value>) -> Vec<String> {
    v.map(berth_modules::Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

static POLICY: RwLock<Option<PanicPolicy>> = RwLock::new(None);

/// Sets what the panic hook does (first from the image's boot record, then from the
/// host once it is evaluated).
pub fn set_policy(p: PanicPolicy) {
    let mut g = match POLICY.write() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    };
    *g = Some(p);
}

/// A panic in PID 1 must not end the process (the kernel would panic with "Attempted
/// to kill init"): the hook logs it on the console, then runs the rescue shell (when
/// `on-panic "shell"` and a `rescue-shell` are set), halts (`on-panic "halt"`), or
/// reboots, through the same shutdown as a reboot (processes stopped, file systems
/// unmounted). It never returns, so nothing unwinds out of `main`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        log(&format!("PANIC: {info}"));
        let policy = match POLICY.read() {
            Ok(g) => g.clone().unwrap_or_default(),
            Err(e) => e.into_inner().clone().unwrap_or_default(),
        };
        match policy.on_panic.as_str() {
            "shell" if !policy.rescue_shell.is_empty() => {
                log(
                    "on-panic \"shell\": starting the rescue shell; the machine reboots when it exits",
                );
                let power = run_shell(&policy.rescue_shell);
                finish(power)
            }
            "halt" => finish(Power::Halt),
            _ => {
                log("rebooting after the panic");
                finish(Power::Reboot)
            }
        }
    }));
}

/// Forks `argv` on /dev/console as a session leader, with the console as its
/// controlling terminal when `ctty` (job control, ctrl-c). Without, its exit does not
/// hang the console's tty up (the kernel does that when a controlling process exits),
/// which would cost other processes' lines written at that moment.
pub fn spawn_shell(argv: &[String], ctty: bool) -> Result<i32, String> {
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("`{a}` contains a NUL byte")))
        .collect::<Result<_, _>>()?;
    let Some(path) = args.first() else {
        return Err("the rescue shell has no command".into());
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env = [
        c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        c"TERM=linux",
        c"HOME=/",
    ];
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: fork in PID 1 (single-threaded here); the child calls only
    // async-signal-safe functions (setsid, open, ioctl, dup2, execve, _exit) with
    // memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; every pointer is valid until execve.
        unsafe {
            let _ = crate::runtime::sys::reset_signals();
            crate::runtime::sys::reset_oom_score_adj();
            libc::setsid();
            let fd = libc::open(c"/dev/console".as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                if ctty {
                    libc::ioctl(fd, libc::TIOCSCTTY, 1);
                }
                for target in 0..3 {
                    libc::dup2(fd, target);
                }
                if fd > 2 {
                    libc::close(fd);
                }
            }
            libc::execve(path.as_ptr(), ptrs.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Runs the rescue shell on the console until it exits (→ reboot) or a power signal
/// arrives (busybox `poweroff` in the shell: SIGUSR2), reaping every orphan meanwhile.
pub fn run_shell(argv: &[String]) -> Power {
    let pid = match spawn_shell(argv, true) {
        Ok(pid) => pid,
        Err(e) => {
            log(&format!("cannot start the rescue shell {argv:?}: {e}"));
            return wait_for_power(None);
        }
    };
    log(&format!("rescue shell {argv:?} started (pid {pid})"));
    wait_for_power(Some(pid))
}

/// Waits for a power signal (or, with `shell`, for that process to exit: → reboot),
/// reaping every child. The signals are blocked since the start of PID 1.
pub fn wait_for_power(shell: Option<i32>) -> Power {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset/sigaddset.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in
            super::power_signals()
                .into_iter()
                .chain([libc::SIGCHLD, libc::SIGTERM, libc::SIGINT])
        {
            libc::sigaddset(&mut set, s);
        }
        set
    };
    loop {
        // SAFETY: set is initialised; no siginfo wanted.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig == libc::SIGCHLD || sig < 0 {
            if let Some(shell) = shell {
                loop {
                    let mut status = 0;
                    // SAFETY: waitpid with a valid pointer to an int.
                    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                    if pid <= 0 {
                        break;
                    }
                    if pid == shell {
                        log("the rescue shell exited: rebooting");
                        return Power::Reboot;
                    }
                }
            } else {
                reap_all();
            }
            continue;
        }
        if let Some(p) = signal_action(sig) {
            return p;
        }
    }
}

//! `berth exec` against a real container (needs root and a cgroup2 mount): the runtime
//! starts a `sleep` container in its own namespaces and cgroup, then `exec_in` runs
//! commands in it. Under CI=true a missing requirement fails the test; elsewhere the
//! test says why and skips. Every container is killed and its cgroup removed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::require;

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};
use std::time::{Duration, Instant};

use berth_init::cmd::exec::{ExecError, ExecOptions, container_cgroup, exec_in};
use berth_init::control::ControlServer;
use berth_init::control::proto::{ContainerStatus, Request, Response, State};
use berth_init::runtime::cgroup::{Cgroup, CgroupTree};
use berth_init::runtime::wait;
use berth_init::runtime::{Child, SpawnConfig, User, spawn};

/// The cgroup v2 mount, if the test can run at all.
fn v2_root() -> Option<PathBuf> {
    if !require(
        rustix::process::geteuid().is_root(),
        "exec tests must run as root",
    ) {
        return None;
    }
    if !require(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox (apt-get install busybox-static)",
    ) {
        return None;
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let found = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split(' ').nth(4)?))
    });
    require(
        found.is_some(),
        "a cgroup2 mount (/sys/fs/cgroup or /sys/fs/cgroup/unified)",
    )
    .then_some(found)
    .flatten()
}

/// A running `sleep 1000` container in `<v2>/berth-test-exec-<test>-<pid>/<name>`.
struct Container {
    name: String,
    cgroup: Cgroup,
    tree: PathBuf,
    child: Option<Child>,
}

impl Container {
    fn start(test: &str, configure: impl FnOnce(&mut SpawnConfig)) -> Option<Container> {
        let root = v2_root()?;
        let tree = CgroupTree::create(
            &root,
            &format!("berth-test-exec-{test}-{}", std::process::id()),
        )
        .unwrap();
        let name = format!("box-{test}");
        let cgroup = tree.create_cgroup(&name).unwrap();
        let mut container = Container {
            name: name.clone(),
            cgroup: cgroup.clone(),
            tree: tree.path().to_owned(),
            child: None,
        };
        let mut config = SpawnConfig::new(name, vec!["sleep".into(), "1000".into()]);
        config.hostname = Some(format!("exec-{test}"));
        config.cgroup = Some(cgroup.open_fd().unwrap());
        configure(&mut config);
        container.child = Some(spawn(&config).unwrap_or_else(|e| panic!("spawn: {e}")));
        Some(container)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().pid
    }

    fn cgroup_dir(&self) -> &Path {
        self.cgroup.path()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.cgroup.kill_and_remove(Duration::from_secs(5)) {
            eprintln!("cleanup: {e}");
        }
        if let Some(child) = &self.child {
            let _ = wait::wait_timeout(&child.pidfd, Duration::from_secs(5));
        }
        if let Err(e) = fs::remove_dir(&self.tree) {
            eprintln!("cleanup: {}: {e}", self.tree.display());
        }
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `argv` in the container; returns (exit code, stdout+stderr).
fn run(c: &Container, argv: &[&str]) -> (i32, String) {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let opts = ExecOptions {
        tty: false,
        stdio: [None, Some(write.as_fd()), Some(write.as_fd())],
    };
    let code = exec_in(c.pid(), c.cgroup_dir(), &args(argv), &opts)
        .unwrap_or_else(|e| panic!("exec_in {argv:?}: {e}"));
    drop(write);
    (code, read_all(read))
}

fn read_all(fd: OwnedFd) -> String {
    let mut out = String::new();
    fs::File::from(fd).read_to_string(&mut out).unwrap();
    out
}

fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn runs_in_the_containers_namespaces() {
    let Some(c) = Container::start("ns", |_| {}) else {
        return;
    };
    let (code, out) = run(
        &c,
        &[
            "busybox",
            "sh",
            "-c",
            "echo $$; hostname; cat /proc/1/cmdline; echo",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let inner_pid: i32 = lines[0].parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(
        inner_pid > 1 && inner_pid < 10,
        "pid {inner_pid} is not one of the container's pid namespace: {out}"
    );
    assert_eq!(lines[1], "exec-ns");
    assert_eq!(
        lines[2], "sleep\x001000\x00",
        "/proc/1 is the container's sleep"
    );

    // Every namespace is the container's.
    let kinds = ["pid", "mnt", "uts", "ipc", "net", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let (code, out) = run(&c, &["busybox", "sh", "-c", &script]);
    assert_eq!(code, 0, "{out}");
    let theirs: Vec<String> = kinds
        .iter()
        .map(|k| ns_link(&c.pid().to_string(), k))
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), theirs);
    assert_ne!(
        ns_link("self", "pid"),
        theirs[0],
        "the container has its own pid namespace"
    );
}

#[test]
fn the_exit_code_is_passed_back() {
    let Some(c) = Container::start("exit", |_| {}) else {
        return;
    };
    assert_eq!(run(&c, &["sh", "-c", "exit 7"]).0, 7);
    assert_eq!(run(&c, &["true"]).0, 0);
    // Killed by a signal: 128 + N.
    assert_eq!(
        run(&c, &["sh", "-c", "kill -TERM $$"]).0,
        128 + libc::SIGTERM
    );
}

#[test]
fn it_runs_in_the_containers_cgroup() {
    let Some(c) = Container::start("cgroup", |_| {}) else {
        return;
    };
    // Seen from inside: the root of its cgroup namespace, which is the container's cgroup.
    let (code, out) = run(&c, &["sh", "-c", "grep '^0::' /proc/self/cgroup"]);
    assert_eq!((code, out.as_str()), (0, "0::/\n"));

    // Seen from outside, while it runs.
    let (pid, dir) = (c.pid(), c.cgroup_dir().to_owned());
    let running = std::thread::spawn(move || {
        let argv = args(&["sh", "-c", "sleep 2; true", "exec-marker"]);
        exec_in(pid, &dir, &argv, &ExecOptions::default())
    });
    let procs = c.cgroup_dir().join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let listed = fs::read_to_string(&procs).unwrap();
        let marked = listed.lines().any(|p| {
            fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.ends_with(b"exec-marker\0"))
        });
        if marked || Instant::now() > deadline {
            break marked;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        found,
        "the exec'd shell never showed up in {}",
        procs.display()
    );
    assert_eq!(running.join().unwrap().unwrap(), 0);
}

#[test]
fn it_takes_the_containers_identity() {
    let Some(c) = Container::start("identity", |config| {
        config.user = User {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 5],
        };
        config
            .env
            .push(("MARKER".into(), "from-the-container".into()));
        config.workdir = "/tmp".into();
    }) else {
        return;
    };
    let script = "id -u; id -g; id -G; echo $MARKER; pwd; umask; grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status";
    let (code, out) = run(&c, &["sh", "-c", script]);
    assert_eq!(code, 0, "{out}");
    let init = fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let bnd = init.lines().find(|l| l.starts_with("CapBnd")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..5],
        ["1000", "1000", "1000 5", "from-the-container", "/tmp"],
        "{out}"
    );
    let umask = init
        .lines()
        .find_map(|l| l.strip_prefix("Umask:\t"))
        .unwrap();
    assert_eq!(lines[5], umask, "the umask is the container's");
    // /proc/PID/status order: CapEff, then CapBnd.
    assert_eq!(
        lines[6], "CapEff:\t0000000000000000",
        "uid 1000 holds no capabilities"
    );
    assert_eq!(lines[7], bnd, "the bounding set is the container's");
    assert_eq!(lines[8], "NoNewPrivs:\t1");
}

#[test]
fn a_wrong_cgroup_or_a_gone_process_is_refused() {
    let Some(c) = Container::start("refuse", |_| {}) else {
        return;
    };
    assert_eq!(container_cgroup(c.pid(), &c.name).unwrap(), c.cgroup_dir());
    let err = container_cgroup(c.pid(), "someone-else").unwrap_err();
    assert!(matches!(err, ExecError::Moved { .. }), "{err}");
    let elsewhere = c.cgroup_dir().with_file_name("elsewhere");
    let err = exec_in(
        c.pid(),
        &elsewhere,
        &args(&["true"]),
        &ExecOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("try again"), "{err}");
    let err = exec_in(
        c.pid(),
        c.cgroup_dir(),
        &args(&["no-such-command"]),
        &ExecOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ExecError::NotFound { .. }) && err.exit_code() == 127,
        "{err}"
    );
    let err = exec_in(
        c.pid(),
        c.cgroup_dir(),
        &args(&["/etc/hostname"]),
        &ExecOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ExecError::CannotRun { .. }) && err.exit_code() == 126,
        "{err}"
    );
    // A pid that is no process (pid_max is far below this).
    let err = exec_in(
        0x3fff_fff0,
        c.cgroup_dir(),
        &args(&["true"]),
        &ExecOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ExecError::Gone { .. }), "{err}");
}

/// A stand-in for berth: answers one `Status` with the container, then stops.
fn stand_in_berth(c: &Container, socket: &Path) -> std::thread::JoinHandle<()> {
    let mut server = ControlServer::bind(socket).unwrap();
    let status = ContainerStatus {
        name: c.name.clone(),
        state: State::Running,
        pid: Some(c.pid()),
        uptime: Some(1.0),
        restarts: 0,
        ready: true,
        memory: None,
        last_exit: None,
        status_text: None,
        warnings: Vec::new(),
        addresses: Vec::new(),
    };
    std::thread::spawn(move || {
        for _ in 0..500 {
            std::thread::sleep(Duration::from_millis(10));
            if let Some((client, request)) = server.poll().into_iter().next() {
                let answer = match request {
                    Request::Status => Response::Status {
                        containers: vec![status.clone()],
                        rejected: None,
                    },
                    _ => Response::Error {
                        message: "unexpected".into(),
                    },
                };
                server.reply(client, &answer);
                return;
            }
        }
    })
}

fn winsize(rows: u16, cols: u16) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// `berth exec` on a terminal of its own: we hold the pty's master, it gets the
/// terminal side as stdin and stdout.
struct OnTerminal {
    master: OwnedFd,
    terminal: fs::File,
    cli: std::process::Child,
    output: Vec<u8>,
}

impl OnTerminal {
    fn start(socket: &Path, container: &str, command: &[&str]) -> OnTerminal {
        use rustix::pty::OpenptFlags;
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
                .unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let terminal =
            rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
                .unwrap();
        rustix::termios::tcsetwinsize(&master, winsize(33, 111)).unwrap();
        let terminal = fs::File::from(terminal);
        let mut args = vec![
            "exec",
            "--socket",
            socket.to_str().unwrap(),
            container,
            "--",
        ];
        args.extend_from_slice(command);
        let cli = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .stdin(terminal.try_clone().unwrap())
            .stdout(terminal.try_clone().unwrap())
            .stderr(ProcStdio::piped())
            .spawn()
            .unwrap();
        OnTerminal {
            master,
            terminal,
            cli,
            output: Vec::new(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).replace('\r', "")
    }

    /// Reads the terminal until `berth exec` exits (the master sees no EOF while we hold
    /// it, hence the poll timeout); `step` runs after each read. Returns the exit code
    /// and berth's stderr.
    fn finish(&mut self, mut step: impl FnMut(&mut OnTerminal)) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            let mut fds = [rustix::event::PollFd::new(
                &self.master,
                rustix::event::PollFlags::IN,
            )];
            let tick = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            if rustix::event::poll(&mut fds, Some(&tick)).unwrap_or(0) > 0 {
                let mut buf = [0u8; 4096];
                if let Ok(n) = rustix::io::read(&self.master, &mut buf) {
                    self.output.extend_from_slice(&buf[..n]);
                }
            }
            step(self);
            if let Some(status) = self.cli.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.cli.kill();
                panic!(
                    "berth exec did not finish; terminal output: {:?}",
                    self.text()
                );
            }
        };
        let mut err = String::new();
        self.cli
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code(), err)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(self.cli.id() as i32, sig) };
    }
}

/// The `berth exec` binary with a terminal, against a stand-in berth: the command gets a
/// pty of the container, with our window size, and changes of it; the terminal is
/// restored afterwards.
#[test]
fn the_cli_relays_a_pty_of_the_container() {
    let Some(c) = Container::start("tty", |_| {}) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let serving = stand_in_berth(&c, &socket);
    let script = "tty; stty size; sleep 1; stty size; echo $(ls /dev/pts); exit 3";
    let mut t = OnTerminal::start(&socket, &c.name, &["sh", "-c", script]);
    let cooked = rustix::termios::tcgetattr(&t.terminal).unwrap();
    let mut resized = false;
    let (code, err) = t.finish(|t| {
        if !resized && t.text().contains("33 111") {
            // A resize: the terminal's size changes and berth exec gets SIGWINCH (here by
            // hand: the pty is not its controlling terminal).
            rustix::termios::tcsetwinsize(&t.master, winsize(44, 122)).unwrap();
            t.signal(libc::SIGWINCH);
            resized = true;
        }
    });
    serving.join().unwrap();
    let text = t.text();
    assert_eq!(code, Some(3), "stderr: {err}; terminal: {text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{text:?}"
    );
    assert!(lines.contains(&"33 111"), "window size passed on: {text:?}");
    assert!(
        lines.contains(&"44 122"),
        "window size change passed on: {text:?}"
    );
    // The pty is the container's: its own devpts holds only this one (and ptmx).
    assert!(lines.contains(&"0 ptmx"), "{text:?}");
    // The terminal is back in the mode it was in.
    let after = rustix::termios::tcgetattr(&t.terminal).unwrap();
    assert_eq!(after.local_modes, cooked.local_modes);
    assert_eq!(after.input_modes, cooked.input_modes);
    assert_eq!(after.output_modes, cooked.output_modes);
}

/// SIGTERM to `berth exec` on a terminal: it hangs up the pty (the command's session
/// gets SIGHUP), restores the terminal and reports how the command ended.
#[test]
fn the_cli_hangs_up_when_terminated() {
    let Some(c) = Container::start("hangup", |_| {}) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let serving = stand_in_berth(&c, &socket);
    let mut t = OnTerminal::start(
        &socket,
        &c.name,
        &["sh", "-c", "echo ready; sleep 100; true"],
    );
    let cooked = rustix::termios::tcgetattr(&t.terminal).unwrap();
    let mut sent = false;
    let (code, err) = t.finish(|t| {
        if !sent && t.text().contains("ready") {
            t.signal(libc::SIGTERM);
            sent = true;
        }
    });
    serving.join().unwrap();
    assert_eq!(
        code,
        Some(128 + libc::SIGHUP),
        "stderr: {err}; terminal: {:?}",
        t.text()
    );
    assert!(err.contains("hanging up"), "{err}");
    let after = rustix::termios::tcgetattr(&t.terminal).unwrap();
    assert_eq!(after.local_modes, cooked.local_modes);
    // Nothing of the command is left in the container: only its init.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = fs::read_to_string(c.cgroup_dir().join("cgroup.procs")).unwrap();
        if procs.lines().count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "left in the container: {procs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

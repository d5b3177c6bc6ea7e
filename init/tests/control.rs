//! The control socket end to end: a real `ControlServer` on a temp path, driven by a
//! small loop in a thread that answers fixed responses (standing in for the
//! supervisor), and real clients: `Client`, raw sockets sending garbage, a client of
//! another uid, and the `berth` binary's control verbs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::require;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use berth_init::control::proto::{
    AddressInfo, ContainerStatus, ForwardInfo, LeaseInfo, NetworkInfo, Request, Response, State,
};
use berth_init::control::{Client, ControlError, ControlServer};

fn web() -> ContainerStatus {
    ContainerStatus {
        name: "web".into(),
        state: State::Running,
        pid: Some(4242),
        uptime: Some(75.0),
        restarts: 2,
        ready: true,
        memory: Some(3 * 1024 * 1024),
        last_exit: None,
        status_text: None,
        warnings: vec![
            "memory limit not enforced: cgroup controller `memory` not available".into(),
        ],
        addresses: vec![AddressInfo {
            network: "lan".into(),
            interface: "eth0".into(),
            address: "10.88.0.7/24".into(),
        }],
    }
}

/// What the stand-in supervisor answers.
fn answer(request: &Request) -> Response {
    match request {
        Request::Status => Response::Status {
            containers: vec![web()],
            rejected: None,
        },
        Request::Info => Response::Info {
            pid: std::process::id(),
            state_dir: "/tmp/state".into(),
            log_dir: "/tmp/state/logs".into(),
            version: "test".into(),
        },
        Request::Start { name } if name == "web" => Response::Ok {
            message: Some(format!("starting {name}")),
        },
        Request::Start { name } | Request::Stop { name } | Request::Restart { name } => {
            Response::Error {
                message: format!("no container `{name}`"),
            }
        }
        Request::Down => Response::Ok {
            message: Some("stopping every container".into()),
        },
        Request::Switch {
            file,
            dry_run,
            confirm_within_ms,
            ..
        } => Response::Ok {
            message: Some(format!(
                "switch {file} dry_run={dry_run} confirm_within_ms={confirm_within_ms:?}"
            )),
        },
        Request::Rollback {
            generation,
            dry_run,
        } => Response::Ok {
            message: Some(format!("rollback {generation:?} dry_run={dry_run}")),
        },
        Request::Confirm => Response::Error {
            message: "no switch is waiting for `berth confirm`".into(),
        },
        Request::Net => Response::Net {
            networks: vec![NetworkInfo {
                name: "lan".into(),
                bridge: "br-lan".into(),
                subnet: "10.88.0.0/24".into(),
                subnet6: Some("fd00:88::/64".into()),
                gateway6: Some("fd00:88::1".into()),
                gateway: "10.88.0.1".into(),
                mtu: 1500,
                nat: true,
                allow: vec![],
                leases: vec![LeaseInfo {
                    container: "web".into(),
                    interface: "eth0".into(),
                    host_interface: "vb0123456789a".into(),
                    address: "10.88.0.7".into(),
                }],
            }],
            forwards: vec![ForwardInfo {
                container: "web".into(),
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_address: None,
                to: "10.88.0.7".into(),
            }],
        },
        Request::Reboot | Request::Poweroff | Request::Halt => Response::Error {
            message: "this berth is not the machine's init (PID 1)".into(),
        },
    }
}

/// A server answering in a thread until stopped (or until `down`, after which it exits
/// like berth does).
struct Served {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    fn new(mut server: ControlServer) -> Served {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let tick = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            while !flag.load(Ordering::Relaxed) {
                let mut fds = [rustix::event::PollFd::from_borrowed_fd(
                    server.fd(),
                    rustix::event::PollFlags::IN,
                )];
                let _ = rustix::event::poll(&mut fds, Some(&tick));
                let mut down = false;
                for (client, request) in server.poll() {
                    down |= request == Request::Down;
                    server.reply(client, &answer(&request));
                }
                if down {
                    // berth stops its containers, then exits: the connection closes.
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
        });
        Served {
            stop,
            thread: Some(thread),
        }
    }

    fn join(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("control.sock")
}

fn serve(path: &Path) -> Served {
    Served::new(ControlServer::bind(path).unwrap())
}

/// Sends raw bytes, returns the next line.
fn raw_line(stream: &mut BufReader<UnixStream>, bytes: &[u8]) -> String {
    stream.get_mut().write_all(bytes).unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).unwrap();
    line
}

fn raw(path: &Path) -> BufReader<UnixStream> {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

#[test]
fn a_client_gets_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _served = serve(&path);
    let mut client = Client::connect(&path).unwrap();
    assert_eq!(
        client.call(&Request::Status).unwrap(),
        Response::Status {
            containers: vec![web()],
            rejected: None,
        }
    );
    // Several calls on one connection.
    assert_eq!(
        client.call(&Request::Start { name: "web".into() }).unwrap(),
        Response::Ok {
            message: Some("starting web".into())
        }
    );
    assert_eq!(
        client
            .call(&Request::Stop {
                name: "nope".into()
            })
            .unwrap(),
        Response::Error {
            message: "no container `nope`".into()
        }
    );
    assert!(matches!(
        client.call(&Request::Info).unwrap(),
        Response::Info { .. }
    ));
}

#[test]
fn garbage_and_wrong_versions_get_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _served = serve(&path);
    let mut conn = raw(&path);
    let line = raw_line(&mut conn, b"hello there\n");
    assert!(
        line.contains(r#""result":"error""#) && line.contains("not JSON"),
        "{line}"
    );
    let line = raw_line(&mut conn, b"{\"v\":2,\"verb\":\"status\"}\n");
    assert!(
        line.contains("version 2") && line.contains("speaks version 1"),
        "{line}"
    );
    let line = raw_line(&mut conn, b"{\"v\":1,\"verb\":\"fly\"}\r\n");
    assert!(line.contains("error") && line.contains("fly"), "{line}");
    let line = raw_line(&mut conn, b"\xff\xfe\x00garbage\n");
    assert!(line.contains("error"), "{line}");
    // The same connection still works, and so do pipelined requests (answered in order).
    conn.get_mut()
        .write_all(b"{\"v\":1,\"verb\":\"info\"}\n\n{\"v\":1,\"verb\":\"status\"}\n")
        .unwrap();
    let mut first = String::new();
    conn.read_line(&mut first).unwrap();
    let mut second = String::new();
    conn.read_line(&mut second).unwrap();
    assert!(first.contains(r#""result":"info""#), "{first}");
    assert!(second.contains(r#""result":"status""#), "{second}");

    // A line over the limit: an error, then the connection is closed.
    let mut long = raw(&path);
    let junk = vec![b'x'; 200 * 1024];
    let _ = long.get_mut().write_all(&junk);
    let mut line = String::new();
    long.read_line(&mut line).unwrap();
    assert!(line.contains("longer than 65536 bytes"), "{line}");
    let mut rest = Vec::new();
    let _ = long.read_to_end(&mut rest);
    assert!(rest.is_empty());

    // A client that asks and leaves at once: its answer is dropped silently.
    let mut gone = UnixStream::connect(&path).unwrap();
    gone.write_all(b"{\"v\":1,\"verb\":\"status\"}\n").unwrap();
    drop(gone);
    // A client that shuts down its sending side still gets its answer.
    let mut half = UnixStream::connect(&path).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    half.write_all(b"{\"v\":1,\"verb\":\"status\"}\n").unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(r#""name":"web""#), "{answer}");

    let mut client = Client::connect(&path).unwrap();
    assert!(matches!(
        client.call(&Request::Status).unwrap(),
        Response::Status { .. }
    ));
}

#[test]
fn a_second_bind_refuses_with_already_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _served = serve(&path);
    let err = ControlServer::bind(&path).unwrap_err();
    assert!(
        matches!(err, ControlError::AlreadyRunning { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "berth is already running with control socket {} (pid {})",
            path.display(),
            std::process::id()
        )
    );
    // The refused attempt did not disturb the running one.
    assert!(matches!(
        Client::connect(&path)
            .unwrap()
            .call(&Request::Status)
            .unwrap(),
        Response::Status { .. }
    ));
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
    assert!(path.exists());
    let err = Client::connect(&path).unwrap_err();
    assert!(matches!(err, ControlError::NotRunning { .. }), "{err:?}");
    let _served = serve(&path);
    assert!(matches!(
        Client::connect(&path)
            .unwrap()
            .call(&Request::Status)
            .unwrap(),
        Response::Status { .. }
    ));
}

#[test]
fn a_path_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    std::fs::write(&path, "precious").unwrap();
    let err = ControlServer::bind(&path).unwrap_err();
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn not_running_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.sock");
    let err = Client::connect(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "berth is not running (no control socket at {})",
            path.display()
        )
    );
}

#[test]
fn a_dropped_server_can_be_bound_again_while_a_forked_child_lives() {
    // A child forked while the server runs (a container; another thread's `Command`
    // before its exec) shares the lock file's open file description.
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let server = ControlServer::bind(&path).unwrap();
    // SAFETY: the child only calls async-signal-safe functions (pause, _exit).
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork");
    if child == 0 {
        // SAFETY: as above; the parent kills it.
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    drop(server);
    let again = ControlServer::bind(&path);
    // SAFETY: the child forked above.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    assert!(
        again.is_ok(),
        "bind after drop: {}",
        again.err().map(|e| e.to_string()).unwrap_or_default()
    );
}

#[test]
fn the_socket_is_0600_in_a_0700_directory_and_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/berth/control.sock");
    let server = ControlServer::bind(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("run/berth")), 0o700);
    assert_eq!(mode(&dir.path().join("run")), 0o700);
    drop(server);
    assert!(!path.exists(), "the socket file is removed on drop");
    // And the path can be bound again at once.
    drop(ControlServer::bind(&path).unwrap());
}

#[test]
fn a_client_of_another_uid_is_refused() {
    if !require(
        rustix::process::geteuid().is_root(),
        "the other-uid test must run as root (it switches to uid 65534)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _served = serve(&path);
    let addr = rustix::net::SocketAddrUnix::new(&path).unwrap();

    // SAFETY: the child runs only raw syscalls on prepared data (no allocation, no
    // locks: the test harness is multi-threaded) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; every call below is a plain syscall.
        unsafe { libc::_exit(other_uid_client(&addr)) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    let code = libc::WEXITSTATUS(status);
    let what = match code {
        0 => "ok",
        10 => "could not switch to uid 65534 keeping capabilities",
        11 => "connecting without DAC override was not refused by the file mode (EACCES)",
        12 => "could not raise CAP_DAC_OVERRIDE",
        13 => "connect with CAP_DAC_OVERRIDE failed",
        14 => "no answer",
        15 => "the answer was not the permission error",
        16 => "the connection was not closed after the error",
        _ => "unexpected",
    };
    assert_eq!(code, 0, "{what}");
    // The server still serves root.
    assert!(matches!(
        Client::connect(&path)
            .unwrap()
            .call(&Request::Status)
            .unwrap(),
        Response::Status { .. }
    ));
}

/// In a forked child: become uid 65534, show that the file mode keeps it out, then
/// bypass the mode with CAP_DAC_OVERRIDE (still uid 65534) and show that SO_PEERCRED
/// does. Returns the exit code.
fn other_uid_client(addr: &rustix::net::SocketAddrUnix) -> i32 {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    use rustix::thread::{CapabilitySet, CapabilitySets};
    // SAFETY: raw setres[ug]id syscalls (not glibc's, which signal other threads).
    let switched = unsafe {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0
            && libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534) == 0
            && libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) == 0
    };
    if !switched || rustix::process::geteuid().as_raw() != 65534 {
        return 10;
    }
    let sock =
        |flags| rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None);
    let Ok(s) = sock(SocketFlags::CLOEXEC) else {
        return 11;
    };
    if rustix::net::connect(&s, addr) != Err(rustix::io::Errno::ACCESS) {
        return 11;
    }
    let dac = CapabilitySet::DAC_OVERRIDE;
    let sets = CapabilitySets {
        effective: dac,
        permitted: dac,
        inheritable: CapabilitySet::empty(),
    };
    if rustix::thread::set_capabilities(None, sets).is_err() {
        return 12;
    }
    let Ok(s) = sock(SocketFlags::CLOEXEC) else {
        return 13;
    };
    if rustix::net::connect(&s, addr).is_err() {
        return 13;
    }
    let mut buf = [0u8; 512];
    let mut got = 0;
    loop {
        match rustix::io::read(&s, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return 14,
        }
        if got == buf.len() {
            return 16;
        }
    }
    let text = &buf[..got];
    let want: &[u8] = b"\"message\":\"permission denied: the control socket is for root\"";
    if got == 0 {
        return 14;
    }
    if !text.windows(want.len()).any(|w| w == want)
        || text.iter().filter(|&&b| b == b'\n').count() != 1
    {
        return 15;
    }
    0
}

fn berth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_verbs_talk_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let sock = path.to_str().unwrap();
    let served = serve(&path);

    let (code, out, err) = berth(&["status", "--socket", sock]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("WARNINGS"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("web") && lines[1].contains("running") && lines[1].contains("1m15s"),
        "{out}"
    );
    assert!(
        lines[1].contains("3.0M") && lines[1].contains("yes") && lines[1].contains("not enforced"),
        "{out}"
    );
    assert!(
        lines[0].contains("ADDRESSES") && lines[1].contains("10.88.0.7/24"),
        "{out}"
    );

    let (code, out, err) = berth(&["net", "--socket", sock]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "lan  bridge br-lan  subnet 10.88.0.0/24  gateway 10.88.0.1  mtu 1500  subnet6 fd00:88::/64  gateway6 fd00:88::1  nat\n  \
         web  10.88.0.7        eth0 (host side vb0123456789a)\nforwards\n  *:8080/tcp -> web 10.88.0.7:80\n"
    );
    let (code, out, _) = berth(&["net", "--json", "--socket", sock]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["networks"][0]["leases"][0]["address"], "10.88.0.7");
    assert_eq!(v["forwards"][0]["host_port"], 8080);

    let (code, out, _) = berth(&["status", "--json", "--socket", sock]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "web");
    assert_eq!(v[0]["state"], "running");
    assert_eq!(v[0]["pid"], 4242);
    assert_eq!(v[0]["restarts"], 2);
    assert_eq!(v[0]["ready"], true);

    let (code, out, _) = berth(&["start", "web", "--socket", sock]);
    assert_eq!((code, out.as_str()), (0, "starting web\n"));
    let (code, out, err) = berth(&["restart", "db", "--socket", sock]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "error: no container `db`\n")
    );

    // switch sends the file's absolute path (berth reads it from its own directory).
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.kdl");
    let (code, out, err) = berth(&["switch", demo, "--dry-run", "--socket", sock]);
    assert_eq!(code, 0, "{err}");
    let abs = std::fs::canonicalize(demo).unwrap();
    assert_eq!(
        out,
        format!(
            "switch {} dry_run=true confirm_within_ms=None\n",
            abs.display()
        )
    );
    let (code, out, err) = berth(&[
        "switch",
        demo,
        "--confirm-within",
        "1m30s",
        "--socket",
        sock,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "switch {} dry_run=false confirm_within_ms=Some(90000)\n",
            abs.display()
        )
    );
    let (code, _, err) = berth(&["switch", demo, "--confirm-within", "soon", "--socket", sock]);
    assert_eq!(code, 2);
    assert!(err.contains("write a duration with its unit"), "{err}");
    let (code, _, err) = berth(&[
        "switch",
        demo,
        "--confirm-within",
        "5s",
        "--test",
        "--socket",
        sock,
    ]);
    assert_eq!(code, 2, "--confirm-within and --test conflict: {err}");
    let (code, out, err) = berth(&["rollback", "--socket", sock]);
    assert_eq!(
        (code, out.as_str()),
        (0, "rollback None dry_run=false\n"),
        "{err}"
    );
    let (code, out, err) = berth(&["rollback", "3", "--dry-run", "--socket", sock]);
    assert_eq!(
        (code, out.as_str()),
        (0, "rollback Some(3) dry_run=true\n"),
        "{err}"
    );
    let (code, _, err) = berth(&["confirm", "--socket", sock]);
    assert_eq!(
        (code, err.as_str()),
        (1, "error: no switch is waiting for `berth confirm`\n")
    );
    let (code, _, err) = berth(&["switch", "/nonexistent/host.kdl", "--socket", sock]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/host.kdl"), "{err}");

    let (code, out, err) = berth(&["down", "--socket", sock, "--timeout", "10"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "stopping every container\nberth stopped\n");
    served.join();

    let (code, out, err) = berth(&["status", "--socket", sock]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("error: berth is not running (no control socket at {sock})\n")
    );
    let (code, _, err) = berth(&["logs", "web", "--socket", sock]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not running") && err.contains("--log-dir"),
        "{err}"
    );
    let (code, _, _) = berth(&["status", "--bogus"]);
    assert_eq!(code, 2, "usage errors exit 2");
}

#[test]
fn logs_reads_a_log_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.log.1"),
        "2026-01-01T00:00:00.000Z out one\n2026-01-01T00:00:01.000Z out two\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("web.log"),
        "2026-01-01T00:00:02.000Z err three\n",
    )
    .unwrap();
    let logs = dir.path().to_str().unwrap();
    let (code, out, err) = berth(&["logs", "web", "-n", "2", "--log-dir", logs]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "2026-01-01T00:00:01.000Z out two\n2026-01-01T00:00:02.000Z err three\n"
    );
    let (code, _, err) = berth(&["logs", "db", "--log-dir", logs]);
    assert_eq!(code, 1);
    assert!(err.contains("no logs for db"), "{err}");
}

#[test]
fn every_control_verb_says_berth_is_not_running_in_one_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let sock = path.to_str().unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.kdl");
    let verbs: [&[&str]; 15] = [
        &["status"],
        &["net"],
        &["start", "web"],
        &["stop", "web"],
        &["restart", "web"],
        &["down"],
        &["logs", "web"],
        &["logs", "-f", "web"],
        &["exec", "--socket", sock, "web", "--", "true"],
        &["switch", demo],
        &["rollback"],
        &["confirm"],
        &["reboot"],
        &["poweroff"],
        &["halt"],
    ];
    for args in verbs {
        let mut args = args.to_vec();
        if args[0] != "exec" {
            args.extend(["--socket", sock]);
        }
        let (code, out, err) = berth(&args);
        assert_eq!(code, 1, "berth {args:?}: {err}");
        assert_eq!(out, "", "berth {args:?}");
        assert_eq!(err.lines().count(), 1, "berth {args:?}: one line: {err}");
        assert!(
            err.starts_with(&format!(
                "error: berth is not running (no control socket at {sock})"
            )),
            "berth {args:?}: {err}"
        );
    }
}

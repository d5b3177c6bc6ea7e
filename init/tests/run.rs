//! `berth run`: one container, once, in the foreground, on this machine's kernel.
//! Needs root; under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, host: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("berth-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("host.kdl"), host).unwrap();
        Dir(dir)
    }

    fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("run")
            .arg("--state-dir")
            .arg(self.0.join("state"))
            .arg(self.0.join("host.kdl"))
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.berth(args).output().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const HOST: &str = r#"host t
volume data
container box {
    rootfs host
    network none
    hostname inside
    env GREETING="hello"
    mount data "/data"
    exec "/bin/busybox" sh -c "echo $GREETING from $(hostname) as pid $$ >/data/out; cat /data/out; exit 3"
}
"#;

#[test]
fn run_passes_exit_code_output_and_volumes() {
    if !common::root() || !common::require(PathBuf::from("/bin/busybox").exists(), "/bin/busybox") {
        return;
    }
    let d = Dir::new("code", HOST);
    let out = d.run(&["box"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from inside as pid 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.0.join("state/volumes/data/out")).unwrap(),
        "hello from inside as pid 1\n"
    );
    // A command given on the command line replaces `exec`.
    let out = d.run(&["box", "--", "/bin/busybox", "cat", "/data/out"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from inside as pid 1\n"
    );
    // No cgroup is left behind (berth's subtree for this state dir is gone too).
    let mount = berth_init::state::cgroup2_mount().unwrap();
    let tree = mount.join(berth_init::state::cgroup_name(&d.0.join("state")));
    assert!(!tree.exists(), "{} left behind", tree.display());
}

#[test]
fn run_refuses_an_unknown_container_by_name() {
    if !common::root() {
        return;
    }
    let d = Dir::new("unknown", HOST);
    let out = d.run(&["nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no container named `nope`"), "{err}");
}

#[test]
fn run_names_the_container_and_the_failed_step_once() {
    if !common::root() {
        return;
    }
    let d = Dir::new("missing", HOST);
    let out = d.run(&["box", "--", "/nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: container box: exec /nope: ENOENT (No such file or directory)\n"
    );
}

#[test]
fn run_passes_sigterm_on_and_reports_the_signal() {
    if !common::root() || !common::require(PathBuf::from("/bin/busybox").exists(), "/bin/busybox") {
        return;
    }
    // With `init #true` the program is not PID 1, so SIGTERM's default action kills it,
    // and berth exits with 128 + 15.
    let host = HOST.replace("hostname inside", "hostname inside\n    init #true");
    let d = Dir::new("signal", &host);
    let mut child = d
        .berth(&[
            "box",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "echo up; exec /bin/busybox sleep 100",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "up\n");
    // SAFETY: signalling the berth process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(143));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "berth run did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_gives_network_none_its_own_namespace_with_loopback_up_and_host_shares_berths() {
    if !common::root() || !common::require(PathBuf::from("/bin/busybox").exists(), "/bin/busybox") {
        return;
    }
    // The container must see a network namespace of its own with only `lo`, and `lo`
    // up.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let script =
        "readlink /proc/self/ns/net; cut -d: -f1 /proc/net/dev | tail -n +3; ip link show lo";
    let d = Dir::new("netns", HOST);
    let out = d.run(&["box", "--", "/bin/busybox", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let inside = lines.next().unwrap();
    assert_ne!(
        inside,
        ours.to_str().unwrap(),
        "network none shares berth's namespace"
    );
    assert_eq!(lines.next().map(str::trim), Some("lo"), "{text}");
    let link = lines.next().unwrap_or_default();
    assert!(
        link.contains("lo:") && link.contains(",UP"),
        "lo is not up: {text}"
    );
    // `network host` shares berth's namespace.
    let d = Dir::new("hostnet", &HOST.replace("network none", "network host"));
    let out = d.run(&["box", "--", "/bin/busybox", "readlink", "/proc/self/ns/net"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ours.to_str().unwrap()
    );
}

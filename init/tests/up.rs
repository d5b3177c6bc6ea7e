//! `berth up` for real: containers in new namespaces on this machine's kernel, driven
//! through the control socket. Needs root; under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::berth::Berth;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

fn requirements_met() -> bool {
    common::root()
}

/// The timestamp of the first log line containing `needle`.
fn stamp(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.contains(needle))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no `{needle}` in log:\n{log}"))
}

#[test]
fn start_order_follows_the_graph_and_down_stops_in_reverse() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "order",
        r#"
container "db" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "sleep 0.3; touch /tmp/ready; echo db up; exec sleep 1000"
    ready "exec" "test" "-f" "/tmp/ready" interval="100ms"
}
container "web" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "echo web up; exec sleep 1000"
    after "db"
}
container "worker" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "echo worker up; exec sleep 1000"
}
"#,
    );
    b.wait_for(|| b.state("web") == "running", "web running");
    let (db, web, worker) = (b.log("db"), b.log("web"), b.log("worker"));
    assert!(
        stamp(&web, "started") >= stamp(&db, "ready"),
        "web must start after db is ready\n{db}\n{web}"
    );
    // worker depends on nothing: it started with db, not after it.
    assert!(
        stamp(&worker, "started") < stamp(&db, "ready"),
        "independent containers start at once\n{db}\n{worker}"
    );
    assert!(db.contains("out db up"), "{db}");
    let logs = b.dir.join("state/logs");
    let status = b.down();
    assert!(status.success());
    // Reverse order: db is stopped only once web (which is `after` it) has stopped;
    // `sleep` ignores SIGTERM, so web's stop takes its whole 300 ms stop timeout.
    let log = |name: &str| std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap();
    let (db, web) = (log("db"), log("web"));
    // Log stamps have millisecond resolution: db's stop may begin in the same
    // millisecond as web's kill completes, never before it.
    assert!(
        stamp(&db, "stopping with signal") >= stamp(&web, "stop timeout: killed"),
        "db must stop after web\n{db}\n{web}"
    );
}

#[test]
fn killed_container_restarts_and_crash_loop_fails() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "restart",
        r#"
container "svc" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
    restart "always"
    backoff { initial "50ms" }
}
container "once" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/true"
    restart "on-failure"
}
container "crash" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/false"
    restart "always"
    backoff { initial "10ms"; max "20ms" }
    start-limit { burst 3; interval "10s" }
}
"#,
    );
    b.wait_for(|| b.state("svc") == "running", "svc running");
    let pid = b.container("svc")["pid"].as_i64().unwrap();
    // SAFETY: the pid is the container's init, started by the berth this test runs.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    b.wait_for(
        || b.container("svc")["restarts"] == 1 && b.state("svc") == "running",
        "svc restarted",
    );
    assert_ne!(b.container("svc")["pid"].as_i64().unwrap(), pid);
    assert!(
        b.log("svc").contains("killed by SIGKILL"),
        "{}",
        b.log("svc")
    );

    b.wait_for(|| b.state("once") == "stopped", "once stopped");
    assert_eq!(
        b.container("once")["restarts"],
        0,
        "on-failure does not restart after exit 0"
    );

    b.wait_for(|| b.state("crash") == "failed", "crash failed");
    assert_eq!(b.container("crash")["restarts"], 2);
    // `restart` clears the failure.
    assert_eq!(
        b.call(json!({"verb": "restart", "name": "crash"}))["result"],
        "ok"
    );
    b.wait_for(|| b.state("crash") != "failed", "crash restarted");
    assert!(b.down().success());
}

#[test]
fn notify_readiness_and_readiness_reported_to_our_parent() {
    if !requirements_met() {
        return;
    }
    // Play systemd: a datagram socket berth reports READY=1 to.
    let dir = common::berth::fresh_dir("parent");
    let parent = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&parent).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The container reports readiness with Debian's real systemd-notify.
    assert!(
        Path::new("/usr/bin/systemd-notify").exists(),
        "systemd-notify is missing: install Debian's systemd package (scripts/test does)"
    );
    let notifier = "systemd-notify --ready --status=serving";
    let b = Berth::up_with(
        "notify",
        &format!(
            r#"
container "db" {{
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "sleep 0.2; {notifier}; exec sleep 1000"
    ready "notify"
}}
container "web" {{
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
    after "db"
}}
"#
        ),
        Some(&parent),
    );
    let mut buf = [0u8; 512];
    let mut got = String::new();
    while !got.contains("READY=1") {
        let n = sock.recv(&mut buf).expect("READY=1 from berth");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(b.state("db"), "running");
    assert_eq!(
        b.state("web"),
        "running",
        "READY=1 comes once every container is up"
    );
    assert_eq!(b.container("db")["ready"], true);
    assert!(
        stamp(&b.log("web"), "started") >= stamp(&b.log("db"), "ready"),
        "web (after db) starts once systemd-notify said db is ready\n{}\n{}",
        b.log("db"),
        b.log("web")
    );
    assert_eq!(b.container("db")["status_text"], "serving");
    assert!(b.down().success());
}

#[test]
fn second_up_on_the_same_state_dir_refuses() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "lock",
        "container \"a\" { rootfs \"host\"; exec \"/bin/sleep\" \"1000\"; stop-timeout \"300ms\" }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "up",
            b.dir.join("host.kdl").to_str().unwrap(),
            "--state-dir",
            b.dir.join("state").to_str().unwrap(),
            "--socket",
            b.dir.join("other.sock").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another berth") && err.contains("is running with state directory"),
        "{err}"
    );
    assert!(b.down().success());
}

#[test]
fn invalid_config_changes_nothing() {
    let dir = common::berth::fresh_dir("invalid");
    std::fs::write(
        dir.join("host.kdl"),
        "container \"a\" { rootfs \"host\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "up",
            dir.join("host.kdl").to_str().unwrap(),
            "--state-dir",
            dir.join("state").to_str().unwrap(),
            "--socket",
            dir.join("s.sock").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `exec`"));
    assert!(
        !dir.join("state").exists(),
        "nothing is created for an invalid host"
    );
}

#[test]
fn tcp_readiness_in_the_container_network_namespace() {
    if !requirements_met() {
        return;
    }
    // The server listens inside db's own network namespace (loopback only): the check
    // must run there, and `lo` must be up for it to connect.
    let b = Berth::up(
        "tcp",
        r#"
container "db" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "sleep 0.3; mkdir -p /tmp/www; exec busybox httpd -f -p 8000 -h /tmp/www"
    ready "tcp" 8000 interval="100ms"
}
container "web" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
    after "db"
}
"#,
    );
    b.wait_for(
        || b.state("web") == "running",
        "web running after db is ready",
    );
    assert_eq!(b.container("db")["ready"], true);
    assert!(stamp(&b.log("web"), "started") >= stamp(&b.log("db"), "ready"));
    assert!(b.down().success());
}

#[test]
fn a_flooding_container_does_not_stall_berth_and_its_log_stays_bounded() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "flood",
        r#"
container "flood" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sh" "-c" "busybox yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy | busybox head -c 1073741824; echo FLOOD-DONE; exec sleep 1000"
    restart "never"
    log { max-size "1M"; keep 2; }
}
container "quiet" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
}
"#,
    );
    // While 1 GiB goes through berth, the control socket keeps answering.
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    let start = Instant::now();
    while !b.log("flood").contains("FLOOD-DONE") {
        let t = Instant::now();
        let st = b.status();
        slowest = slowest.max(t.elapsed());
        calls += 1;
        assert_eq!(st.len(), 2);
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "1 GiB not through in 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "flood: 1 GiB in {:?}; {calls} status calls meanwhile, slowest {slowest:?}",
        start.elapsed()
    );
    // Not a timing assertion, a liveness one: the loop never blocked for long.
    assert!(
        slowest < Duration::from_secs(2),
        "status took {slowest:?} during the flood"
    );
    assert!(
        calls > 10,
        "only {calls} status calls answered during the flood"
    );
    let logs = b.dir.join("state/logs");
    let total: u64 = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("flood.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        total <= 3 * (1 << 20) + 64 * 1024,
        "flood logs use {total} bytes, bound is 3 MiB"
    );
    assert_eq!(b.state("quiet"), "running");
    assert!(b.down().success());
}

/// Zombie children of `pid` (host pid), from /proc.
fn zombies_of(pid: i64) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i64>().ok()));
        if state == Some("Z") && ppid == Some(pid) {
            n += 1;
        }
    }
    n
}

#[test]
fn a_containers_init_reaps_1000_orphans_and_passes_sigterm_on() {
    if !requirements_met() {
        return;
    }
    // 1,000 orphans that exit exactly when the shell has become `sleep`, whatever the
    // load: the shell holds the only writer of a FIFO (fd 3); each `( … & )` subshell
    // opens the FIFO for reading (so every reader exists before the loop ends), then
    // exits at once, orphaning a `cat` reading it (without fd 3); `exec sleep` closes
    // fd 3, so every `cat` sees EOF and exits after the shell stopped reaping.
    // With `init #true` the orphans' reaper is berth's init (the shell is PID 2);
    // without it, it is the program (`sleep`, which never reaps), and they stay zombies
    // — the control case that shows the test can fail.
    let script = "/bin/busybox mkfifo /tmp/f; exec 4<>/tmp/f 3>/tmp/f 4<&-; for i in $(/bin/busybox seq 1000); do (exec 5</tmp/f 3>&-; /bin/busybox cat <&5 >/dev/null 5<&- &); done; echo spawned; exec /bin/busybox sleep 1000 3>&-";
    let host = format!(
        r#"host t
container with-init {{
    rootfs host
    network none
    init #true
    exec "/bin/busybox" sh -c "{script}"
    restart never
    stop-timeout "60s"
}}
container without-init {{
    rootfs host
    network none
    exec "/bin/busybox" sh -c "{script}"
    restart never
}}
"#
    );
    let b = Berth::up("orphans", &host);
    for name in ["with-init", "without-init"] {
        b.wait_for(|| b.log(name).contains("spawned"), "1000 orphans spawned");
    }
    let pid = |name: &str| b.container(name)["pid"].as_i64().unwrap();
    let (with, without) = (pid("with-init"), pid("without-init"));
    b.wait_for(
        || zombies_of(without) >= 1000,
        "1000 zombies under a program that is PID 1 and does not reap",
    );
    b.wait_for(|| zombies_of(with) == 0, "every orphan reaped by the init");
    let children_of = |pid: i64| {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("status"))
                    .is_ok_and(|s| s.lines().any(|l| l == format!("PPid:\t{pid}")))
            })
            .count()
    };
    b.wait_for(
        || children_of(with) == 1,
        "only the program left under the init",
    );

    // SIGTERM reaches `sleep` through the init (as PID 1 it would be ignored), so the
    // stop ends long before the 60 s stop timeout would kill the cgroup, and the
    // init exits with 128 + 15.
    let r = b.call(json!({"verb": "stop", "name": "with-init"}));
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(|| b.state("with-init") == "stopped", "with-init stopped");
    let c = b.container("with-init");
    assert!(
        c.to_string().contains("143"),
        "expected exit code 143 (SIGTERM passed on), got {c}"
    );
    assert!(b.down().success());
}

/// Restart latency, for BENCHMARKS.md (`bench/runtime.sh` runs it): from SIGKILL of a
/// container's process to its successor running (it writes a line to a FIFO), with
/// `backoff.initial "0s"`, against the same container started by `berth start` (the
/// spawn time it is compared with). 50 rounds each. Run with
/// `cargo test --release -p berth-init --test up -- --ignored --nocapture restart_latency`.
#[test]
#[ignore = "a measurement, run on demand"]
fn restart_latency() {
    if !requirements_met() {
        return;
    }
    let fifo_dir = std::env::temp_dir().join(format!("berth-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fifo_dir);
    std::fs::create_dir_all(&fifo_dir).unwrap();
    let fifo = fifo_dir.join("started");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let host = format!(
        r#"host t
container r {{
    rootfs host
    network none
    mount "{dir}" "/x"
    exec "/bin/busybox" sh -c "echo up >/x/started; exec /bin/busybox sleep 1000"
    restart always
    backoff.initial "0s"
    backoff.reset-after "0s"
    start-limit.burst 1000
    stop-signal SIGKILL
}}
"#,
        dir = fifo_dir.display()
    );
    // Opened read-write, so the container's open for writing never blocks.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let mut lines = BufReader::new(reader);
    let mut line = String::new();
    let b = Berth::up("restart-latency", &host);
    lines.read_line(&mut line).unwrap();
    let rounds = 50;
    let stats = |mut t: Vec<Duration>| {
        t.sort();
        let mean = t.iter().sum::<Duration>() / t.len() as u32;
        format!(
            "mean {:.2} ms, median {:.2} ms, min {:.2} ms, max {:.2} ms",
            mean.as_secs_f64() * 1e3,
            t[t.len() / 2].as_secs_f64() * 1e3,
            t[0].as_secs_f64() * 1e3,
            t[t.len() - 1].as_secs_f64() * 1e3
        )
    };
    let mut restart = Vec::new();
    for _ in 0..rounds {
        let pid = b.container("r")["pid"].as_i64().unwrap() as i32;
        let start = Instant::now();
        // SAFETY: a process of the container this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        line.clear();
        lines.read_line(&mut line).unwrap();
        restart.push(start.elapsed());
        b.wait_for(|| b.state("r") == "running", "r running");
    }
    let mut start_times = Vec::new();
    for _ in 0..rounds {
        let r = b.call(json!({"verb": "stop", "name": "r"}));
        assert_eq!(r["result"], "ok", "{r}");
        b.wait_for(|| b.state("r") == "stopped", "r stopped");
        let start = Instant::now();
        let r = b.call(json!({"verb": "start", "name": "r"}));
        assert_eq!(r["result"], "ok", "{r}");
        line.clear();
        lines.read_line(&mut line).unwrap();
        start_times.push(start.elapsed());
    }
    println!(
        "restart after SIGKILL, backoff 0, {rounds} rounds: {}",
        stats(restart)
    );
    println!(
        "start by `berth start`, {rounds} rounds: {}",
        stats(start_times)
    );
    assert!(b.down().success());
    let _ = std::fs::remove_dir_all(&fifo_dir);
}

#[test]
fn switch_touches_only_what_changed() {
    if !requirements_met() {
        return;
    }
    // db, web, a third one, and 17 more: a 20-container host.
    let fillers: String = (1..=17)
        .map(|k| {
            format!(
                "container f{k} {{\n    rootfs host\n    network none\n    init #true\n    exec \"/bin/busybox\" sleep \"1000\"\n}}\n"
            )
        })
        .collect();
    let host = |mem: &str, mode: &str, last: &str| {
        fillers.clone()
            + &format!(
                r#"host t
container db {{
    rootfs host
    network none
    init #true
    exec "/bin/busybox" sleep "1000"
    limits {{
        memory "{mem}"
    }}
}}
container web {{
    rootfs host
    network none
    init #true
    exec "/bin/busybox" sleep "1000"
    env MODE="{mode}"
    requires db
}}
container {last} {{
    rootfs host
    network none
    init #true
    exec "/bin/busybox" sleep "1000"
}}
"#
            )
    };
    let b = Berth::up("switch", &host("64M", "a", "other"));
    let running = |b: &Berth| {
        b.status()
            .iter()
            .filter(|c| c["state"] == "running")
            .count()
    };
    b.wait_for(|| running(&b) == 20, "20 containers running");
    let all_before = b.pids();
    let pid = |b: &Berth, name: &str| b.container(name)["pid"].as_i64().unwrap();
    let pids = |b: &Berth| ["db", "web"].map(|n| pid(b, n));
    let before = (pids(&b), pid(&b, "other"));
    let current = |b: &Berth| {
        std::fs::read_link(b.dir.join("state/current"))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(current(&b), "generations/1");
    // db's memory limit: enforced where the memory controller exists, otherwise a
    // warning naming the container and the limit in `berth status` (this machine).
    let mount = berth_init::state::cgroup2_mount().unwrap();
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap();
    let warnings = b.container("db")["warnings"].to_string();
    if controllers.split_whitespace().any(|c| c == "memory") {
        assert!(!warnings.contains("memory"), "{warnings}");
    } else {
        assert!(
            warnings.contains("container db: memory limit not enforced"),
            "{warnings}"
        );
    }

    // A dry run plans and changes nothing.
    let r = b.switch(&host("128M", "a", "other"), json!({"dry_run": true}));
    assert_eq!(r["result"], "ok", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("~ container db: live"),
        "{r}"
    );
    assert_eq!(current(&b), "generations/1");

    // A memory limit: exactly one live step, applied in place, every pid unchanged.
    let r = b.switch(&host("128M", "a", "other"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    let message = r["message"].as_str().unwrap();
    assert_eq!(message.matches("~ container").count(), 1, "{message}");
    assert!(message.contains("~ container db: live"), "{message}");
    assert_eq!(current(&b), "generations/2");
    assert_eq!((pids(&b), pid(&b, "other")), before);
    assert_eq!(b.pids(), all_before);
    assert!(
        b.log("db").contains("changed in place by switch"),
        "{}",
        b.log("db")
    );

    // An env var of web: web restarts, db and other keep their pid.
    let r = b.switch(&host("128M", "b", "other"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(
        || b.state("web") == "running" && pid(&b, "web") != before.0[1],
        "web restarted",
    );
    assert_eq!(pid(&b, "db"), before.0[0]);
    assert_eq!(pid(&b, "other"), before.1);

    // An invalid file: an error, nothing changed.
    let r = b.switch("container broken {", json!({}));
    assert_eq!(r["result"], "error", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("nothing changed"),
        "{r}"
    );
    assert_eq!(current(&b), "generations/3");

    // `other` removed, `extra` added: other stops and leaves status, extra starts.
    let r = b.switch(&host("128M", "b", "extra"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(|| b.state("extra") == "running", "extra running");
    b.wait_for(
        || b.status().iter().all(|c| c["name"] != "other"),
        "other gone",
    );
    assert_eq!(pid(&b, "db"), before.0[0]);

    // A host setting of class reboot and a new volume with an owner and mode: the
    // volume's directory is made as asked, the host change waits for the next boot,
    // no container is touched.
    let with_volume = host("128M", "b", "extra")
        .replace(
            "host t\n",
            "host t {\n    state-dir \"/srv/elsewhere\"\n}\nvolume data {\n    owner \"65534:65534\"\n    mode \"0750\"\n}\n",
        );
    let pids_now = pids(&b);
    let r = b.switch(&with_volume, json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("host: state-dir changed; applied at the next boot"),
        "{r}"
    );
    let meta = std::fs::metadata(b.dir.join("state/volumes/data")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o750)
    );
    assert_eq!(pids(&b), pids_now);
    assert_eq!(current(&b), "generations/5");

    // An env var of db: db restarts and web with it (web `requires` db); the 18 others
    // keep their pid.
    let before_db = b.pids();
    let r = b.switch(
        &with_volume.replace("container db {\n", "container db {\n    env LEVEL=\"2\"\n"),
        json!({}),
    );
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(
        || {
            let now = b.pids();
            running(&b) == 20 && now["db"] != before_db["db"] && now["web"] != before_db["web"]
        },
        "db and web restarted",
    );
    let now = b.pids();
    for (name, p) in &before_db {
        if name != "db" && name != "web" {
            assert_eq!(now[name], *p, "{name} was touched");
        }
    }
    assert!(b.down().success());
}

#[test]
fn default_backoff_doubles_to_its_cap_and_the_default_start_limit_fails_after_5() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "backoff",
        r#"
container defaults {
    rootfs host
    network none
    exec "/bin/false"
    restart always
}
container capped {
    rootfs host
    network none
    exec "/bin/false"
    restart always
    backoff { initial "50ms"; factor 3; max "200ms" }
    start-limit { burst 6 }
}
"#,
    );
    b.wait_for(|| b.state("defaults") == "failed", "defaults failed");
    b.wait_for(|| b.state("capped") == "failed", "capped failed");
    let delays = |name: &str| -> Vec<String> {
        b.log(name)
            .lines()
            .filter_map(|l| l.split("restarting in ").nth(1).map(str::to_string))
            .collect()
    };
    // 100 ms doubling (5 starts within the default 10 s window, then `failed`).
    assert_eq!(delays("defaults"), ["100ms", "200ms", "400ms", "800ms"]);
    assert_eq!(b.container("defaults")["restarts"], 4);
    assert!(
        b.log("defaults").contains("failed: 5 starts"),
        "{}",
        b.log("defaults")
    );
    // factor 3 from 50 ms, capped at 200 ms.
    assert_eq!(
        delays("capped"),
        ["50ms", "150ms", "200ms", "200ms", "200ms"]
    );
    assert!(b.down().success());
}

#[test]
fn watchdog_start_timeout_health_checks_and_extended_timeouts() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "health",
        r#"
// Ready, then silent: no WATCHDOG=1 within 1 s restarts it.
container dog {
    rootfs host
    network none
    exec "/bin/sh" "-c" "systemd-notify --ready; exec sleep 1000"
    ready notify
    watchdog "1s"
    restart always
}
// Never ready: restarted after its start timeout.
container late {
    rootfs host
    network none
    exec "/bin/sleep" "1000"
    ready notify
    start-timeout "500ms"
    restart always
}
// Asks for more time (3 s) than its start timeout (1 s) gives, and is ready after 1.5 s.
container slow {
    rootfs host
    network none
    exec "/bin/sh" "-c" "systemd-notify EXTEND_TIMEOUT_USEC=3000000; sleep 1.5; systemd-notify --ready; exec sleep 1000"
    ready notify
    start-timeout "1s"
    restart always
}
// Says STOPPING=1, then exits 2 s later: `stopping` meanwhile.
container leaving {
    rootfs host
    network none
    exec "/bin/sh" "-c" "systemd-notify --ready; sleep 0.5; systemd-notify STOPPING=1; sleep 2"
    ready notify
    restart never
}
// Healthy while /tmp/ok exists: removed after 1 s, two failed checks restart it.
container sick {
    rootfs host
    network none
    exec "/bin/sh" "-c" "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 1000"
    ready exec "/bin/sh" "-c" "test -e /tmp/ok" interval="200ms" retries=2
    restart always
}
"#,
    );
    b.wait_for(
        || b.log("dog").contains("watchdog timeout"),
        "the watchdog restarting dog",
    );
    b.wait_for(
        || b.log("late").contains("not ready within its start timeout"),
        "late restarted after its start timeout",
    );
    b.wait_for(
        || {
            b.log("sick")
                .contains("health check failed 2 times: restarting")
        },
        "sick restarted by its health check",
    );
    b.wait_for(
        || b.state("slow") == "running" && b.container("slow")["ready"] == true,
        "slow ready",
    );
    b.wait_for(
        || b.state("leaving") == "stopping",
        "leaving shown as stopping",
    );
    assert_eq!(b.container("leaving")["ready"], false);
    b.wait_for(
        || b.state("leaving") == "stopped",
        "leaving stopped after its exit",
    );
    assert_eq!(
        b.container("slow")["restarts"],
        0,
        "EXTEND_TIMEOUT_USEC extends the start timeout: {}",
        b.log("slow")
    );
    assert!(b.down().success());
}

#[test]
fn sigterm_and_sigint_stop_in_reverse_order_and_report_status_lines_to_systemd() {
    if !requirements_met() {
        return;
    }
    for (signal, name) in [(libc::SIGTERM, "sigterm"), (libc::SIGINT, "sigint")] {
        // Play systemd: the datagrams berth sends to $NOTIFY_SOCKET.
        let dir = common::berth::fresh_dir(&format!("parent-{name}"));
        let parent = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&parent).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut b = Berth::up_with(
            name,
            r#"
container db {
    rootfs host
    network none
    exec "/bin/sleep" "1000"
    stop-timeout "300ms"
}
container web {
    rootfs host
    network none
    exec "/bin/sleep" "1000"
    stop-timeout "300ms"
    after db
}
"#,
            Some(&parent),
        );
        let mut got = Vec::new();
        let mut recv = |until: &str| {
            let mut buf = [0u8; 512];
            while !got.iter().any(|m: &String| m.contains(until)) {
                let n = sock
                    .recv(&mut buf)
                    .unwrap_or_else(|e| panic!("{until} from berth ({e}); got {got:?}"));
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        };
        recv("READY=1");
        assert_eq!(b.state("web"), "running");
        // SAFETY: signalling the berth process this test started.
        unsafe { libc::kill(b.child.id() as i32, signal) };
        recv("STATUS=all containers stopped");
        let start = Instant::now();
        let status = loop {
            if let Some(st) = b.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "berth did not exit after {name}; logs:\n{}",
                b.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{name}: berth exited with {status}");
        assert_eq!(
            got,
            [
                "STATUS=starting 2 containers",
                "READY=1\nSTATUS=2 containers running",
                "STOPPING=1\nSTATUS=stopping containers",
                "STATUS=all containers stopped",
            ],
            "{name}"
        );
        // web (after db) stops first; `sleep` ignores SIGTERM as PID 1, so web's stop
        // ends with its stop timeout, and only then does db's begin.
        let (db, web) = (b.log("db"), b.log("web"));
        assert!(
            stamp(&db, "stopping with signal") >= stamp(&web, "stop timeout: killed"),
            "{name}: db must stop after web\n{db}\n{web}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_notification_from_outside_the_containers_cgroup_is_ignored() {
    if !requirements_met() {
        return;
    }
    // The container says only STATUS=genuine once /tmp/go exists, and READY=1 once
    // /tmp/ready exists; the test, outside its cgroup, sends READY=1 before either.
    let b = Berth::up(
        "notify-sender",
        r#"
container svc {
    rootfs host
    network none
    stop-timeout "300ms"
    ready notify
    start-timeout "60s"
    exec "/bin/sh" "-c" "until [ -e /tmp/go ]; do sleep 0.05; done; systemd-notify --status=genuine; until [ -e /tmp/ready ]; do sleep 0.05; done; systemd-notify --ready; exec sleep 1000"
}
"#,
    );
    b.wait_for(|| b.container("svc")["pid"].is_i64(), "svc started");
    let pid = b.container("svc")["pid"].as_i64().unwrap();
    let socket = b.dir.join("state/run/notify/svc/notify.sock");
    let forger = UnixDatagram::unbound().unwrap();
    forger
        .send_to(b"READY=1\nSTATUS=forged", &socket)
        .unwrap_or_else(|e| panic!("send to {}: {e}", socket.display()));
    // Datagrams are read in order: once `genuine` is shown, the forged one was handled.
    let root = PathBuf::from(format!("/proc/{pid}/root/tmp"));
    std::fs::write(root.join("go"), "").unwrap();
    b.wait_for(
        || b.container("svc")["status_text"] == "genuine",
        "STATUS=genuine from the container",
    );
    let c = b.container("svc");
    assert_eq!(c["ready"], false, "READY=1 from outside the cgroup: {c}");
    assert_eq!(c["state"], "starting", "{c}");
    std::fs::write(root.join("ready"), "").unwrap();
    b.wait_for(
        || b.container("svc")["ready"] == true,
        "READY=1 from the container",
    );
    assert!(b.down().success());
}

#[test]
fn backoff_starts_again_from_initial_after_the_container_stayed_up() {
    if !requirements_met() {
        return;
    }
    // Runs 1-3 and 5 fail at once; run 4 stays up 1 s (past reset-after) before it
    // fails; run 6 keeps running.
    let dir = common::berth::fresh_dir("reset-count");
    let host = format!(
        r#"
container flaky {{
    rootfs host
    network none
    mount "{dir}" "/count"
    exec "/bin/sh" "-c" "n=$(cat /count/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /count/n; [ $n -ge 6 ] && exec sleep 1000; [ $n -eq 4 ] && sleep 1; exit 1"
    restart always
    stop-timeout "300ms"
    backoff {{ initial "50ms"; factor 2; max "10s"; reset-after "500ms" }}
    start-limit {{ burst 100 }}
}}
"#,
        dir = dir.display()
    );
    let b = Berth::up("backoff-reset", &host);
    b.wait_for(
        || std::fs::read_to_string(dir.join("n")).is_ok_and(|n| n.trim() == "6"),
        "the sixth run",
    );
    b.wait_for(|| b.state("flaky") == "running", "flaky running");
    let delays: Vec<String> = b
        .log("flaky")
        .lines()
        .filter_map(|l| l.split("restarting in ").nth(1).map(str::to_string))
        .collect();
    assert_eq!(delays, ["50ms", "100ms", "200ms", "50ms", "100ms"]);
    assert!(b.down().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watchdog_pings_keep_a_container_running() {
    if !requirements_met() {
        return;
    }
    // Pings every 100 ms with a 2 s watchdog: never restarted. `silent` (same watchdog,
    // no pings) shows the same time span is long enough for restarts.
    let b = Berth::up(
        "watchdog-pings",
        r#"
container pinging {
    rootfs host
    network none
    stop-timeout "300ms"
    exec "/bin/sh" "-c" "systemd-notify --ready; while :; do systemd-notify WATCHDOG=1; sleep 0.1; done"
    ready notify
    watchdog "2s"
    restart always
}
container silent {
    rootfs host
    network none
    stop-timeout "300ms"
    exec "/bin/sh" "-c" "systemd-notify --ready; exec sleep 1000"
    ready notify
    watchdog "2s"
    restart always
}
"#,
    );
    b.wait_for(
        || b.container("silent")["restarts"].as_u64() >= Some(2),
        "silent restarted twice by its watchdog",
    );
    let c = b.container("pinging");
    assert_eq!(c["restarts"], 0, "{c}\n{}", b.log("pinging"));
    assert_eq!(c["ready"], true, "{c}");
    assert!(!b.log("pinging").contains("watchdog timeout"));
    assert!(b.down().success());
}

#[test]
fn logs_follow_prints_the_last_n_lines_then_what_follows() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "logs-follow",
        r#"
container ticker {
    rootfs host
    network none
    stop-timeout "300ms"
    exec "/bin/sh" "-c" "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done"
}
"#,
    );
    let ticks = |log: &str| log.lines().filter(|l| l.contains(" out tick-")).count();
    b.wait_for(|| ticks(&b.log("ticker")) >= 5, "five ticks");
    let before = ticks(&b.log("ticker"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["logs", "ticker", "-f", "-n", "2", "--socket"])
        .arg(&b.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let line = lines.next().unwrap().unwrap();
        let n: usize = line
            .rsplit_once(" out tick-")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("not a tick line: {line}"));
        seen.push(n);
    }
    // SAFETY: the `berth logs` process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    // -n 2: it began with the last two lines (not the first tick), then every new line
    // in order, none lost or repeated while following.
    assert!(
        seen[0] + 1 >= before,
        "-n 2 began at tick {} of {before}",
        seen[0]
    );
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive ticks: {seen:?}"
    );
    assert!(b.down().success());
}

#[test]
fn a_health_check_that_hangs_past_its_timeout_counts_as_failed() {
    if !requirements_met() {
        return;
    }
    // Healthy for 1 s; then every check hangs (100 s), so only its 300 ms timeout can
    // fail it: two timed-out checks restart the container.
    let b = Berth::up(
        "check-timeout",
        r#"
container hang {
    rootfs host
    network none
    stop-timeout "300ms"
    exec "/bin/sh" "-c" "sleep 1; touch /tmp/hang; exec sleep 1000"
    ready exec "/bin/sh" "-c" "[ ! -e /tmp/hang ] || exec sleep 100" interval="100ms" timeout="300ms" retries=2
    restart always
}
"#,
    );
    b.wait_for(
        || {
            b.log("hang")
                .contains("health check failed 2 times: restarting")
        },
        "hang restarted after two timed-out checks",
    );
    b.wait_for(
        || b.container("hang")["restarts"].as_u64() >= Some(1),
        "hang restarted",
    );
    assert!(b.down().success());
}

#[test]
fn the_configured_stop_signal_is_sent_and_an_unenforced_limit_is_warned_once() {
    if !requirements_met() {
        return;
    }
    let mount = berth_init::state::cgroup2_mount().unwrap();
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap();
    let pids_missing = !controllers.split_whitespace().any(|c| c == "pids");
    let b = Berth::up(
        "stop-signal",
        r#"
container polite {
    rootfs host
    network none
    stop-signal SIGUSR1
    stop-timeout "30s"
    exec "/bin/sh" "-c" "trap 'echo got USR1; exit 0' USR1; echo trapping; while :; do sleep 0.1; done"
}
container crashing {
    rootfs host
    network none
    exec "/bin/false"
    restart always
    backoff { initial "10ms"; max "20ms" }
    start-limit { burst 3; interval "10s" }
    limits { pids 10 }
}
"#,
    );
    b.wait_for(|| b.log("polite").contains("trapping"), "polite trapping");
    let r = b.call(json!({"verb": "stop", "name": "polite"}));
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(|| b.state("polite") == "stopped", "polite stopped");
    let log = b.log("polite");
    assert!(
        log.contains("stopping with signal 10") && log.contains("got USR1"),
        "{log}"
    );
    assert!(
        !log.contains("stop timeout"),
        "SIGUSR1 ended it, not the timeout: {log}"
    );
    assert_eq!(b.container("polite")["last_exit"], "exited 0");

    // Three starts of a container whose pids limit cannot be enforced here: one warning
    // on berth's stderr and in its status, not one per start.
    b.wait_for(|| b.state("crashing") == "failed", "crashing failed");
    if pids_missing {
        let warned = |text: &str| {
            text.matches("container crashing: pids limit not enforced")
                .count()
        };
        assert_eq!(warned(&b.own_log()), 1, "{}", b.own_log());
        let status = b.container("crashing")["warnings"].to_string();
        assert_eq!(warned(&status), 1, "{status}");
    }
    assert!(b.down().success());
}

#[test]
fn a_tmpfs_of_the_host_file_has_its_size_and_mode() {
    if !requirements_met() {
        return;
    }
    // From the KDL `tmpfs` record to the mount: 1 MiB holds 512 KiB but not 2 MiB.
    let b = Berth::up(
        "tmpfs",
        r#"
container t {
    rootfs host
    network none
    stop-timeout "300ms"
    tmpfs "/scratch" size="1M" mode="0700"
    exec "/bin/sh" "-c" "stat -c 'mode=%a' /scratch; dd if=/dev/zero of=/scratch/a bs=1024 count=512 2>/dev/null && echo small-fits; dd if=/dev/zero of=/scratch/b bs=1024 count=2048 2>/dev/null || echo big-refused; echo checks-done; exec sleep 1000"
}
"#,
    );
    b.wait_for(|| b.log("t").contains("checks-done"), "t's checks");
    let log = b.log("t");
    for line in ["out mode=700", "out small-fits", "out big-refused"] {
        assert!(log.contains(line), "{line}:\n{log}");
    }
    assert!(b.down().success());
}

#[test]
fn a_container_waiting_out_its_backoff_is_shown_as_backoff() {
    if !requirements_met() {
        return;
    }
    let b = Berth::up(
        "backoff-state",
        r#"
container waiting {
    rootfs host
    network none
    exec "/bin/false"
    restart always
    backoff { initial "60s" }
}
"#,
    );
    b.wait_for(
        || b.container("waiting")["last_exit"] == "exited 1",
        "the first exit",
    );
    let c = b.container("waiting");
    assert_eq!(c["state"], "backoff", "{c}");
    assert_eq!(c["restarts"], 1, "{c}");
    assert!(c["pid"].is_null(), "{c}");
    // `berth status` shows it in its table too.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--socket"])
        .arg(&b.socket)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("waiting") && l.contains("backoff")),
        "{table}"
    );
    assert!(b.down().success());
}

/// The containers of one layer set themselves up at once: one held in its setup (the
/// test-only `BERTH_TEST_HOLD_SETUP`) does not hold up the others or the control
/// socket; one whose setup fails is named with its step while the others run; one that
/// is stopped while still in its setup is killed and `down` completes.
#[test]
fn a_layer_sets_itself_up_concurrently_and_a_failed_setup_names_its_step() {
    if !requirements_met() {
        return;
    }
    let dir = common::berth::fresh_dir("layer");
    let (go, never) = (dir.join("go.fifo"), dir.join("never.fifo"));
    for fifo in [&go, &never] {
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    std::fs::write(
        dir.join("host.kdl"),
        r#"
container "held" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
}
container "fast" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
}
container "bad" {
    rootfs "host"
    workdir "/no/such/dir"
    restart "never"
    exec "/bin/sleep" "1000"
}
container "stuck" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
}
container "last" {
    stop-timeout "300ms"
    rootfs "host"
    exec "/bin/sleep" "1000"
    after "held" "fast"
}
"#,
    )
    .unwrap();
    let hold = format!("held:{},stuck:{}", go.display(), never.display());
    let b = Berth::start(&dir, None, &[("BERTH_TEST_HOLD_SETUP", &hold)]);
    b.wait_for(|| b.state("fast") == "running", "fast running");
    b.wait_for(|| b.state("bad") == "stopped", "bad stopped");
    let bad = b.container("bad");
    let why = "start failed: container bad: chdir /no/such/dir (workdir): ENOENT (No such file or directory)";
    assert_eq!(bad["last_exit"], why, "{bad}");
    assert!(b.log("bad").contains(why), "{}", b.log("bad"));
    assert_eq!(bad["restarts"], 0, "{bad}");
    // `held` is still in its setup: starting, no pid yet, and `last` waits for it.
    let held = b.container("held");
    assert_eq!(held["state"], "starting", "{held}");
    assert!(held["pid"].is_null(), "{held}");
    assert_eq!(b.state("last"), "stopped");
    assert!(!b.log("held").contains("started"), "{}", b.log("held"));

    std::fs::OpenOptions::new()
        .write(true)
        .open(&go)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    b.wait_for(|| b.state("held") == "running", "held running");
    b.wait_for(|| b.state("last") == "running", "last running");
    assert_eq!(b.state("stuck"), "starting");
    let status = b.down();
    assert!(status.success());
    let stuck = std::fs::read_to_string(dir.join("state/logs/stuck.log")).unwrap();
    assert!(stuck.contains("killed by SIGKILL"), "{stuck}");
    assert!(!stuck.contains("started"), "{stuck}");
}

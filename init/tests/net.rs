//! Networks for real: bridges, veth pairs, addresses, names, NAT and port forwards on
//! this machine's kernel. Every test makes its own network namespace (a `sleep` under
//! `unshare --net` holds it) and runs berth inside it with `nsenter`, so nothing
//! touches the machine's own interfaces and all traffic stays in namespaces the test
//! made. Needs root, nft, busybox; under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn requirements_met() -> bool {
    common::root()
        && common::require(
            Path::new("/usr/sbin/nft").exists(),
            "nft (Debian package nftables)",
        )
        && common::require(Path::new("/bin/busybox").exists(), "busybox-static")
}

/// A network namespace of the test's own, standing in for "the host".
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["--net", "--", "/bin/busybox", "sleep", "100000"])
            .spawn()
            .unwrap();
        let ns = Netns { holder };
        // unshare execs sleep once the namespace exists; wait for that.
        let start = Instant::now();
        while std::fs::read_link(ns.path()).ok() == std::fs::read_link("/proc/self/ns/net").ok() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    fn cmd(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .args(argv);
        c
    }

    fn output(&self, argv: &[&str]) -> Output {
        self.cmd(argv).output().unwrap()
    }

    fn run(&self, argv: &[&str]) -> String {
        let o = self.output(argv);
        assert!(
            o.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Interfaces as `ip -j link` reports them.
    fn links(&self) -> Vec<Value> {
        serde_json::from_str(&self.run(&["ip", "-j", "-d", "link"])).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

struct Berth {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

fn test_dir(name: &str) -> PathBuf {
    common::scratch_dir("net", name)
}

impl Berth {
    /// `berth up` of `host` inside `ns`, with state in `dir/state`; waits until every
    /// container is running.
    fn up(ns: &Netns, dir: &Path, host: &str) -> Berth {
        let file = dir.join("host.kdl");
        std::fs::write(&file, host).unwrap();
        let socket = dir.join("control.sock");
        let _ = std::fs::remove_file(&socket);
        let child = ns
            .cmd(&[
                env!("CARGO_BIN_EXE_berth"),
                "up",
                file.to_str().unwrap(),
                "--state-dir",
                dir.join("state").to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env_remove("NOTIFY_SOCKET")
            .spawn()
            .unwrap();
        let mut b = Berth {
            child,
            dir: dir.to_path_buf(),
            socket,
        };
        b.wait_for(|b| b.socket.exists(), "control socket");
        b.wait_for(
            |b| b.status().iter().all(|c| c["state"] == "running"),
            "every container running",
        );
        b
    }

    fn call(&self, req: Value) -> Value {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut msg = req;
        msg["v"] = json!(1);
        writeln!(s, "{msg}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn status(&self) -> Vec<Value> {
        self.call(json!({"verb": "status"}))["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn container(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    /// The container's eth0 address without prefix.
    fn address(&self, name: &str) -> String {
        let c = self.container(name);
        let a = c["addresses"][0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("{c}"));
        a.split('/').next().unwrap().to_string()
    }

    fn wait_for(&mut self, f: impl Fn(&Berth) -> bool, what: &str) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "berth exited ({st}) while waiting for {what}; logs:\n{}",
                    self.logs()
                );
            }
            if f(self) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a command inside a container (its namespaces, root and /etc/hosts).
    fn exec(&self, name: &str, argv: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([
                "exec",
                "-T",
                "--socket",
                self.socket.to_str().unwrap(),
                name,
            ])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("state/logs")) {
            for e in rd.flatten() {
                out.push_str(&format!(
                    "--- {}\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
        out
    }

    fn down(mut self) {
        let r = self.call(json!({"verb": "down"}));
        assert_eq!(r["result"], "ok", "{r}");
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "berth did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills container `name` with SIGKILL and waits until berth has restarted it.
    fn kill_and_wait_restart(&mut self, name: &str) {
        let pid = self.container(name)["pid"].as_i64().unwrap() as i32;
        // SAFETY: killing a container process this test's berth started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        self.wait_for(
            |b| {
                let c = b.container(name);
                c["state"] == "running" && c["pid"].as_i64() != Some(i64::from(pid))
            },
            &format!("{name} restarted"),
        );
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: signalling the berth process this test started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
        // A berth killed by the test leaves namespace files mounted; unmount them so
        // the temp dir can go.
        if let Ok(rd) = std::fs::read_dir(self.dir.join("state/run/netns")) {
            for e in rd.flatten() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SERVE: &str = r#"mkdir -p /tmp/www && echo \"hello from $(hostname)\" >/tmp/www/index.html && exec /bin/busybox httpd -f -p 80 -h /tmp/www"#;

fn server(name: &str, network: &str, extra: &str) -> String {
    format!(
        r#"container "{name}" {{
    rootfs "host"
    exec "/bin/sh" "-c" "{SERVE}"
    network "{network}"
    ready "tcp" 80 interval="100ms"
    stop-timeout "1s"
    {extra}
}}
"#
    )
}

fn sleeper(name: &str, network: &str) -> String {
    format!(
        r#"container "{name}" {{
    rootfs "host"
    exec "/bin/busybox" "sleep" "100000"
    network "{network}"
    stop-timeout "1s"
}}
"#
    )
}

/// An HTTP GET with busybox nc (busybox wget crashes in name lookups when statically
/// linked): the shell command that prints the response.
fn http_get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 {host} {port}")
}

fn get_in(b: &Berth, from: &str, host: &str) -> Output {
    b.exec(from, &["/bin/sh", "-c", &http_get(host, 80)])
}

fn get_from(ns: &Netns, host: &str, port: u16) -> String {
    ok(&ns.output(&["/bin/sh", "-c", &http_get(host, port)]))
}

#[test]
fn containers_talk_by_name_and_networks_are_isolated_unless_allowed() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("names");
    let host = |allow: &str| {
        format!(
            "network \"lan\" {{\n    subnet \"10.90.0.0/24\"\n}}\nnetwork \"other\" {{\n    subnet \"10.91.0.0/24\"\n    {allow}\n}}\n{}{}{}",
            server("db", "lan", ""),
            sleeper("web", "lan"),
            sleeper("outsider", "other")
        )
    };
    let b = Berth::up(&ns, &dir, &host(""));
    // By name, through /etc/hosts, over the bridge: TCP (HTTP with nc: busybox wget
    // crashes resolving names when statically linked) and ping.
    let page = ok(&get_in(&b, "web", "db"));
    assert!(page.contains("hello from db"), "{page}");
    ok(&b.exec("web", &["/bin/busybox", "ping", "-c", "1", "-W", "2", "db"]));
    let hosts = ok(&b.exec("web", &["cat", "/etc/hosts"]));
    assert!(
        hosts.contains(&format!("{}\tdb", b.address("db"))),
        "{hosts}"
    );
    assert!(!hosts.contains("outsider"), "{hosts}");
    ok(&b.exec("web", &["test", "-s", "/etc/resolv.conf"]));
    // The other network cannot reach lan.
    let db = b.address("db");
    let denied = get_in(&b, "outsider", &db);
    let text = String::from_utf8_lossy(&denied.stdout);
    assert!(!text.contains("hello"), "isolation failed: {text}");
    // The gateway (the host) reaches every container.
    ns.run(&["/bin/busybox", "ping", "-c", "1", "-W", "2", &db]);
    b.down();
    // With `allow`, it can.
    let b = Berth::up(&ns, &dir, &host("allow \"lan\""));
    let page = ok(&get_in(&b, "outsider", &b.address("db")));
    assert!(page.contains("hello from db"), "{page}");
    b.down();
    // `down` leaves nothing behind.
    let links = ns.links();
    assert!(
        links.iter().all(|l| l["ifname"] == "lo"),
        "left behind: {links:?}"
    );
    let tables = ns.run(&["nft", "list", "tables"]);
    assert!(!tables.contains("berth"), "{tables}");
}

#[test]
fn port_forwards_work_from_another_host_and_from_localhost() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    // "Another host": a namespace behind a veth pair, 192.168.77.2 → 192.168.77.1.
    let other = Netns::new();
    let other_ns = other.path();
    ns.run(&[
        "ip",
        "link",
        "add",
        "uplink",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        other_ns.to_str().unwrap(),
    ]);
    ns.run(&["ip", "addr", "add", "192.168.77.1/24", "dev", "uplink"]);
    ns.run(&["ip", "link", "set", "uplink", "up"]);
    other.run(&["ip", "addr", "add", "192.168.77.2/24", "dev", "eth0"]);
    other.run(&["ip", "link", "set", "eth0", "up"]);
    let dir = test_dir("ports");
    let host = format!(
        "network \"lan\" {{\n    subnet \"10.92.0.0/24\"\n    nat #true\n}}\n{}",
        server("web", "lan", "port 8080 80")
    );
    let b = Berth::up(&ns, &dir, &host);
    for (from, to) in [
        (&other, "192.168.77.1"),
        (&ns, "127.0.0.1"),
        (&ns, "192.168.77.1"),
    ] {
        let page = get_from(from, to, 8080);
        assert!(page.contains("hello from web"), "{to}: {page}");
    }
    // `berth net --json` lists the forward.
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["net", "--json", "--socket", b.socket.to_str().unwrap()])
        .output()
        .unwrap();
    let net: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(net["forwards"][0]["host_port"], 8080, "{net}");
    assert_eq!(net["networks"][0]["bridge"], "br-lan", "{net}");
    assert_eq!(net["networks"][0]["leases"][0]["container"], "web", "{net}");
    b.down();
}

fn count_links(ns: &Netns, f: impl Fn(&Value) -> bool) -> usize {
    ns.links().iter().filter(|l| f(l)).count()
}

fn is_kind(l: &Value, kind: &str) -> bool {
    l["linkinfo"]["info_kind"] == kind
}

#[test]
fn addresses_are_stable_and_a_killed_berth_leaves_no_duplicates() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("stable");
    let host = format!(
        "network \"lan\" {{\n    subnet \"10.93.0.0/24\"\n    nat #true\n}}\nnetwork \"spare\" {{\n    subnet \"10.94.0.0/24\"\n}}\n{}{}{}",
        sleeper("a", "lan"),
        sleeper("b", "lan"),
        sleeper("c", "spare")
    );
    let b = Berth::up(&ns, &dir, &host);
    let (a, bb) = (b.address("a"), b.address("b"));
    assert_ne!(a, bb);
    // The container is killed and restarted: same address, also inside.
    let mut b = b;
    b.kill_and_wait_restart("a");
    assert_eq!(b.address("a"), a);
    let inside = ok(&b.exec("a", &["ip", "-4", "-o", "addr", "show", "eth0"]));
    assert!(inside.contains(&format!("{a}/24")), "{inside}");
    // berth is killed -9 and started again: same addresses, one bridge per network, one
    // veth per attachment, one nft table.
    b.kill9();
    let b = Berth::up(&ns, &dir, &host);
    assert_eq!((b.address("a"), b.address("b")), (a.clone(), bb.clone()));
    assert_eq!(count_links(&ns, |l| is_kind(l, "bridge")), 2);
    assert_eq!(count_links(&ns, |l| is_kind(l, "veth")), 3);
    let tables = ns.run(&["nft", "list", "tables"]);
    assert_eq!(tables.matches("table inet berth").count(), 1, "{tables}");
    // Killed again, then started with network `spare` and container `c` removed: its
    // bridge and veth go.
    b.kill9();
    let smaller = format!(
        "network \"lan\" {{\n    subnet \"10.93.0.0/24\"\n    nat #true\n}}\n{}{}",
        sleeper("a", "lan"),
        sleeper("b", "lan")
    );
    let b = Berth::up(&ns, &dir, &smaller);
    assert_eq!(count_links(&ns, |l| is_kind(l, "bridge")), 1);
    assert_eq!(count_links(&ns, |l| is_kind(l, "veth")), 2);
    b.down();
    // All state but the lease file is lost: the addresses stay.
    for e in std::fs::read_dir(dir.join("state")).unwrap().flatten() {
        if e.file_name() != "net" {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
    assert!(dir.join("state/net/leases.json").exists());
    // A new container hashed first: addresses come from leases, not from order.
    let host2 = format!(
        "network \"lan\" {{\n    subnet \"10.93.0.0/24\"\n}}\n{}{}{}",
        sleeper("newcomer", "lan"),
        sleeper("b", "lan"),
        sleeper("a", "lan")
    );
    let b = Berth::up(&ns, &dir, &host2);
    assert_eq!((b.address("a"), b.address("b")), (a, bb));
    b.down();
}

#[test]
fn a_hundred_containers_get_unique_reachable_addresses() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("hundred");
    let mut host = String::from("network \"lan\" {\n    subnet \"10.95.0.0/24\"\n}\n");
    for i in 0..100 {
        host.push_str(&sleeper(&format!("c{i}"), "lan"));
    }
    let b = Berth::up(&ns, &dir, &host);
    let addrs: Vec<String> = b
        .status()
        .iter()
        .map(|c| {
            let a = c["addresses"][0]["address"].as_str().unwrap();
            a.split('/').next().unwrap().to_string()
        })
        .collect();
    let unique: std::collections::HashSet<&String> = addrs.iter().collect();
    assert_eq!((addrs.len(), unique.len()), (100, 100));
    // Every one answers a ping from the gateway (the test's host namespace).
    let script = addrs
        .iter()
        .map(|a| format!("/bin/busybox ping -c 1 -W 2 {a} >/dev/null || echo unreachable {a}"))
        .collect::<Vec<_>>()
        .join("\n");
    let out = ns.run(&["/bin/sh", "-c", &script]);
    assert!(out.is_empty(), "{out}");
    b.down();
}

fn check(dir: &Path, name: &str, host: &str) -> (bool, String) {
    let file = dir.join(name);
    std::fs::write(&file, host).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--color", "never", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_refused_at_check_time_and_leaves_nothing_at_run_time() {
    let dir = test_dir("bad");
    let (good, e) = check(
        &dir,
        "overlap.kdl",
        "network \"a\" {\n    subnet \"10.1.0.0/16\"\n}\nnetwork \"b\" {\n    subnet \"10.1.2.0/24\"\n}\n",
    );
    assert!(!good && e.contains("overlap"), "{e}");
    let (good, e) = check(
        &dir,
        "outside.kdl",
        &format!(
            "network \"a\" {{\n    subnet \"10.1.0.0/24\"\n}}\n{}",
            sleeper("x", "a").replace("network \"a\"", "network \"a\" address=\"10.2.0.5\"")
        ),
    );
    assert!(!good && e.contains("outside network `a`"), "{e}");
    let (good, e) = check(
        &dir,
        "ports.kdl",
        &format!(
            "network \"a\" {{\n    subnet \"10.1.0.0/24\"\n}}\n{}{}",
            server("x", "a", "port 8080 80"),
            server("y", "a", "port 8080 81")
        ),
    );
    assert!(!good && e.contains("forwarded twice"), "{e}");
    let mut full = String::from("network \"a\" {\n    subnet \"10.1.0.0/29\"\n}\n");
    for i in 0..6 {
        full.push_str(&sleeper(&format!("c{i}"), "a"));
    }
    let (good, e) = check(&dir, "full.kdl", &full);
    assert!(!good && e.contains("room for 5"), "{e}");

    if !requirements_met() {
        return;
    }
    // At run time: a bridge name taken by an interface that is not berth's stops
    // `berth up` before any container, and nothing of berth's is left.
    let ns = Netns::new();
    ns.run(&["ip", "link", "add", "br-taken", "type", "bridge"]);
    let host = format!(
        "network \"first\" {{\n    subnet \"10.96.0.0/24\"\n    nat #true\n}}\nnetwork \"taken\" {{\n    subnet \"10.97.0.0/24\"\n}}\n{}{}",
        sleeper("x", "first"),
        sleeper("y", "taken")
    );
    std::fs::write(dir.join("host.kdl"), &host).unwrap();
    let o = ns.output(&[
        env!("CARGO_BIN_EXE_berth"),
        "up",
        dir.join("host.kdl").to_str().unwrap(),
        "--state-dir",
        dir.join("state").to_str().unwrap(),
        "--socket",
        dir.join("control.sock").to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("br-taken"), "{e}");
    let names: Vec<String> = ns
        .links()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["lo", "br-taken"], "left behind");
    let tables = ns.run(&["nft", "list", "tables"]);
    assert!(!tables.contains("berth"), "{tables}");
    let netns = std::fs::read_dir(dir.join("state/run/netns"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(netns, 0);
}

#[test]
fn the_demo_serves_its_page_on_localhost_8080() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("demo");
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo.kdl"))
            .unwrap();
    let b = Berth::up(&ns, &dir, &demo);
    let page = get_from(&ns, "127.0.0.1", 8080);
    assert!(page.contains("hello from berth"), "{page}");
    // web reaches db by name.
    let db = ok(&b.exec(
        "web",
        &["/bin/sh", "-c", "/bin/busybox nc -w 3 db 5432 </dev/null"],
    ));
    assert!(db.contains("db ok"), "{db}");
    let table = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--socket", b.socket.to_str().unwrap()])
        .output()
        .unwrap();
    let table = ok(&table);
    assert!(
        table.contains("ADDRESSES") && table.contains("10.88.0."),
        "{table}"
    );
    b.down();
}

// ---- measurements (`bench/net.sh`; ignored in the test suite)

/// Median of a few samples.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const SETUP_N: usize = 100;

/// The peer of berth's network setup: the same plumbing per container (namespace,
/// veth pair on the bridge, address, link up, loopback, default route) with `ip`.
const IP_SCRIPT: &str = r#"
set -e
ip link add br0 type bridge && ip addr add 10.77.0.1/16 dev br0 && ip link set br0 up
start=$(date +%s%N)
i=0
while [ $i -lt $N ]; do
  ip netns add c$i
  ip link add v$i type veth peer name eth0 netns c$i
  ip link set v$i master br0 up
  ip -n c$i addr add 10.77.$((i / 250)).$((i % 250 + 2))/16 dev eth0
  ip -n c$i link set eth0 up
  ip -n c$i link set lo up
  ip -n c$i route add default via 10.77.0.1
  i=$((i + 1))
done
end=$(date +%s%N)
echo $((end - start))
i=0
while [ $i -lt $N ]; do ip netns del c$i; i=$((i + 1)); done
"#;

#[test]
#[ignore = "measurement: bench/net.sh"]
fn measure_network_setup_per_container() {
    if !requirements_met() {
        return;
    }
    use berth_init::net::plan::{ContainerPlan, NetPlan, NetworkPlan};
    let plan = NetPlan {
        networks: vec![NetworkPlan {
            name: "lan".into(),
            bridge: "br-lan".into(),
            subnet: "10.77.0.0".parse().unwrap(),
            prefix: 16,
            gateway: "10.77.0.1".parse().unwrap(),
            mtu: 1500,
            nat: false,
            allow: vec![],
            dns: vec![],
            v6: None,
        }],
        containers: (0..SETUP_N)
            .map(|i| ContainerPlan {
                name: format!("c{i}"),
                hostname: format!("c{i}"),
                attachments: vec![(0, None)],
                forwards: vec![],
            })
            .collect(),
    };
    let empty = NetPlan {
        networks: plan.networks.clone(),
        containers: vec![],
    };
    let dir = test_dir("measure-setup");
    let (mut berth, mut ip) = (Vec::new(), Vec::new());
    for round in 0..5 {
        // berth: in a thread of its own network namespace (threads it starts inherit
        // it). The bridge alone is timed too and subtracted, like the script's bridge
        // is outside its timer.
        let state = dir.join(format!("state{round}"));
        let per = std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: unshare of this test thread's own network namespace.
                assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
                let t = Instant::now();
                drop(berth_init::net::NetHost::up(empty.clone(), &state).unwrap());
                let bridge_only = t.elapsed();
                let t = Instant::now();
                let host = berth_init::net::NetHost::up(plan.clone(), &state).unwrap();
                let all = t.elapsed();
                drop(host);
                (all.saturating_sub(bridge_only)).as_secs_f64() / SETUP_N as f64
            })
            .join()
            .unwrap()
        });
        berth.push(per);
        let o = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                IP_SCRIPT,
            ])
            .env("N", SETUP_N.to_string())
            .output()
            .unwrap();
        let ns: f64 = ok(&o).trim().parse().unwrap();
        ip.push(ns / 1e9 / SETUP_N as f64);
    }
    let (b, i) = (median(berth), median(ip));
    println!(
        "network setup per container ({SETUP_N} containers, median of 5): berth {:.3} ms, ip script {:.3} ms, ratio {:.3}",
        b * 1e3,
        i * 1e3,
        b / i
    );
}

/// iperf3 throughput (bits/s) from a client command's JSON output.
fn iperf_bps(out: &str) -> f64 {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
#[ignore = "measurement: bench/net.sh"]
fn measure_bridge_throughput_against_a_bare_veth_pair() {
    if !requirements_met() || !common::require(Path::new("/usr/bin/iperf3").exists(), "iperf3") {
        return;
    }
    let secs = "5";
    // berth: two containers on one network; the client runs inside one with exec.
    let ns = Netns::new();
    let dir = test_dir("measure-iperf");
    let host = r#"network "lan" {
    subnet "10.78.0.0/24"
}
container "server" {
    rootfs "host"
    exec "/usr/bin/iperf3" "-s"
    network "lan"
    ready "tcp" 5201 interval="100ms"
    stop-timeout "1s"
}
container "client" {
    rootfs "host"
    exec "/bin/busybox" "sleep" "100000"
    network "lan"
    stop-timeout "1s"
}
"#;
    let b = Berth::up(&ns, &dir, host);
    let server = b.address("server");
    // The peer: two namespaces joined by one veth pair, no bridge.
    let (left, right) = (Netns::new(), Netns::new());
    left.run(&[
        "ip",
        "link",
        "add",
        "p0",
        "type",
        "veth",
        "peer",
        "name",
        "p1",
        "netns",
        right.path().to_str().unwrap(),
    ]);
    left.run(&["ip", "addr", "add", "10.79.0.1/24", "dev", "p0"]);
    left.run(&["ip", "link", "set", "p0", "up"]);
    right.run(&["ip", "addr", "add", "10.79.0.2/24", "dev", "p1"]);
    right.run(&["ip", "link", "set", "p1", "up"]);
    let mut peer_server = left
        .cmd(&["iperf3", "-s"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (mut via_bridge, mut via_veth) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let o = b.exec("client", &["iperf3", "-J", "-t", secs, "-c", &server]);
        via_bridge.push(iperf_bps(&ok(&o)));
        let o = right.output(&["iperf3", "-J", "-t", secs, "-c", "10.79.0.1"]);
        via_veth.push(iperf_bps(&ok(&o)));
    }
    let _ = peer_server.kill();
    let _ = peer_server.wait();
    b.down();
    let (br, ve) = (median(via_bridge), median(via_veth));
    println!(
        "TCP throughput (iperf3, {secs}s, median of 3): berth containers through the bridge {:.2} Gbit/s, bare veth pair {:.2} Gbit/s, ratio {:.3}",
        br / 1e9,
        ve / 1e9,
        br / ve
    );
}

/// The container's IPv6 address (from `berth status`) without prefix.
fn address6(b: &Berth, name: &str) -> String {
    let c = b.container(name);
    let a = c["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["address"].as_str())
        .find(|a| a.contains(':'))
        .unwrap_or_else(|| panic!("no IPv6 address: {c}"));
    a.split('/').next().unwrap().to_string()
}

#[test]
fn dual_stack_containers_talk_over_ipv6_with_stable_addresses_and_isolation() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("ipv6");
    let host = format!(
        "network \"lan\" {{\n    subnet \"10.95.0.0/24\"\n    subnet6 \"fd00:95::/64\"\n    nat #true\n}}\nnetwork \"other\" {{\n    subnet \"10.96.0.0/24\"\n    subnet6 \"fd00:96::/64\"\n}}\n{}{}{}",
        server("db", "lan", ""),
        sleeper("web", "lan"),
        sleeper("outsider", "other")
    );
    let mut b = Berth::up(&ns, &dir, &host);
    let db6 = address6(&b, "db");
    assert!(db6.starts_with("fd00:95::"), "{db6}");
    assert_ne!(db6, "fd00:95::1");
    assert_ne!(address6(&b, "web"), db6);
    // Over IPv6 by address: TCP and ping; and by name through /etc/hosts.
    let page = ok(&get_in(&b, "web", &db6));
    assert!(page.contains("hello from db"), "{page}");
    ok(&b.exec(
        "web",
        &["/bin/busybox", "ping", "-6", "-c", "1", "-W", "2", &db6],
    ));
    let hosts = ok(&b.exec("web", &["cat", "/etc/hosts"]));
    assert!(hosts.contains(&format!("{db6}\tdb")), "{hosts}");
    // The gateway (the host, through the bridge) reaches the container.
    ns.run(&["/bin/busybox", "ping", "-6", "-c", "1", "-W", "2", &db6]);
    // The address is inside the container, with an IPv6 default route via the gateway.
    let inside = ok(&b.exec("db", &["ip", "-6", "-o", "addr", "show", "eth0"]));
    assert!(inside.contains(&format!("{db6}/64")), "{inside}");
    let route = ok(&b.exec("db", &["ip", "-6", "route", "show", "default"]));
    assert!(route.contains("via fd00:95::1"), "{route}");
    // NAT covers IPv6 too.
    let rules = ns.run(&["nft", "list", "table", "inet", "berth"]);
    assert!(rules.contains("ip6 saddr fd00:95::/64"), "{rules}");
    // The other network cannot reach lan over IPv6 (not even from a routed address).
    let denied = get_in(&b, "outsider", &db6);
    let text = String::from_utf8_lossy(&denied.stdout);
    assert!(!text.contains("hello"), "IPv6 isolation failed: {text}");
    let ping = b.exec(
        "outsider",
        &["/bin/busybox", "ping", "-6", "-c", "1", "-W", "2", &db6],
    );
    assert!(!ping.status.success(), "IPv6 ping crossed networks");
    // Killed and restarted: the same IPv6 address, also inside.
    b.kill_and_wait_restart("db");
    assert_eq!(address6(&b, "db"), db6);
    let page = ok(&get_in(&b, "web", &db6));
    assert!(page.contains("hello from db"), "{page}");
    // berth itself restarted: the IPv6 lease holds.
    b.down();
    let b = Berth::up(&ns, &dir, &host);
    assert_eq!(address6(&b, "db"), db6);
    b.down();
    let links = ns.links();
    assert!(
        links.iter().all(|l| l["ifname"] == "lo"),
        "left behind: {links:?}"
    );
}

/// A switch while containers run: a network's subnet changes → only its members are
/// recreated (new addresses, still talking by name); a port forward is added in place;
/// a container moves to another network → only it is recreated; a network and its
/// members go → their bridge and veths go with them.
#[test]
fn a_switch_recreates_only_the_members_of_a_changed_network() {
    if !requirements_met() {
        return;
    }
    let ns = Netns::new();
    let dir = test_dir("switch");
    let net =
        |name: &str, subnet: &str| format!("network \"{name}\" {{\n    subnet \"{subnet}\"\n}}\n");
    let alone = "container \"alone\" {\n    rootfs \"host\"\n    exec \"/bin/busybox\" \"sleep\" \"100000\"\n    network \"none\"\n    stop-timeout \"1s\"\n}\n";
    let host_a = [
        net("lan", "10.94.0.0/24"),
        net("side", "10.95.0.0/24"),
        server("web", "lan", ""),
        sleeper("client", "lan"),
        server("other", "side", ""),
        sleeper("mover", "side"),
        alone.to_string(),
    ]
    .concat();
    let b = Berth::up(&ns, &dir, &host_a);
    let pid = |b: &Berth, n: &str| b.container(n)["pid"].as_i64().unwrap();
    let pids = |b: &Berth| ["web", "client", "other", "mover", "alone"].map(|n| pid(b, n));
    let before = pids(&b);
    assert!(b.address("web").starts_with("10.94.0."));
    let switch = |b: &Berth, text: &str| {
        let file = b.dir.join("next.kdl");
        std::fs::write(&file, text).unwrap();
        let r = b.call(json!({"verb": "switch", "file": file.to_str().unwrap()}));
        assert_eq!(r["result"], "ok", "{r}");
        r["message"].as_str().unwrap().to_string()
    };
    let mut b = b;

    // lan's subnet: web and client are recreated on the new subnet, the rest untouched.
    let host_b = host_a.replace("10.94.0.0/24", "10.96.0.0/24");
    let message = switch(&b, &host_b);
    assert!(message.contains("~ network lan: recreate"), "{message}");
    b.wait_for(
        |b| {
            b.status().iter().all(|c| c["state"] == "running")
                && b.address("web").starts_with("10.96.0.")
                && b.address("client").starts_with("10.96.0.")
        },
        "web and client on 10.96.0.0/24",
    );
    let after = pids(&b);
    assert_ne!(after[0], before[0], "web recreated");
    assert_ne!(after[1], before[1], "client recreated");
    assert_eq!(after[2..], before[2..], "other, mover and alone untouched");
    let addrs = ns.run(&["ip", "-j", "addr", "show", "br-lan"]);
    assert!(
        addrs.contains("10.96.0.1") && !addrs.contains("10.94.0.1"),
        "{addrs}"
    );
    let page = ok(&get_in(&b, "client", "web"));
    assert!(page.contains("hello from web"), "{page}");

    // A port forward is live: nobody restarts, and it forwards.
    let host_c = host_b.replace(
        "network \"side\"\n    ready",
        "network \"side\"\n    port 8081 80\n    ready",
    );
    assert_ne!(host_c, host_b);
    switch(&b, &host_c);
    assert_eq!(pids(&b), after);
    let page = get_from(&ns, "127.0.0.1", 8081);
    assert!(page.contains("hello from other"), "{page}");

    // mover goes from side to lan: only mover is recreated.
    let host_d = host_c.replace(&sleeper("mover", "side"), &sleeper("mover", "lan"));
    switch(&b, &host_d);
    b.wait_for(
        |b| {
            b.container("mover")["state"] == "running" && b.address("mover").starts_with("10.96.0.")
        },
        "mover on lan",
    );
    let now = pids(&b);
    assert_ne!(now[3], after[3]);
    assert_eq!(
        [now[0], now[1], now[2], now[4]],
        [after[0], after[1], after[2], after[4]]
    );
    ok(&b.exec(
        "mover",
        &["/bin/busybox", "ping", "-c", "1", "-W", "2", "web"],
    ));

    // side and its last member go: its bridge and other's veth are removed.
    let host_e = [
        net("lan", "10.96.0.0/24"),
        server("web", "lan", ""),
        sleeper("client", "lan"),
        sleeper("mover", "lan"),
        alone.to_string(),
    ]
    .concat();
    switch(&b, &host_e);
    b.wait_for(|b| b.status().len() == 4, "other gone");
    assert_eq!(
        count_links(&ns, |l| l["ifname"] == "br-side"),
        0,
        "{:?}",
        ns.links()
    );
    assert_eq!(
        count_links(&ns, |l| is_kind(l, "veth")),
        3,
        "one veth per container left on a network: {:?}",
        ns.links()
    );
    assert_eq!(pid(&b, "web"), now[0]);
    b.down();
    let _ = std::fs::remove_dir_all(&dir);
}

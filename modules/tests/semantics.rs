//! What evaluation means: merging by priority, modules, hashes, and `why`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use berth_config::MemSource;
use berth_config::diag::render_all;
use berth_modules::{Evaluation, Kind, Value, evaluate};

fn eval_files(files: &[(&str, &str)]) -> Evaluation {
    let mut src = MemSource::new();
    for (p, t) in files {
        src.insert(p, *t);
    }
    match evaluate(&src, Path::new(files[0].0)) {
        Ok(e) => e,
        Err(f) => panic!("{}", render_all(&f.diagnostics, &f.tree.sources, false)),
    }
}

fn eval(text: &str) -> Evaluation {
    eval_files(&[("host.kdl", text)])
}

fn hash(text: &str) -> String {
    eval(text).hash.to_hex().to_string()
}

const HOST: &str = r#"
// The reference host for hash tests.
host "edge-1" { timezone "UTC" }
network "lan" { subnet "10.88.0.0/24"; nat #true }
volume "pgdata"
container "db" {
    rootfs "host"
    exec "/usr/bin/postgres" "-D" "/data"
    env PGDATA="/data" LANG="C"
    network "lan" address="10.88.0.10"
    mount "pgdata" "/data"
    limits { memory "512M"; cpu 1.5; pids 256 }
    restart "always"
    ready "notify"
    checkpoint #true
}
container "web" {
    rootfs "host"
    exec "/bin/busybox" "httpd" "-f"
    after "db"
    network "lan"
    port 8080 80
    port 8443 443
}
"#;

#[test]
fn hash_ignores_formatting_comments_and_order() {
    let base = hash(HOST);
    // Reformatted: one line per block, semicolons, other spacing, comments.
    let reformatted = r#"host "edge-1"{timezone "UTC"}   // c
/* block comment */ network "lan" {
  nat #true
  subnet "10.88.0.0/24"
}
container "web" { rootfs "host"; exec "/bin/busybox" "httpd" "-f"; port 8443 443; port 8080 80; network "lan"; after "db" }
volume "pgdata"
container "db" { checkpoint #true; ready "notify"; restart "always"
  limits { pids 256; cpu 1.5; memory "512M" }
  mount "pgdata" "/data"
  network "lan" address="10.88.0.10"
  env LANG="C" PGDATA="/data"
  exec "/usr/bin/postgres" "-D" "/data"
  rootfs "host"
}
"#;
    assert_eq!(base, hash(reformatted));
    // Equivalent spellings of the same values.
    let spelled = HOST
        .replace("\"512M\"", "\"0.5G\"")
        .replace("cpu 1.5", "cpu \"1.5\"")
        .replace("pids 256", "pids 0x100");
    assert_eq!(base, hash(&spelled));
    // Split over imports, with the `env` map spread over two files.
    let split = eval_files(&[
        (
            "main.kdl",
            "import \"net.kdl\"\nimport \"apps/db.kdl\"\nhost \"edge-1\" { timezone \"UTC\" }\ncontainer \"web\" { rootfs \"host\"; exec \"/bin/busybox\" \"httpd\" \"-f\"; after \"db\"; network \"lan\"; port 8080 80; port 8443 443 }\n",
        ),
        (
            "net.kdl",
            "network \"lan\" { subnet \"10.88.0.0/24\"; nat #true }\nvolume \"pgdata\"\n",
        ),
        (
            "apps/db.kdl",
            "container \"db\" { rootfs \"host\"; exec \"/usr/bin/postgres\" \"-D\" \"/data\"; env PGDATA=\"/data\"; network \"lan\" address=\"10.88.0.10\"; mount \"pgdata\" \"/data\"; restart \"always\"; ready \"notify\"; checkpoint #true }\nimport \"db-limits.kdl\"\n",
        ),
        (
            "apps/db-limits.kdl",
            "container \"db\" { env LANG=\"C\"; limits { memory \"512M\"; cpu 1.5; pids 256 } }\n",
        ),
    ]);
    assert_eq!(base, split.hash.to_hex().to_string());
}

#[test]
fn hash_changes_with_every_value() {
    let base = hash(HOST);
    let edits = [
        ("\"edge-1\"", "\"edge-2\""),
        ("\"UTC\"", "\"Europe/Berlin\""),
        ("10.88.0.0/24", "10.88.0.0/23"),
        ("nat #true", "nat #false"),
        ("\"pgdata\"\n", "\"pgdata\" { mode \"0700\" }\n"),
        ("\"-D\"", "\"-d\""),
        ("PGDATA=\"/data\"", "PGDATA=\"/data2\""),
        ("10.88.0.10", "10.88.0.11"),
        ("\"512M\"", "\"513M\""),
        ("cpu 1.5", "cpu 1.25"),
        ("pids 256", "pids 257"),
        ("\"always\"", "\"never\""),
        ("\"notify\"", "\"tcp\" 5432"),
        ("checkpoint #true", "checkpoint #false"),
        ("after \"db\"", "requires \"db\""),
        ("port 8080 80", "port 8081 80"),
        ("port 8443 443", "port 8443 443 \"udp\""),
        (
            "exec \"/bin/busybox\" \"httpd\" \"-f\"",
            "exec \"/bin/busybox\" \"httpd\"",
        ),
    ];
    for (from, to) in edits {
        assert!(HOST.contains(from), "edit {from:?} does not apply");
        let edited = HOST.replacen(from, to, 1);
        assert_ne!(
            base,
            hash(&edited),
            "changing {from} to {to} did not change the hash"
        );
    }
}

#[test]
fn node_hashes_change_only_for_the_edited_node() {
    let a = eval(HOST);
    let b = eval(&HOST.replace("\"512M\"", "\"1G\""));
    for n in &a.nodes {
        let m = b.node(n.id.kind, &n.id.name).unwrap();
        assert_eq!(n.hash == m.hash, n.id.name != "db", "{}", n.id);
    }
}

#[test]
fn priorities_decide() {
    let ev = eval_files(&[
        (
            "host.kdl",
            "import \"base.kdl\"\ncontainer \"a\" { limits { memory \"1G\" }; restart \"always\" }\n",
        ),
        (
            "base.kdl",
            "container \"a\" { rootfs \"host\"; exec \"x\"; limits { memory (default)\"256M\"; pids (default)100 }; (force)restart \"never\" }\n",
        ),
    ]);
    let a = ev.node(Kind::Container, "a").unwrap();
    assert_eq!(
        a.get("limits.memory"),
        Some(&Value::Size(1 << 30)),
        "host beats default"
    );
    assert_eq!(
        a.get("limits.pids"),
        Some(&Value::Int(100)),
        "default applies alone"
    );
    assert_eq!(
        a.get("restart"),
        Some(&Value::Str("never".into())),
        "force beats host"
    );
}

#[test]
fn lists_concatenate_maps_merge_force_replaces() {
    let ev = eval_files(&[
        (
            "host.kdl",
            "import \"base.kdl\"\ncontainer \"a\" { env B=\"2\" C=\"3\"; after \"x\"; mount \"/srv\" \"/srv\" }\ncontainer \"x\" { rootfs \"host\"; exec \"x\" }\ncontainer \"y\" { rootfs \"host\"; exec \"x\" }\ncontainer \"b\" { rootfs \"host\"; exec \"x\"; after \"x\"; (force)after \"y\" }\n",
        ),
        (
            "base.kdl",
            "container \"a\" { rootfs \"host\"; exec \"x\"; env A=\"1\" C=(default)\"0\"; after \"y\"; mount \"/opt\" \"/opt\" ro=#true }\n",
        ),
    ]);
    let a = ev.node(Kind::Container, "a").unwrap();
    let env = a.get("env").unwrap();
    assert_eq!(env.to_string(), "A=\"1\" B=\"2\" C=\"3\"");
    assert_eq!(a.get("after").unwrap().as_list().len(), 2);
    assert_eq!(a.get("mount").unwrap().as_list().len(), 2);
    let b = ev.node(Kind::Container, "b").unwrap();
    assert_eq!(b.get("after").unwrap().as_list(), &[Value::Str("y".into())]);
}

#[test]
fn same_value_twice_at_same_priority_is_fine() {
    let ev = eval(
        "container \"a\" { rootfs \"host\"; exec \"x\"; restart \"always\" }\ncontainer \"a\" { restart \"always\" }\n",
    );
    assert_eq!(
        ev.node(Kind::Container, "a").unwrap().get("restart"),
        Some(&Value::Str("always".into()))
    );
}

#[test]
fn module_instances() {
    let ev = eval(
        r#"
module "svc" {
    param "name"
    param "port"
    param "tier" default="prod"
    container "{name}" {
        rootfs "host"
        exec "/bin/httpd" "-p" "{port}" "-c" "{{literal}"
        env TIER="{tier}" NAME="svc-{name}"
        port "{port}" 80
        limits { memory "256M" }
    }
}
svc "a" port=8081
svc name="b" port=8082 tier="dev"
svc "c" 8083
container "c" { limits { memory "1G" } }
"#,
    );
    let a = ev.node(Kind::Container, "a").unwrap();
    assert_eq!(
        a.get("exec").unwrap().to_string(),
        "\"/bin/httpd\" \"-p\" \"8081\" \"-c\" \"{literal}\""
    );
    assert_eq!(
        a.get("env").unwrap().to_string(),
        "NAME=\"svc-a\" TIER=\"prod\""
    );
    assert_eq!(
        a.get("port").unwrap().as_list()[0].field("host"),
        Some(&Value::Int(8081))
    );
    let b = ev.node(Kind::Container, "b").unwrap();
    assert_eq!(
        b.get("env").unwrap().field("TIER"),
        Some(&Value::Str("dev".into()))
    );
    let c = ev.node(Kind::Container, "c").unwrap();
    assert_eq!(
        c.get("limits.memory"),
        Some(&Value::Size(1 << 30)),
        "a host value overrides the module's"
    );
    assert_eq!(ev.tree.instances.len(), 3);
}

#[test]
fn nested_modules() {
    let ev = eval(
        r#"
module "app" {
    param "name"
    container "{name}" { rootfs "host"; exec "/bin/app" }
    sidecar "{name}-log" of="{name}"
}
module "sidecar" {
    param "name"
    param "of"
    container "{name}" { rootfs "host"; exec "/bin/log" "{of}"; after "{of}" }
}
app "shop"
"#,
    );
    let log = ev.node(Kind::Container, "shop-log").unwrap();
    assert_eq!(
        log.get("after").unwrap().as_list(),
        &[Value::Str("shop".into())]
    );
    assert_eq!(ev.graph.layers.len(), 2);
}

#[test]
fn graph_layers_and_implicit_edges() {
    let ev = eval(HOST);
    let ids: Vec<Vec<String>> = ev
        .graph
        .layers
        .iter()
        .map(|l| l.iter().map(|&i| ev.nodes[i].id.to_string()).collect())
        .collect();
    assert_eq!(
        ids,
        vec![
            vec!["network.lan", "volume.pgdata"],
            vec!["container.db"],
            vec!["container.web"]
        ]
    );
}

#[test]
fn derived_defaults() {
    let ev = eval(HOST);
    let lan = ev.node(Kind::Network, "lan").unwrap();
    assert_eq!(lan.get("bridge"), Some(&Value::Str("br-lan".into())));
    assert_eq!(lan.get("gateway").unwrap().to_string(), "\"10.88.0.1\"");
    assert_eq!(
        ev.node(Kind::Container, "web").unwrap().get("hostname"),
        Some(&Value::Str("web".into()))
    );
}

#[test]
fn why_shows_every_definition_across_imports_and_modules() {
    let files = [
        (
            "host.kdl",
            "import \"base.kdl\"\nimport \"mods.kdl\"\nsvc \"web\"\ncontainer \"web\" {\n    limits { memory \"1G\" }\n}\n",
        ),
        (
            "base.kdl",
            "container \"web\" {\n    limits { memory (default)\"128M\" }\n}\n",
        ),
        (
            "mods.kdl",
            "module \"svc\" {\n    param \"name\"\n    container \"{name}\" {\n        rootfs \"host\"\n        exec \"x\"\n        limits { memory \"256M\" }\n    }\n}\n",
        ),
    ];
    let ev = eval_files(&files);
    let out = berth_modules::why::why(&ev, "container.web.limits.memory").unwrap();
    insta::assert_snapshot!(out);
    assert!(
        out.contains("base.kdl:2:14") && out.contains("default"),
        "{out}"
    );
    assert!(
        out.contains("mods.kdl:6:18 (via module `svc` at host.kdl:3:1)"),
        "{out}"
    );
    assert!(
        out.contains("host.kdl:5:14") && out.contains("wins"),
        "{out}"
    );
    let all = berth_modules::why::why(&ev, "container.web").unwrap();
    assert!(
        all.contains("container.web.limits.memory = \"1G\""),
        "{all}"
    );
    assert!(
        berth_modules::why::why(&ev, "container.wbe.limits")
            .unwrap_err()
            .contains("did you mean `web`")
    );
    assert!(
        berth_modules::why::why(&ev, "container.web.limits.memroy")
            .unwrap_err()
            .contains("did you mean")
    );
}

#[test]
fn annotation_on_a_block_applies_to_its_options() {
    let ev = eval(
        "container \"a\" { rootfs \"host\"; exec \"x\"; limits { memory \"1G\"; pids 10 } }\ncontainer \"a\" { (force)limits { memory \"2G\" } }\ncontainer \"a\" { (default)limits { pids 20 } }\n",
    );
    let a = ev.node(Kind::Container, "a").unwrap();
    assert_eq!(a.get("limits.memory"), Some(&Value::Size(2 << 30)));
    assert_eq!(a.get("limits.pids"), Some(&Value::Int(10)));
    let bad = evaluate(
        &MemSource::new().with(
            "h.kdl",
            "container \"a\" { rootfs \"host\"; exec \"x\"; (bogus)limits { memory \"1G\" } }\n",
        ),
        Path::new("h.kdl"),
    );
    let f = bad.unwrap_err();
    assert!(
        f.diagnostics[0]
            .message
            .contains("unknown annotation `(bogus)`"),
        "{:?}",
        f.diagnostics
    );
}

#[test]
fn volume_owner_forms() {
    for owner in ["999:999", "postgres", "postgres:postgres", "0"] {
        let ev = eval(&format!("volume \"v\" {{ owner \"{owner}\" }}\n"));
        assert_eq!(
            ev.node(Kind::Volume, "v").unwrap().get("owner"),
            Some(&Value::Str(owner.into()))
        );
    }
    assert!(
        evaluate(
            &MemSource::new().with("h.kdl", "volume \"v\" { owner \"a:b:c\" }\n"),
            Path::new("h.kdl")
        )
        .is_err()
    );
}

/// The canonical JSON of the reference host, byte for byte, as `berth eval --json`
/// wrote it before the JSON writer streamed from values (serde_json's compact form):
/// the form and the hashes in it must not change for the same input. (Updated when the
/// schema gained `container.init`: a new option's default is
/// part of every node's value, so every hash changed with it.)
const HOST_JSON: &str = r#"{"containers":{"db":{"hash":"abb11675c0fafef25330abcbd3282621bc6bed3095ff1bdc7b0754691a579ab9","options":{"backoff":{"factor":2.0,"initial":"100ms","max":"30s","reset-after":"10s"},"checkpoint":true,"env":{"LANG":"C","PGDATA":"/data"},"exec":["/usr/bin/postgres","-D","/data"],"hostname":"db","init":false,"limits":{"cpu":1.5,"cpu-weight":100,"io-weight":100,"memory":536870912,"memory-high":"max","memory-swap":"max","pids":256},"log":{"keep":3,"max-size":10485760},"mount":[{"ro":false,"source":"pgdata","target":"/data"}],"network":[{"address":"10.88.0.10","name":"lan"}],"read-only":false,"ready":{"interval":"2s","kind":"notify","retries":3,"timeout":"1s"},"reload-signal":"SIGHUP","restart":"always","rootfs":"host","start-limit":{"burst":5,"interval":"10s"},"start-timeout":"1m","stop-signal":"SIGTERM","stop-timeout":"10s","user":0,"workdir":"/"}},"web":{"hash":"a44dfeb9287c7c42673b41cceb4216f843f2fa4d4322a313c2dd5fe85ebef041","options":{"after":["db"],"backoff":{"factor":2.0,"initial":"100ms","max":"30s","reset-after":"10s"},"checkpoint":false,"exec":["/bin/busybox","httpd","-f"],"hostname":"web","init":false,"limits":{"cpu":"max","cpu-weight":100,"io-weight":100,"memory":"max","memory-high":"max","memory-swap":"max","pids":"max"},"log":{"keep":3,"max-size":10485760},"network":[{"name":"lan"}],"port":[{"container":443,"host":8443,"protocol":"tcp"},{"container":80,"host":8080,"protocol":"tcp"}],"read-only":false,"reload-signal":"SIGHUP","restart":"on-failure","rootfs":"host","start-limit":{"burst":5,"interval":"10s"},"start-timeout":"1m","stop-signal":"SIGTERM","stop-timeout":"10s","user":0,"workdir":"/"}}},"graph":{"edges":[{"from":"container.db","kind":"network","to":"network.lan"},{"from":"container.db","kind":"volume","to":"volume.pgdata"},{"from":"container.web","kind":"network","to":"network.lan"},{"from":"container.web","kind":"after","to":"container.db"}],"layers":[["network.lan","volume.pgdata"],["container.db"],["container.web"]]},"hash":"2dac712939540c0b5ce8be455f4ab6545c075ed029d005d80e5ff5c79fbac67e","host":{"hash":"9647aa181d2485f01c0cf397e41c8181c7ccfd0995d6b663289c42829d66d0d7","options":{"name":"edge-1","on-panic":"reboot","state-dir":"/var/lib/berth","timezone":"UTC","watch":false}},"networks":{"lan":{"hash":"f4391e5a8d5fc7f917a71540b2f39cf25b59dc01fb58d6c86186a7ca6ba60cd5","options":{"bridge":"br-lan","gateway":"10.88.0.1","mtu":1500,"nat":true,"subnet":"10.88.0.0/24"}}},"volumes":{"pgdata":{"hash":"1804510bcce40333f29f6bf17b3dcca95bd4bb8f40d3b65a935b1f5445fc2b7c","options":{"mode":"0755","owner":"0:0"}}}}"#;

#[test]
fn canonical_json_and_hashes_are_stable() {
    let ev = eval(HOST);
    let mut out = Vec::new();
    berth_modules::canon::write_evaluation_json(&ev, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), HOST_JSON);
    assert_eq!(
        ev.hash.to_hex().as_str(),
        "2dac712939540c0b5ce8be455f4ab6545c075ed029d005d80e5ff5c79fbac67e"
    );
}

#[test]
fn streamed_json_is_the_serde_form_of_every_node() {
    let texts = [
        HOST,
        r#"
host { kernel-modules "br_netfilter" "overlay"; sysctl a.b="1" c.d="2" }
network "a" { subnet "10.1.0.0/24"; allow "b" }
network "b" { subnet "10.2.0.0/24"; subnet6 "fd00:2::/64" }
volume "v" { owner "1000:1000"; mode "0700" }
container "x" {
    rootfs "host"
    exec "/bin/sh" "-c" "echo \"quoted\" \\ tab\t é"
    env Z="z" A="a\nb"
    network "b" address="10.2.0.9"
    network "a"
    mount "v" "/v" ro=#true
    mount "/srv" "/srv"
    port 9000 90 "udp"
    port 8000 80
    after "y"
    requires "y"
    stop-signal "SIGRTMIN+3"
    stop-timeout "1m30s"
    limits { cpu 0.5; memory "1.5G"; memory-high "max"; pids "max" }
    ready "exec" "/bin/true" "x" interval="250ms"
}
container "y" { rootfs "host"; exec "/bin/true"; ready "tcp" 80 }
"#,
    ];
    for text in texts {
        let ev = eval(text);
        let json = berth_modules::canon::evaluation_json(&ev);
        for n in &ev.nodes {
            let got = match n.id.kind {
                Kind::Host => &json["host"],
                Kind::Container => &json["containers"][&n.id.name],
                Kind::Network => &json["networks"][&n.id.name],
                Kind::Volume => &json["volumes"][&n.id.name],
            };
            assert_node_json(got, n);
        }
    }
}

/// A node's part of the streamed JSON is the serde_json form of its values and hash.
fn assert_node_json(got: &serde_json::Value, n: &berth_modules::Node) {
    assert_eq!(
        got["options"],
        berth_modules::canon::node_values(n),
        "{}",
        n.id
    );
    assert_eq!(got["hash"], n.hash.to_hex().as_str(), "{}", n.id);
}

/// A host large enough that evaluation, hashing and JSON output split work over two
/// threads and the JSON comes in several rounds: the result must be that of one pass.
#[test]
fn large_host_split_over_threads_evaluates_like_one_pass() {
    let mut text = String::from("network \"lan\" { subnet \"10.0.0.0/16\" }\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "container \"c{i}\" {{ rootfs \"host\"; exec \"/bin/true\" \"{i}\"; network \"lan\"; env N=\"{i}\"; limits {{ memory \"{}M\" }}{} }}\n",
            1 + i % 7,
            if i % 10 == 0 { String::new() } else { format!("; after \"c{}\"", i - 1) }
        ));
    }
    let ev = eval(&text);
    assert_eq!(ev.of_kind(Kind::Container).count(), 5000);
    let json = berth_modules::canon::evaluation_json(&ev);
    let containers = json["containers"].as_object().unwrap();
    assert_eq!(containers.len(), 5000);
    let mut h = blake3::Hasher::new();
    h.update(b"berth-host-v1\0");
    for n in &ev.nodes {
        assert_eq!(n.hash, berth_modules::canon::node_hash(n), "{}", n.id);
        h.update(n.id.kind.name().as_bytes());
        h.update(&[0]);
        h.update(n.id.name.as_bytes());
        h.update(&[0]);
        h.update(n.hash.as_bytes());
        if n.id.kind == Kind::Container {
            assert_node_json(&containers[&n.id.name], n);
        }
    }
    assert_eq!(ev.hash, h.finalize());
    assert_eq!(ev.graph.layers.len(), 11);
}

/// 2,600 containers on one network, each with its own address, and with `chain` each
/// `after` the one before it: large enough for the evaluation's two-thread paths.
fn large_host(chain: bool) -> String {
    let mut text = String::from("network \"n\" { subnet \"10.0.0.0/16\"; }\n");
    for i in 0..2600 {
        text.push_str(&format!(
            "container \"c{i}\" {{ rootfs \"host\"; exec \"/bin/true\"; network \"n\" address=\"10.0.{}.{}\"",
            1 + i / 200,
            1 + i % 200
        ));
        if chain && i > 0 {
            text.push_str(&format!("; after \"c{}\"", i - 1));
        }
        text.push_str(" }\n");
    }
    text
}

/// A host large enough for every two-thread path (expansion, merging, network checks
/// beside the graph, node hashes, the JSON in chunks, the graph's JSON on a thread of
/// its own): the JSON's graph section lists exactly the evaluation's edges and layers,
/// and every node's JSON is its serde form.
#[test]
fn large_host_json_matches_the_evaluation() {
    let text = large_host(true);
    let ev = eval(&text);
    assert!(ev.graph.edges.len() >= 4096);
    let json = berth_modules::canon::evaluation_json(&ev);
    let id = |i: usize| {
        let n = &ev.nodes[i];
        if n.id.name.is_empty() {
            n.id.kind.to_string()
        } else {
            format!("{}.{}", n.id.kind, n.id.name)
        }
    };
    let edges: Vec<(String, String, String)> = ev
        .graph
        .edges
        .iter()
        .map(|e| (id(e.from), e.kind.name().to_string(), id(e.to)))
        .collect();
    let json_edges: Vec<(String, String, String)> = json["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("from"), s("kind"), s("to"))
        })
        .collect();
    assert_eq!(json_edges, edges);
    let layers: Vec<Vec<String>> = ev
        .graph
        .layers
        .iter()
        .map(|l| l.iter().map(|&i| id(i)).collect())
        .collect();
    let json_layers: Vec<Vec<String>> = json["graph"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(json_layers, layers);
    assert_eq!(json["hash"].as_str(), Some(ev.hash.to_hex().as_str()));
    for n in ev.nodes.iter().filter(|n| n.id.kind == Kind::Container) {
        assert_node_json(&json["containers"][&n.id.name], n);
    }
}

/// On a large host the network checks run beside the graph: errors of both are
/// reported in one pass.
#[test]
fn large_host_reports_network_and_graph_errors_together() {
    let mut text = large_host(false);
    // A duplicate address (network checks) and a dangling reference (graph).
    text = text.replace(
        "container \"c7\" { rootfs \"host\"; exec \"/bin/true\"; network \"n\" address=\"10.0.1.8\" }",
        "container \"c7\" { rootfs \"host\"; exec \"/bin/true\"; network \"n\" address=\"10.0.1.7\"; after \"nope\" }",
    );
    let src = MemSource::new().with("host.kdl", text.as_str());
    let Err(f) = evaluate(&src, Path::new("host.kdl")) else {
        panic!("the host is invalid");
    };
    let messages: Vec<&str> = f.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("address 10.0.1.7 in network `n` is given to")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("refers to unknown container `nope`")),
        "{messages:?}"
    );
}

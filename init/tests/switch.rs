//! Switching a running berth between generations: rollback, `--confirm-within`, and a
//! switch interrupted by berth's death at every step. Needs root (real containers);
//! under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::berth::Berth;
use serde_json::{Value, json};

/// A host of containers `name -> GEN value`, each a `sleep` whose environment says
/// which definition it was started from; `limits` adds a memory limit to one.
fn host(containers: &BTreeMap<&str, String>, memory: &str) -> String {
    let mut s = String::from("host s\n");
    for (name, generation) in containers {
        s += &format!(
            r#"container {name} {{
    rootfs host
    network none
    exec "/bin/busybox" sleep "1000"
    stop-signal KILL
    env GEN="{generation}"
"#
        );
        if name.ends_with("-limited") {
            s += &format!("    limits {{\n        memory \"{memory}\"\n    }}\n");
        }
        s += "}\n";
    }
    s
}

fn running(b: &Berth) -> usize {
    b.status()
        .iter()
        .filter(|c| c["state"] == "running")
        .count()
}

/// `GEN` of every container's process, read from the host (`/proc/PID/environ`); ""
/// for a container still setting itself up (`starting` without a pid: its program has
/// not started).
fn gens_running(b: &Berth) -> BTreeMap<String, String> {
    b.status()
        .iter()
        .map(|c| {
            let Some(pid) = c["pid"].as_i64() else {
                assert_eq!(c["state"], "starting", "{c} has no pid");
                return (c["name"].as_str().unwrap().to_string(), String::new());
            };
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            let gen_var = env
                .split(|&b| b == 0)
                .find_map(|v| v.strip_prefix(b"GEN="))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            (c["name"].as_str().unwrap().to_string(), gen_var)
        })
        .collect()
}

fn wait_until(what: &str, b: &Berth, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; logs:\n{}",
            b.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn three(values: [&str; 3]) -> BTreeMap<&'static str, String> {
    ["db", "web", "cache"]
        .into_iter()
        .zip(values.map(String::from))
        .collect()
}

#[test]
fn rollback_after_three_switches_restores_the_exact_graph_hash() {
    if !common::root() {
        return;
    }
    let a = three(["a", "a", "a"]);
    let b = Berth::up("rollback", &host(&a, "64M"));
    b.wait_for(|| running(&b) == 3, "3 running");
    let hash_a = b.current()["hash"].as_str().unwrap().to_string();

    // Three switches: web, then db, then a new container.
    let r = b.switch(&host(&three(["a", "b", "a"]), "64M"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    let r = b.switch(&host(&three(["c", "b", "a"]), "64M"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    let hash_c = b.current()["hash"].as_str().unwrap().to_string();
    let mut d = three(["c", "b", "a"]);
    d.insert("extra", "d".into());
    let r = b.switch(&host(&d, "64M"), json!({}));
    assert_eq!(r["result"], "ok", "{r}");
    b.wait_for(|| running(&b) == 4, "4 running");
    let before = b.pids();

    // A dry run plans and changes nothing.
    let r = b.call(json!({"verb": "rollback", "dry_run": true}));
    assert_eq!(r["result"], "ok", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("- container extra: remove"),
        "{r}"
    );
    assert_eq!(b.current()["number"], 4);

    // `rollback`: back to the generation before (3): only `extra` goes, the others keep
    // their processes.
    let r = b.call(json!({"verb": "rollback"}));
    assert_eq!(r["result"], "ok", "{r}");
    let cur = b.current();
    assert_eq!(
        (cur["number"].as_u64(), cur["reason"].as_str()),
        (Some(5), Some("rollback"))
    );
    assert_eq!(cur["hash"], hash_c.as_str());
    assert_eq!(cur["booted"], true);
    b.wait_for(|| b.status().len() == 3, "extra gone");
    let now = b.pids();
    for name in ["db", "web", "cache"] {
        assert_eq!(now[name], before[name], "{name} was touched");
    }

    // `rollback 1`: the exact graph of generation 1, from its stored sources.
    let r = b.call(json!({"verb": "rollback", "generation": 1}));
    assert_eq!(r["result"], "ok", "{r}");
    assert_eq!(b.current()["hash"], hash_a.as_str());
    b.wait_for(
        || running(&b) == 3 && gens_running(&b).values().all(|g| g == "a"),
        "generation 1's containers",
    );
    let r = b.call(json!({"verb": "rollback", "generation": 42}));
    assert_eq!(r["result"], "error", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("no generation 42"),
        "{r}"
    );
    assert!(b.down().success());
}

#[test]
fn confirm_within_reverts_without_confirm_keeps_with_it_and_survives_a_crash() {
    if !common::root() {
        return;
    }
    let a = three(["a", "a", "a"]);
    let mut b = Berth::up("confirm", &host(&a, "64M"));
    b.wait_for(|| running(&b) == 3, "3 running");
    let hash_a = b.current()["hash"].as_str().unwrap().to_string();

    // Not confirmed within 5 s: berth switches back by itself.
    let r = b.switch(
        &host(&three(["a", "b", "a"]), "64M"),
        json!({"confirm_within_ms": 5000}),
    );
    assert_eq!(r["result"], "ok", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("berth confirm"),
        "{r}"
    );
    let cur = b.current();
    assert_eq!(
        (cur["number"].as_u64(), cur["booted"].as_bool()),
        (Some(2), Some(false))
    );
    assert!(cur["confirm_deadline"].as_u64().unwrap() > 0, "{cur}");
    let listing = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["generations", "--state-dir"])
        .arg(b.dir.join("state"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("(current) (unconfirmed: back to 1 at "),
        "{listing}"
    );
    b.wait_for(|| gens_running(&b)["web"] == "b", "web from generation 2");
    // A second switch waits for the first to be confirmed.
    let r = b.switch(&host(&three(["z", "b", "a"]), "64M"), json!({}));
    assert_eq!(r["result"], "error", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("waits for `berth confirm`"),
        "{r}"
    );
    wait_until(
        "the automatic switch back",
        &b,
        Duration::from_secs(20),
        || b.current()["hash"] == hash_a.as_str(),
    );
    let cur = b.current();
    assert_eq!(
        (cur["number"].as_u64(), cur["reason"].as_str()),
        (Some(3), Some("rollback"))
    );
    b.wait_for(
        || gens_running(&b)["web"] == "a",
        "web back at generation 1's",
    );
    assert!(
        b.own_log()
            .contains("generation 2 was not confirmed in time"),
        "{}",
        b.own_log()
    );
    let r = b.call(json!({"verb": "confirm"}));
    assert_eq!(r["result"], "error", "nothing waits any more: {r}");

    // Confirmed in time: kept, and the boot default.
    let r = b.switch(
        &host(&three(["a", "c", "a"]), "64M"),
        json!({"confirm_within_ms": 5000}),
    );
    assert_eq!(r["result"], "ok", "{r}");
    let r = b.call(json!({"verb": "confirm"}));
    assert_eq!(r["result"], "ok", "{r}");
    std::thread::sleep(Duration::from_secs(6));
    let cur = b.current();
    assert_eq!(
        (cur["number"].as_u64(), cur["booted"].as_bool()),
        (Some(4), Some(true))
    );
    assert_eq!(gens_running(&b)["web"], "c");

    // Not confirmed and berth dies before the time is up: the next berth starts the
    // generation before.
    let r = b.switch(
        &host(&three(["a", "d", "a"]), "64M"),
        json!({"confirm_within_ms": 600_000}),
    );
    assert_eq!(r["result"], "ok", "{r}");
    assert_eq!(b.current()["number"], 5);
    // SAFETY: killing the berth this test started, by its pid.
    unsafe { libc::kill(b.child.id() as i32, libc::SIGKILL) };
    b.child.wait().unwrap();
    let b = Berth::start(&b.dir.clone(), None, &[]);
    b.wait_for(|| running(&b) == 3, "3 running again");
    assert_eq!(gens_running(&b)["web"], "c");
    assert_eq!(b.current()["number"], 4);
    assert!(
        b.own_log()
            .contains("generation 5 was not confirmed before berth stopped; generation 4 starts"),
        "{}",
        b.own_log()
    );
    assert!(!b.dir.join("state/generations/confirm.json").exists());
    assert!(b.down().success());
}

/// Eleven containers; the switch from `a` to `b` has exactly ten steps: six restarts
/// (env), two live changes (memory), one remove and one create; two containers stay.
fn ten(generation: &str) -> (String, usize) {
    let mut m: BTreeMap<&str, String> = BTreeMap::new();
    for name in ["c0", "c1", "c2", "c3", "c4", "c5", "keep"] {
        m.insert(name, "a".into());
    }
    m.insert("c6-limited", "a".into());
    m.insert("c7-limited", "a".into());
    if generation == "a" {
        m.insert("old", "a".into());
        m.insert("keep2", "a".into());
        (host(&m, "64M"), m.len())
    } else {
        for name in ["c0", "c1", "c2", "c3", "c4", "c5"] {
            m.insert(name, "b".into());
        }
        m.insert("new", "b".into());
        m.insert("keep2", "a".into());
        // Two live steps: the memory limit of both limited containers.
        let text = host(&m, "128M");
        (text, m.len())
    }
}

#[test]
fn a_switch_interrupted_at_every_step_resumes_to_one_generation() {
    if !common::root() {
        return;
    }
    let (text_a, n_a) = ten("a");
    let (text_b, n_b) = ten("b");
    let dir = common::berth::fresh_dir("crash");
    let expected_b = |b: &Berth| {
        let g = gens_running(b);
        g.len() == n_b
            && g.contains_key("new")
            && !g.contains_key("old")
            && ["c0", "c1", "c2", "c3", "c4", "c5"]
                .iter()
                .all(|c| g[*c] == "b")
    };
    let expected_a = |b: &Berth| {
        let g = gens_running(b);
        g.len() == n_a && g.contains_key("old") && g.values().all(|v| v == "a")
    };
    // k = 0 dies right after the journal is written, k = 10 after the last step; the
    // `--test` switch does not move the boot default, so it is rolled back instead.
    let cases: Vec<(usize, bool)> = (0..=10).map(|k| (k, false)).chain([(4, true)]).collect();
    for (k, test) in cases {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("host.kdl"), &text_a).unwrap();
        let crash = k.to_string();
        let mut b = Berth::start(&dir, None, &[("BERTH_TEST_CRASH_AT_STEP", &crash)]);
        b.wait_for(|| running(&b) == n_a, "generation a running");
        std::fs::write(dir.join("next.kdl"), &text_b).unwrap();
        let r = b.try_call(json!({
            "verb": "switch",
            "file": dir.join("next.kdl").to_str().unwrap(),
            "test": test,
        }));
        assert!(
            r.is_none(),
            "step {k}: berth answered instead of dying: {r:?}"
        );
        let status = b.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "step {k}"
        );
        let journal: Value =
            serde_json::from_slice(&std::fs::read(dir.join("state/journal")).unwrap()).unwrap();
        assert_eq!(journal["steps"].as_array().unwrap().len(), 10, "{journal}");
        assert_eq!(journal["done"], k, "{journal}");

        // Started again on the same (unchanged) host file.
        let b = Berth::start(&dir, None, &[]);
        let (outcome, want_hash): (&str, _) = if test {
            b.wait_for(
                || running(&b) == n_a && expected_a(&b),
                "generation a everywhere",
            );
            ("rolled it back", 1)
        } else {
            b.wait_for(
                || running(&b) == n_b && expected_b(&b),
                "generation b everywhere",
            );
            ("finished it", 2)
        };
        let line = format!(
            "the switch from generation 1 to 2 was interrupted after {k} of 10 steps; {outcome}"
        );
        assert!(
            b.own_log().contains(&line),
            "step {k}: no `{line}` in\n{}",
            b.own_log()
        );
        assert!(!dir.join("state/journal").exists(), "step {k}");
        let gens = b.generations();
        let cur = b.current();
        assert_eq!(cur["hash"], gens[want_hash - 1]["hash"], "step {k}");
        // Nothing of the other generation is left: every container cgroup is one of
        // the running containers'.
        let running_names: Vec<String> = gens_running(&b).into_keys().collect();
        let leftovers = cgroup_children(&b.dir.join("state"));
        assert_eq!(leftovers, running_names, "step {k}");
        assert!(b.down().success(), "step {k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The container cgroups of the berth whose state dir is `state`.
fn cgroup_children(state: &Path) -> Vec<String> {
    let mount = berth_init::state::cgroup2_mount().unwrap();
    let tree = mount.join(berth_init::state::cgroup_name(state));
    let mut names: Vec<String> = std::fs::read_dir(tree)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

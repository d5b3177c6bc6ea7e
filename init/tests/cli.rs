//! The `berth` binary as a user runs it: exit codes, help, output streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run berth")
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let p = common::scratch_dir("cli", name).join("host.kdl");
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = "network \"lan\" { subnet \"10.88.0.0/24\" }\ncontainer \"web\" {\n    rootfs \"host\"\n    exec \"/bin/true\"\n    network \"lan\"\n}\n";

#[test]
fn check_ok_and_invalid_exit_codes() {
    let good = tmp("good", GOOD);
    let out = berth(&["check", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));

    let bad = tmp(
        "bad",
        "container \"web\" { rootfs \"host\"; exec \"/bin/true\"; restart \"sometimes\"; limits { memory \"lots\" } }\n",
    );
    let out = berth(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host.kdl:1:") && err.contains("2 errors"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(berth(&[]).status.code(), Some(2));
    assert_eq!(berth(&["check"]).status.code(), Some(2));
    assert_eq!(berth(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        berth(&["eval", "x.kdl", "--no-such-flag"]).status.code(),
        Some(2)
    );
}

#[test]
fn every_verb_has_help() {
    // Every verb `berth --help` lists, so a new verb is covered as soon as it exists.
    let out = berth(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    // (verb, the first words of its summary)
    let listed: Vec<(&str, String)> = text
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no command list in berth --help:\n{text}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        // A verb's line; its description's continuation lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let verb = words.next()?;
            Some((verb, words.take(3).collect::<Vec<_>>().join(" ")))
        })
        .filter(|(v, _)| *v != "help")
        .collect();
    let verbs: Vec<&str> = listed.iter().map(|(v, _)| *v).collect();
    for verb in [
        "up", "init", "build", "vm", "reboot", "poweroff", "halt", "run", "check", "eval", "graph",
        "options", "why", "fmt", "status", "start", "stop", "restart", "down", "logs", "exec",
    ] {
        assert!(
            verbs.contains(&verb),
            "{verb} missing from berth --help:\n{text}"
        );
    }
    for (verb, summary) in &listed {
        let verb = *verb;
        let out = berth(&[verb, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{verb}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(&format!("Usage: berth {verb}")),
            "{verb}: {help}"
        );
        // A line saying what the verb does, above the usage.
        let about = help.lines().next().unwrap_or_default();
        assert!(
            !about.is_empty() && !about.starts_with("Usage"),
            "{verb} has no description: {help}"
        );
        // The verb's own description, the one `berth --help` lists (a flattened
        // argument struct's doc comment once replaced those of `build` and `vm`).
        assert!(
            about.starts_with(summary.as_str()),
            "{verb}: `berth --help` says {summary:?}…, `berth {verb} --help` says {about:?}"
        );
    }
}

#[test]
fn eval_json_has_hash_and_nodes() {
    let good = tmp("json", GOOD);
    let out = berth(&["eval", good.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    assert_eq!(v["containers"]["web"]["options"]["exec"][0], "/bin/true");
    assert_eq!(v["networks"]["lan"]["options"]["bridge"], "br-lan");
    assert_eq!(v["graph"]["layers"][1][0], "container.web");
}

#[test]
fn missing_file_is_invalid_input() {
    let out = berth(&["eval", "/nonexistent/host.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/host.kdl"));
}

#[test]
fn options_and_why() {
    let out = berth(&["options", "container.limits"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("container.limits.memory") && text.contains("apply: live"));
    assert!(!text.contains("container.exec"));
    assert_eq!(berth(&["options", "container.nope"]).status.code(), Some(1));
    let json: serde_json::Value =
        serde_json::from_slice(&berth(&["options", "--json"]).stdout).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == "network.subnet" && o["apply"] == "recreate")
    );

    let good = tmp("why", GOOD);
    let out = berth(&["why", good.to_str().unwrap(), "container.web.exec"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("host.kdl:4:5"));
    assert_eq!(
        berth(&["why", good.to_str().unwrap(), "container.nope.exec"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn graph_text_and_dot() {
    let good = tmp("graph", GOOD);
    let text =
        String::from_utf8_lossy(&berth(&["graph", good.to_str().unwrap()]).stdout).to_string();
    assert!(
        text.contains(
            "layer 0:\n  network.lan\nlayer 1:\n  container.web  <- network.lan (network)"
        ),
        "{text}"
    );
    let dot = String::from_utf8_lossy(&berth(&["graph", good.to_str().unwrap(), "--dot"]).stdout)
        .to_string();
    assert!(
        dot.starts_with("digraph berth {") && dot.contains("\"container.web\" -> \"network.lan\""),
        "{dot}"
    );
}

#[test]
fn fmt_keeps_comments_and_the_hash() {
    let messy = "// the lan\nnetwork   \"lan\"{subnet \"10.88.0.0/24\" // inline\n}\ncontainer \"web\" { rootfs \"host\"; exec \"/bin/true\"\n  network \"lan\" }\n";
    let p = tmp("fmt", messy);
    let before = berth(&["eval", p.to_str().unwrap(), "--json"]);
    assert_eq!(
        berth(&["fmt", "--check", p.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        messy,
        "--check changes nothing"
    );
    assert_eq!(berth(&["fmt", p.to_str().unwrap()]).status.code(), Some(0));
    let formatted = std::fs::read_to_string(&p).unwrap();
    assert!(
        formatted.contains("// the lan") && formatted.contains("// inline"),
        "{formatted}"
    );
    assert_eq!(
        berth(&["fmt", "--check", p.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let after = berth(&["eval", p.to_str().unwrap(), "--json"]);
    let h = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["hash"].clone()
    };
    assert_eq!(h(&before), h(&after));
    // A syntax error: reported with its place, the file untouched.
    let broken = tmp("fmt-broken", "container \"web\" { exec \"unterminated }\n");
    let out = berth(&["fmt", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host.kdl:1:"));
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "container \"web\" { exec \"unterminated }\n"
    );
}

#[test]
fn set_and_unset_keep_comments_and_refuse_invalid_edits() {
    let text = "// edge host\nhost edge\ncontainer web {\n    rootfs host // the host's /usr\n    exec \"/bin/web\"\n    limits {\n        memory \"64M\" // enough for now\n    }\n}\n";
    let file = tmp("set", text);
    let f = file.to_str().unwrap();

    let out = berth(&["set", f, "container.web.limits.memory", "256M"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text.replace("\"64M\"", "\"256M\"")
    );

    // Invalid: refused with a diagnostic pointing into the edit; the file is untouched.
    let before = std::fs::read(&file).unwrap();
    let out = berth(&["set", f, "container.web.limits.memory", "lots"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown size unit") && err.contains("left unchanged"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let out = berth(&["unset", f, "container.web.exec"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `exec`"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let out = berth(&["set", f, "container.web.limits.memroy", "1G"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `limits.memory`"));

    // Added where it belongs, then removed again: back to the original bytes.
    let out = berth(&["set", f, "container.web.limits.pids", "64"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let now = std::fs::read_to_string(&file).unwrap();
    assert!(
        now.contains("        memory \"256M\" // enough for now\n        pids 64\n    }"),
        "{now}"
    );
    let out = berth(&["unset", f, "container.web.limits.pids"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text.replace("\"64M\"", "\"256M\"")
    );
}

#[test]
fn pid1_verbs_refuse_outside_pid1_and_build_names_a_bad_kernel() {
    let out = berth(&["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs only as PID 1"));
    let sock = tmp("no-berth.sock", "");
    let out = berth(&["poweroff", "--socket", sock.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let good = tmp("build", GOOD);
    let not_a_kernel = tmp("vmlinuz", "not a kernel");
    let dir = good.with_extension("image");
    let out = berth(&[
        "build",
        good.to_str().unwrap(),
        "--kernel",
        not_a_kernel.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a bzImage kernel"), "{err}");
    for verb in ["init", "build", "vm", "reboot", "poweroff", "halt"] {
        assert_eq!(berth(&[verb, "--help"]).status.code(), Some(0), "{verb}");
    }
}

#[test]
fn build_refuses_a_rootfs_that_a_boot_mount_would_hide() {
    // PID 1 mounts a tmpfs on /tmp (and /run, /dev, …) and the host's file systems
    // over their mount points: a rootfs packed below one would vanish at boot.
    let not_a_kernel = tmp("hidden-vmlinuz", "not a kernel");
    let not_a_kernel = not_a_kernel.to_str().unwrap();
    for (name, host, below) in [
        (
            "hidden-tmp",
            "container web {\n    rootfs \"/tmp/some-rootfs\"\n    exec \"/bin/true\"\n}\n",
            "/tmp",
        ),
        (
            "hidden-fs",
            "host h {\n    filesystem \"/dev/vda\" \"/srv/data\" type=\"ext4\"\n}\ncontainer web {\n    rootfs \"/srv/data/root\"\n    exec \"/bin/true\"\n}\n",
            "/srv/data",
        ),
    ] {
        let file = tmp(name, host);
        let out_dir = file.with_extension("image");
        let out = berth(&[
            "build",
            file.to_str().unwrap(),
            "--kernel",
            not_a_kernel,
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "container web: rootfs {} is below {below}, which is mounted over at boot",
                if below == "/tmp" {
                    "/tmp/some-rootfs"
                } else {
                    "/srv/data/root"
                }
            )),
            "{name}: {err}"
        );
        assert!(!out_dir.exists(), "{name}: nothing is built");
    }
}

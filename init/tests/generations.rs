//! Generations, plans and diffs through the `berth` binary: `berth up` records what it
//! starts; `plan`, `generations`, `diff` and `gc` read the state dir. Needs root (for
//! `up`); under CI=true a missing requirement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn host(mem: &str, env: &str) -> String {
    format!(
        r#"host g
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
    env MODE="{env}"
    requires db
}}
"#
    )
}

/// `berth up FILE` until every container runs, then `berth down`.
fn up_and_down(file: &Path, state: &Path) {
    let socket = state.with_extension("sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "up",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .args(["--socket", socket.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let o = berth(&["status", "--json", "--socket", socket.to_str().unwrap()]);
        if o.status.success() && text(&o).matches("\"running\"").count() == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "containers did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = berth(&["down", "--socket", socket.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn up_records_generations_plan_diff_and_gc() {
    if !common::root() {
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("berth-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("host.kdl");
    let state = dir.join("state");
    let (f, s) = (file.to_str().unwrap(), state.to_str().unwrap());

    std::fs::write(&file, host("64M", "a")).unwrap();
    let o = berth(&["plan", f, "--state-dir", s]);
    assert!(text(&o).contains("+ container db: create"), "{}", text(&o));
    up_and_down(&file, &state);

    // No change: an empty plan.
    let o = berth(&["plan", f, "--state-dir", s]);
    assert!(text(&o).contains("No changes"), "{}", text(&o));

    // A memory limit: one live step, nothing restarts.
    std::fs::write(&file, host("128M", "a")).unwrap();
    let o = berth(&["plan", "--json", f, "--state-dir", s]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{plan}");
    assert_eq!(steps[0]["name"], "db");
    assert_eq!(steps[0]["action"], "live");
    assert_eq!(steps[0]["changes"][0]["path"], "limits.memory");
    assert_eq!(steps[0]["changes"][0]["old"], 64 << 20);
    assert_eq!(steps[0]["changes"][0]["new"], 128 << 20);
    up_and_down(&file, &state);

    // An env var of web: web restarts, db does not.
    std::fs::write(&file, host("128M", "b")).unwrap();
    let o = berth(&["plan", f, "--state-dir", s]);
    let t = text(&o);
    assert!(t.contains("~ container web: restart"), "{t}");
    assert!(!t.contains("container db"), "{t}");
    up_and_down(&file, &state);

    let o = berth(&["generations", "--json", "--state-dir", s]);
    let gens: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gens = gens.as_array().unwrap();
    assert_eq!(gens.len(), 3, "{gens:?}");
    assert_eq!(gens[2]["current"], true);
    assert_eq!(gens[2]["booted"], true);
    assert_eq!(gens[0]["reason"], "boot");

    let o = berth(&["diff", "1", "3", "--state-dir", s]);
    let t = text(&o);
    assert!(
        t.contains("limits.memory: \"64M\" -> \"128M\"  (live)"),
        "{t}"
    );
    assert!(t.contains("env.MODE") || t.contains("env: "), "{t}");
    let o = berth(&["diff", "1", "9", "--state-dir", s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no generation 9"));

    let o = berth(&["gc", "--keep", "1", "--state-dir", s]);
    assert!(
        text(&o).contains("deleted generations 1, 2"),
        "{}",
        text(&o)
    );
    let o = berth(&["generations", "--state-dir", s]);
    assert!(text(&o).contains("(current, booted)"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

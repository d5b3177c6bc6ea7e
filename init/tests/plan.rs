//! Plans on a large host (`scripts/gen-host 1000`): a no-op switch plans nothing, a
//! one-container change plans exactly one step; and the measurement behind
//! BENCHMARKS.md "Plans (issue: GitOps)": how long planning takes next to the
//! evaluation it follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use berth_config::MemSource;
use berth_init::plan::{Action, plan};
use berth_modules::{Evaluation, Kind};

fn gen_host(n: usize) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-host");
    let out = std::process::Command::new(script)
        .arg(n.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn eval(text: &str) -> Evaluation {
    let src = MemSource::new().with("/host.kdl", text);
    match berth_modules::evaluate(&src, Path::new("/host.kdl")) {
        Ok(ev) => ev,
        Err(f) => panic!("{:?}", f.diagnostics),
    }
}

/// `text` with the memory limit of container `name` set to `memory`.
fn with_memory(text: &str, name: &str, memory: &str) -> String {
    let start = text.find(&format!("container \"{name}\" {{")).unwrap();
    let at = start + text[start..].find("memory \"").unwrap();
    let end = at + text[at..].find('\n').unwrap();
    format!("{}memory \"{memory}\"{}", &text[..at], &text[end..])
}

#[test]
fn on_1000_containers_a_no_op_plans_nothing_and_one_limit_is_one_live_step() {
    let text = gen_host(1000);
    let (a, b) = (eval(&text), eval(&text));
    let p = plan(Some(&a), &b);
    assert!(p.steps.is_empty(), "no-op plan has steps: {:?}", p.steps);

    let changed = with_memory(&text, "c500", "999M");
    assert_ne!(changed, text);
    let p = plan(Some(&a), &eval(&changed));
    let steps: Vec<_> = p
        .steps
        .iter()
        .map(|s| (s.kind, s.name.as_str(), s.action))
        .collect();
    assert_eq!(steps, [(Kind::Container, "c500", Action::Live)]);
    let paths: Vec<_> = p.steps[0].changes.iter().map(|c| c.path).collect();
    assert_eq!(paths, ["limits.memory"]);
}

fn mean(v: &[Duration]) -> f64 {
    v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e3
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

/// Planning a no-op and a one-container change on 1,000 containers, against the
/// evaluation of the same host in the same run (the work every switch does first).
#[test]
#[ignore = "measurement; run with --ignored --nocapture (bench/plan.sh)"]
fn measure_plan_on_1000_containers() {
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30usize);
    let text = gen_host(1000);
    let changed = with_memory(&text, "c500", "999M");
    let (a, b, c) = (eval(&text), eval(&text), eval(&changed));
    let (mut evals, mut noop, mut one) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        let ev = eval(&text);
        evals.push(t.elapsed());
        drop(ev);
        let t = Instant::now();
        let p = plan(Some(&a), &b);
        noop.push(t.elapsed());
        assert!(p.steps.is_empty());
        let t = Instant::now();
        let p = plan(Some(&a), &c);
        one.push(t.elapsed());
        assert_eq!(p.steps.len(), 1);
    }
    let e = median(evals.clone());
    println!(
        "| Measure ({rounds} rounds, 1,000 containers) | mean | median | median / evaluation |"
    );
    println!("|---|---:|---:|---:|");
    for (what, v) in [
        ("evaluation of the host (the peer)", &evals),
        ("plan, no-op switch", &noop),
        ("plan, one container's memory changed", &one),
    ] {
        let m = median(v.clone());
        println!(
            "| {what} | {:.3} ms | {:.3} ms | {:.4}× |",
            mean(v),
            m,
            m / e
        );
    }
}

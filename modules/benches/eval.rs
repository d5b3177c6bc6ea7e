//! Evaluation benchmark: `evaluate` on generated hosts of 10,000 and 100,000 containers,
//! berth's KDL parser alone, and — as the peer, in the same run — the reference `kdl`
//! crate parsing the same 10,000-container text.
//!
//! The hosts come from `scripts/gen-host`, run once per size before any measurement.
//! Evaluation reads from a `MemSource`, so the disk plays no part.
//!
//! Run: `cargo bench -p berth-modules --bench eval` (about two minutes; filter with
//! e.g. `-- 10k/` to run one size). See BENCHMARKS.md.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_config::MemSource;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput};

/// Runs `scripts/gen-host N` and returns the host text.
fn gen_host(n: usize) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-host");
    let out = Command::new(&script)
        .arg(n.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} {n} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("gen-host prints UTF-8")
}

fn source(text: &str) -> MemSource {
    MemSource::new().with("host.kdl", text)
}

/// Evaluates once outside the measurement, so a broken generator or evaluator fails
/// loudly instead of benchmarking the error path.
fn sanity(n: usize, text: &str) {
    let (_, errors) = berth_config::kdl::parse(text);
    assert!(errors.is_empty(), "berth's parser rejects gen-host {n}: {:?}", errors.first());
    match berth_modules::evaluate(&source(text), Path::new("host.kdl")) {
        Ok(ev) => {
            let containers = ev.of_kind(berth_modules::Kind::Container).count();
            assert_eq!(containers, n, "gen-host {n} evaluated to {containers} containers");
        }
        Err(f) => panic!("gen-host {n} does not evaluate: {} diagnostics, first: {:?}", f.diagnostics.len(), f.diagnostics.first()),
    }
}

fn bench_size(c: &mut Criterion, n: usize, label: &str, text: &str, with_peer: bool) {
    let src = source(text);
    let mut g = c.benchmark_group(label);
    // Every iteration is milliseconds to seconds long: take the same number of
    // iterations per sample instead of criterion's 1, 2, 3, … ramp, so 10 samples cost
    // 10 iterations, not 55.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(text.len() as u64));

    // The result is dropped outside the timing (one iteration per batch), so the number
    // is evaluate itself; dropping a 100k evaluation is measured separately by bench/eval.sh
    // (end to end, process exit included).
    g.bench_function("berth-evaluate", |b| {
        b.iter_batched(
            || (),
            |()| berth_modules::evaluate(black_box(&src), Path::new("host.kdl")).map(|ev| ev.nodes.len()).ok(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("berth-parse", |b| {
        b.iter_batched(|| (), |()| berth_config::kdl::parse(black_box(text)), BatchSize::PerIteration)
    });
    if with_peer {
        match kdl::KdlDocument::parse_v2(text) {
            Ok(doc) => assert!(doc.nodes().len() > n, "kdl crate lost nodes"),
            Err(e) => panic!("the kdl crate rejects gen-host {n}: {e:?}"),
        }
        g.bench_function("kdl-crate-parse_v2", |b| {
            b.iter_batched(|| (), |()| kdl::KdlDocument::parse_v2(black_box(text)), BatchSize::PerIteration)
        });
    }
    g.finish();
}

fn main() {
    let h10k = gen_host(10_000);
    let h100k = gen_host(100_000);
    sanity(10_000, &h10k);
    sanity(100_000, &h100k);

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .nresamples(10_000)
        .configure_from_args();
    bench_size(&mut c, 10_000, "10k", &h10k, true);
    bench_size(&mut c, 100_000, "100k", &h100k, false);
    c.final_summary();
}

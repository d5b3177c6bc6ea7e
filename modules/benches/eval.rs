//! Evaluation benchmark: `evaluate` on generated hosts of 10,000 and 100,000 containers,
//! berth's KDL parser alone, and — as the peer, in the same run — the reference `kdl`
//! crate parsing the same 10,000-container text.
//!
//! The hosts come from `scripts/gen-host`, run once per size, the first time a
//! benchmark of that size runs (so a filtered run, e.g. `-- 10k/`, never generates the
//! 100k host). Each host is evaluated once, untimed, to check that it is valid.
//! Evaluation reads from a `MemSource`, so the disk plays no part.
//!
//! Run: `cargo bench -p berth-modules --bench eval` (about two minutes at today's
//! speed; most of it is the 100k evaluation and the kdl crate). See BENCHMARKS.md.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::cell::OnceCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_config::MemSource;
use criterion::{BatchSize, Criterion, SamplingMode};

/// Runs `scripts/gen-host N` and returns the host text.
fn gen_host(n: usize) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-host");
    let out = Command::new(&script)
        .arg(n.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} {n} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("gen-host prints UTF-8")
}

/// A generated host, made on first use.
struct Host {
    n: usize,
    cell: OnceCell<(String, MemSource)>,
}

impl Host {
    fn new(n: usize) -> Self {
        Host {
            n,
            cell: OnceCell::new(),
        }
    }

    fn text(&self) -> &str {
        &self.get().0
    }

    fn source(&self) -> &MemSource {
        &self.get().1
    }

    fn get(&self) -> &(String, MemSource) {
        self.cell.get_or_init(|| {
            let text = gen_host(self.n);
            let source = MemSource::new().with("host.kdl", text.as_str());
            sanity(self.n, &text, &source);
            eprintln!("gen-host {}: {:.1} MB", self.n, text.len() as f64 / 1e6);
            (text, source)
        })
    }
}

/// Parses and evaluates once, untimed, so a broken generator or evaluator fails loudly
/// instead of benchmarking the error path.
fn sanity(n: usize, text: &str, source: &MemSource) {
    let (_, errors) = berth_config::kdl::parse(text);
    assert!(
        errors.is_empty(),
        "berth's parser rejects gen-host {n}: {:?}",
        errors.first()
    );
    match berth_modules::evaluate(source, Path::new("host.kdl")) {
        Ok(ev) => {
            let containers = ev.of_kind(berth_modules::Kind::Container).count();
            assert_eq!(
                containers, n,
                "gen-host {n} evaluated to {containers} containers"
            );
        }
        Err(f) => panic!(
            "gen-host {n} does not evaluate: {} diagnostics, first: {:?}",
            f.diagnostics.len(),
            f.diagnostics.first()
        ),
    }
}

fn bench_size(c: &mut Criterion, host: &Host, label: &str, with_peer: bool) {
    let mut g = c.benchmark_group(label);
    // Every iteration takes milliseconds to seconds: the same number of iterations per
    // sample instead of criterion's 1, 2, 3, … ramp, so 10 samples cost 10 iterations,
    // not 55.
    g.sampling_mode(SamplingMode::Flat);

    // One iteration per batch: the result is dropped outside the timing, so this is
    // `evaluate` itself. bench/eval.sh measures the whole process, drop and JSON included.
    g.bench_function("berth-evaluate", |b| {
        let src = host.source();
        b.iter_batched(
            || (),
            |()| {
                berth_modules::evaluate(black_box(src), Path::new("host.kdl"))
                    .map(|ev| ev.nodes.len())
                    .ok()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("berth-parse", |b| {
        let text = host.text();
        b.iter_batched(
            || (),
            |()| berth_config::kdl::parse(black_box(text)),
            BatchSize::PerIteration,
        )
    });
    if with_peer {
        let checked = OnceCell::new();
        g.bench_function("kdl-crate-parse_v2", |b| {
            let text = host.text();
            checked.get_or_init(|| match kdl::KdlDocument::parse_v2(text) {
                Ok(doc) => assert!(doc.nodes().len() > host.n, "the kdl crate lost nodes"),
                Err(e) => panic!("the kdl crate rejects gen-host {}: {e:?}", host.n),
            });
            b.iter_batched(
                || (),
                |()| kdl::KdlDocument::parse_v2(black_box(text)),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_size(&mut c, &Host::new(10_000), "10k", true);
    bench_size(&mut c, &Host::new(100_000), "100k", false);
    c.final_summary();
}

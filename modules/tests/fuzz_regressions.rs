//! Inputs that once crashed the fuzz target (fuzz/fuzz_targets/eval.rs), replayed on
//! every test run so they stay fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use berth_config::MemSource;

fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\u{1}').unwrap_or((text, ""));
    let src = MemSource::new().with("a.kdl", a).with("b.kdl", b);
    match berth_modules::evaluate(&src, Path::new("a.kdl")) {
        Ok(ev) => {
            let _ = berth_modules::canon::evaluation_json(&ev);
        }
        Err(f) => {
            let _ = berth_config::diag::render_all(&f.diagnostics, &f.tree.sources, false);
        }
    }
    let _ = berth_config::fmt::format(a);
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    eprintln!("replayed {n} inputs from {}", dir.display());
}

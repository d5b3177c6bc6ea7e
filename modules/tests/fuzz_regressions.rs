//! Inputs that once crashed the fuzz target (fuzz/fuzz_targets/eval.rs), replayed on
//! every test run through the same check, so they stay fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

include!("../../fuzz/fuzz_targets/check.rs");

#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
    eprintln!("replayed {n} inputs from {}", dir.display());
}

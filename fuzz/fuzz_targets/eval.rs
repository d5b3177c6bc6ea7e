//! Parse + evaluate arbitrary bytes as a host (with one importable second file), render
//! every diagnostic, and format the text: none of it may panic. (Agreement with the
//! reference `kdl` parser is checked by config/tests/kdl_compliance.rs, which knows the
//! spec points where that crate departs from the spec.) Run with
//! `cargo +nightly fuzz run eval` from the repository root.
#![no_main]

use std::path::Path;

use berth_config::MemSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The input may import "b.kdl": the same text split at the first NUL-free `\u{1}`.
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
    // Formatting must never panic either, and never change the meaning (it refuses).
    let _ = berth_config::fmt::format(a);
});

//! Parse + evaluate arbitrary bytes as a host (with one importable second file), and
//! render every diagnostic: none of it may panic. Run with
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
    // berth's parser must agree with the reference parser on what is valid KDL v2.
    let (_, errors) = berth_config::kdl::parse(a);
    let reference = kdl::KdlDocument::parse_v2(a);
    assert_eq!(errors.is_empty(), reference.is_ok(), "parsers disagree on {a:?}: berth {errors:?}");
});

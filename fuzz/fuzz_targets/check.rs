// The property the fuzz target (eval.rs) checks and modules/tests/fuzz_regressions.rs
// replays: parse + evaluate arbitrary bytes as a host (with one importable second
// file), render every diagnostic, and format the text; none of it may panic.
// Included by both with `include!`, so they cannot drift apart.

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The input may import "b.kdl": the text after the first `\u{1}`.
    let (a, b) = text.split_once('\u{1}').unwrap_or((text, ""));
    let src = berth_config::MemSource::new().with("a.kdl", a).with("b.kdl", b);
    match berth_modules::evaluate(&src, std::path::Path::new("a.kdl")) {
        Ok(ev) => {
            let _ = berth_modules::canon::evaluation_json(&ev);
        }
        Err(f) => {
            let _ = berth_config::diag::render_all(&f.diagnostics, &f.tree.sources, false);
        }
    }
    // The formatter refuses rather than change the meaning; it must not panic either.
    let _ = berth_config::fmt::format(a);
}

//! Arbitrary input, well-formed or not, never panics the loader, the evaluator or the
//! diagnostic renderer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use berth_config::MemSource;
use berth_config::diag::render_all;
use berth_modules::evaluate;
use proptest::prelude::*;

/// Pieces that make up plausible (and implausible) host files.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("container".to_string()),
        Just("network".to_string()),
        Just("volume".to_string()),
        Just("host".to_string()),
        Just("import".to_string()),
        Just("module".to_string()),
        Just("param".to_string()),
        Just("svc".to_string()),
        Just("limits".to_string()),
        Just("memory".to_string()),
        Just("exec".to_string()),
        Just("rootfs".to_string()),
        Just("after".to_string()),
        Just("requires".to_string()),
        Just("mount".to_string()),
        Just("port".to_string()),
        Just("env".to_string()),
        Just("ready".to_string()),
        Just("subnet".to_string()),
        Just("name=".to_string()),
        Just("address=".to_string()),
        Just("\"a\"".to_string()),
        Just("\"b\"".to_string()),
        Just("\"{name}\"".to_string()),
        Just("\"{x}\"".to_string()),
        Just("\"host\"".to_string()),
        Just("\"10.0.0.0/24\"".to_string()),
        Just("\"10.0.0.5\"".to_string()),
        Just("\"h.kdl\"".to_string()),
        Just("\"512M\"".to_string()),
        Just("\"tcp\"".to_string()),
        Just("(default)".to_string()),
        Just("(force)".to_string()),
        Just("(x)".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("/-".to_string()),
        Just("//c\n".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("#true".to_string()),
        Just("#null".to_string()),
        Just("=".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[a-z{}\"#=;()\\\\/ \n-]{1,8}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..60).prop_map(|t| t.join(" "))
}

fn run(files: &[(&str, String)]) {
    let mut src = MemSource::new();
    for (p, t) in files {
        src.insert(p, t.clone());
    }
    match evaluate(&src, Path::new(files[0].0)) {
        Ok(ev) => {
            let _ = berth_modules::canon::evaluation_json(&ev);
            for n in &ev.nodes {
                let path = format!("{}.{}", n.id.kind, n.id.name);
                let _ = berth_modules::why::why(&ev, &path);
            }
        }
        Err(f) => {
            assert!(!f.diagnostics.is_empty());
            let _ = render_all(&f.diagnostics, &f.tree.sources, false);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics(a in text(), b in text()) {
        run(&[("host.kdl", a), ("h.kdl", b)]);
    }

    #[test]
    fn raw_bytes_never_panic(s in any::<String>()) {
        run(&[("host.kdl", s)]);
    }
}

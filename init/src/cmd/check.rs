use std::io::Write;
use std::path::PathBuf;

use berth_modules::canon::evaluation_json;

use super::{INVALID, load, render};

/// `berth check FILE...`: validates each file; `ok` lines on `out`, diagnostics on `err`.
pub fn check(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let mut code = 0;
    for file in files {
        match load(file, err, color) {
            Some(ev) => {
                let containers = ev.of_kind(berth_modules::Kind::Container).count();
                let _ = writeln!(out, "ok {}: {containers} containers, generation {}", file.display(), &ev.hash.to_hex()[..16]);
            }
            None => code = INVALID,
        }
    }
    code
}

/// `berth eval FILE [--json]`: the evaluated host, every option with its effective value.
pub fn eval(file: &std::path::Path, json: bool, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let Some(ev) = load(file, err, color) else { return INVALID };
    if json {
        let _ = writeln!(out, "{}", evaluation_json(&ev));
    } else {
        let _ = write!(out, "{}", render::host_kdl(&ev));
    }
    0
}

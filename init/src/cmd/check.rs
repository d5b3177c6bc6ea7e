use std::io::Write;
use std::path::PathBuf;

use berth_modules::canon::write_evaluation_json;

use super::{INVALID, leak, load, render};

/// `berth check FILE...`: validates each file; `ok` lines on `out`, diagnostics on `err`.
pub fn check(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let mut code = 0;
    for file in files {
        match load(file, err, color) {
            Some(ev) => {
                let containers = ev.of_kind(berth_modules::Kind::Container).count();
                let _ = writeln!(
                    out,
                    "ok {}: {containers} containers, generation {}",
                    file.display(),
                    &ev.hash.to_hex()[..16]
                );
                leak(ev);
            }
            None => code = INVALID,
        }
    }
    code
}

/// `berth eval FILE [--json]`: the evaluated host, every option with its effective value.
pub fn eval(
    file: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let Some(ev) = load(file, err, color) else {
        return INVALID;
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if json {
        let _ = write_evaluation_json(&ev, &mut out);
        let _ = writeln!(out);
    } else {
        let _ = write!(out, "{}", render::host_kdl(&ev));
    }
    let _ = out.flush();
    leak(ev);
    0
}

use std::io::Write;
use std::path::Path;

use super::{INVALID, load};

/// `berth why FILE PATH`: the final value and every definition behind it.
pub fn why(file: &Path, path: &str, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let Some(ev) = load(file, err, color) else {
        return INVALID;
    };
    match berth_modules::why::why(&ev, path) {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(msg) => {
            let _ = writeln!(err, "berth: {msg}");
            INVALID
        }
    }
}

use std::io::Write;

use berth_modules::docs::{options_json, options_text};

use super::INVALID;

/// `berth options [PREFIX] [--json]`: the schema, from the tables that validate.
pub fn options(prefix: Option<&str>, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let prefix = prefix.unwrap_or("");
    if json {
        let v = options_json(prefix);
        if v.as_array().is_some_and(Vec::is_empty) {
            let _ = writeln!(
                err,
                "berth: no option matches `{prefix}`; try `berth options container`"
            );
            return INVALID;
        }
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        return 0;
    }
    match options_text(prefix) {
        Some(t) => {
            let _ = out.write_all(t.as_bytes());
            0
        }
        None => {
            let _ = writeln!(
                err,
                "berth: no option matches `{prefix}`; try `berth options container` or `berth options container.limits`"
            );
            INVALID
        }
    }
}

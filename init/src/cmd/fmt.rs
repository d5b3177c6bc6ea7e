use std::io::Write;
use std::path::PathBuf;

use berth_config::diag::render_all;
use berth_config::{Diagnostic, FileId, SourceFile, SourceMap};

use super::INVALID;
use crate::fsutil::write_atomic;

/// Formats KDL text canonically, keeping every comment: see [`berth_config::fmt`].
/// Syntax errors are returned as berth's parser reports them everywhere else.
pub fn format_text(text: &str) -> Result<String, Vec<berth_config::kdl::ParseError>> {
    berth_config::fmt::format(text)
}

/// `berth fmt FILE... [--check]`: rewrite files in canonical form, or with `--check`
/// list those that are not and exit 1.
pub fn fmt(
    files: &[PathBuf],
    check: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let mut code = 0;
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "berth: cannot read {}: {e}", file.display());
                code = INVALID;
                continue;
            }
        };
        let formatted = match format_text(&text) {
            Ok(f) => f,
            Err(errors) => {
                let mut sources = SourceMap::default();
                sources.add(SourceFile::new(
                    file.display().to_string(),
                    file.clone(),
                    text,
                ));
                let diags: Vec<Diagnostic> = errors
                    .into_iter()
                    .map(|e| {
                        let d = Diagnostic::error(e.message).label(FileId(0), e.span, e.label);
                        match e.help {
                            Some(h) => d.help(h),
                            None => d,
                        }
                    })
                    .collect();
                let _ = write!(err, "{}", render_all(&diags, &sources, color));
                code = INVALID;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            let _ = writeln!(out, "{} is not formatted", file.display());
            code = INVALID;
        } else if let Err(e) = write_atomic(file, formatted.as_bytes()) {
            let _ = writeln!(err, "berth: cannot write {}: {e}", file.display());
            code = INVALID;
        } else {
            let _ = writeln!(out, "formatted {}", file.display());
        }
    }
    code
}

//! `berth set FILE PATH VALUE…` and `berth unset FILE PATH`: edit a host file from
//! scripts. The edit is spliced into the text (comments and formatting kept, see
//! [`berth_config::edit`]), the whole host is evaluated with it, and only a valid
//! result is written — atomically. An invalid one prints its diagnostics (against the
//! edited text) and leaves the file untouched.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use berth_config::diag::{did_you_mean, render_all};
use berth_config::edit::{self, EditError};
use berth_config::{FsSource, Source};
use berth_modules::Kind;

use crate::fsutil::write_atomic;

/// The real file system, except that one file reads as `text`.
struct Overlay {
    path: PathBuf,
    text: String,
}

impl Source for Overlay {
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        FsSource.canonical(path)
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        if FsSource.canonical(path).is_ok_and(|p| p == self.path) {
            Ok(self.text.clone())
        } else {
            FsSource.read(path)
        }
    }
}

/// `container.web.limits.memory` → (Container, "web", ["limits", "memory"]).
fn parse_path(path: &str) -> Result<(Kind, String, Vec<String>), String> {
    let mut parts = path.split('.');
    let kind_word = parts.next().unwrap_or_default();
    let Some(kind) = Kind::from_name(kind_word) else {
        let kinds = Kind::ALL.map(Kind::name);
        let hint = did_you_mean(kind_word, kinds)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        return Err(format!(
            "`{path}`: a path starts with host, container, network or volume{hint}"
        ));
    };
    let name = if kind == Kind::Host {
        String::new()
    } else {
        match parts.next() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err(format!("`{path}`: expected {}.NAME.OPTION", kind.name())),
        }
    };
    let option: Vec<String> = parts.map(str::to_string).collect();
    let joined = option.join(".");
    if kind.schema().option(&joined).is_none() {
        let hint = did_you_mean(&joined, kind.schema().options.iter().map(|o| o.path))
            .map(|o| format!("; did you mean `{o}`?"))
            .unwrap_or_default();
        return Err(format!(
            "`{path}`: {} has no option `{joined}`{hint} (`berth options {}` lists them)",
            kind.name(),
            kind.name()
        ));
    }
    Ok((kind, name, option))
}

/// `values` empty means unset.
pub fn set(
    file: &Path,
    path: &str,
    values: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let fail = super::fail;
    let (kind, name, option) = match parse_path(path) {
        Ok(p) => p,
        Err(e) => return fail(err, e),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(err, format!("{}: {e}", file.display())),
    };
    let segments: Vec<&str> = option.iter().map(String::as_str).collect();
    let edited = if values.is_empty() {
        edit::unset(&text, kind.name(), &name, &segments)
    } else {
        let kdl: Vec<String> = values.iter().map(|v| edit::value_text(v)).collect();
        edit::set(&text, kind.name(), &name, &segments, &kdl.join(" "))
    };
    let edited = match edited {
        Ok(t) => t,
        Err(e @ EditError::NotDefined(_)) => {
            return fail(err, format!("{}: {path}: {e}", file.display()));
        }
        Err(e) => return fail(err, format!("{}: {e}", file.display())),
    };
    let canonical = match FsSource.canonical(file) {
        Ok(p) => p,
        Err(e) => return fail(err, format!("{}: {e}", file.display())),
    };
    let overlay = Overlay {
        path: canonical,
        text: edited,
    };
    match berth_modules::evaluate(&overlay, file) {
        Ok(ev) => super::leak(ev),
        Err(f) => {
            let _ = write!(
                err,
                "{}",
                render_all(&f.diagnostics, &f.tree.sources, color)
            );
            return fail(
                err,
                format!(
                    "{} left unchanged: the edit would make the host invalid",
                    file.display()
                ),
            );
        }
    }
    if overlay.text == text {
        let _ = writeln!(out, "{}: {path} unchanged", file.display());
        return 0;
    }
    if let Err(e) = write_atomic(file, overlay.text.as_bytes()) {
        return fail(err, format!("write {}: {e}", file.display()));
    }
    if values.is_empty() {
        let _ = writeln!(out, "{}: unset {path}", file.display());
    } else {
        let _ = writeln!(out, "{}: set {path} {}", file.display(), values.join(" "));
    }
    0
}

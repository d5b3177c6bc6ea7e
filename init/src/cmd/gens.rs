//! `berth generations`, `berth gc`, `berth plan`, `berth diff`: reading and comparing
//! the generations under a state dir (see [`crate::generations`]).

use std::io::Write;
use std::path::Path;

use berth_config::diag::render_all;
use berth_modules::Evaluation;

use super::INVALID;
use crate::generations::{Generations, utc};
use crate::plan::plan as make_plan;

fn error(err: &mut dyn Write, msg: impl std::fmt::Display) -> u8 {
    let _ = writeln!(err, "error: {msg}");
    INVALID
}

/// Evaluates a stored generation; its failure (a generation written by an older berth
/// whose schema changed) is reported with the generation's own sources.
fn evaluate_generation(
    g: &Generations,
    n: u64,
    err: &mut dyn Write,
    color: bool,
) -> Result<Evaluation, u8> {
    match g.evaluate(n) {
        Ok(Ok(ev)) => Ok(ev),
        Ok(Err(f)) => {
            let _ = writeln!(err, "error: generation {n} no longer evaluates:");
            let _ = write!(
                err,
                "{}",
                render_all(&f.diagnostics, &f.tree.sources, color)
            );
            Err(INVALID)
        }
        Err(e) => Err(error(err, e)),
    }
}

pub fn generations(state_dir: &Path, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let g = Generations::new(state_dir);
    let list = match g.list() {
        Ok(l) => l,
        Err(e) => return error(err, e),
    };
    let (current, booted) = (g.current(), g.booted());
    // A switch waiting for `berth confirm` (a damaged file reads as none).
    let pending = g.pending().ok().flatten();
    let unconfirmed = |n: u64| pending.as_ref().filter(|p| p.generation == n);
    if json {
        let items: Vec<_> = list
            .iter()
            .map(|m| {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["current"] = (current == Some(m.number)).into();
                v["booted"] = (booted == Some(m.number)).into();
                if let Some(p) = unconfirmed(m.number) {
                    v["confirm_deadline"] = p.deadline.into();
                }
                v
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(items));
        return 0;
    }
    if list.is_empty() {
        let _ = writeln!(out, "no generations in {}", state_dir.display());
        return 0;
    }
    let _ = writeln!(
        out,
        "{:>4}  {:<19}  {:<8}  {:<12}  {:<16}  SOURCE",
        "GEN", "TIME (UTC)", "REASON", "HASH", "GIT"
    );
    for m in &list {
        let mark = match (current == Some(m.number), booted == Some(m.number)) {
            (true, true) => " (current, booted)",
            (true, false) => " (current)",
            (false, true) => " (booted)",
            _ => "",
        };
        let mark = match unconfirmed(m.number) {
            Some(p) => format!(
                "{mark} (unconfirmed: back to {} at {} unless `berth confirm`)",
                p.previous,
                utc(p.deadline)
            ),
            None => mark.to_string(),
        };
        let git = m.git.as_ref().map_or("-".to_string(), |g| {
            format!(
                "{}{}",
                &g.commit[..g.commit.len().min(12)],
                if g.dirty { "+dirty" } else { "" }
            )
        });
        let _ = writeln!(
            out,
            "{:>4}  {:<19}  {:<8}  {:<12}  {:<16}  {}{mark}",
            m.number,
            utc(m.time),
            m.reason,
            &m.hash[..12],
            git,
            m.origin.display()
        );
    }
    0
}

pub fn gc(state_dir: &Path, keep: usize, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match Generations::new(state_dir).gc(keep) {
        Ok(removed) if removed.is_empty() => {
            let _ = writeln!(out, "nothing to delete");
            0
        }
        Ok(removed) => {
            let list: Vec<String> = removed.iter().map(u64::to_string).collect();
            let _ = writeln!(out, "deleted generations {}", list.join(", "));
            0
        }
        Err(e) => error(err, e),
    }
}

/// `berth plan FILE`: from the current generation (nothing, if there is none) to FILE.
pub fn plan(
    file: &Path,
    state_dir: &Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let Some(new) = super::load(file, err, color) else {
        return INVALID;
    };
    let g = Generations::new(state_dir);
    let old = match g.current() {
        Some(n) => match evaluate_generation(&g, n, err, color) {
            Ok(ev) => Some(ev),
            Err(code) => return code,
        },
        None => None,
    };
    let p = make_plan(old.as_ref(), &new);
    if json {
        let _ = writeln!(out, "{}", p.to_json());
    } else {
        if let Some(n) = g.current() {
            let _ = writeln!(out, "From generation {n} to {}:\n", file.display());
        } else {
            let _ = writeln!(
                out,
                "No generation yet in {}; from nothing:\n",
                state_dir.display()
            );
        }
        let _ = write!(out, "{}", p.render());
    }
    super::leak(new);
    if let Some(old) = old {
        super::leak(old);
    }
    0
}

/// `berth diff A B`: option-level differences between two generations.
pub fn diff(
    state_dir: &Path,
    a: u64,
    b: u64,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let g = Generations::new(state_dir);
    for n in [a, b] {
        if let Err(e) = g.meta(n) {
            return error(err, e);
        }
    }
    let (old, new) = match (
        evaluate_generation(&g, a, err, color),
        evaluate_generation(&g, b, err, color),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let p = make_plan(Some(&old), &new);
    if json {
        let _ = writeln!(out, "{}", p.to_json());
    } else if p.is_empty() {
        let _ = writeln!(out, "generations {a} and {b} describe the same host");
    } else {
        let _ = writeln!(out, "From generation {a} to {b}:\n");
        let _ = write!(out, "{}", p.render());
    }
    0
}

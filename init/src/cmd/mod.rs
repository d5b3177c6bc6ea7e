//! The verbs of `berth` that read host files. Each takes its output streams, so tests
//! drive them without a process, and returns the exit code: 0 ok, 1 invalid input.

pub mod build;
mod check;
pub mod ctl;
pub mod exec;
mod fmt;
mod gens;
mod graph;
pub mod logs;
pub mod net;
mod options;
pub mod power;
mod render;
mod run;
mod set;
mod up;
pub mod vm;
mod why;

use std::io::Write;
use std::path::Path;

pub use build::build;
pub use check::{check, eval};
pub use ctl::{confirm, down, restart, rollback, start, status, stop, switch};
pub use exec::exec;
pub use fmt::fmt;
pub use gens::{diff, gc, generations, plan};
pub use graph::graph;
pub use logs::logs;
pub use net::net;
pub use options::options;
pub use power::power;
pub use run::run;
pub use set::set;
pub use up::up;
pub use vm::vm;
pub use why::why;

use berth_config::FsSource;
use berth_config::diag::render_all;
use berth_modules::{Evaluation, evaluate};

/// Exit code for invalid input (a broken host file, an unknown path).
pub const INVALID: u8 = 1;

/// Ends a one-shot command's use of an evaluation without freeing it: the process exits
/// right after, and freeing a large host's millions of small allocations one by one
/// takes longer than evaluating it (a third of `berth eval` of 10,000 containers).
pub(crate) fn leak(ev: Evaluation) {
    std::mem::forget(ev);
}

/// Standard output written with plain `write(2)` calls, without the line buffering of
/// `std::io::Stdout`: that looks for the last newline in every block written through
/// it, which for the 10 MB of `berth eval --json` of 10,000 containers was 14 million
/// instructions (2 % of the run). For a verb that writes nothing else to stdout.
#[derive(Debug)]
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // SAFETY: writes from a valid buffer of that length to descriptor 1.
        let n = unsafe { libc::write(libc::STDOUT_FILENO, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `error: MSG` and returns [`INVALID`].
pub(crate) fn fail(err: &mut dyn Write, msg: String) -> u8 {
    let _ = writeln!(err, "error: {msg}");
    INVALID
}

/// Evaluates `file`, or writes its diagnostics to `err` and returns `None`.
pub(crate) fn load(file: &Path, err: &mut dyn Write, color: bool) -> Option<Evaluation> {
    match evaluate(&FsSource, file) {
        Ok(ev) => {
            if !ev.warnings.is_empty() {
                let _ = write!(err, "{}", render_all(&ev.warnings, &ev.tree.sources, color));
            }
            Some(ev)
        }
        Err(f) => {
            let _ = write!(
                err,
                "{}",
                render_all(&f.diagnostics, &f.tree.sources, color)
            );
            None
        }
    }
}

/// Returns the allocator's free pages to the system (mimalloc otherwise keeps them for
/// reuse until its next allocations trigger a purge, which an idle berth never makes).
pub(crate) fn release_free_memory() {
    unsafe extern "C" {
        // mimalloc's public API (mimalloc.h), linked in with the global allocator.
        fn mi_collect(force: bool);
    }
    // SAFETY: mi_collect takes no pointers and may be called at any time.
    unsafe { mi_collect(true) };
}

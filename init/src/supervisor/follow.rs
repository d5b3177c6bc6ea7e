//! Following the host file of `berth up`: SIGHUP reads it again, and so does any change
//! to it or its imports while watching (`berth up --watch`, `host { watch #true }`). A
//! valid host is switched to as `berth switch FILE` would (reason `watch` or `sighup`);
//! an invalid one is refused whole, its diagnostics in berth's log and in `berth
//! status`, and nothing running is touched.
//!
//! Changes are debounced: an editor's save is several events (write a temporary file,
//! rename it over, chmod), a `git pull` writes several files, so berth reads once
//! [`QUIET`] passed without a new event (at the latest [`MAX_DELAY`] after the first).
//! The delay is one more deadline of the epoll loop: nothing wakes berth while no file
//! changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::epoll;

use super::{Supervisor, SwitchMode, TOKEN_WATCH};
use crate::control::proto::{Rejection, Response};
use crate::generations::Generations;
use crate::watch::{Watcher, files_of};

/// How long the host files must stay unchanged after an event before berth reads them.
pub(super) const QUIET: Duration = Duration::from_millis(50);
/// The longest a stream of changes puts the read off.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Follow {
    /// The host file as `berth up` was given it.
    file: PathBuf,
    /// `berth up --watch`.
    flag: bool,
    /// `host { watch #true }` in what runs now.
    host: bool,
    /// While watching: the inotify instance in the epoll set.
    watcher: Option<Watcher>,
    /// The host file and every file it imported at the last read.
    files: Vec<PathBuf>,
    /// When to read (debounced), and when the first change not read yet came.
    pub(super) due: Option<Instant>,
    first: Option<Instant>,
    /// The last read refused (shown by `berth status`), until a valid read.
    pub(super) rejected: Option<Rejection>,
}

impl Supervisor {
    /// Makes this supervisor follow `file`, the host file `berth up` read (whose read
    /// loaded `files`): SIGHUP reads it again, and so does every change of those files
    /// while `watch` (`--watch`) or `host_watch` (the host's `watch` option) is on.
    pub fn follow(&mut self, file: &Path, files: Vec<PathBuf>, watch: bool, host_watch: bool) {
        self.follow = Some(Follow {
            file: file.to_path_buf(),
            flag: watch,
            host: host_watch,
            watcher: None,
            files,
            due: None,
            first: None,
            rejected: None,
        });
        self.set_watching();
    }

    /// Starts or stops watching, as `--watch` and the host's `watch` now say.
    fn set_watching(&mut self) {
        let Some(f) = &mut self.follow else {
            return;
        };
        let on = f.flag || f.host;
        match (&f.watcher, on) {
            (None, true) => {
                let watcher = Watcher::new().and_then(|w| {
                    epoll::add(
                        &self.epoll,
                        w.fd(),
                        epoll::EventData::new_u64(TOKEN_WATCH),
                        epoll::EventFlags::IN,
                    )
                    .map_err(std::io::Error::from)
                    .map(|()| w)
                });
                match watcher {
                    Ok(mut w) => {
                        for problem in w.arm(&f.files) {
                            eprintln!("berth: warning: watch: {problem}");
                        }
                        let dirs: Vec<String> = w
                            .watched()
                            .iter()
                            .map(|(d, names)| format!("{}/{{{}}}", d.display(), names.join(",")))
                            .collect();
                        eprintln!(
                            "berth: watching {} and its imports: {}",
                            f.file.display(),
                            dirs.join(" ")
                        );
                        f.watcher = Some(w);
                    }
                    Err(e) => eprintln!(
                        "berth: warning: cannot watch {}: {e}; SIGHUP still reads it again",
                        f.file.display()
                    ),
                }
            }
            (Some(_), false) => {
                if let Some(w) = f.watcher.take() {
                    let _ = epoll::delete(&self.epoll, w.fd());
                }
                f.due = None;
                f.first = None;
                eprintln!("berth: no longer watching {}", f.file.display());
            }
            _ => {}
        }
    }

    /// The inotify fd is readable: a change to a watched file puts the read off until
    /// the files are quiet for [`QUIET`].
    pub(super) fn on_watch(&mut self) {
        let Some(f) = &mut self.follow else {
            return;
        };
        let Some(w) = &mut f.watcher else {
            return;
        };
        if !w.read() {
            return;
        }
        let now = Instant::now();
        let first = *f.first.get_or_insert(now);
        f.due = Some((now + QUIET).min(first + MAX_DELAY));
    }

    /// The host's `watch` option of a generation that now runs: watching follows it
    /// (`--watch` keeps it on). Returns what the switch reports about it.
    pub(super) fn host_watch_setting(&mut self, new: &berth_modules::Evaluation) -> Vec<String> {
        let on = host_watch(new);
        let Some(f) = &mut self.follow else {
            return Vec::new();
        };
        if f.host == on {
            return Vec::new();
        }
        f.host = on;
        let flag = f.flag;
        self.set_watching();
        vec![match (on, flag) {
            (true, _) => {
                "host: watch on: berth switches to each valid edit of its host file".into()
            }
            (false, true) => "host: watch off, but `berth up --watch` keeps watching".into(),
            (false, false) => "host: watch off: SIGHUP reads the host file again".into(),
        }]
    }

    /// Reads the host file again (`trigger`: `watch` or `sighup`) and switches to it
    /// when it is valid and differs from what runs; otherwise records why not.
    pub(super) fn reread(&mut self, trigger: &str) {
        let Some(f) = &mut self.follow else {
            return;
        };
        f.due = None;
        f.first = None;
        if self.shutting_down {
            return;
        }
        let file = f.file.clone();
        // A file being written in place (truncated, then written) is empty for a
        // moment, and an empty host file or import is valid: it would stop every
        // container it had. Watching waits for the next change; SIGHUP reads it.
        if trigger == "watch"
            && let Some(empty) = f
                .files
                .iter()
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 0))
        {
            eprintln!(
                "berth: watch: {} is empty (being written?); waiting for its next change (SIGHUP or `berth switch` applies it as it is)",
                empty.display()
            );
            return;
        }
        let gens = Generations::new(&self.setup.state_dir);
        let current = gens.current();
        let result = berth_modules::evaluate(&berth_config::FsSource, &file);
        let files = match &result {
            Ok(ev) => files_of(&file, &ev.tree.sources),
            Err(failure) => files_of(&file, &failure.tree.sources),
        };
        let refused = match result {
            Err(failure) => Some(super::not_valid(&file, &failure)),
            Ok(ev) => {
                if !ev.warnings.is_empty() {
                    eprint!(
                        "{}",
                        berth_config::diag::render_all(&ev.warnings, &ev.tree.sources, false)
                    );
                }
                let hash = ev.hash.to_hex().to_string();
                let unchanged = current
                    .and_then(|n| gens.meta(n).ok())
                    .is_some_and(|m| m.hash == hash);
                if unchanged {
                    eprintln!(
                        "berth: {trigger}: {} is what runs (generation {}); nothing to do",
                        file.display(),
                        current.unwrap_or_default()
                    );
                    None
                } else {
                    match self.switch_to(ev, &file, trigger, SwitchMode::default()) {
                        Response::Ok { message } => {
                            for line in message.unwrap_or_default().lines() {
                                if !line.trim().is_empty() {
                                    eprintln!("berth: {trigger}: {line}");
                                }
                            }
                            None
                        }
                        Response::Error { message } => Some(message),
                        other => Some(format!("unexpected result of the switch: {other:?}")),
                    }
                }
            }
        };
        let Some(f) = &mut self.follow else {
            return;
        };
        match refused {
            Some(message) => {
                eprintln!("berth: {trigger}: refused {}:", file.display());
                for line in message.lines() {
                    eprintln!("berth:   {}", line.trim_end());
                }
                eprintln!(
                    "berth: {trigger}: still running generation {}; nothing was touched",
                    current.map_or_else(|| "-".to_string(), |n| n.to_string())
                );
                f.rejected = Some(Rejection {
                    file: file.display().to_string(),
                    time: crate::generations::now(),
                    trigger: trigger.to_string(),
                    generation: current,
                    message,
                });
            }
            None => {
                if f.rejected.take().is_some() {
                    eprintln!(
                        "berth: {trigger}: {} is valid again; the rejection is cleared",
                        file.display()
                    );
                }
            }
        }
        // An import may have come or gone: watch what this read loaded. A file new to
        // the set may have changed between the read and its watch: one more read (a
        // no-op when it did not) closes that gap.
        let new_files = files.iter().any(|p| !f.files.contains(p));
        f.files = files;
        if let Some(w) = &mut f.watcher {
            for problem in w.arm(&f.files) {
                eprintln!("berth: warning: watch: {problem}");
            }
            if new_files {
                f.due = Some(Instant::now() + QUIET);
            }
        }
    }
}

/// The host's `watch` option.
pub fn host_watch(ev: &berth_modules::Evaluation) -> bool {
    ev.host()
        .get("watch")
        .and_then(berth_modules::Value::as_bool)
        .unwrap_or(false)
}

//! Generations: every configuration berth applied, kept under the state dir.
//!
//! ```text
//! STATE/generations/N/meta.json     number, hash, time, reason, root file, git commit
//! STATE/generations/N/sources/…     the host file and its imports, as they were
//! STATE/generations/N/evaluation.json  the evaluated host (`berth eval --json`)
//! STATE/current -> generations/N    what runs (or ran last)
//! STATE/booted  -> generations/N    what starts at boot
//! STATE/generations/started.json    the host file berth last started from, its hash
//! STATE/generations/confirm.json    a switch waiting for `berth confirm`
//! STATE/journal                     the switch in progress
//! ```
//!
//! A generation is written into a temporary directory and renamed into place, markers
//! are symlinks replaced by rename, each followed by an fsync of the directory: after a
//! crash a generation is complete or absent, and a marker names one or the other.
//! The sources keep their layout relative to each other, so a generation evaluates
//! again on its own ([`Generations::evaluate`]), whatever happened to the original files
//! since (an import by absolute path still reads the live file).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_config::FsSource;
use berth_modules::{Evaluation, Failure};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Git {
    pub commit: String,
    pub dirty: bool,
}

/// What `meta.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub number: u64,
    /// The generation hash of the evaluated host.
    pub hash: String,
    /// Seconds since the epoch.
    pub time: u64,
    /// `boot`, `switch` or `rollback`.
    pub reason: String,
    /// The root host file, relative to `sources/`.
    pub root: PathBuf,
    /// Where the root file was read from.
    pub origin: PathBuf,
    /// The commit and dirty flag when the root file is in a git checkout.
    pub git: Option<Git>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("no generation {0} in {1}")]
    Missing(u64, PathBuf),
    #[error("generation {0} ({1}) is damaged: {2}")]
    Damaged(u64, PathBuf, String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> GenerationError {
    let path = path.to_path_buf();
    move |source| GenerationError::Io { what, path, source }
}

/// The generations of one state dir.
#[derive(Debug, Clone)]
pub struct Generations {
    state: PathBuf,
}

impl Generations {
    pub fn new(state_dir: &Path) -> Generations {
        Generations {
            state: state_dir.to_path_buf(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.state.join("generations")
    }

    pub fn path(&self, n: u64) -> PathBuf {
        self.dir().join(n.to_string())
    }

    /// Every complete generation, oldest first.
    pub fn list(&self) -> Result<Vec<Meta>, GenerationError> {
        let dir = self.dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue; // temporaries of an interrupted write
            };
            out.push(self.meta(n)?);
        }
        out.sort_by_key(|m| m.number);
        Ok(out)
    }

    pub fn meta(&self, n: u64) -> Result<Meta, GenerationError> {
        let path = self.path(n).join("meta.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(GenerationError::Missing(n, self.dir()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_str(&text)
            .map_err(|e| GenerationError::Damaged(n, self.path(n), e.to_string()))
    }

    fn marker(&self, name: &str) -> Option<u64> {
        let target = fs::read_link(self.state.join(name)).ok()?;
        target.file_name()?.to_str()?.parse().ok()
    }

    /// The generation that runs (or ran last).
    pub fn current(&self) -> Option<u64> {
        self.marker("current")
    }

    /// The generation that starts at boot.
    pub fn booted(&self) -> Option<u64> {
        self.marker("booted")
    }

    fn set_marker(&self, name: &str, n: u64) -> Result<(), GenerationError> {
        let link = self.state.join(name);
        let tmp = self
            .state
            .join(format!(".{name}.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new("generations").join(n.to_string()), &tmp)
            .map_err(io_err("create", &tmp))?;
        fs::rename(&tmp, &link).map_err(io_err("replace", &link))?;
        sync_dir(&self.state)
    }

    pub fn set_current(&self, n: u64) -> Result<(), GenerationError> {
        self.set_marker("current", n)
    }

    pub fn set_booted(&self, n: u64) -> Result<(), GenerationError> {
        self.set_marker("booted", n)
    }

    /// Stores `ev` (read from `root`) as a new generation, or returns the current one
    /// when it has the same hash (applying the same host again is not a new generation).
    pub fn record(
        &self,
        ev: &Evaluation,
        root: &Path,
        reason: &str,
    ) -> Result<Meta, GenerationError> {
        let hash = ev.hash.to_hex().to_string();
        if let Some(cur) = self.current()
            && let Ok(meta) = self.meta(cur)
            && meta.hash == hash
        {
            return Ok(meta);
        }
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let number = self.list()?.last().map_or(1, |m| m.number + 1);
        let tmp = dir.join(format!(".tmp-{number}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let result = self.write(ev, root, reason, number, &hash, &tmp);
        let meta = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let path = self.path(number);
        fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
        sync_dir(&dir)?;
        Ok(meta)
    }

    fn write(
        &self,
        ev: &Evaluation,
        root: &Path,
        reason: &str,
        number: u64,
        hash: &str,
        tmp: &Path,
    ) -> Result<Meta, GenerationError> {
        let files: Vec<_> = ev.tree.sources.files().map(|(_, f)| f).collect();
        let base = common_dir(files.iter().map(|f| f.canonical.as_path()));
        let sources = tmp.join("sources");
        for f in &files {
            let rel = f.canonical.strip_prefix(&base).unwrap_or(&f.canonical);
            let dst = sources.join(rel.strip_prefix("/").unwrap_or(rel));
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            write_atomic(&dst, f.text.as_bytes()).map_err(io_err("write", &dst))?;
        }
        let origin = files
            .first()
            .map_or_else(|| root.to_path_buf(), |f| f.canonical.clone());
        let root_rel = origin.strip_prefix(&base).unwrap_or(&origin).to_path_buf();
        let mut json = Vec::new();
        berth_modules::canon::write_evaluation_json(ev, &mut json)
            .map_err(io_err("serialise", tmp))?;
        let eval_path = tmp.join("evaluation.json");
        write_atomic(&eval_path, &json).map_err(io_err("write", &eval_path))?;
        let meta = Meta {
            number,
            hash: hash.to_string(),
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            reason: reason.to_string(),
            root: root_rel,
            git: git_info(origin.parent().unwrap_or(Path::new("/"))),
            origin,
        };
        let meta_path = tmp.join("meta.json");
        let text = serde_json::to_vec_pretty(&meta).map_err(|e| GenerationError::Io {
            what: "serialise",
            path: meta_path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&meta_path, &text).map_err(io_err("write", &meta_path))?;
        sync_dir(tmp)?;
        Ok(meta)
    }

    /// Evaluates generation `n` again from its stored sources.
    pub fn evaluate(&self, n: u64) -> Result<Result<Evaluation, Failure>, GenerationError> {
        let meta = self.meta(n)?;
        let root = self.path(n).join("sources").join(&meta.root);
        if !root.exists() {
            return Err(GenerationError::Damaged(
                n,
                self.path(n),
                format!("its root file {} is missing", root.display()),
            ));
        }
        Ok(berth_modules::evaluate(&FsSource, &root))
    }

    /// Deletes all but the `keep` newest generations, never the current or booted one.
    /// Returns the numbers deleted.
    pub fn gc(&self, keep: usize) -> Result<Vec<u64>, GenerationError> {
        let all = self.list()?;
        let protected = [self.current(), self.booted()];
        let cut = all.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for m in &all[..cut] {
            if protected.contains(&Some(m.number)) {
                continue;
            }
            let path = self.path(m.number);
            // Renamed away first, so a crash never leaves a half-deleted generation
            // that `list` would read.
            let doomed = self.dir().join(format!(".gc-{}", m.number));
            fs::rename(&path, &doomed).map_err(io_err("rename", &path))?;
            fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?;
            removed.push(m.number);
        }
        sync_dir(&self.dir())?;
        Ok(removed)
    }
}

/// `STATE/generations/confirm.json`: a switch made with `--confirm-within` that
/// `berth confirm` has not kept yet. `current` names `generation` while `booted` still
/// names `previous`, so a reboot or a crash before the confirmation starts `previous`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub generation: u64,
    pub previous: u64,
    /// Seconds since the epoch after which berth switches back to `previous`.
    pub deadline: u64,
}

/// `STATE/journal`: a switch being applied. Written before its first step and after
/// each one; removed when every step is issued. Found at start, it means the switch was
/// interrupted; [`Generations::start`] resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub from: u64,
    pub to: u64,
    /// The steps, as `ACTION KIND NAME`, in the order they apply.
    pub steps: Vec<String>,
    /// How many of them are done.
    pub done: usize,
}

/// `STATE/generations/started.json`: the host file berth was last started with (or
/// that a switch last read from the same path), and its hash then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub file: PathBuf,
    pub hash: String,
}

/// What a starting berth runs: see [`Generations::start`].
pub struct Start {
    /// The generation that starts (`None` when the state dir cannot record one: FILE
    /// starts anyway and the report says why).
    pub generation: Option<u64>,
    pub evaluation: Evaluation,
    /// What was decided and why, one line each, for the log.
    pub report: Vec<String>,
}

impl std::fmt::Debug for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Start")
            .field("generation", &self.generation)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Generations {
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, GenerationError> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| GenerationError::Io {
                        what: "parse",
                        path: path.to_path_buf(),
                        source: io::Error::other(e),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", path)(e)),
        }
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), GenerationError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let text = serde_json::to_vec_pretty(value).map_err(|e| GenerationError::Io {
            what: "serialise",
            path: path.to_path_buf(),
            source: io::Error::other(e),
        })?;
        write_atomic(path, &text).map_err(io_err("write", path))
    }

    fn remove(&self, path: &Path) -> Result<(), GenerationError> {
        match fs::remove_file(path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("/"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", path)(e)),
        }
    }

    fn pending_path(&self) -> PathBuf {
        self.dir().join("confirm.json")
    }

    fn journal_path(&self) -> PathBuf {
        self.state.join("journal")
    }

    fn started_path(&self) -> PathBuf {
        self.dir().join("started.json")
    }

    pub fn pending(&self) -> Result<Option<Pending>, GenerationError> {
        self.read_json(&self.pending_path())
    }

    pub fn set_pending(&self, p: &Pending) -> Result<(), GenerationError> {
        self.write_json(&self.pending_path(), p)
    }

    pub fn clear_pending(&self) -> Result<(), GenerationError> {
        self.remove(&self.pending_path())
    }

    pub fn journal(&self) -> Result<Option<Journal>, GenerationError> {
        self.read_json(&self.journal_path())
    }

    pub fn write_journal(&self, j: &Journal) -> Result<(), GenerationError> {
        self.write_json(&self.journal_path(), j)
    }

    pub fn clear_journal(&self) -> Result<(), GenerationError> {
        self.remove(&self.journal_path())
    }

    pub fn started(&self) -> Result<Option<Started>, GenerationError> {
        self.read_json(&self.started_path())
    }

    /// Remembers `file` (as berth was given it) and the hash it had.
    pub fn set_started(&self, file: &Path, hash: &str) -> Result<(), GenerationError> {
        let file = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        self.write_json(
            &self.started_path(),
            &Started {
                file,
                hash: hash.to_string(),
            },
        )
    }

    /// A switch read `file`: when it is the file berth was started with, its new hash
    /// is what berth has seen of it, so a restart does not take the file for new.
    pub fn note_read(&self, file: &Path, ev: &Evaluation) -> Result<(), GenerationError> {
        let file = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        match self.started()? {
            Some(s) if s.file == file => self.set_started(&file, &ev.hash.to_hex()),
            _ => Ok(()),
        }
    }

    /// The generation before `n` to go back to: the newest older one with another hash.
    pub fn previous(&self, n: u64) -> Result<Option<u64>, GenerationError> {
        let hash = self.meta(n)?.hash;
        Ok(self
            .list()?
            .into_iter()
            .rev()
            .find(|m| m.number < n && m.hash != hash)
            .map(|m| m.number))
    }

    /// Decides what a starting berth (`berth up FILE`, or PID 1 with the host file of its
    /// image) runs, given FILE's evaluation:
    ///
    /// - FILE is new (another file, or its hash changed since berth last read it): FILE
    ///   wins. It is recorded (reason `reason`) and marked current and booted.
    /// - FILE is as berth last read it: the generation marked `booted` starts, which may
    ///   be a later `berth switch` or `berth rollback`. When it no longer evaluates, the
    ///   newest generation before it that does (see [`Generations::last_good`]); when
    ///   none does, FILE; the report says why, with the diagnostics.
    ///
    /// Either way an interrupted switch (the journal) and an unconfirmed one
    /// (`confirm.json`) are resolved and cleared, and the report says how: finished when
    /// what starts is the switch's target, rolled back when it is its origin, superseded
    /// otherwise. A switch still waiting for `berth confirm` is never carried over: its
    /// generation is not `booted`, so the previous one starts (its deadline cannot have
    /// been met by a berth that is no longer running).
    pub fn start(&self, file: &Path, ev: Evaluation, reason: &str) -> Start {
        let mut report = Vec::new();
        let canonical = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let hash = ev.hash.to_hex().to_string();
        let seen = match self.started() {
            Ok(s) => s.is_some_and(|s| s.file == canonical && s.hash == hash),
            Err(e) => {
                report.push(format!("warning: {e}"));
                false
            }
        };
        let chosen = if seen {
            let good = self.last_good(&mut report);
            if good.is_none() && self.booted().is_some() {
                report.push(format!(
                    "warning: no generation evaluates any more; starting {}",
                    file.display()
                ));
            }
            good
        } else {
            None
        };
        let (generation, evaluation) = match chosen {
            Some((b, bev)) => (Some(b), bev),
            None => match self.record(&ev, file, reason).and_then(|m| {
                self.set_booted(m.number)?;
                Ok(m.number)
            }) {
                Ok(n) => (Some(n), ev),
                Err(e) => {
                    report.push(format!("warning: could not record the generation: {e}"));
                    (None, ev)
                }
            },
        };
        if let Some(n) = generation {
            report.push(format!(
                "generation {n} ({})",
                &evaluation.hash.to_hex()[..12]
            ));
            if let Err(e) = self.resolve(n, Some((file, &hash)), &mut report) {
                report.push(format!("warning: {e}"));
            }
        }
        Start {
            generation,
            evaluation,
            report,
        }
    }

    /// What a starting berth runs when its host file does not evaluate (PID 1 booting
    /// an image whose host is broken): the last good generation (see
    /// [`Generations::last_good`]), with an interrupted or unconfirmed switch resolved
    /// as [`Generations::start`] does. `Err`: no generation evaluates; the report says
    /// why.
    pub fn start_last_good(&self) -> Result<Start, Vec<String>> {
        let mut report = Vec::new();
        let Some((n, evaluation)) = self.last_good(&mut report) else {
            report.push(format!(
                "no generation in {} evaluates",
                self.dir().display()
            ));
            return Err(report);
        };
        report.push(format!(
            "starting generation {n} ({}), the last good one",
            &evaluation.hash.to_hex()[..12]
        ));
        if let Err(e) = self.resolve(n, None, &mut report) {
            report.push(format!("warning: {e}"));
        }
        Ok(Start {
            generation: Some(n),
            evaluation,
            report,
        })
    }

    /// The generation to start from the state dir alone: the one marked `booted`, or,
    /// when it does not evaluate (damaged, or written by a berth whose schema differs),
    /// the newest one before it that does. Each one passed over is in the report with
    /// its diagnostics.
    pub fn last_good(&self, report: &mut Vec<String>) -> Option<(u64, Evaluation)> {
        let booted = self.booted();
        let older: Vec<u64> = match self.list() {
            Ok(all) => all
                .iter()
                .rev()
                .map(|m| m.number)
                .filter(|&n| booted.is_none_or(|b| n < b))
                .collect(),
            Err(e) => {
                report.push(format!("warning: {e}"));
                Vec::new()
            }
        };
        let mut failed_hashes = Vec::new();
        for n in booted.into_iter().chain(older) {
            let label = if Some(n) == booted {
                format!("generation {n} (booted)")
            } else {
                format!("generation {n}")
            };
            // A generation with the hash of one that failed fails the same way.
            match self.meta(n) {
                Ok(m) if failed_hashes.contains(&m.hash) => continue,
                Ok(m) => failed_hashes.push(m.hash),
                Err(_) => {}
            }
            match self.evaluate(n) {
                Ok(Ok(ev)) => return Some((n, ev)),
                Ok(Err(f)) => {
                    report.push(format!(
                        "warning: {label} does not evaluate ({} error(s)):",
                        f.diagnostics.len()
                    ));
                    report.push(
                        berth_config::diag::render_all(&f.diagnostics, &f.tree.sources, false)
                            .trim_end()
                            .to_string(),
                    );
                }
                Err(e) => report.push(format!("warning: {label}: {e}")),
            }
        }
        None
    }

    /// Marks `number` current, resolves an interrupted or unconfirmed switch (see
    /// [`Generations::start`]) and remembers `file` as read with its hash (when it was
    /// read at all).
    fn resolve(
        &self,
        number: u64,
        file: Option<(&Path, &str)>,
        report: &mut Vec<String>,
    ) -> Result<(), GenerationError> {
        self.set_current(number)?;
        let started_hash = self.meta(number)?.hash;
        if let Some(j) = self.journal()? {
            let hash_of = |n: u64| self.meta(n).map(|m| m.hash).ok();
            let what = format!(
                "the switch from generation {} to {} was interrupted after {} of {} steps",
                j.from,
                j.to,
                j.done,
                j.steps.len()
            );
            report.push(if hash_of(j.to).as_deref() == Some(started_hash.as_str()) {
                format!("{what}; finished it: generation {number} starts")
            } else if hash_of(j.from).as_deref() == Some(started_hash.as_str()) {
                format!("{what}; rolled it back: generation {number} starts")
            } else {
                match file {
                    Some((f, _)) => {
                        format!(
                            "{what}; {} (generation {number}) starts instead",
                            f.display()
                        )
                    }
                    None => format!("{what}; generation {number} starts instead"),
                }
            });
            self.clear_journal()?;
        }
        if let Some(p) = self.pending()? {
            report.push(format!(
                "generation {} was not confirmed before berth stopped; generation {number} starts",
                p.generation
            ));
            self.clear_pending()?;
        }
        match file {
            Some((f, hash)) => self.set_started(f, hash),
            None => Ok(()),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), GenerationError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("sync", dir))
}

/// The deepest directory containing every path.
fn common_dir<'a>(mut paths: impl Iterator<Item = &'a Path>) -> PathBuf {
    let Some(first) = paths.next() else {
        return PathBuf::from("/");
    };
    let mut base = first.parent().unwrap_or(Path::new("/")).to_path_buf();
    for p in paths {
        while !p.starts_with(&base) {
            if !base.pop() {
                break;
            }
        }
    }
    base
}

/// The commit and dirty flag of the git checkout holding `dir`, if it is one and git
/// is installed.
fn git_info(dir: &Path) -> Option<Git> {
    // Only a checkout is asked (no git process for a host file outside one).
    if !dir.ancestors().any(|d| d.join(".git").exists()) {
        return None;
    }
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty = !run(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Some(Git { commit, dirty })
}

/// `2026-11-23 15:04:05` (UTC) for seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn host(dir: &Path, mem: &str) -> PathBuf {
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::write(
            dir.join("lib/base.kdl"),
            "container base {\n    rootfs host\n    exec \"/bin/true\"\n}\n",
        )
        .unwrap();
        let root = dir.join("host.kdl");
        fs::write(
            &root,
            format!(
                "host h\nimport \"lib/base.kdl\"\ncontainer db {{\n    rootfs host\n    exec \"/bin/db\"\n    limits {{\n        memory \"{mem}\"\n    }}\n}}\n"
            ),
        )
        .unwrap();
        root
    }

    fn eval(root: &Path) -> Evaluation {
        berth_modules::evaluate(&FsSource, root).unwrap()
    }

    #[test]
    fn record_list_markers_evaluate_and_gc() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("cfg");
        let g = Generations::new(&tmp.path().join("state"));
        assert!(g.list().unwrap().is_empty());
        assert_eq!(g.current(), None);

        let root = host(&cfg, "64M");
        let ev1 = eval(&root);
        let m1 = g.record(&ev1, &root, "boot").unwrap();
        assert_eq!(m1.number, 1);
        g.set_current(1).unwrap();
        g.set_booted(1).unwrap();
        // The same host again is the same generation.
        assert_eq!(g.record(&eval(&root), &root, "switch").unwrap().number, 1);

        let root = host(&cfg, "128M");
        let ev2 = eval(&root);
        let m2 = g.record(&ev2, &root, "switch").unwrap();
        assert_eq!(m2.number, 2);
        g.set_current(2).unwrap();
        assert_eq!((g.current(), g.booted()), (Some(2), Some(1)));
        assert_eq!(m2.hash, ev2.hash.to_hex().to_string());

        // The stored sources evaluate to the same hash, even after the originals
        // changed and their import is gone.
        fs::remove_dir_all(&cfg).unwrap();
        let again = g.evaluate(1).unwrap().unwrap();
        assert_eq!(again.hash, ev1.hash);
        assert!(g.path(2).join("evaluation.json").exists());

        let root = host(&cfg, "256M");
        g.record(&eval(&root), &root, "switch").unwrap();
        g.set_current(3).unwrap();
        // keep 1: 3 is newest (and current), 1 is booted, so only 2 goes.
        assert_eq!(g.gc(1).unwrap(), vec![2]);
        let left: Vec<u64> = g.list().unwrap().iter().map(|m| m.number).collect();
        assert_eq!(left, vec![1, 3]);
        assert!(matches!(g.meta(2), Err(GenerationError::Missing(2, _))));
    }

    #[test]
    fn start_takes_a_new_file_else_the_booted_generation_and_resolves_interruptions() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("cfg");
        let g = Generations::new(&tmp.path().join("state"));
        let root = host(&cfg, "64M");
        // First start: FILE is new.
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.generation, Some(1));
        assert_eq!((g.current(), g.booted()), (Some(1), Some(1)));

        // A switch to another file made generation 2 the boot default, then berth died
        // mid-switch: the unchanged FILE starts generation 2 and says it finished.
        let other = cfg.join("other.kdl");
        fs::write(
            &other,
            "container x {\n    rootfs host\n    exec \"/bin/x\"\n}\n",
        )
        .unwrap();
        let m2 = g.record(&eval(&other), &other, "switch").unwrap();
        g.set_booted(m2.number).unwrap();
        let j = Journal {
            from: 1,
            to: 2,
            steps: vec!["create container x".into(), "remove container db".into()],
            done: 1,
        };
        g.write_journal(&j).unwrap();
        assert_eq!(g.journal().unwrap(), Some(j));
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.generation, Some(2));
        assert_eq!(s.evaluation.hash, eval(&other).hash);
        assert!(
            s.report.iter().any(|l| l
                == "the switch from generation 1 to 2 was interrupted after 1 of 2 steps; finished it: generation 2 starts"),
            "{:?}",
            s.report
        );
        assert_eq!(g.journal().unwrap(), None);

        // An unconfirmed switch is dropped: `booted` still names the one before.
        g.set_pending(&Pending {
            generation: 3,
            previous: 2,
            deadline: now() + 600,
        })
        .unwrap();
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.generation, Some(2));
        assert!(
            s.report
                .iter()
                .any(|l| l.contains("generation 3 was not confirmed"))
        );
        assert_eq!(g.pending().unwrap(), None);

        // An edited FILE wins over the boot default.
        let root = host(&cfg, "96M");
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.generation, Some(3));
        assert_eq!((g.current(), g.booted()), (Some(3), Some(3)));
        assert_eq!(g.previous(3).unwrap(), Some(2));
    }

    #[test]
    fn the_last_good_generation_when_the_file_or_the_booted_one_does_not_evaluate() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("cfg");
        let g = Generations::new(&tmp.path().join("state"));
        let root = host(&cfg, "64M");
        assert_eq!(g.start(&root, eval(&root), "boot").generation, Some(1));
        let root = host(&cfg, "128M");
        assert_eq!(g.start(&root, eval(&root), "boot").generation, Some(2));
        // FILE broken: the booted generation starts, an unconfirmed switch is dropped,
        // and FILE is not taken as read.
        g.set_pending(&Pending {
            generation: 3,
            previous: 2,
            deadline: now() + 600,
        })
        .unwrap();
        let started = g.started().unwrap();
        let s = g.start_last_good().unwrap();
        assert_eq!(s.generation, Some(2));
        assert!(
            s.report
                .iter()
                .any(|l| l.contains("generation 3 was not confirmed")),
            "{:?}",
            s.report
        );
        assert_eq!(g.pending().unwrap(), None);
        assert_eq!(g.started().unwrap(), started);

        // The booted generation no longer evaluates: the one before it starts, and the
        // report carries the diagnostics.
        fs::write(
            g.path(2).join("sources/host.kdl"),
            "container db {\n    rootfs host\n    exec \"/bin/db\"\n    limits {\n        memory \"lots\"\n    }\n}\n",
        )
        .unwrap();
        let s = g.start_last_good().unwrap();
        assert_eq!(s.generation, Some(1));
        assert_eq!(g.current(), Some(1));
        let text = s.report.join("\n");
        assert!(
            text.contains("generation 2 (booted) does not evaluate") && text.contains("host.kdl:5"),
            "{text}"
        );
        // The same through `start` with an unchanged FILE.
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.generation, Some(1));
        // Nothing evaluates: no generation to start.
        fs::write(g.path(1).join("sources/host.kdl"), "container {").unwrap();
        let report = g.start_last_good().unwrap_err();
        assert!(
            report.last().unwrap().contains("no generation in"),
            "{report:?}"
        );
        // ... and `start` falls back to FILE itself.
        let s = g.start(&root, eval(&root), "boot");
        assert_eq!(s.evaluation.hash, eval(&root).hash);
        assert_eq!(s.generation, Some(3));
    }

    #[test]
    fn a_git_checkout_records_its_commit_and_dirty_flag() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("cfg");
        let root = host(&cfg, "64M");
        assert_eq!(git_info(&cfg), None, "not a checkout");
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(&cfg)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .output()
                .expect("git (the test command installs it)")
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "host"]);
        let g = Generations::new(&tmp.path().join("state"));
        let m = g.record(&eval(&root), &root, "boot").unwrap();
        let info = m.git.unwrap();
        assert_eq!(info.commit.len(), 40);
        assert!(!info.dirty);
        host(&cfg, "128M");
        assert!(git_info(&cfg).unwrap().dirty);
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_446_245), "2026-11-23 15:04:05");
    }
}

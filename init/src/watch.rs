//! Watching the host files (`berth up --watch`, `host { watch #true }`): an inotify fd
//! the supervisor's epoll loop reads, telling it when the host file or one of its
//! imports may have changed. Debouncing and re-reading are the supervisor's
//! ([`crate::supervisor`]); this only knows which files matter.
//!
//! Why a bare inotify fd rather than the `notify` crate: `notify`'s Linux backend runs
//! its own thread with its own event loop and hands events over a channel, so PID 1
//! would gain a thread (and the channel's wake-ups) for what is one more fd in the epoll
//! set berth already has. Here the fd sits in that set: no thread, no timer, no wake-up
//! while nothing changes, and a few hundred lines less in the binary.
//!
//! Directories are watched, not the files themselves: an editor saves by writing a
//! temporary file and renaming it over the old one (and `git checkout` does the same),
//! which would leave a watch on the old file's inode seeing nothing more. A watch on the
//! directory sees the rename (`IN_MOVED_TO` with the file's name) and every later write,
//! so it needs no re-arming after a save; events for other names in the directory are
//! ignored. The set of directories is re-armed ([`Watcher::arm`]) after every re-read,
//! because an import may have been added or removed, and when a watched directory goes
//! away (`IN_IGNORED`: deleted, renamed over, unmounted), which is also reported as a
//! change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// What a directory is watched for: anything that can change what reading one of its
/// files gives (writes, renames in and out, creation, deletion, mode changes), and the
/// directory itself going away.
fn dir_flags() -> WatchFlags {
    WatchFlags::CLOSE_WRITE
        | WatchFlags::MODIFY
        | WatchFlags::ATTRIB
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR
}

/// An inotify instance watching the directories of a set of files.
#[derive(Debug)]
pub struct Watcher {
    fd: OwnedFd,
    /// Watch descriptor → the directory and the names in it that matter.
    dirs: HashMap<i32, (PathBuf, BTreeSet<OsString>)>,
}

impl Watcher {
    pub fn new() -> io::Result<Watcher> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        Ok(Watcher {
            fd,
            dirs: HashMap::new(),
        })
    }

    /// The fd to put in an epoll set: readable when [`Watcher::read`] has events.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Watches the directories of `files` (each as given, made absolute, and as the
    /// file it resolves to, so a symlinked host file is followed both ways) and stops
    /// watching any other. Returns the directories that could not be watched, with why.
    pub fn arm(&mut self, files: &[PathBuf]) -> Vec<String> {
        let mut wanted: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for file in files {
            let mut paths = vec![std::path::absolute(file).unwrap_or_else(|_| file.clone())];
            if let Ok(c) = std::fs::canonicalize(file)
                && !paths.contains(&c)
            {
                paths.push(c);
            }
            for path in paths {
                if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                    wanted
                        .entry(dir.to_path_buf())
                        .or_default()
                        .insert(name.to_os_string());
                }
            }
        }
        let mut problems = Vec::new();
        let mut dirs: HashMap<i32, (PathBuf, BTreeSet<OsString>)> = HashMap::new();
        for (dir, names) in wanted {
            match inotify::add_watch(&self.fd, &dir, dir_flags()) {
                // Two paths of one directory (a symlink) share a watch descriptor.
                Ok(wd) => dirs
                    .entry(wd)
                    .or_insert_with(|| (dir.clone(), BTreeSet::new()))
                    .1
                    .extend(names),
                Err(e) => problems.push(format!(
                    "cannot watch {}: {}",
                    dir.display(),
                    io::Error::from(e)
                )),
            }
        }
        for wd in self.dirs.keys() {
            if !dirs.contains_key(wd) {
                // The directory may be gone already (its watch with it): nothing to do.
                let _ = inotify::remove_watch(&self.fd, *wd);
            }
        }
        self.dirs = dirs;
        problems
    }

    /// The directories watched, each with the names that matter in it.
    pub fn watched(&self) -> Vec<(PathBuf, Vec<String>)> {
        let mut v: Vec<_> = self
            .dirs
            .values()
            .map(|(d, names)| {
                (
                    d.clone(),
                    names
                        .iter()
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Reads every pending event. True if one may have changed a watched file: an event
    /// for its name, its directory going away, or a lost event queue (overflow).
    pub fn read(&mut self) -> bool {
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut changed = false;
        let mut gone = Vec::new();
        loop {
            let ev = match reader.next() {
                Ok(ev) => ev,
                Err(Errno::INTR) => continue,
                // AGAIN: drained. Anything else: nothing more to read now either.
                Err(_) => break,
            };
            let flags = ev.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                changed = true;
                continue;
            }
            let Some((_, names)) = self.dirs.get(&ev.wd()) else {
                continue;
            };
            if flags.intersects(ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF)
            {
                if flags.contains(ReadFlags::IGNORED) {
                    gone.push(ev.wd());
                }
                changed = true;
                continue;
            }
            if let Some(name) = ev.file_name()
                && names.contains(std::ffi::OsStr::from_bytes(name.to_bytes()))
            {
                changed = true;
            }
        }
        for wd in gone {
            self.dirs.remove(&wd);
        }
        changed
    }
}

/// The files to watch for a host read from `root`: the root as given and every file
/// the read loaded (its imports), even when it failed to evaluate.
pub fn files_of(root: &Path, sources: &berth_config::source::SourceMap) -> Vec<PathBuf> {
    let mut files = vec![root.to_path_buf()];
    for (_, f) in sources.files() {
        if !files.contains(&f.canonical) {
            files.push(f.canonical.clone());
        }
    }
    files
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("berth-watch-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sees_writes_and_renames_of_watched_names_only() {
        let d = tempdir("names");
        let host = d.join("host.kdl");
        std::fs::write(&host, "host a\n").unwrap();
        let mut w = Watcher::new().unwrap();
        assert!(w.arm(std::slice::from_ref(&host)).is_empty());
        assert!(!w.read(), "nothing happened yet");

        // Another file in the same directory: ignored.
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        assert!(!w.read());

        // A plain write.
        std::fs::write(&host, "host b\n").unwrap();
        assert!(w.read());

        // An editor's save: a temporary file renamed over the host file, twice (the
        // directory watch survives the first replacement).
        for text in ["host c\n", "host d\n"] {
            let tmp = d.join(".host.kdl.swp");
            std::fs::write(&tmp, text).unwrap();
            assert!(!w.read(), "the temporary file is not watched");
            std::fs::rename(&tmp, &host).unwrap();
            assert!(w.read(), "rename over host.kdl");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rearming_follows_the_import_set() {
        let d = tempdir("rearm");
        let sub = d.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let host = d.join("host.kdl");
        let import = sub.join("base.kdl");
        std::fs::write(&host, "").unwrap();
        std::fs::write(&import, "").unwrap();
        let mut w = Watcher::new().unwrap();
        assert!(w.arm(std::slice::from_ref(&host)).is_empty());
        std::fs::write(&import, "x").unwrap();
        assert!(!w.read(), "sub/ is not watched before the import exists");

        assert!(w.arm(&[host.clone(), import.clone()]).is_empty());
        assert_eq!(w.watched().len(), 2);
        std::fs::write(&import, "y").unwrap();
        assert!(w.read(), "the new import is watched");

        // Dropped from the set: its directory is no longer watched.
        assert!(w.arm(std::slice::from_ref(&host)).is_empty());
        let _ = w.read();
        std::fs::write(&import, "z").unwrap();
        assert!(!w.read());

        // A watched directory that disappears counts as a change.
        assert!(w.arm(&[host.clone(), import.clone()]).is_empty());
        std::fs::remove_dir_all(&sub).unwrap();
        assert!(w.read());
        let _ = std::fs::remove_dir_all(&d);
    }
}

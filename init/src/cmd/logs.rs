//! `berth logs NAME [-f] [-n N]`: the last lines of a container's log, read from the
//! files berth writes (`LOGDIR/NAME.log`, rotated to `NAME.log.1` … by
//! [`crate::logs::LogWriter`]), and with `-f` what is appended after, across rotations.
//!
//! The log directory comes from the running berth (`Info`), or from `--log-dir` (logs
//! stay readable after berth stopped).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify;
use rustix::io::Errno;

use super::ctl::{self, fail};
use crate::control::proto::{Request, Response};
use crate::control::{Client, ControlError};

/// Lines printed unless `-n` says otherwise.
pub const DEFAULT_LINES: usize = 100;
/// Bytes read per step when reading a file backwards.
const CHUNK: u64 = 64 * 1024;
/// How often `-f` looks at the file even without an inotify event (and the only way
/// when inotify is unavailable).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(1000);
const FALLBACK_INTERVAL: Duration = Duration::from_millis(250);

/// `berth logs`.
pub fn logs(
    socket: &Path,
    log_dir: Option<&Path>,
    name: &str,
    follow: bool,
    lines: usize,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return fail(err, &format!("invalid container name {name:?}"));
    }
    let mut known = None;
    let dir = match log_dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            match Client::connect(socket).and_then(|mut c| c.call(&Request::Info).map(|r| (c, r))) {
                Ok((mut client, Response::Info { log_dir, .. })) => {
                    // Only to say "no such container" rather than print nothing; logs of a
                    // container that is gone from the config are still shown.
                    if let Ok(Response::Status { containers, .. }) = client.call(&Request::Status) {
                        known = Some(containers.iter().any(|c| c.name == name));
                    }
                    PathBuf::from(log_dir)
                }
                Ok((_, Response::Error { message })) => return fail(err, &message),
                Ok((_, other)) => return ctl::unexpected(err, &other),
                Err(e @ ControlError::NotRunning { .. }) => {
                    return fail(
                        err,
                        &format!("{e}; pass --log-dir DIR to read the logs without it"),
                    );
                }
                Err(e) => return fail(err, &e.to_string()),
            }
        }
    };

    let tail = match tail(&dir, name, lines) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                err,
                &format!("cannot read the logs of {name} in {}: {e}", dir.display()),
            );
        }
    };
    if !tail.found {
        if known == Some(false) {
            return fail(
                err,
                &format!(
                    "no container `{name}` (and no logs for it in {})",
                    dir.display()
                ),
            );
        }
        if known.is_none() && !follow {
            return fail(err, &format!("no logs for {name} in {}", dir.display()));
        }
    }
    for line in &tail.lines {
        if out.write_all(line).is_err() {
            return 0;
        }
    }
    if out.flush().is_err() || !follow {
        return 0;
    }
    let mut follower = tail.follower;
    match follow_loop(&dir, &mut follower, out) {
        Ok(()) => 0,
        Err(e) => fail(err, &format!("following {}: {e}", follower.path.display())),
    }
}

/// Prints what is appended until the output goes away (EPIPE: `| head`) or an error.
fn follow_loop(dir: &Path, follower: &mut Follower, out: &mut dyn Write) -> io::Result<()> {
    let watch = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .ok()
        .filter(|fd| {
            let flags = inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::MOVED_FROM
                | inotify::WatchFlags::DELETE
                | inotify::WatchFlags::CLOSE_WRITE;
            inotify::add_watch(fd, dir, flags).is_ok()
        });
    loop {
        let data = follower.poll()?;
        if !data.is_empty() {
            match out.write_all(&data).and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        match &watch {
            Some(fd) => {
                let spec = Timespec {
                    tv_sec: FOLLOW_INTERVAL.as_secs() as i64,
                    tv_nsec: i64::from(FOLLOW_INTERVAL.subsec_nanos()),
                };
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                match rustix::event::poll(&mut fds, Some(&spec)) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
                // The events only say "look again"; drain them.
                let mut buf = [0u8; 4096];
                while let Ok(n) = rustix::io::read(fd, &mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            }
            None => std::thread::sleep(FALLBACK_INTERVAL),
        }
    }
}

/// What `tail` found: the lines (oldest first, each ending in `\n`) and where to follow.
#[derive(Debug)]
pub struct Tail {
    pub lines: Vec<Vec<u8>>,
    /// Any log file of the container exists.
    pub found: bool,
    /// Continues right after the last line returned.
    pub follower: Follower,
}

/// The last `want` lines of `dir/NAME.log`, reaching into `NAME.log.1`, `.2` … only
/// when the current file has fewer.
pub fn tail(dir: &Path, name: &str, want: usize) -> io::Result<Tail> {
    let path = dir.join(format!("{name}.log"));
    let mut lines = Vec::new();
    let mut found = false;
    let (file, offset) = match File::open(&path) {
        Ok(file) => {
            found = true;
            let size = file.metadata()?.len();
            let (last, end) = tail_file(&file, size, want)?;
            lines = last;
            (Some(file), end)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0),
        Err(e) => return Err(e),
    };
    let current = match &file {
        Some(f) => Some(identity(&f.metadata()?)),
        None => None,
    };
    let mut n = 1;
    while lines.len() < want {
        let rotated = dir.join(format!("{name}.log.{n}"));
        n += 1;
        let older = match File::open(&rotated) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        };
        found = true;
        let meta = older.metadata()?;
        // Rotated while we were reading: `.1` is the file already read.
        if Some(identity(&meta)) == current {
            continue;
        }
        let (mut more, _) = tail_file(&older, meta.len(), want - lines.len())?;
        more.append(&mut lines);
        lines = more;
    }
    Ok(Tail {
        lines,
        found,
        follower: Follower {
            path,
            file,
            offset,
            partial: Vec::new(),
        },
    })
}

fn identity(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The last `want` complete lines of the first `size` bytes of `file` (a partial line at
/// the end is left out), and the offset right after the last complete line.
fn tail_file(file: &File, size: u64, want: usize) -> io::Result<(Vec<Vec<u8>>, u64)> {
    let mut data: Vec<u8> = Vec::new();
    let mut start = size;
    let mut newlines = 0;
    // Enough once there is one newline more than lines wanted (it ends the line before
    // the first one kept), or the whole file is read.
    while start > 0 && newlines <= want {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - from) as usize];
        read_exact_at(file, &mut chunk, from)?;
        newlines += chunk.iter().filter(|&&b| b == b'\n').count();
        chunk.extend_from_slice(&data);
        data = chunk;
        start = from;
    }
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = start + complete as u64;
    let mut lines: Vec<Vec<u8>> = data[..complete]
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if start > 0 && !lines.is_empty() {
        // Starts mid-line: the rest of a line before the part read.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(want);
    lines.drain(..skip);
    Ok((lines, end))
}

/// Like `FileExt::read_exact_at`, but a file that shrank (truncated) reads as zeros
/// instead of failing.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[got..].fill(0);
    Ok(())
}

/// Reads what is appended to a log file, following it when it is rotated (renamed away
/// and replaced by a new file) or truncated.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `path` from its current end (or from its start once it appears).
    pub fn new(path: impl Into<PathBuf>) -> io::Result<Follower> {
        let path = path.into();
        let (file, offset) = match File::open(&path) {
            Ok(f) => {
                let len = f.metadata()?.len();
                (Some(f), len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0),
            Err(e) => return Err(e),
        };
        Ok(Follower {
            path,
            file,
            offset,
            partial: Vec::new(),
        })
    }

    /// The complete lines appended since the last call, in order, across rotations.
    pub fn poll(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Bounded: a file replaced over and over is caught up with on the next call.
        for _ in 0..16 {
            self.drain(&mut out)?;
            let replaced = match fs::metadata(&self.path) {
                Ok(meta) => match &self.file {
                    None => true,
                    Some(f) => identity(&f.metadata()?) != identity(&meta),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            if !replaced {
                break;
            }
            // What was written to the old file between the drain above and its rename.
            self.drain(&mut out)?;
            if !self.partial.is_empty() {
                out.append(&mut self.partial);
                out.push(b'\n');
            }
            match File::open(&self.path) {
                Ok(f) => {
                    self.file = Some(f);
                    self.offset = 0;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.file = None;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Reads the current file from `offset` to its end; moves complete lines to `out`.
    fn drain(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if file.metadata()?.len() < self.offset {
            // Truncated in place: start over.
            self.offset = 0;
            self.partial.clear();
        }
        let mut buf = vec![0u8; CHUNK as usize];
        loop {
            let n = match file.read_at(&mut buf, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            self.partial.extend_from_slice(&buf[..n]);
            if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
                out.extend(self.partial.drain(..=end));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::logs::{LogWriter, Stream};

    fn text(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                String::from_utf8_lossy(l)
                    .trim_end()
                    .rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    fn numbers(from: usize, to: usize) -> Vec<String> {
        (from..to).map(|i| format!("line{i}")).collect()
    }

    /// A log of lines `line0` … with small files, so it rotates every ~4 lines.
    fn rotated_log(dir: &Path, count: usize, keep: u32) -> LogWriter {
        let mut w = LogWriter::open(dir, "web", 150, keep).unwrap();
        for i in 0..count {
            w.write(Stream::Stdout, format!("line{i}\n").as_bytes())
                .unwrap();
        }
        w
    }

    #[test]
    fn tail_reads_rotated_files_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        rotated_log(dir.path(), 40, 3);
        assert!(dir.path().join("web.log.3").exists());
        let t = tail(dir.path(), "web", 2).unwrap();
        assert_eq!(text(&t.lines), numbers(38, 40));
        // More than the current file has: older files fill in, oldest first.
        let t = tail(dir.path(), "web", 9).unwrap();
        assert_eq!(text(&t.lines), numbers(31, 40));
        // More than all files hold: everything kept, in order.
        let t = tail(dir.path(), "web", 1000).unwrap();
        let all = text(&t.lines);
        assert!(all.len() > 10 && all.len() < 40, "{}", all.len());
        assert_eq!(all, numbers(40 - all.len(), 40));
        assert!(
            t.lines
                .iter()
                .all(|l| l.ends_with(b"\n") && l.windows(4).any(|w| w == b"out "))
        );
        assert!(tail(dir.path(), "web", 0).unwrap().lines.is_empty());
    }

    #[test]
    fn tail_leaves_out_a_partial_last_line_and_reads_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(100_000);
        fs::write(dir.path().join("db.log"), format!("a\n{long}\nb\nc\nhalf")).unwrap();
        let t = tail(dir.path(), "db", 3).unwrap();
        let got: Vec<String> = t
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(got, [format!("{long}\n"), "b\n".into(), "c\n".into()]);
        assert_eq!(tail(dir.path(), "db", 10).unwrap().lines.len(), 4);
        // Following starts at the partial line, so it is printed once complete.
        let mut f = t.follower;
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("db.log"))
            .unwrap()
            .write_all(b" done\n")
            .unwrap();
        assert_eq!(f.poll().unwrap(), b"half done\n");
    }

    #[test]
    fn missing_logs_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let t = tail(dir.path(), "nope", 10).unwrap();
        assert!(!t.found && t.lines.is_empty());
    }

    #[test]
    fn follow_survives_rotation_without_losing_or_repeating_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = rotated_log(dir.path(), 3, 2);
        let t = tail(dir.path(), "web", 100).unwrap();
        assert_eq!(text(&t.lines), numbers(0, 3));
        let mut follower = t.follower;
        let mut seen = Vec::new();
        for i in 3..60 {
            w.write(Stream::Stdout, format!("line{i}\n").as_bytes())
                .unwrap();
            // Poll now and then, so several rotations happen between some polls (but
            // fewer than `keep`, or lines are gone before anyone could read them).
            if i % 3 == 0 {
                seen.extend_from_slice(&follower.poll().unwrap());
            }
        }
        seen.extend_from_slice(&follower.poll().unwrap());
        let lines: Vec<Vec<u8>> = seen
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(text(&lines), numbers(3, 60));
    }

    #[test]
    fn follow_waits_for_the_file_and_handles_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.log");
        let mut f = Follower::new(&path).unwrap();
        assert!(f.poll().unwrap().is_empty());
        fs::write(&path, "one\n").unwrap();
        assert_eq!(f.poll().unwrap(), b"one\n");
        fs::write(&path, "").unwrap();
        assert!(f.poll().unwrap().is_empty());
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(f.poll().unwrap(), b"two\n");
    }
}

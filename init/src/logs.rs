//! Container logs: lines from a container's stdout and stderr, each prefixed with a UTC
//! timestamp and the stream, appended to `logs/NAME.log` and rotated by size
//! (`NAME.log.1` … `NAME.log.KEEP`). Disk use per container is bounded by
//! `max_size × (keep + 1)` plus one line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest line kept as one record; longer output is split, so a container that never
/// writes a newline cannot make berth buffer without bound.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
    keep: u32,
    /// A partial line per stream, waiting for its newline.
    pending: [Vec<u8>; 2],
    /// Records not yet written: one `write` per chunk of output, not one per line.
    out: Vec<u8>,
    /// The timestamp of the current chunk (all its lines were read at once).
    stamp: String,
}

impl LogWriter {
    /// Opens (appending to) `dir/NAME.log`.
    pub fn open(dir: &Path, name: &str, max_size: u64, keep: u32) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path,
            file: Some(file),
            size,
            max_size: max_size.max(1),
            keep,
            pending: [Vec::new(), Vec::new()],
            out: Vec::with_capacity(1 << 16),
            stamp: String::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes bytes read from a stream; writes every complete line.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        self.stamp = timestamp(SystemTime::now());
        let idx = stream as usize;
        while !data.is_empty() {
            let room = MAX_LINE - self.pending[idx].len();
            let (take, complete) = match data.iter().take(room).position(|&b| b == b'\n') {
                Some(nl) => (nl + 1, true),
                None if data.len() >= room => (room, true),
                None => (data.len(), false),
            };
            self.pending[idx].extend_from_slice(&data[..take]);
            data = &data[take..];
            if complete {
                let line = std::mem::take(&mut self.pending[idx]);
                self.record(stream, &line)?;
                // Keep the allocation for the next partial line.
                self.pending[idx] = line;
                self.pending[idx].clear();
            }
        }
        self.flush()
    }

    /// Writes what is left of partial lines (the stream closed).
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        let line = std::mem::take(&mut self.pending[stream as usize]);
        if line.is_empty() {
            Ok(())
        } else {
            self.record(stream, &line)
        }
    }

    /// A line from berth itself about the container (started, exited, restarting…).
    pub fn event(&mut self, text: &str) -> io::Result<()> {
        let mut line = text.as_bytes().to_vec();
        line.push(b'\n');
        self.stamp = timestamp(SystemTime::now());
        self.append(b"berth ", &line)?;
        self.flush()
    }

    fn record(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let tag: &[u8] = match stream {
            Stream::Stdout => b"out ",
            Stream::Stderr => b"err ",
        };
        if line.last() == Some(&b'\n') {
            self.append(tag, line)
        } else {
            let mut l = line.to_vec();
            l.push(b'\n');
            self.append(tag, &l)
        }
    }

    /// Queues `STAMP TAG line`, rotating first when the record would pass the size bound.
    fn append(&mut self, tag: &[u8], line: &[u8]) -> io::Result<()> {
        let len = (self.stamp.len() + 1 + tag.len() + line.len()) as u64;
        if self.size > 0 && self.size + len > self.max_size {
            self.flush()?;
            self.rotate()?;
        }
        self.out.extend_from_slice(self.stamp.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(tag);
        self.out.extend_from_slice(line);
        self.size += len;
        Ok(())
    }

    /// Writes the queued records (whole records only, so readers never see half a
    /// prefix).
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            ),
        };
        let result = file.write_all(&self.out);
        self.out.clear();
        result
    }

    /// NAME.log → NAME.log.1 → … → NAME.log.KEEP (dropped beyond).
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            fs::remove_file(numbered(self.keep)).or_else(ignore_missing)?;
            for n in (1..self.keep).rev() {
                fs::rename(numbered(n), numbered(n + 1)).or_else(ignore_missing)?;
            }
            fs::rename(&self.path, numbered(1)).or_else(ignore_missing)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// `2026-11-23T13:05:09.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-logs-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_millis(1_795_434_309_123)),
            "2026-11-23T11:45:09.123Z"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn lines_are_split_and_prefixed() {
        let dir = tmpdir("lines");
        let mut w = LogWriter::open(&dir, "web", 1 << 20, 3).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        w.flush_partial(Stream::Stdout).unwrap();
        let text = fs::read_to_string(w.path()).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
        assert_eq!(lines, ["out hello", "err oops", "out world"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_bounds_disk_use() {
        let dir = tmpdir("rotate");
        let mut w = LogWriter::open(&dir, "flood", 10_000, 2).unwrap();
        let chunk = vec![b'x'; 100_000]; // no newline: split at MAX_LINE
        for _ in 0..20 {
            w.write(Stream::Stdout, &chunk).unwrap();
        }
        let total: u64 = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        let files = fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 3, "NAME.log, .1, .2");
        assert!(total <= 3 * (10_000 + MAX_LINE as u64 + 64), "{total}");
        fs::remove_dir_all(dir).unwrap();
    }
}

//! The initramfs format: a "newc" cpio archive (what the kernel unpacks), written
//! entry by entry.

use std::io::{self, Write};

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// One archive member's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct Header {
    /// File type and permission bits (`S_IFREG | 0o755`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Device numbers of a character or block device.
    pub rdev: (u32, u32),
}

/// Writes a newc archive; [`Writer::finish`] adds the trailer.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }

    /// One member: `name` without a leading `/`, `data` its contents (a symlink's
    /// target for `S_IFLNK`).
    pub fn entry(&mut self, name: &str, h: Header, data: &[u8]) -> io::Result<()> {
        let nlink = if h.mode & 0o170000 == S_IFDIR { 2 } else { 1 };
        let fields = [
            self.ino,
            h.mode,
            h.uid,
            h.gid,
            nlink,
            h.mtime,
            data.len() as u32,
            0,
            0,
            h.rdev.0,
            h.rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        let mut head = String::with_capacity(110);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        self.put(head.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    /// The trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", Header::default(), &[])?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cpio_reads_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(Vec::new());
        let h = |mode| Header {
            mode,
            ..Header::default()
        };
        w.entry("etc", h(S_IFDIR | 0o755), &[]).unwrap();
        w.entry("etc/hello", h(S_IFREG | 0o644), b"hello, world\n")
            .unwrap();
        w.entry("etc/link", h(S_IFLNK | 0o777), b"hello").unwrap();
        w.entry("odd", h(S_IFREG | 0o600), b"x").unwrap();
        let bytes = w.finish().unwrap();
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, &bytes).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        // GNU cpio reads it back (scripts/test installs it).
        let status = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet", "-F"])
            .arg(&archive)
            .current_dir(&out)
            .status()
            .expect("run cpio (apt-get install cpio)");
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(out.join("etc/hello")).unwrap(),
            "hello, world\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("etc/link")).unwrap(),
            std::path::Path::new("hello")
        );
        assert_eq!(std::fs::read(out.join("odd")).unwrap(), b"x");
    }
}

//! Appliance images: the file tree of an initramfs, collected from this machine and
//! written as a gzip-compressed newc cpio archive (what `berth build` makes).
//!
//! - [`cpio`]: the archive format.
//! - [`elf`]: the shared libraries an executable needs; stripping berth's own binary.
//! - [`kmod`]: kernel module closure and index (modules.dep and friends).

pub mod cpio;
pub mod elf;
pub mod kmod;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use cpio::{Header, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};

/// One file of the image.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir {
        mode: u32,
    },
    /// Contents read from this machine when the archive is written.
    HostFile {
        path: PathBuf,
        mode: u32,
    },
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: String,
    },
    CharDev {
        mode: u32,
        major: u32,
        minor: u32,
    },
}

/// The file tree of an image, by path inside the image (relative, no leading `/`).
#[derive(Debug, Default)]
pub struct Image {
    entries: BTreeMap<String, Entry>,
}

/// `/a/b/../c` → `a/c`, relative and clean.
fn rel(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

impl Image {
    pub fn new() -> Self {
        Image::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&self.resolve(path))
    }

    /// `path` with the image's own symlinked directories followed (so that
    /// `lib/modules` lands in `usr/lib/modules` when `lib` is a symlink to `usr/lib`).
    fn resolve(&self, path: &str) -> String {
        let mut out = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let candidate = if out.is_empty() {
                part.to_string()
            } else {
                format!("{out}/{part}")
            };
            let last = i + 1 == parts.len();
            match self.entries.get(&candidate) {
                Some(Entry::Symlink { target }) if !last => {
                    let base = Path::new("/").join(&out);
                    let t = if target.starts_with('/') {
                        PathBuf::from(target)
                    } else {
                        base.join(target)
                    };
                    out = self.resolve(&rel(&t));
                }
                _ => out = candidate,
            }
        }
        out
    }

    /// Adds (or replaces) `path`.
    pub fn insert(&mut self, path: &str, entry: Entry) {
        let p = self.resolve(path);
        if p.is_empty() {
            return;
        }
        self.entries.insert(p, entry);
    }

    pub fn dir(&mut self, path: &str, mode: u32) {
        let p = self.resolve(path);
        if !matches!(
            self.entries.get(&p),
            Some(Entry::Dir { .. } | Entry::Symlink { .. })
        ) {
            self.insert(path, Entry::Dir { mode });
        }
    }

    /// Adds the file at `host` (absolute) at the same path, keeping the symlinks on
    /// the way (`/lib64` → `usr/lib64` on a merged-/usr system) as symlinks.
    pub fn add_host_path(&mut self, host: &Path) -> io::Result<()> {
        self.add_host_path_depth(host, 0)
    }

    fn add_host_path_depth(&mut self, host: &Path, depth: u32) -> io::Result<()> {
        if depth > 16 {
            return Err(io::Error::other(format!(
                "{}: too many levels of symbolic links",
                host.display()
            )));
        }
        let mut cur = PathBuf::from("/");
        let comps: Vec<_> = host.components().skip(1).collect();
        for (i, c) in comps.iter().enumerate() {
            let next = cur.join(c);
            let meta = std::fs::symlink_metadata(&next)?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&next)?;
                self.insert(
                    &rel(&next),
                    Entry::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    },
                );
                let resolved = if target.is_absolute() {
                    target
                } else {
                    cur.join(target)
                };
                let mut rest = PathBuf::from("/").join(rel(&resolved));
                for c in &comps[i + 1..] {
                    rest.push(c);
                }
                return self.add_host_path_depth(&rest, depth + 1);
            }
            let last = i + 1 == comps.len();
            if last {
                self.add_entry_from_meta(&rel(&next), &next, &meta);
            } else {
                self.dir(&rel(&next), meta.permissions().mode() & 0o7777);
            }
            cur = next;
        }
        Ok(())
    }

    fn add_entry_from_meta(&mut self, at: &str, host: &Path, meta: &std::fs::Metadata) {
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_dir() {
            self.dir(at, mode);
        } else if ft.is_file() {
            self.insert(
                at,
                Entry::HostFile {
                    path: host.to_path_buf(),
                    mode,
                },
            );
        } else if ft.is_char_device() {
            let rdev = meta.rdev();
            self.insert(
                at,
                Entry::CharDev {
                    mode,
                    major: libc::major(rdev),
                    minor: libc::minor(rdev),
                },
            );
        }
    }

    /// Adds the tree at `src` (a directory, or a single file) at `dst`, symlinks as
    /// symlinks. Sockets, fifos and block devices are left out.
    pub fn add_tree(&mut self, src: &Path, dst: &str) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(src)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(src)?;
            self.insert(
                dst,
                Entry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            );
            return Ok(());
        }
        self.add_entry_from_meta(dst, src, &meta);
        if meta.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(src)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let child = format!("{dst}/{}", name.to_string_lossy());
                self.add_tree(&src.join(&name), &child)?;
            }
        }
        Ok(())
    }

    /// Adds an executable at `dst` and, when it is dynamically linked, its interpreter
    /// and shared libraries at their paths on this machine.
    pub fn add_executable(&mut self, src: &Path, dst: &str) -> io::Result<()> {
        self.add_tree(src, dst)?;
        for lib in elf::libraries(src)? {
            self.add_host_path(&lib)?;
        }
        Ok(())
    }

    /// Writes the archive: parents before children (each missing parent as a 0755
    /// directory), owned by root, gzip-compressed.
    pub fn write(&self, out: impl Write) -> io::Result<()> {
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        let mut w = cpio::Writer::new(io::BufWriter::new(gz));
        let mut written = std::collections::BTreeSet::new();
        for (path, entry) in &self.entries {
            // Parents first (sorted order puts "a" before "a/b", but a parent may be
            // missing from the map).
            let mut parents = Vec::new();
            let mut p = Path::new(path).parent();
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                parents.push(d.to_string_lossy().into_owned());
                p = d.parent();
            }
            for d in parents.into_iter().rev() {
                if !self.entries.contains_key(&d) && written.insert(d.clone()) {
                    w.entry(&d, header(S_IFDIR | 0o755), &[])?;
                }
            }
            written.insert(path.clone());
            match entry {
                Entry::Dir { mode } => w.entry(path, header(S_IFDIR | mode), &[])?,
                Entry::HostFile { path: src, mode } => {
                    let data = std::fs::read(src)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
                    w.entry(path, header(S_IFREG | mode), &data)?
                }
                Entry::Bytes { data, mode } => w.entry(path, header(S_IFREG | mode), data)?,
                Entry::Symlink { target } => {
                    w.entry(path, header(S_IFLNK | 0o777), target.as_bytes())?
                }
                Entry::CharDev { mode, major, minor } => w.entry(
                    path,
                    Header {
                        mode: S_IFCHR | mode,
                        rdev: (*major, *minor),
                        ..Header::default()
                    },
                    &[],
                )?,
            }
        }
        let buf = w.finish()?;
        let gz = buf.into_inner().map_err(|e| e.into_error())?;
        gz.finish()?.flush()
    }
}

fn header(mode: u32) -> Header {
    Header {
        mode,
        ..Header::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_symlinked_directories_follow_them() {
        let mut img = Image::new();
        img.insert(
            "lib",
            Entry::Symlink {
                target: "usr/lib".into(),
            },
        );
        img.insert(
            "lib/modules/6.1/modules.dep",
            Entry::Bytes {
                data: vec![],
                mode: 0o644,
            },
        );
        assert!(img.entries.contains_key("usr/lib/modules/6.1/modules.dep"));
        assert!(img.get("lib/modules/6.1/modules.dep").is_some());
        assert_eq!(rel(Path::new("/a/./b/../c")), "a/c");
    }
}

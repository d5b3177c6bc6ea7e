//! Just enough of ELF (64-bit, little endian) for images: the shared libraries an
//! executable needs (its interpreter and DT_NEEDED, found like ld.so finds them), and
//! dropping what only debuggers read (section headers, debug info) from berth's own
//! binary, which a debug build makes ten times larger.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

#[derive(Debug, Clone, Copy)]
struct Phdr {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn is_elf64(b: &[u8]) -> bool {
    b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1
}

fn phdrs(b: &[u8]) -> Option<Vec<Phdr>> {
    if !is_elf64(b) {
        return None;
    }
    let off = u64_at(b, 0x20)? as usize;
    let size = u16_at(b, 0x36)? as usize;
    let n = u16_at(b, 0x38)? as usize;
    (0..n)
        .map(|i| {
            let p = off + i * size;
            Some(Phdr {
                kind: u32_at(b, p)?,
                offset: u64_at(b, p + 8)?,
                vaddr: u64_at(b, p + 16)?,
                filesz: u64_at(b, p + 32)?,
            })
        })
        .collect()
}

fn cstr_at(b: &[u8], o: usize) -> Option<String> {
    let s = b.get(o..)?;
    let end = s.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// What a dynamically linked ELF file asks of the dynamic linker.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
}

/// The interpreter, DT_NEEDED and run paths of an ELF file; `None` for a file that is
/// not a 64-bit little-endian ELF file.
pub fn dynamic(b: &[u8]) -> Option<Dynamic> {
    let ph = phdrs(b)?;
    let mut d = Dynamic::default();
    for p in &ph {
        if p.kind == PT_INTERP {
            d.interp = cstr_at(b, p.offset as usize);
        }
    }
    let Some(dynseg) = ph.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Some(d);
    };
    let to_offset = |addr: u64| {
        ph.iter()
            .find(|p| p.kind == PT_LOAD && p.vaddr <= addr && addr < p.vaddr + p.filesz)
            .map(|p| (addr - p.vaddr + p.offset) as usize)
    };
    let mut entries = Vec::new();
    let mut o = dynseg.offset as usize;
    let end = o + dynseg.filesz as usize;
    while o + 16 <= end {
        let tag = u64_at(b, o)?;
        let val = u64_at(b, o + 8)?;
        if tag == 0 {
            break;
        }
        entries.push((tag, val));
        o += 16;
    }
    let strtab = entries
        .iter()
        .find(|(t, _)| *t == DT_STRTAB)
        .and_then(|(_, v)| to_offset(*v))?;
    for (tag, val) in entries {
        let s = || cstr_at(b, strtab + val as usize);
        match tag {
            DT_NEEDED => d.needed.extend(s()),
            DT_RPATH | DT_RUNPATH => {
                if let Some(s) = s() {
                    d.runpath.extend(s.split(':').map(str::to_string));
                }
            }
            _ => {}
        }
    }
    Some(d)
}

/// The file cut after its last loaded byte, without section headers: all that the
/// kernel and the dynamic linker read (program headers and segments), like `sstrip`.
/// Other files are returned unchanged.
pub fn strip(b: &[u8]) -> Vec<u8> {
    let Some(ph) = phdrs(b) else {
        return b.to_vec();
    };
    let phoff = u64_at(b, 0x20).unwrap_or(0) as usize;
    let phsize = usize::from(u16_at(b, 0x36).unwrap_or(0)) * ph.len();
    let end = ph
        .iter()
        .map(|p| (p.offset + p.filesz) as usize)
        .chain([phoff + phsize, 64])
        .max()
        .unwrap_or(b.len())
        .min(b.len());
    let mut out = b[..end].to_vec();
    // e_shoff = 0, e_shnum = 0, e_shstrndx = 0: no section header table.
    out[0x28..0x30].fill(0);
    out[0x3c..0x40].fill(0);
    out
}

/// The directories ld.so searches after the run paths: /etc/ld.so.conf (with its
/// `include`s) and the defaults.
fn system_dirs() -> Vec<PathBuf> {
    fn conf(path: &Path, out: &mut Vec<PathBuf>, depth: u32) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        for line in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
        {
            if let Some(pat) = line.strip_prefix("include ") {
                let pat = Path::new(pat.trim());
                let (dir, suffix) = match pat.file_name().and_then(|f| f.to_str()) {
                    Some(f) if f.starts_with('*') => {
                        (pat.parent().unwrap_or(Path::new("/")), &f[1..])
                    }
                    _ => {
                        if depth < 4 {
                            conf(pat, out, depth + 1);
                        }
                        continue;
                    }
                };
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(suffix))
                    .collect();
                files.sort();
                for f in files {
                    if depth < 4 {
                        conf(&f, out, depth + 1);
                    }
                }
            } else if line.starts_with('/') {
                out.push(PathBuf::from(line));
            }
        }
    }
    let mut dirs = Vec::new();
    conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Every file the dynamic linker needs to run `exe`: its interpreter and the shared
/// libraries, recursively, as paths on this machine (as ld.so would open them, so
/// symlinks such as /lib64 → usr/lib64 are kept by the caller). Empty for a static
/// executable. Errors name the library that is not found.
pub fn libraries(exe: &Path) -> io::Result<Vec<PathBuf>> {
    let system = system_dirs();
    let mut out = BTreeSet::new();
    let mut todo = vec![exe.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(file) = todo.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let bytes = std::fs::read(&file)?;
        let Some(d) = dynamic(&bytes) else {
            continue;
        };
        if let Some(interp) = d.interp {
            out.insert(PathBuf::from(&interp));
        }
        let origin = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        for lib in d.needed {
            let found = if lib.contains('/') {
                Some(PathBuf::from(&lib))
            } else {
                d.runpath
                    .iter()
                    .map(|r| PathBuf::from(r.replace("$ORIGIN", &origin.to_string_lossy())))
                    .chain(system.iter().cloned())
                    .map(|dir| dir.join(&lib))
                    .find(|p| p.exists())
            };
            let Some(path) = found else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: shared library {lib} not found", exe.display()),
                ));
            };
            out.insert(path.clone());
            todo.push(path);
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// berth and its tests are built static (.cargo/config.toml): no interpreter, no
    /// libraries, and stripping keeps it runnable.
    #[test]
    fn this_static_test_binary_needs_nothing_and_survives_strip() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(libraries(&exe).unwrap(), Vec::<PathBuf>::new());
        let bytes = std::fs::read(&exe).unwrap();
        let d = dynamic(&bytes).unwrap();
        assert_eq!((d.interp, d.needed), (None, vec![]));
        let stripped = strip(&bytes);
        assert!(stripped.len() < bytes.len());
        assert_eq!(dynamic(&stripped), dynamic(&bytes));
        // The stripped binary still runs: list no tests, exit 0.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stripped");
        std::fs::write(&path, &stripped).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&path)
            .args(["--list", "--exact", "no-such-test"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(dynamic(b"#!/bin/sh\n").is_none());
    }

    /// A dynamically linked program of this machine (the shell the test suite needs
    /// anyway): its interpreter, libc, and what libc needs, found as ld.so would.
    #[test]
    fn a_dynamic_program_needs_its_interpreter_and_libc() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let d = dynamic(&std::fs::read(&sh).unwrap()).unwrap();
        assert!(
            d.interp.is_some(),
            "{} is not dynamically linked",
            sh.display()
        );
        let libs = libraries(&sh).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux"))
        );
        assert!(libs.iter().all(|l| l.exists()), "{libs:?}");
    }
}

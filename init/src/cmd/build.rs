//! `berth build FILE --kernel PATH -o DIR`: a bootable appliance image of a host.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_modules::{Evaluation, Kind, Value};

use super::{INVALID, load};
use crate::build::kmod::{ModIndex, bzimage_version};
use crate::build::{Entry, Image, elf};
use crate::pid1::rescue::{PanicPolicy, strings};
use crate::pid1::{BootRecord, CONFIG_DIR};

/// Where berth itself lives in the image; `/init` is a symlink to it.
pub const BERTH_IN_IMAGE: &str = "usr/bin/berth";

/// What `berth build` (and `berth vm`) are asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub file: PathBuf,
    pub kernel: PathBuf,
    /// The kernel's modules directory (`…/lib/modules/VERSION`); default: next to the
    /// kernel (`ROOT/boot/vmlinuz-V` → `ROOT/lib/modules/V`), then `/lib/modules/V`.
    pub modules: Option<PathBuf>,
    pub out: PathBuf,
    /// Size of the ext4 state disk to create (bytes), when there is none yet.
    pub disk: Option<u64>,
    /// Extra files or trees: (path on this machine, path in the image).
    pub add: Vec<(PathBuf, String)>,
    /// The berth executable to put in the image (default: the one running), e.g. the
    /// release build of `scripts/build-static`. berth is built static (see
    /// .cargo/config.toml); a dynamically linked one gets its shared libraries along.
    pub berth: Option<PathBuf>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Built {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub disk: Option<PathBuf>,
}

/// What PID 1 mounts at boot (init/src/pid1/mounts.rs): whatever the image holds below
/// these is out of sight once the machine runs.
const BOOT_MOUNTS: [&str; 5] = ["/proc", "/sys", "/dev", "/run", "/tmp"];

/// The mount point (of PID 1's own or of the host's `filesystem`s) that would hide
/// `path` of the image at boot, if any.
fn hidden_at_boot<'a>(path: &Path, machine: &'a crate::pid1::machine::Machine) -> Option<&'a Path> {
    BOOT_MOUNTS
        .iter()
        .map(Path::new)
        .chain(machine.filesystems.iter().map(|f| f.target.as_path()))
        .find(|point| path.starts_with(point))
}

/// Each container with a rootfs directory (not `"host"`): its name and the directory.
fn rootfs_dirs(ev: &Evaluation) -> impl Iterator<Item = (&str, &str)> {
    ev.of_kind(Kind::Container).filter_map(|c| {
        let rootfs = c.get("rootfs").and_then(Value::as_str)?;
        (rootfs != "host").then_some((c.id.name.as_str(), rootfs))
    })
}

/// Every container's rootfs directory goes into the image at its own path: it must be
/// absolute and not below a mount point the machine mounts over at boot.
fn check_rootfs_paths(ev: &Evaluation) -> Result<(), String> {
    let machine = crate::pid1::machine::Machine::of_host(ev.host());
    for (name, rootfs) in rootfs_dirs(ev) {
        let path = Path::new(rootfs);
        if !path.is_absolute() {
            return Err(format!(
                "container {name}: rootfs `{rootfs}` is relative; an image needs an absolute path"
            ));
        }
        if let Some(point) = hidden_at_boot(path, &machine) {
            return Err(format!(
                "container {name}: rootfs {rootfs} is below {}, which is mounted over at boot, \
                 so the image's copy would be hidden; put it elsewhere in the image \
                 (e.g. --add {rootfs}:/srv/{name} with rootfs \"/srv/{name}\")",
                point.display()
            ));
        }
    }
    Ok(())
}

/// `SRC[:DST]` of `--add`; DST defaults to SRC (absolute).
pub fn parse_add(s: &str) -> Result<(PathBuf, String), String> {
    let (src, dst) = match s.split_once(':') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    if !dst.starts_with('/') {
        return Err(format!("--add {s}: the path in the image must be absolute"));
    }
    Ok((PathBuf::from(src), dst.to_string()))
}

/// `berth build`. Exit code 0, or 1 with the reason on `err`.
pub fn build(opts: &BuildOptions, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let Some(ev) = load(&opts.file, err, color) else {
        return INVALID;
    };
    match build_image(opts, &ev) {
        Ok((built, files)) => {
            let size = std::fs::metadata(&built.initramfs).map_or(0, |m| m.len());
            let _ = writeln!(
                out,
                "built {} ({files} files, {:.1} MiB) and {}{}",
                built.initramfs.display(),
                size as f64 / (1 << 20) as f64,
                built.kernel.display(),
                built
                    .disk
                    .as_ref()
                    .map(|d| format!(", state disk {}", d.display()))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "boot it with `berth vm {}` or:\n  {}",
                opts.file.display(),
                super::vm::qemu_args(&built, &super::vm::VmOptions::default(), false)
                    .iter()
                    .map(|a| if a.contains(' ') {
                        format!("'{a}'")
                    } else {
                        a.clone()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            std::mem::forget(ev);
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: berth build: {e}");
            INVALID
        }
    }
}

/// Collects and writes the image; returns what was written and the number of files.
pub fn build_image(opts: &BuildOptions, ev: &Evaluation) -> Result<(Built, usize), String> {
    check_rootfs_paths(ev)?;
    let kernel_bytes = std::fs::read(&opts.kernel)
        .map_err(|e| format!("kernel {}: {e}", opts.kernel.display()))?;
    let release = bzimage_version(&kernel_bytes).ok_or_else(|| {
        format!(
            "{} is not a bzImage kernel (no setup header with a version)",
            opts.kernel.display()
        )
    })?;
    let mut img = Image::new();

    // berth itself (or the one asked for), without what only debuggers read, and the
    // libraries it links.
    let exe = match &opts.berth {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| format!("cannot find berth itself: {e}"))?,
    };
    let bytes = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    for lib in elf::libraries(&exe).map_err(|e| e.to_string())? {
        img.add_host_path(&lib)
            .map_err(|e| format!("{}: {e}", lib.display()))?;
    }
    img.insert(
        BERTH_IN_IMAGE,
        Entry::Bytes {
            data: elf::strip(&bytes),
            mode: 0o755,
        },
    );
    img.insert(
        "init",
        Entry::Symlink {
            target: format!("/{BERTH_IN_IMAGE}"),
        },
    );
    for (d, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("root", 0o700),
        ("etc", 0o755),
    ] {
        img.dir(d, mode);
    }
    // The kernel opens /dev/console for init before anything is mounted.
    img.insert(
        "dev/console",
        Entry::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    );

    // The host file and its imports, below /etc/berth, keeping their relative places.
    let sources: Vec<PathBuf> = ev
        .tree
        .sources
        .files()
        .map(|(_, f)| f.canonical.clone())
        .collect();
    let base = common_dir(&sources).ok_or("the host has no source file")?;
    let mut main = None;
    for (i, (_, f)) in ev.tree.sources.files().enumerate() {
        let rel = f.canonical.strip_prefix(&base).unwrap_or(&f.canonical);
        let at = format!("{}/{}", CONFIG_DIR.trim_start_matches('/'), rel.display());
        if i == 0 {
            main = Some(format!("/{at}"));
        }
        img.insert(
            &at,
            Entry::Bytes {
                data: f.text.clone().into_bytes(),
                mode: 0o644,
            },
        );
    }
    let host = ev.host();
    let policy = PanicPolicy::of_host(host);
    let record = BootRecord {
        config: main.ok_or("the host has no source file")?,
        on_panic: policy.on_panic,
        rescue_shell: policy.rescue_shell,
        kernel: release.clone(),
        machine: crate::pid1::machine::Machine::of_host(host),
    };
    img.insert(
        crate::pid1::BOOT_RECORD.trim_start_matches('/'),
        Entry::Bytes {
            data: serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?,
            mode: 0o644,
        },
    );

    // Kernel modules: the closure of what the host lists, with a filtered index.
    let wanted = strings(host.get("kernel-modules"));
    if !wanted.is_empty() {
        let dir = modules_dir(opts, &release)?;
        let ix = ModIndex::read(&dir).map_err(|e| e.to_string())?;
        let order = ix.load_order(&wanted).map_err(|missing| {
            format!(
                "kernel modules not found in {} (nor built in): {}",
                dir.display(),
                missing.join(", ")
            )
        })?;
        let at = format!("lib/modules/{release}");
        for name in &order {
            if let Some(p) = ix.path_of(name) {
                img.insert(
                    &format!("{at}/{}", p.display()),
                    Entry::HostFile {
                        path: dir.join(&p),
                        mode: 0o644,
                    },
                );
            }
        }
        for (file, text) in ix.subset_files(&order) {
            img.insert(
                &format!("{at}/{file}"),
                Entry::Bytes {
                    data: text.into_bytes(),
                    mode: 0o644,
                },
            );
        }
        if let Ok(b) = std::fs::read(dir.join("modules.builtin")) {
            img.insert(
                &format!("{at}/modules.builtin"),
                Entry::Bytes {
                    data: b,
                    mode: 0o644,
                },
            );
        }
    }

    // --add: files and trees (executables with their libraries).
    for (src, dst) in &opts.add {
        let meta = std::fs::metadata(src).map_err(|e| format!("--add {}: {e}", src.display()))?;
        let at = dst.trim_start_matches('/');
        if meta.is_file() && elf::dynamic(&std::fs::read(src).unwrap_or_default()).is_some() {
            img.add_executable(src, at)
        } else {
            img.add_tree(src, at)
        }
        .map_err(|e| format!("--add {}: {e}", src.display()))?;
    }

    // The containers' root file systems, at the same paths.
    for (name, rootfs) in rootfs_dirs(ev) {
        let path = Path::new(rootfs);
        let at = rootfs.trim_start_matches('/');
        if img.get(at).is_some() {
            continue;
        }
        if !path.is_dir() {
            return Err(format!(
                "container {name}: rootfs {rootfs} is not a directory on this machine (add it with --add DIR:{rootfs})"
            ));
        }
        img.add_tree(path, at)
            .map_err(|e| format!("container {name}: rootfs {rootfs}: {e}"))?;
    }

    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let initramfs = opts.out.join("initramfs.gz");
    let tmp = opts.out.join(".initramfs.gz.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    img.write(file)
        .map_err(|e| format!("{}: {e}", initramfs.display()))?;
    std::fs::rename(&tmp, &initramfs).map_err(|e| format!("{}: {e}", initramfs.display()))?;
    let kernel = opts.out.join("vmlinuz");
    if std::fs::canonicalize(&opts.kernel).ok() != std::fs::canonicalize(&kernel).ok() {
        std::fs::write(&kernel, &kernel_bytes).map_err(|e| format!("{}: {e}", kernel.display()))?;
    }
    let disk = match opts.disk {
        Some(size) => Some(make_disk(&opts.out.join("disk.img"), size)?),
        None => None,
    };
    Ok((
        Built {
            kernel,
            initramfs,
            disk,
        },
        img.len(),
    ))
}

/// The deepest directory containing every path.
fn common_dir(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut base = paths.first()?.parent()?.to_path_buf();
    for p in &paths[1..] {
        while !p.starts_with(&base) {
            base = base.parent()?.to_path_buf();
        }
    }
    Some(base)
}

fn modules_dir(opts: &BuildOptions, release: &str) -> Result<PathBuf, String> {
    if let Some(m) = &opts.modules {
        return Ok(m.clone());
    }
    let kernel = std::fs::canonicalize(&opts.kernel).unwrap_or_else(|_| opts.kernel.clone());
    let beside = kernel
        .parent()
        .and_then(Path::parent)
        .map(|root| root.join("lib/modules").join(release));
    let system = Path::new("/lib/modules").join(release);
    beside
        .into_iter()
        .chain([system])
        .find(|d| d.join("modules.dep").exists())
        .ok_or_else(|| {
            format!(
                "no modules.dep for kernel {release} next to {} nor in /lib/modules/{release}; \
                 give --modules DIR (run `depmod -b ROOT {release}` on an unpacked kernel)",
                opts.kernel.display()
            )
        })
}

/// An ext4 file system image of `size` bytes for state (mkfs.ext4 from e2fsprogs);
/// an existing one is kept, with what is on it.
fn make_disk(path: &Path, size: u64) -> Result<PathBuf, String> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let empty = path.with_extension("empty.d");
    std::fs::create_dir_all(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
    let out = std::process::Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-L",
            "berth-state",
            "-E",
            "root_owner=0:0",
            "-d",
        ])
        .arg(&empty)
        .arg(path)
        .arg(format!("{}k", size.div_ceil(1024)))
        .output()
        .map_err(|e| format!("mkfs.ext4 (from e2fsprogs): {e}"))?;
    let _ = std::fs::remove_dir(&empty);
    if !out.status.success() {
        return Err(format!(
            "mkfs.ext4 {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(path.to_path_buf())
}

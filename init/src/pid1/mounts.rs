//! PID 1's file systems: leaving the initramfs root, the API file systems, the host's
//! `filesystem` entries, and unmounting everything at shutdown.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::console::log;

fn cstr(p: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(p.as_ref()).map_err(|_| io::Error::other("path contains a NUL byte"))
}

/// mount(2) with C strings.
pub fn mount(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let (s, t, f, d) = (
        cstr(src)?,
        cstr(target.as_os_str().as_bytes())?,
        cstr(fstype)?,
        cstr(data)?,
    );
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                f.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr().cast()
            },
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The mount points of this mount namespace, in mount order, from /proc/self/mountinfo
/// (with `\040`-style escapes decoded), each with its file system type.
pub fn mounts() -> Vec<(PathBuf, String)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let point = pre.split_whitespace().nth(4)?;
            let fstype = post.split_whitespace().next()?;
            Some((PathBuf::from(unescape(point)), fstype.to_string()))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_mounted(target: &Path) -> bool {
    mounts().iter().any(|(p, _)| p == target)
}

/// The initramfs root ("rootfs") is a mount without a parent, and pivot_root(2) — how
/// every container enters its root — refuses to move such a root away. Binding the root
/// onto a directory of itself and moving that bind over `/` gives a root with a parent,
/// without copying anything (what switch_root would copy).
pub fn leave_rootfs() -> io::Result<()> {
    let _ = std::fs::create_dir_all("/proc");
    mount("proc", Path::new("/proc"), "proc", 0, "")?;
    let is_rootfs = mounts()
        .iter()
        .rev()
        .find(|(p, _)| p == Path::new("/"))
        .is_some_and(|(_, t)| t == "rootfs");
    // SAFETY: umount2 of a path string we own.
    unsafe { libc::umount2(c"/proc".as_ptr(), 0) };
    if !is_rootfs {
        return Ok(());
    }
    let dir = Path::new("/.berth-root");
    std::fs::create_dir_all(dir)?;
    mount("/", dir, "", libc::MS_BIND, "")?;
    std::env::set_current_dir(dir)?;
    mount(".", Path::new("/"), "", libc::MS_MOVE, "")?;
    rustix::process::chroot(".").map_err(io::Error::from)?;
    std::env::set_current_dir("/")?;
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// The API file systems: /proc, /sys, /dev (devtmpfs, pts, shm), /run, /tmp and
/// cgroup2 at /sys/fs/cgroup. What is already mounted is left alone; failures are logged
/// and boot goes on (a missing /tmp must not stop the machine).
pub fn api_filesystems() {
    let nosuid = libc::MS_NOSUID;
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let table: [(&str, &str, &str, libc::c_ulong, &str); 8] = [
        ("proc", "/proc", "proc", hidden, ""),
        ("sysfs", "/sys", "sysfs", hidden, ""),
        ("devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "mode=0620,gid=5,ptmxmode=0666",
        ),
        (
            "shm",
            "/dev/shm",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=1777",
        ),
        (
            "run",
            "/run",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=0755",
        ),
        (
            "tmp",
            "/tmp",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=1777",
        ),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2", hidden, "nsdelegate"),
    ];
    for (src, target, fstype, flags, data) in table {
        let target = Path::new(target);
        if target != Path::new("/proc") && is_mounted(target) {
            continue;
        }
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(src, target, fstype, flags, data)
            && e.raw_os_error() != Some(libc::EBUSY)
        {
            log(&format!(
                "cannot mount {fstype} on {}: {e}",
                target.display()
            ));
        }
    }
}

/// Mount flags and the rest (file-system specific data) of an options string.
pub fn parse_options(options: &str) -> (libc::c_ulong, String) {
    let mut flags = 0;
    let mut data = Vec::new();
    for o in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "defaults" | "rw" => {}
            "ro" => flags |= libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "noatime" => flags |= libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "dirsync" => flags |= libc::MS_DIRSYNC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// One `filesystem` entry of the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FsEntry {
    pub device: String,
    pub target: PathBuf,
    pub fstype: String,
    pub options: String,
    pub wait: Duration,
}

/// Mounts a host `filesystem`, waiting up to its `wait` for a device path to appear
/// (drivers probe while PID 1 runs).
pub fn mount_filesystem(fs: &FsEntry) -> Result<(), String> {
    if fs.device.starts_with("/dev/") {
        let deadline = Instant::now() + fs.wait;
        while !Path::new(&fs.device).exists() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "device {} did not appear within {:?}",
                    fs.device, fs.wait
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    } else if fs.device.starts_with("LABEL=") || fs.device.starts_with("UUID=") {
        return Err(format!(
            "{}: LABEL= and UUID= are not supported yet at boot; use the device path",
            fs.device
        ));
    }
    std::fs::create_dir_all(&fs.target)
        .map_err(|e| format!("create mount point {}: {e}", fs.target.display()))?;
    let (flags, data) = parse_options(&fs.options);
    mount(&fs.device, &fs.target, &fs.fstype, flags, &data).map_err(|e| {
        format!(
            "mount {} on {} ({}): {e}",
            fs.device,
            fs.target.display(),
            fs.fstype
        )
    })
}

/// Unmounts everything but `/`, the newest mount first; what stays busy is remounted
/// read-only, so every file system is clean when the machine stops.
pub fn unmount_all() {
    let all = mounts();
    for (point, fstype) in all.iter().rev() {
        if point == Path::new("/") {
            continue;
        }
        let Ok(c) = cstr(point.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: umount2 with a valid path string.
        if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
            continue;
        }
        let e = io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) {
            // Already gone with its parent.
            continue;
        }
        match mount("", point, "", libc::MS_REMOUNT | libc::MS_RDONLY, "") {
            Ok(()) => {
                if !matches!(
                    fstype.as_str(),
                    "devtmpfs" | "proc" | "sysfs" | "tmpfs" | "devpts" | "cgroup2"
                ) {
                    log(&format!(
                        "{} busy ({e}): remounted read-only",
                        point.display()
                    ));
                }
            }
            Err(e2) => log(&format!(
                "cannot unmount {} ({e}) nor remount it read-only ({e2})",
                point.display()
            )),
        }
    }
}

//! Persistent network namespaces: made by a short-lived thread that unshares its own
//! network namespace and bind-mounts it onto a file (like `ip netns add`), so the
//! namespace outlives every process in it and a container joins it by path. The
//! thread also opens a netlink socket inside, which configures the namespace later
//! from any thread.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use super::netlink::Netlink;

/// A namespace bound to a file, an fd of it, and a route socket inside it.
#[derive(Debug)]
pub struct Netns {
    pub fd: OwnedFd,
    pub netlink: Netlink,
}

/// Creates a new network namespace bound to `path` (an empty file is created).
pub fn create(path: &Path) -> io::Result<Netns> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path)?;
    let path = path.to_path_buf();
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<Netns> {
            // SAFETY: unshare with CLONE_NEWNET changes only this thread's network
            // namespace; the thread ends right after, berth's main thread is untouched.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            rustix::mount::mount_bind("/proc/thread-self/ns/net", &path)?;
            let fd = rustix::fs::open(
                "/proc/thread-self/ns/net",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            let netlink = Netlink::open()?;
            Ok(Netns { fd, netlink })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    });
    if made.is_err() {
        let _ = remove(&path);
    }
    made
}

/// Unmounts and removes a namespace file; the namespace ends with its last process.
pub fn remove(path: &Path) -> io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

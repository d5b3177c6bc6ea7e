//! Validation and compilation of a [`SpawnConfig`] into the child's op list.
//!
//! Everything that allocates, reads the host or can fail for a reason the user can fix
//! happens here, in the parent, before the clone. Each op gets a label that names what
//! it does for the user ("mount /data (volume /srv/v)"), used for the error message if
//! the child reports that op failed.

use std::ffi::{CString, OsStr};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use super::caps::{self, Caps};
use super::config::{Mount, NamespaceMode, Rootfs, SpawnConfig, Stdio};
use super::layout;
use super::ops::{ChildPlan, Create, Op, Resolve, StdioFd};
use super::spawn::SpawnError;

/// The compiled form of a `SpawnConfig`.
#[derive(Debug)]
pub(crate) struct Plan {
    pub child: ChildPlan,
    /// One per op, same order.
    pub labels: Vec<String>,
    /// Namespace flags for clone3 (CLONE_NEWPID or nothing; the others are unshared
    /// by the child).
    pub namespace_flags: u64,
    /// fds the child borrows (namespaces to join); closed when the plan is dropped.
    pub _fds: Vec<OwnedFd>,
    /// Storage behind the argv/envp pointer arrays of the Exec op.
    pub _strings: Vec<CString>,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) struct Builder<'a> {
    name: &'a str,
    ops: Vec<Op>,
    labels: Vec<String>,
    slots: usize,
}

impl Builder<'_> {
    pub(super) fn op(&mut self, label: impl Into<String>, op: Op) {
        self.ops.push(op);
        self.labels.push(label.into());
    }

    pub(super) fn slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    pub(super) fn invalid(&self, reason: impl Into<String>) -> SpawnError {
        SpawnError::Invalid {
            container: self.name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(super) fn cstring(
        &self,
        what: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<CString, SpawnError> {
        CString::new(bytes).map_err(|_| self.invalid(format!("{what} contains a NUL byte")))
    }

    /// A fresh filesystem instance in a new slot.
    pub(super) fn new_fs(
        &mut self,
        label: &str,
        fstype: &str,
        flags: &[&str],
        options: &[(&str, &str)],
        attrs: MountAttrFlags,
    ) -> Result<usize, SpawnError> {
        let slot = self.slot();
        let op = Op::NewFs {
            fstype: self.cstring("filesystem type", fstype)?,
            flags: flags
                .iter()
                .map(|f| self.cstring("option", *f))
                .collect::<Result<_, _>>()?,
            options: options
                .iter()
                .map(|(k, v)| Ok((self.cstring("option", *k)?, self.cstring("option", *v)?)))
                .collect::<Result<_, SpawnError>>()?,
            attrs,
            slot,
        };
        self.op(label, op);
        Ok(slot)
    }

    /// Resolves `path` (relative components) below `base` into a new slot.
    pub(super) fn resolve(
        &mut self,
        label: &str,
        base: usize,
        how: Resolve,
        path: &Path,
        create: Create,
    ) -> Result<usize, SpawnError> {
        let components = relative_components(path).ok_or_else(|| {
            self.invalid(format!("{label}: `{}` is not a clean path", path.display()))
        })?;
        let mut prefixes = Vec::with_capacity(components.len());
        let mut prefix: Vec<u8> = Vec::new();
        let mut names = Vec::with_capacity(components.len());
        for component in &components {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(component.as_bytes());
            prefixes.push(self.cstring(label, prefix.clone())?);
            names.push(self.cstring(label, component.as_bytes())?);
        }
        let out = self.slot();
        self.op(
            label,
            Op::Resolve {
                base,
                how,
                components: names,
                prefixes,
                create,
                out,
            },
        );
        Ok(out)
    }

    pub(super) fn attach(&mut self, label: &str, from: usize, to: usize) {
        self.op(label, Op::Attach { from, to });
    }
}

/// The normal components of a path ("/a/./b/" -> [a, b]); None if it has `..` or is
/// empty.
fn relative_components(path: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

fn ns_flag(mode: &NamespaceMode, flag: i32) -> u64 {
    if *mode == NamespaceMode::New {
        flag as u64
    } else {
        0
    }
}

/// A network namespace made beside the container (netns.rs): its report pipe and the
/// pidfd of the process that holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetHelperFds {
    pub ready: RawFd,
    pub pidfd: RawFd,
}

/// The plan for `config`. With `net_helper` (only for a new network namespace) the
/// child joins the helper's namespace instead of making one.
pub(crate) fn build(
    config: &SpawnConfig,
    net_helper: Option<NetHelperFds>,
) -> Result<Plan, SpawnError> {
    let mut b = Builder {
        name: &config.name,
        ops: Vec::new(),
        labels: Vec::new(),
        slots: 0,
    };
    let ns = &config.namespaces;

    // ---- validation that needs no op
    if config.argv.is_empty() {
        return Err(b.invalid("no program to run (argv is empty)"));
    }
    if ns.mount != NamespaceMode::New {
        return Err(b.invalid("the mount namespace must be new: the rootfs is set up inside it"));
    }
    if let NamespaceMode::Path(path) = &ns.pid {
        return Err(b.invalid(format!(
            "joining the pid namespace {} is not supported",
            path.display()
        )));
    }
    if config.hostname.is_some() && ns.uts != NamespaceMode::New {
        return Err(b.invalid("a hostname needs a new uts namespace"));
    }
    if !config.workdir.is_absolute() {
        return Err(b.invalid(format!(
            "workdir `{}` is not absolute",
            config.workdir.display()
        )));
    }
    if config.user.uid == u32::MAX || config.user.gid == u32::MAX {
        return Err(b.invalid("uid/gid 4294967295 is not a valid id"));
    }

    // clone3 makes only the pid namespace (the child must be its init); the child
    // unshares the others itself (see `Op::Unshare`).
    let namespace_flags = ns_flag(&ns.pid, libc::CLONE_NEWPID);
    let mut unshare = UnshareFlags::NEWNS;
    let mut names = vec!["mount"];
    for (mode, flag, name) in [
        (&ns.uts, UnshareFlags::NEWUTS, "uts"),
        (&ns.ipc, UnshareFlags::NEWIPC, "ipc"),
        (&ns.cgroup, UnshareFlags::NEWCGROUP, "cgroup"),
        (&ns.net, UnshareFlags::NEWNET, "net"),
    ] {
        if *mode == NamespaceMode::New && !(flag == UnshareFlags::NEWNET && net_helper.is_some()) {
            unshare |= flag;
            names.push(name);
        }
    }

    b.op("reset signal mask and handlers", Op::ResetSignals);
    b.op("setsid", Op::Setsid);
    b.op("set umask", Op::Umask(0));
    if let Some(hold) = &config.hold {
        let path = b.cstring("hold", hold.as_os_str().as_bytes())?;
        b.op(format!("test hold {}", hold.display()), Op::Hold(path));
    }
    b.op(
        format!("create the {} namespaces", names.join(", ")),
        Op::Unshare(unshare),
    );

    // ---- namespaces to join
    let mut fds = Vec::new();
    for (mode, ty, what) in [
        (&ns.net, LinkNameSpaceType::Network, "net"),
        (&ns.uts, LinkNameSpaceType::HostNameAndNISDomainName, "uts"),
        (&ns.ipc, LinkNameSpaceType::InterProcessCommunication, "ipc"),
        (&ns.cgroup, LinkNameSpaceType::ControlGroup, "cgroup"),
    ] {
        if let NamespaceMode::Path(path) = mode {
            let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| SpawnError::Prepare {
                    container: config.name.clone(),
                    what: format!("open {what} namespace {}", path.display()),
                    source: e.into(),
                })?;
            b.op(
                format!("join {what} namespace {}", path.display()),
                Op::SetNs {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
                    ns: ty,
                },
            );
            fds.push(fd);
        }
    }

    b.op("make mounts private", Op::MakeRootPrivate);
    let old_root = b.slot();
    b.op("open host root", Op::OpenOldRoot { slot: old_root });

    // ---- sources: cloned before anything is mounted over the host's paths
    let mut mounts: Vec<&Mount> = config.mounts.iter().collect();
    mounts.sort_by_key(|m| m.dst().components().count());
    let mut user_mounts = Vec::new();
    for mount in mounts {
        let (label, source) = match mount {
            Mount::Volume { src, dst, ro } | Mount::Bind { src, dst, ro } => {
                let kind = if matches!(mount, Mount::Volume { .. }) {
                    "volume"
                } else {
                    "bind"
                };
                let label = format!("mount {} ({kind} {})", dst.display(), src.display());
                let meta = std::fs::metadata(src).map_err(|e| SpawnError::Prepare {
                    container: config.name.clone(),
                    what: format!("{label}: source"),
                    source: e,
                })?;
                let slot = b.slot();
                let path = b.cstring(&label, src.as_os_str().as_bytes())?;
                b.op(
                    label.clone(),
                    Op::CloneTree {
                        path,
                        readonly: *ro,
                        slot,
                    },
                );
                let create = if meta.is_dir() {
                    Create::Dir
                } else {
                    Create::File
                };
                (label, Some((slot, create)))
            }
            Mount::Tmpfs { dst, .. } => (format!("mount {} (tmpfs)", dst.display()), None),
        };
        user_mounts.push((mount, label, source));
    }

    // ---- the root
    let root = match &config.rootfs {
        Rootfs::Dir(dir) => {
            let label = format!("rootfs {}", dir.display());
            if !dir.is_dir() {
                return Err(b.invalid(format!("{label}: not a directory")));
            }
            let slot = b.slot();
            let path = b.cstring(&label, dir.as_os_str().as_bytes())?;
            b.op(
                label,
                Op::CloneTree {
                    path,
                    readonly: false,
                    slot,
                },
            );
            b.op("attach rootfs", Op::AttachRoot { slot });
            slot
        }
        Rootfs::Host => layout::host_root(&mut b, &config.name)?,
    };
    let join_net = net_helper
        .filter(|_| ns.net == NamespaceMode::New)
        .map(|h| Op::JoinNet {
            ready: h.ready,
            pidfd: h.pidfd,
        });
    // Before the user's mounts: one of them may land below /sys, also through a
    // symlink in the rootfs.
    let system = layout::system_mounts(&mut b, root, &ns.cgroup, &ns.ipc, join_net)?;

    // ---- the user's mounts, resolved inside the root
    for (mount, label, source) in user_mounts {
        let (from, create) = match (mount, source) {
            (Mount::Tmpfs { size, mode, .. }, _) => {
                let mode = format!("{mode:o}");
                let size = size.map(|s| s.to_string());
                let mut options = vec![("mode", mode.as_str())];
                if let Some(size) = &size {
                    options.push(("size", size.as_str()));
                }
                let fs = b.new_fs(
                    &label,
                    "tmpfs",
                    &[],
                    &options,
                    MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
                )?;
                (fs, Create::Dir)
            }
            (_, Some(source)) => source,
            (_, None) => return Err(b.invalid(format!("{label}: no source"))),
        };
        let to = b.resolve(&label, root, Resolve::InRoot, mount.dst(), create)?;
        b.attach(&label, from, to);
    }

    layout::hide(&mut b, system)?;

    if config.namespaces.net == NamespaceMode::New && net_helper.is_none() {
        b.op("bring up loopback", Op::LoopbackUp);
    }
    if let Some(hostname) = &config.hostname {
        b.op(
            format!("set hostname {hostname:?}"),
            Op::Hostname(hostname.as_bytes().to_vec()),
        );
    }
    if config.readonly_rootfs {
        b.op("make rootfs read-only", Op::RootReadOnly { root });
    }
    b.op("pivot_root into the rootfs", Op::Pivot { root, old_root });
    let workdir = b.cstring("workdir", config.workdir.as_os_str().as_bytes())?;
    b.op(
        format!("chdir {} (workdir)", config.workdir.display()),
        Op::Chdir(workdir),
    );

    // ---- identity and privileges
    let last_cap = caps::last_cap();
    let wanted = config.capabilities;
    // Capabilities berth itself lacks (e.g. CAP_SYS_RESOURCE on some build machines)
    // cannot be granted; they stay out of every set.
    let permitted = rustix::thread::capabilities(None)
        .map(|c| c.permitted.bits())
        .unwrap_or(0);
    let keep = Caps(wanted.0 & permitted & Caps::all(last_cap).0);
    b.op(
        "drop capabilities from the bounding set",
        Op::DropBounding {
            keep: wanted.0,
            last: last_cap,
        },
    );
    let user = &config.user;
    if user.uid != 0 {
        b.op("keep capabilities across setuid", Op::KeepCaps);
    }
    let groups = user
        .groups
        .iter()
        .map(|g| rustix::process::Gid::from_raw_unchecked(*g))
        .collect();
    b.op(
        format!("setgroups {:?}", user.groups),
        Op::SetGroups(groups),
    );
    b.op(format!("setgid {}", user.gid), Op::SetGid(user.gid));
    b.op(format!("setuid {}", user.uid), Op::SetUid(user.uid));
    b.op("set capabilities", Op::SetCaps { keep: keep.0 });
    b.op("set no_new_privs", Op::NoNewPrivs);
    b.op("set umask", Op::Umask(0o022));

    // ---- stdio, fds, exec
    let stdio = [0, 1, 2].map(|i| match config.stdio.get(i) {
        Some(Stdio::Inherit) => StdioFd::Keep,
        Some(Stdio::Fd(fd)) => StdioFd::Fd(std::os::fd::AsRawFd::as_raw_fd(fd)),
        Some(Stdio::Null) | None => StdioFd::Null,
    });
    b.op("install stdio", Op::Stdio(stdio));
    b.op("close inherited fds", Op::CloseFds);
    if config.init {
        b.op("fork the program off a minimal init", Op::ForkInit);
    }

    let program = &config.argv[0];
    let mut strings = Vec::new();
    let mut argv = Vec::new();
    for arg in &config.argv {
        let c = b.cstring("argument", arg.as_bytes())?;
        argv.push(c.as_ptr());
        strings.push(c);
    }
    argv.push(std::ptr::null());
    let mut envp = Vec::new();
    let mut path_var = None;
    for (key, value) in &config.env {
        if key.is_empty() || key.contains('=') {
            return Err(b.invalid(format!("environment variable name {key:?} is invalid")));
        }
        if key == "PATH" {
            path_var = Some(value.as_str());
        }
        let c = b.cstring("environment", format!("{key}={value}"))?;
        envp.push(c.as_ptr());
        strings.push(c);
    }
    envp.push(std::ptr::null());
    let candidates = if program.contains('/') {
        vec![b.cstring("program", program.as_bytes())?]
    } else {
        path_var
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| b.cstring("program", format!("{dir}/{program}")))
            .collect::<Result<_, _>>()?
    };
    b.op(
        format!("exec {program}"),
        Op::Exec {
            candidates,
            argv,
            envp,
        },
    );

    let slots = (0..b.slots).map(|_| None).collect();
    Ok(Plan {
        child: ChildPlan {
            ops: b.ops,
            slots,
            err_fd: -1,
            timing_fd: -1,
        },
        labels: b.labels,
        namespace_flags,
        _fds: fds,
        _strings: strings,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runtime::config::SpawnConfig;

    #[test]
    fn components_reject_parent_dirs_and_root() {
        assert_eq!(
            relative_components(Path::new("/a/./b/")).unwrap(),
            vec!["a", "b"]
        );
        assert!(relative_components(Path::new("/a/../etc")).is_none());
        assert!(relative_components(Path::new("/")).is_none());
    }

    #[test]
    fn every_op_has_a_label_and_exec_comes_last() {
        let config = SpawnConfig::new("web", vec!["sh".into()]);
        let plan = build(&config, None).unwrap();
        assert_eq!(plan.child.ops.len(), plan.labels.len());
        assert!(
            matches!(plan.child.ops.last(), Some(Op::Exec { candidates, .. }) if candidates.len() == 6)
        );
        assert_eq!(plan.labels.last().map(String::as_str), Some("exec sh"));
    }

    #[test]
    fn invalid_configs_are_refused_before_anything_happens() {
        let mut config = SpawnConfig::new("web", vec!["sh".into()]);
        config.hostname = Some("web".into());
        config.namespaces.uts = NamespaceMode::Host;
        let err = build(&config, None).unwrap_err().to_string();
        assert_eq!(err, "container web: a hostname needs a new uts namespace");

        let mut config = SpawnConfig::new("web", vec!["sh".into()]);
        config.mounts.push(Mount::Tmpfs {
            dst: "/a/../etc".into(),
            size: None,
            mode: 0o755,
        });
        let err = build(&config, None).unwrap_err().to_string();
        assert!(
            err.contains("mount /a/../etc (tmpfs): `/a/../etc` is not a clean path"),
            "{err}"
        );
    }
}

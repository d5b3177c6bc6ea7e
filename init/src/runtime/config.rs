//! What the runtime needs to create one container, as plain data.
//!
//! Deliberately independent of berth's config/modules types: the evaluated host is
//! mapped onto these structs elsewhere, so the runtime can be tested on its own.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::caps::Caps;

/// Everything needed to spawn one container.
#[derive(Debug)]
pub struct SpawnConfig {
    /// The container's name; used only in error messages.
    pub name: String,
    pub rootfs: Rootfs,
    /// Mount the root read-only (volumes, tmpfs and /dev, /proc stay as they are).
    pub readonly_rootfs: bool,
    /// argv[0] is the program: a path inside the container, or a name looked up in the
    /// container's `PATH` (from `env`, or a default).
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from berth).
    pub env: Vec<(String, String)>,
    /// Absolute path inside the container.
    pub workdir: PathBuf,
    pub user: User,
    /// Needs `namespaces.uts == New`.
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub namespaces: Namespaces,
    /// Capabilities kept in the bounding, permitted and effective sets.
    pub capabilities: Caps,
    /// File descriptors installed as the container's 0, 1 and 2.
    pub stdio: [Stdio; 3],
    /// An fd of the container's cgroup v2 directory (see `Cgroup::open_fd`): the child
    /// is born in it (CLONE_INTO_CGROUP), so no process escapes its limits, ever.
    pub cgroup: Option<OwnedFd>,
    /// Run a minimal init as PID 1 that reaps orphans and passes signals on, with the
    /// program as its child (see `sys::init_loop`).
    pub init: bool,
    /// TEST-ONLY (`BERTH_TEST_HOLD_SETUP`, see `supervisor.rs`): a FIFO the child opens
    /// and reads one byte from before its first setup step, so a test can hold a
    /// container in its setup and watch the others start meanwhile.
    pub hold: Option<PathBuf>,
}

impl SpawnConfig {
    /// A container of `argv` on the read-only host root, with every namespace new,
    /// Docker's default capabilities, root user, stdio on /dev/null.
    pub fn new(name: impl Into<String>, argv: Vec<String>) -> Self {
        SpawnConfig {
            name: name.into(),
            rootfs: Rootfs::Host,
            readonly_rootfs: false,
            argv,
            env: vec![(
                "PATH".to_owned(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            )],
            workdir: PathBuf::from("/"),
            user: User::default(),
            hostname: None,
            mounts: Vec::new(),
            namespaces: Namespaces::default(),
            capabilities: Caps::docker_default(),
            stdio: [Stdio::Null, Stdio::Null, Stdio::Null],
            cgroup: None,
            hold: None,
            init: false,
        }
    }
}

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    /// A directory on the host (bind-mounted onto itself, then pivoted into).
    Dir(PathBuf),
    /// A fresh tmpfs with read-only binds of the host's /usr, /bin, /sbin, /lib*,
    /// /etc (usr-merge symlinks recreated as symlinks) and private tmpfs on /tmp,
    /// /run and /var.
    Host,
}

/// One mount inside the container, applied in order of destination depth (a parent
/// before what is mounted below it), like Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A berth-owned volume directory (a bind mount; named separately so that errors
    /// say "volume").
    Volume {
        src: PathBuf,
        dst: PathBuf,
        ro: bool,
    },
    /// A host file or directory, recursively bound.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        ro: bool,
    },
    /// A private tmpfs; `size` in bytes (None: the kernel default, half of RAM).
    Tmpfs {
        dst: PathBuf,
        size: Option<u64>,
        mode: u32,
    },
}

impl Mount {
    pub fn dst(&self) -> &std::path::Path {
        match self {
            Mount::Volume { dst, .. } | Mount::Bind { dst, .. } | Mount::Tmpfs { dst, .. } => dst,
        }
    }
}

/// Who the container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the list replaces berth's own).
    pub groups: Vec<u32>,
}

/// What to do with one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    /// A new, empty namespace.
    #[default]
    New,
    /// Share berth's.
    Host,
    /// Join an existing one (e.g. `/run/netns/lan` or `/proc/PID/ns/net`). Supported for
    /// net, uts, ipc and cgroup.
    Path(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub pid: NamespaceMode,
    /// Must be `New`: the rootfs is set up in the container's own mount namespace.
    pub mount: NamespaceMode,
    pub uts: NamespaceMode,
    pub ipc: NamespaceMode,
    pub cgroup: NamespaceMode,
    pub net: NamespaceMode,
}

/// One of the container's standard streams.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The container's /dev/null.
    #[default]
    Null,
    /// The same file as berth's own fd 0/1/2.
    Inherit,
    /// This fd (berth keeps its copy; drop it after spawning to see EOF on a pipe).
    Fd(OwnedFd),
}

//! The option schema: every node kind, every option, its type, default, documentation
//! and apply class. Validation, `berth options` and the README's reference are all
//! generated from these tables, so they cannot disagree.

use std::fmt;

use berth_config::{KindSpec, Naming};

/// What changing an option costs on a running host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApplyClass {
    /// Written in place (a cgroup file, a firewall rule); nothing restarts.
    Live,
    /// The container's reload signal is sent.
    Reload,
    /// The container's process is stopped and started again.
    Restart,
    /// New namespaces or root file system: the container is destroyed and created.
    Recreate,
    /// Takes effect at the next boot.
    Reboot,
}

impl ApplyClass {
    pub fn name(self) -> &'static str {
        match self {
            ApplyClass::Live => "live",
            ApplyClass::Reload => "reload",
            ApplyClass::Restart => "restart",
            ApplyClass::Recreate => "recreate",
            ApplyClass::Reboot => "reboot",
        }
    }
}

impl fmt::Display for ApplyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Bool,
    Str,
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    /// Bytes, e.g. `512M`.
    Size,
    /// A size or `"max"`.
    SizeOrMax,
    /// An integer or `"max"`.
    IntOrMax {
        min: i64,
        max: i64,
    },
    Duration,
    /// A number of CPUs (`1.5`) or `"max"`.
    Cpus,
    Signal,
    Port,
    Ip,
    Cidr4,
    Cidr6,
    CpuSet,
    AbsPath,
    Hostname,
    IfName,
    /// The name of another node (checked by the graph).
    Name,
    /// A user or group: a number or a name.
    Id,
    /// An owner: a user, or `user:group`.
    Owner,
    /// A file mode, `0o755` or `"0755"`.
    Mode,
    Capability,
    Enum(&'static [&'static str]),
}

impl Ty {
    /// How the type is shown in `berth options`.
    pub fn describe(self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Str => "string".into(),
            Ty::Int { min, max } => format!("integer {min}..{max}"),
            Ty::Float { min, max } => format!("number {min}..{max}"),
            Ty::Size => "size".into(),
            Ty::SizeOrMax => "size | \"max\"".into(),
            Ty::IntOrMax { .. } => "integer | \"max\"".into(),
            Ty::Duration => "duration".into(),
            Ty::Cpus => "cpus | \"max\"".into(),
            Ty::Signal => "signal".into(),
            Ty::Port => "port".into(),
            Ty::Ip => "ip".into(),
            Ty::Cidr4 => "ipv4 cidr".into(),
            Ty::Cidr6 => "ipv6 cidr".into(),
            Ty::CpuSet => "cpu list".into(),
            Ty::AbsPath => "absolute path".into(),
            Ty::Hostname => "hostname".into(),
            Ty::IfName => "interface name".into(),
            Ty::Name => "name".into(),
            Ty::Id => "id | name".into(),
            Ty::Owner => "user[:group]".into(),
            Ty::Mode => "file mode".into(),
            Ty::Capability => "capability".into(),
            Ty::Enum(vals) => vals
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }
}

/// A field of a record option such as `mount SOURCE TARGET ro=#true`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// Positional fields come first, in order; the others are properties.
    pub positional: bool,
    pub required: bool,
    pub default: Option<Dflt>,
    pub doc: &'static str,
}

const fn pos(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        positional: true,
        required: true,
        default: None,
        doc,
    }
}
const fn prop(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        positional: false,
        required: false,
        default: None,
        doc,
    }
}
impl Field {
    const fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    const fn or(mut self, d: Dflt) -> Self {
        self.required = false;
        self.default = Some(d);
        self
    }
}

/// How an option is written and how its definitions merge.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One value; definitions at the same priority must agree.
    Scalar(Ty),
    /// A command line: one or more strings, as one value.
    Argv,
    /// Values given as arguments; all definitions at the winning priority concatenate.
    List(Ty),
    /// `KEY=VALUE` properties; merged key by key.
    Map(Ty),
    /// Each definition is one record; the winning priority's records concatenate.
    Records(&'static [Field]),
    /// `ready "notify"`, `ready "tcp" PORT`, `ready "exec" CMD…`, with check timing.
    Ready,
}

/// A default value, as it would be written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dflt {
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Computed from other values; the text says how.
    Derived(&'static str),
}

impl fmt::Display for Dflt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dflt::Str(s) => write!(f, "\"{s}\""),
            Dflt::Int(i) => write!(f, "{i}"),
            Dflt::Float(x) => write!(f, "{x}"),
            Dflt::Bool(b) => write!(f, "#{b}"),
            Dflt::Derived(d) => f.write_str(d),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Dotted path inside the node: `limits.memory`.
    pub path: &'static str,
    pub shape: Shape,
    pub default: Option<Dflt>,
    pub required: bool,
    /// Order does not matter (`port`, `after`): canonical form sorts it, so reordering
    /// does not change the hash.
    pub unordered: bool,
    pub apply: ApplyClass,
    pub doc: &'static str,
}

const fn opt(path: &'static str, shape: Shape, apply: ApplyClass, doc: &'static str) -> OptionSpec {
    OptionSpec {
        path,
        shape,
        default: None,
        required: false,
        unordered: false,
        apply,
        doc,
    }
}
impl OptionSpec {
    const fn or(mut self, d: Dflt) -> Self {
        self.default = Some(d);
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn unordered(mut self) -> Self {
        self.unordered = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Host,
    Network,
    Volume,
    Container,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Host, Kind::Network, Kind::Volume, Kind::Container];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::Container => "container",
        }
    }
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
    pub fn schema(self) -> &'static KindSchema {
        match self {
            Kind::Host => &HOST,
            Kind::Network => &NETWORK,
            Kind::Volume => &VOLUME,
            Kind::Container => &CONTAINER,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug)]
pub struct KindSchema {
    pub kind: Kind,
    pub naming: Naming,
    pub doc: &'static str,
    pub usage: &'static str,
    pub options: &'static [OptionSpec],
}

impl KindSchema {
    pub fn option(&self, path: &str) -> Option<(usize, &'static OptionSpec)> {
        self.options
            .iter()
            .enumerate()
            .find(|(_, o)| o.path == path)
    }
}

/// The node kinds, for the loader.
pub const KINDS: [KindSpec; 4] = [
    KindSpec {
        name: "host",
        naming: Naming::Singleton,
    },
    KindSpec {
        name: "network",
        naming: Naming::Named,
    },
    KindSpec {
        name: "volume",
        naming: Naming::Named,
    },
    KindSpec {
        name: "container",
        naming: Naming::Named,
    },
];

use ApplyClass::*;

const RESTART_POLICIES: &[&str] = &["always", "on-failure", "never"];
const PORT_PROTOCOLS: &[&str] = &["tcp", "udp"];
const PANIC_ACTIONS: &[&str] = &["reboot", "shell", "halt"];
const WEIGHT: Ty = Ty::Int {
    min: 1,
    max: 10_000,
};

const MOUNT_FIELDS: &[Field] = &[
    pos(
        "source",
        Ty::Str,
        "a volume name, or an absolute host path to bind",
    ),
    pos(
        "target",
        Ty::AbsPath,
        "where it appears inside the container",
    ),
    prop("ro", Ty::Bool, "mount read-only").or(Dflt::Bool(false)),
];
const TMPFS_FIELDS: &[Field] = &[
    pos(
        "target",
        Ty::AbsPath,
        "where the tmpfs appears inside the container",
    ),
    prop("size", Ty::Size, "its maximum size").or(Dflt::Str("64M")),
    prop("mode", Ty::Mode, "permissions of its root").or(Dflt::Str("1777")),
];
const NETWORK_FIELDS: &[Field] = &[
    pos(
        "name",
        Ty::Name,
        "a network of this host, or \"host\" (share the host's), or \"none\" (loopback only)",
    ),
    prop(
        "address",
        Ty::Ip,
        "a static address inside the network's subnet",
    )
    .optional(),
];
const PORT_FIELDS: &[Field] = &[
    pos("host", Ty::Port, "the port on the host"),
    pos("container", Ty::Port, "the port in the container"),
    pos("protocol", Ty::Enum(PORT_PROTOCOLS), "tcp or udp").or(Dflt::Str("tcp")),
    prop(
        "address",
        Ty::Ip,
        "only forward connections to this host address",
    )
    .optional(),
];
const FILESYSTEM_FIELDS: &[Field] = &[
    pos(
        "device",
        Ty::Str,
        "a device path (/dev/vda1), LABEL=…, UUID=…, or a pseudo file system name",
    ),
    pos("target", Ty::AbsPath, "the mount point"),
    prop("type", Ty::Str, "file system type, e.g. ext4").or(Dflt::Str("ext4")),
    prop("options", Ty::Str, "mount options, comma separated").or(Dflt::Str("defaults")),
    prop(
        "wait",
        Ty::Duration,
        "how long to wait for the device to appear",
    )
    .or(Dflt::Str("10s")),
];

pub static CONTAINER: KindSchema = KindSchema {
    kind: Kind::Container,
    naming: Naming::Named,
    doc: "A supervised container: its own namespaces, root file system, cgroup and process tree.",
    usage: "container \"NAME\" { rootfs \"host\"; exec \"/bin/sh\" \"-c\" \"…\" }",
    options: &[
        opt("rootfs", Shape::Scalar(Ty::Str), Recreate, "Root file system: a directory, or \"host\" (read-only binds of the host's /usr /bin /sbin /lib* /etc, private /tmp /run /var).").required(),
        opt("exec", Shape::Argv, Restart, "The command line of the container's main process.").required(),
        opt("init", Shape::Scalar(Ty::Bool), Restart, "Run berth's minimal init as the container's PID 1, with the program as its child: it reaps orphaned processes and passes signals on (a program that is PID 1 itself ignores signals it has no handler for, SIGTERM included). Exits with the program's status.").or(Dflt::Bool(false)),
        opt("env", Shape::Map(Ty::Str), Restart, "Environment variables, as KEY=\"value\" properties; several `env` lines merge."),
        opt("workdir", Shape::Scalar(Ty::AbsPath), Restart, "Working directory of the process inside the container.").or(Dflt::Str("/")),
        opt("user", Shape::Scalar(Ty::Id), Restart, "User the process runs as: a uid or a name from the rootfs's /etc/passwd.").or(Dflt::Int(0)),
        opt("group", Shape::Scalar(Ty::Id), Restart, "Group the process runs as: a gid or a name; defaults to the user's group.").or(Dflt::Derived("the user's primary group")),
        opt("hostname", Shape::Scalar(Ty::Hostname), Restart, "Hostname inside the container.").or(Dflt::Derived("the container's name")),
        opt("read-only", Shape::Scalar(Ty::Bool), Recreate, "Mount the root file system read-only.").or(Dflt::Bool(false)),
        opt("mount", Shape::Records(MOUNT_FIELDS), Recreate, "A volume or host directory: `mount \"pgdata\" \"/data\"`, `mount \"/srv/www\" \"/www\" ro=#true`."),
        opt("tmpfs", Shape::Records(TMPFS_FIELDS), Recreate, "A private tmpfs: `tmpfs \"/cache\" size=\"128M\"`."),
        opt("network", Shape::Records(NETWORK_FIELDS), Recreate, "Attach to a network (eth0, eth1, … in order): `network \"lan\" address=\"10.88.0.5\"`; without any, the container has only loopback."),
        opt("port", Shape::Records(PORT_FIELDS), Live, "Forward a host port to the container: `port 8080 80` or `port 5353 53 \"udp\"`.").unordered(),
        opt("limits.memory", Shape::Scalar(Ty::SizeOrMax), Live, "Hard memory limit (memory.max); past it the container is OOM-killed.").or(Dflt::Str("max")),
        opt("limits.memory-high", Shape::Scalar(Ty::SizeOrMax), Live, "Memory throttling threshold (memory.high).").or(Dflt::Str("max")),
        opt("limits.memory-swap", Shape::Scalar(Ty::SizeOrMax), Live, "Swap limit (memory.swap.max).").or(Dflt::Str("max")),
        opt("limits.cpu", Shape::Scalar(Ty::Cpus), Live, "CPU bandwidth in CPUs, e.g. 1.5 (cpu.max).").or(Dflt::Str("max")),
        opt("limits.cpu-weight", Shape::Scalar(WEIGHT), Live, "Relative CPU share, 1 to 10000 (cpu.weight).").or(Dflt::Int(100)),
        opt("limits.pids", Shape::Scalar(Ty::IntOrMax { min: 1, max: 4_194_304 }), Live, "Maximum number of processes and threads (pids.max).").or(Dflt::Str("max")),
        opt("limits.io-weight", Shape::Scalar(WEIGHT), Live, "Relative block I/O share, 1 to 10000 (io.weight).").or(Dflt::Int(100)),
        opt("limits.cpuset", Shape::Scalar(Ty::CpuSet), Live, "CPUs the container may run on, e.g. \"0-1\" (cpuset.cpus)."),
        opt("restart", Shape::Scalar(Ty::Enum(RESTART_POLICIES)), Live, "When to restart the process after it exits: always, on-failure (non-zero exit or signal), never.").or(Dflt::Str("on-failure")),
        opt("backoff.initial", Shape::Scalar(Ty::Duration), Live, "Delay before the first restart.").or(Dflt::Str("100ms")),
        opt("backoff.factor", Shape::Scalar(Ty::Float { min: 1.0, max: 100.0 }), Live, "Each further restart waits this many times longer.").or(Dflt::Float(2.0)),
        opt("backoff.max", Shape::Scalar(Ty::Duration), Live, "The longest delay between restarts.").or(Dflt::Str("30s")),
        opt("backoff.reset-after", Shape::Scalar(Ty::Duration), Live, "After running this long, the delay starts again from `initial`.").or(Dflt::Str("10s")),
        opt("start-limit.burst", Shape::Scalar(Ty::Int { min: 1, max: 1_000_000 }), Live, "At most this many starts within `interval`; then the container is `failed` until `berth restart`.").or(Dflt::Int(5)),
        opt("start-limit.interval", Shape::Scalar(Ty::Duration), Live, "The window of the start limit.").or(Dflt::Str("10s")),
        opt("stop-signal", Shape::Scalar(Ty::Signal), Live, "Signal sent to the container's init to stop it.").or(Dflt::Str("SIGTERM")),
        opt("stop-timeout", Shape::Scalar(Ty::Duration), Live, "After this, the whole cgroup is killed.").or(Dflt::Str("10s")),
        opt("reload-signal", Shape::Scalar(Ty::Signal), Live, "Signal sent when a change of class `reload` is applied.").or(Dflt::Str("SIGHUP")),
        opt("ready", Shape::Ready, Live, "When the container counts as ready: `ready \"notify\"` (sd_notify READY=1), `ready \"tcp\" PORT`, `ready \"exec\" CMD…` (also a health check: failing it restarts the container). Properties: interval, timeout, retries. Without it, ready once started."),
        opt("start-timeout", Shape::Scalar(Ty::Duration), Live, "How long the container may take to become ready before it is restarted.").or(Dflt::Str("60s")),
        opt("watchdog", Shape::Scalar(Ty::Duration), Live, "With `ready \"notify\"`: restart when no WATCHDOG=1 arrives within this time."),
        opt("after", Shape::List(Ty::Name), Live, "Start after these containers are ready (and stop before them).").unordered(),
        opt("requires", Shape::List(Ty::Name), Live, "Like `after`, and restart when one of them restarts or is recreated.").unordered(),
        opt("checkpoint", Shape::Scalar(Ty::Bool), Live, "Checkpoint with CRIU on reboot or upgrade and restore afterwards, instead of a cold start.").or(Dflt::Bool(false)),
        opt("log.max-size", Shape::Scalar(Ty::Size), Live, "Rotate logs/NAME.log when it reaches this size.").or(Dflt::Str("10M")),
        opt("log.keep", Shape::Scalar(Ty::Int { min: 0, max: 1000 }), Live, "How many rotated log files to keep.").or(Dflt::Int(3)),
        opt("capabilities.add", Shape::List(Ty::Capability), Restart, "Capabilities added to Docker's default set, e.g. \"CAP_NET_ADMIN\".").unordered(),
        opt("capabilities.drop", Shape::List(Ty::Capability), Restart, "Capabilities removed from the default set; \"ALL\" drops every one.").unordered(),
    ],
};

pub static NETWORK: KindSchema = KindSchema {
    kind: Kind::Network,
    naming: Naming::Named,
    doc: "A bridge with a subnet; containers attached to it get stable addresses.",
    usage: "network \"NAME\" { subnet \"10.88.0.0/24\"; nat #true }",
    options: &[
        opt(
            "subnet",
            Shape::Scalar(Ty::Cidr4),
            Recreate,
            "IPv4 subnet; the gateway is on the bridge, containers get the other addresses.",
        )
        .required(),
        opt(
            "subnet6",
            Shape::Scalar(Ty::Cidr6),
            Recreate,
            "Optional IPv6 subnet.",
        ),
        opt(
            "gateway",
            Shape::Scalar(Ty::Ip),
            Recreate,
            "The bridge's address inside the subnet.",
        )
        .or(Dflt::Derived("the subnet's first address")),
        opt(
            "bridge",
            Shape::Scalar(Ty::IfName),
            Recreate,
            "Name of the bridge interface.",
        )
        .or(Dflt::Derived(
            "\"br-\" and the network's name, cut to 15 characters",
        )),
        opt(
            "mtu",
            Shape::Scalar(Ty::Int {
                min: 68,
                max: 65_535,
            }),
            Live,
            "MTU of the bridge and the veth pairs.",
        )
        .or(Dflt::Int(1500)),
        opt(
            "nat",
            Shape::Scalar(Ty::Bool),
            Live,
            "Masquerade traffic from the subnet leaving the host.",
        )
        .or(Dflt::Bool(false)),
        opt(
            "allow",
            Shape::List(Ty::Name),
            Live,
            "Networks whose containers may exchange traffic with this one (denied by default).",
        )
        .unordered(),
        opt(
            "dns",
            Shape::List(Ty::Ip),
            Restart,
            "Name servers for containers on this network (default: the host's resolv.conf).",
        ),
    ],
};

pub static VOLUME: KindSchema = KindSchema {
    kind: Kind::Volume,
    naming: Naming::Named,
    doc: "A directory berth owns under its state directory (volumes/NAME), mounted into containers.",
    usage: "volume \"NAME\"",
    options: &[
        opt("owner", Shape::Scalar(Ty::Owner), Live, "Owner of the volume's root directory: a uid or user name, optionally `:gid` or `:group`.").or(Dflt::Str("0:0")),
        opt("mode", Shape::Scalar(Ty::Mode), Live, "Permissions of the volume's root directory.").or(Dflt::Str("0755")),
    ],
};

pub static HOST: KindSchema = KindSchema {
    kind: Kind::Host,
    naming: Naming::Singleton,
    doc: "Settings of the machine itself; one per host (several `host` blocks merge).",
    usage: "host \"NAME\" { timezone \"UTC\" }",
    options: &[
        opt("name", Shape::Scalar(Ty::Hostname), Live, "The host's name (the argument of `host`).").or(Dflt::Str("berth")),
        opt("timezone", Shape::Scalar(Ty::Str), Live, "Time zone, e.g. \"Europe/Berlin\".").or(Dflt::Str("UTC")),
        opt("kernel-modules", Shape::List(Ty::Str), Reboot, "Kernel modules to load at boot, with their dependencies (PID 1 mode)."),
        opt("filesystem", Shape::Records(FILESYSTEM_FIELDS), Reboot, "A file system to mount at boot: `filesystem \"/dev/vda\" \"/var/lib/berth\" type=\"ext4\"`."),
        opt("state-dir", Shape::Scalar(Ty::AbsPath), Reboot, "Where berth keeps generations, volumes, logs and checkpoints.").or(Dflt::Str("/var/lib/berth")),
        opt("on-panic", Shape::Scalar(Ty::Enum(PANIC_ACTIONS)), Reboot, "What PID 1 does if berth panics: reboot, start a rescue shell on the console, or halt.").or(Dflt::Str("reboot")),
        opt("rescue-shell", Shape::Argv, Reboot, "A shell PID 1 starts on the console when the host at boot is invalid, or on a panic with `on-panic \"shell\"`, e.g. `rescue-shell \"/bin/sh\"`; the machine reboots when it exits."),
        opt("watch", Shape::Scalar(Ty::Bool), Live, "`berth up`: watch the host file and its imports (inotify) and switch to each valid edit, as `--watch` does; an invalid edit is refused and shown by `berth status`.").or(Dflt::Bool(false)),
        opt("sysctl", Shape::Map(Ty::Str), Live, "Kernel parameters, as key=\"value\" properties, e.g. `sysctl net.ipv4.ip_forward=\"1\"`."),
    ],
};

/// Properties of `ready` and their defaults.
pub const READY_PROPS: &[Field] = &[
    prop("interval", Ty::Duration, "time between checks (tcp, exec)").or(Dflt::Str("2s")),
    prop("timeout", Ty::Duration, "how long one check may take").or(Dflt::Str("1s")),
    prop(
        "retries",
        Ty::Int { min: 1, max: 1000 },
        "consecutive failures before a ready container is restarted",
    )
    .or(Dflt::Int(3)),
];
pub const READY_KINDS: &[&str] = &["notify", "tcp", "exec"];

//! What the supervisor needs to know about one container, taken from its evaluated
//! node: how to spawn it, its limits, and its supervision policy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_modules::{Evaluation, Kind, Node, Value};

use crate::runtime::{
    Caps, Limits, Mount, NamespaceMode, Namespaces, Rootfs, SpawnConfig, Stdio, User,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    /// Ready once started.
    Started,
    /// sd_notify `READY=1`.
    Notify,
    /// A TCP connection to this port inside the container's network namespace succeeds.
    Tcp(u16),
    /// This command, run inside the container, exits 0.
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

/// Everything the supervisor keeps for one container between starts.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    pub name: String,
    pub rootfs: Rootfs,
    pub readonly_rootfs: bool,
    pub argv: Vec<String>,
    /// berth's minimal init as PID 1, the program as PID 2.
    pub init: bool,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    pub user: User,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub host_network: bool,
    pub capabilities: Caps,
    pub limits: Limits,
    pub restart: Restart,
    pub backoff_initial: Duration,
    pub backoff_factor: f64,
    pub backoff_max: Duration,
    pub backoff_reset: Duration,
    pub start_burst: u32,
    pub start_interval: Duration,
    pub stop_signal: i32,
    pub reload_signal: i32,
    pub stop_timeout: Duration,
    pub ready: Ready,
    pub check: Check,
    pub start_timeout: Duration,
    pub watchdog: Option<Duration>,
    /// Indexes (into the unit list) of the containers this one starts after.
    pub after: Vec<usize>,
    /// Those of `after` that, when restarted, restart this one too.
    pub requires: Vec<usize>,
    pub log_max_size: u64,
    pub log_keep: u32,
    /// Problems found while mapping (shown in `berth status`).
    pub warnings: Vec<String>,
}

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn dur(v: Option<&Value>, default: Duration) -> Duration {
    match v {
        Some(Value::Duration(ns)) => Duration::from_nanos(*ns),
        _ => default,
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

fn bytes(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Size(b)) => Some(*b),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.map(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Looks a user or group name up in the passwd/group file of the container's root.
fn lookup_id(root: &Path, file: &str, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(root.join("etc").join(file)).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        let id = f.nth(1)?.parse().ok()?;
        let gid = f.next().and_then(|g| g.parse().ok()).unwrap_or(id);
        Some((id, gid))
    })
}

/// A volume: a directory under the state dir with the owner and mode its node asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub dir: PathBuf,
    /// User and group; names are looked up in the host's /etc/passwd and /etc/group.
    pub owner: (u32, u32),
    pub mode: u32,
}

/// Every volume of an evaluated host.
pub fn volumes(ev: &Evaluation, state_dir: &Path) -> Result<Vec<VolumeSpec>, String> {
    ev.of_kind(Kind::Volume)
        .map(|n| {
            let name = n.id.name.clone();
            let owner = n.get("owner").and_then(Value::as_str).unwrap_or("0:0");
            let (user, group) = owner
                .split_once(':')
                .map_or((owner, None), |(u, g)| (u, Some(g)));
            let id = |text: &str, file: &str| {
                text.parse::<u32>()
                    .ok()
                    .or_else(|| lookup_id(Path::new("/"), file, text).map(|(id, _)| id))
                    .ok_or_else(|| {
                        format!(
                            "volume `{name}`: no {} `{text}` in the host's /etc/{file}",
                            if file == "passwd" { "user" } else { "group" }
                        )
                    })
            };
            let uid = id(user, "passwd")?;
            let gid = match group {
                Some(g) => id(g, "group")?,
                None => user
                    .parse::<u32>()
                    .ok()
                    .or_else(|| lookup_id(Path::new("/"), "passwd", user).map(|(_, g)| g))
                    .unwrap_or(uid),
            };
            let mode = n
                .get("mode")
                .and_then(Value::as_str)
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .unwrap_or(0o755);
            Ok(VolumeSpec {
                dir: state_dir.join("volumes").join(&name),
                name,
                owner: (uid, gid),
                mode,
            })
        })
        .collect()
}

/// Prepares every volume of `ev` ([`VolumeSpec::prepare`]); returns the problems.
pub fn prepare_volumes(ev: &Evaluation, state_dir: &Path) -> Vec<String> {
    match volumes(ev, state_dir) {
        Ok(vs) => vs.iter().filter_map(|v| v.prepare().err()).collect(),
        Err(e) => vec![e],
    }
}

impl VolumeSpec {
    /// Creates the directory if needed and gives it its owner and mode (its contents
    /// are the containers' business and are never touched).
    pub fn prepare(&self) -> Result<(), String> {
        let what =
            |e: std::io::Error| format!("volume `{}` ({}): {e}", self.name, self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(what)?;
        std::os::unix::fs::chown(&self.dir, Some(self.owner.0), Some(self.owner.1))
            .map_err(what)?;
        std::fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(self.mode),
        )
        .map_err(what)
    }
}

/// The units of every container of an evaluated host, in the evaluation's order.
pub fn units(ev: &Evaluation, state_dir: &Path) -> Vec<UnitSpec> {
    let containers: Vec<&Node> = ev.of_kind(Kind::Container).collect();
    let index_of = |name: &str| containers.iter().position(|c| c.id.name == name);
    containers
        .iter()
        .map(|n| unit(n, state_dir, &index_of))
        .collect()
}

fn unit(n: &Node, state_dir: &Path, index_of: &dyn Fn(&str) -> Option<usize>) -> UnitSpec {
    let name = n.id.name.clone();
    let mut warnings = Vec::new();
    let rootfs = match n.get("rootfs").and_then(Value::as_str) {
        Some("host") | None => Rootfs::Host,
        Some(dir) => Rootfs::Dir(PathBuf::from(dir)),
    };
    let root_dir = match &rootfs {
        Rootfs::Host => PathBuf::from("/"),
        Rootfs::Dir(d) => d.clone(),
    };
    let mut env: Vec<(String, String)> = match n.get("env") {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), PATH.into()));
    }
    let mut user = User::default();
    match n.get("user") {
        Some(Value::Int(uid)) => {
            user.uid = *uid as u32;
            user.gid = *uid as u32;
        }
        Some(Value::Str(name_)) => match lookup_id(&root_dir, "passwd", name_) {
            Some((uid, gid)) => {
                user.uid = uid;
                user.gid = gid;
            }
            None => warnings.push(format!(
                "user `{name_}` not found in the root file system's /etc/passwd; running as root"
            )),
        },
        _ => {}
    }
    match n.get("group") {
        Some(Value::Int(gid)) => user.gid = *gid as u32,
        Some(Value::Str(g)) => match lookup_id(&root_dir, "group", g) {
            Some((gid, _)) => user.gid = gid,
            None => warnings.push(format!(
                "group `{g}` not found in the root file system's /etc/group"
            )),
        },
        _ => {}
    }
    let mut mounts = Vec::new();
    for m in n.get("mount").map(Value::as_list).unwrap_or_default() {
        let (Some(src), Some(dst)) = (
            m.field("source").and_then(Value::as_str),
            m.field("target").and_then(Value::as_str),
        ) else {
            continue;
        };
        let ro = m.field("ro").and_then(Value::as_bool).unwrap_or(false);
        if src.starts_with('/') {
            mounts.push(Mount::Bind {
                src: src.into(),
                dst: dst.into(),
                ro,
            });
        } else {
            mounts.push(Mount::Volume {
                src: state_dir.join("volumes").join(src),
                dst: dst.into(),
                ro,
            });
        }
    }
    for t in n.get("tmpfs").map(Value::as_list).unwrap_or_default() {
        let Some(dst) = t.field("target").and_then(Value::as_str) else {
            continue;
        };
        let mode = t
            .field("mode")
            .and_then(Value::as_str)
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o1777);
        mounts.push(Mount::Tmpfs {
            dst: dst.into(),
            size: bytes(t.field("size")),
            mode,
        });
    }
    let mut host_network = false;
    let mut bridged = false;
    for a in n.get("network").map(Value::as_list).unwrap_or_default() {
        match a.field("name").and_then(Value::as_str) {
            Some("host") => host_network = true,
            Some("none") | None => {}
            // A bridged network: crate::net makes the container's namespace (veths,
            // addresses, routes) before it starts; the supervisor joins it by path.
            Some(_) => bridged = true,
        }
    }
    if !bridged
        && !n
            .get("port")
            .map(Value::as_list)
            .unwrap_or_default()
            .is_empty()
    {
        warnings.push(
            "its `port` forwards are not set up: it is on no network with a subnet".to_string(),
        );
    }
    let mut capabilities = Caps::docker_default();
    for c in strings(n.get("capabilities.add")) {
        if let Ok(more) = Caps::from_names([c.as_str()]) {
            capabilities = Caps(capabilities.0 | more.0);
        }
    }
    for c in strings(n.get("capabilities.drop")) {
        if c == "ALL" {
            capabilities = Caps(0);
        } else if let Ok(less) = Caps::from_names([c.as_str()]) {
            capabilities = Caps(capabilities.0 & !less.0);
        }
    }
    let limits = Limits {
        memory_max: bytes(n.get("limits.memory")),
        memory_high: bytes(n.get("limits.memory-high")),
        memory_swap_max: bytes(n.get("limits.memory-swap")),
        cpus: match n.get("limits.cpu") {
            Some(Value::Float(f)) => Some(*f),
            _ => None,
        },
        cpu_weight: int(n.get("limits.cpu-weight"))
            .filter(|w| *w != 100)
            .map(|w| w as u64),
        pids_max: int(n.get("limits.pids")).map(|p| p as u64),
        io_weight: int(n.get("limits.io-weight"))
            .filter(|w| *w != 100)
            .map(|w| w as u64),
        cpuset_cpus: n
            .get("limits.cpuset")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let restart = match n.get("restart").and_then(Value::as_str) {
        Some("always") => Restart::Always,
        Some("never") => Restart::Never,
        _ => Restart::OnFailure,
    };
    let ready_v = n.get("ready");
    let ready = match ready_v
        .and_then(|r| r.field("kind"))
        .and_then(Value::as_str)
    {
        Some("notify") => Ready::Notify,
        Some("tcp") => Ready::Tcp(int(ready_v.and_then(|r| r.field("port"))).unwrap_or(0) as u16),
        Some("exec") => Ready::Exec(strings(ready_v.and_then(|r| r.field("command")))),
        _ => Ready::Started,
    };
    let check = Check {
        interval: dur(
            ready_v.and_then(|r| r.field("interval")),
            Duration::from_secs(2),
        ),
        timeout: dur(
            ready_v.and_then(|r| r.field("timeout")),
            Duration::from_secs(1),
        ),
        retries: int(ready_v.and_then(|r| r.field("retries")))
            .unwrap_or(3)
            .max(1) as u32,
    };
    let after: Vec<usize> = strings(n.get("after"))
        .iter()
        .chain(strings(n.get("requires")).iter())
        .filter_map(|d| index_of(d))
        .collect();
    let requires: Vec<usize> = strings(n.get("requires"))
        .iter()
        .filter_map(|d| index_of(d))
        .collect();
    UnitSpec {
        name: name.clone(),
        rootfs,
        readonly_rootfs: n.get("read-only").and_then(Value::as_bool).unwrap_or(false),
        argv: strings(n.get("exec")),
        init: n.get("init").and_then(Value::as_bool).unwrap_or(false),
        env,
        workdir: PathBuf::from(n.get("workdir").and_then(Value::as_str).unwrap_or("/")),
        user,
        hostname: n
            .get("hostname")
            .and_then(Value::as_str)
            .unwrap_or(&name)
            .to_string(),
        mounts,
        host_network,
        capabilities,
        limits,
        restart,
        backoff_initial: dur(n.get("backoff.initial"), Duration::from_millis(100)),
        backoff_factor: match n.get("backoff.factor") {
            Some(Value::Float(f)) => *f,
            _ => 2.0,
        },
        backoff_max: dur(n.get("backoff.max"), Duration::from_secs(30)),
        backoff_reset: dur(n.get("backoff.reset-after"), Duration::from_secs(10)),
        start_burst: int(n.get("start-limit.burst")).unwrap_or(5) as u32,
        start_interval: dur(n.get("start-limit.interval"), Duration::from_secs(10)),
        stop_signal: match n.get("stop-signal") {
            Some(Value::Signal(s)) => *s,
            _ => libc::SIGTERM,
        },
        reload_signal: match n.get("reload-signal") {
            Some(Value::Signal(s)) => *s,
            _ => libc::SIGHUP,
        },
        stop_timeout: dur(n.get("stop-timeout"), Duration::from_secs(10)),
        ready,
        check,
        start_timeout: dur(n.get("start-timeout"), Duration::from_secs(60)),
        watchdog: n
            .get("watchdog")
            .map(|w| dur(Some(w), Duration::from_secs(30))),
        after,
        requires,
        log_max_size: bytes(n.get("log.max-size")).unwrap_or(10 << 20),
        log_keep: int(n.get("log.keep")).unwrap_or(3) as u32,
        warnings,
    }
}

impl UnitSpec {
    /// Creates the directories of the named volumes this container mounts.
    pub fn create_volumes(&self) -> Result<(), String> {
        for m in &self.mounts {
            if let Mount::Volume { src, .. } = m {
                std::fs::create_dir_all(src)
                    .map_err(|e| format!("create volume directory {}: {e}", src.display()))?;
            }
        }
        Ok(())
    }

    /// The runtime's view, with this start's stdio and cgroup.
    pub fn spawn_config(
        &self,
        stdio: [Stdio; 3],
        cgroup: Option<std::os::fd::OwnedFd>,
        extra_mounts: Vec<Mount>,
        extra_env: Vec<(String, String)>,
    ) -> SpawnConfig {
        let mut c = SpawnConfig::new(self.name.clone(), self.argv.clone());
        c.rootfs = self.rootfs.clone();
        c.readonly_rootfs = self.readonly_rootfs;
        c.env = self.env.clone();
        c.env.extend(extra_env);
        c.workdir = self.workdir.clone();
        c.user = self.user.clone();
        c.hostname = Some(self.hostname.clone());
        c.mounts = self.mounts.clone();
        c.mounts.extend(extra_mounts);
        c.namespaces = Namespaces {
            net: if self.host_network {
                NamespaceMode::Host
            } else {
                NamespaceMode::New
            },
            ..Namespaces::default()
        };
        c.capabilities = self.capabilities;
        c.stdio = stdio;
        c.cgroup = cgroup;
        c.init = self.init;
        c
    }
}

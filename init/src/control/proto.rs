//! The control protocol: newline-delimited JSON over a Unix socket (mode 0600, root
//! only). Every message carries the protocol version `v`; a server answers a request of
//! a version it does not speak with an error naming both versions.

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

/// A request from the CLI to the running berth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case")]
pub enum Request {
    /// Every container's state.
    Status,
    /// Start a stopped or failed container (clears `failed`).
    Start { name: String },
    /// Stop a container; it stays stopped until `start`.
    Stop { name: String },
    /// Stop and start again; clears `failed` and the start limit.
    Restart { name: String },
    /// Where the running berth keeps its state (logs, volumes), and its pid.
    Info,
    /// Stop everything in reverse dependency order, then exit.
    Down,
    /// Networks, bridges, leases and port forwards.
    Net,
    /// Apply a host file: evaluate it, plan against what runs, apply the plan and
    /// record a generation. `dry_run` only plans; `test` applies without making it the
    /// boot default; `boot` records it as the boot default without applying it.
    Switch {
        file: String,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        test: bool,
        #[serde(default)]
        boot: bool,
        /// Milliseconds within which `confirm` must come, or berth switches back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_within_ms: Option<u64>,
    },
    /// Switch back to generation `generation`, or to the one before the current one.
    Rollback {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generation: Option<u64>,
        #[serde(default)]
        dry_run: bool,
    },
    /// Keep a switch made with `confirm_within`.
    Confirm,
    /// PID 1 only: stop everything, then restart the machine.
    Reboot,
    /// PID 1 only: stop everything, then power the machine off.
    Poweroff,
    /// PID 1 only: stop everything, then halt the machine.
    Halt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    #[serde(flatten)]
    pub body: T,
}

/// A container's lifecycle state, as `berth status --json` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Spawned, not yet ready.
    Starting,
    /// Ready (or started, for containers without a readiness check).
    Running,
    /// Stop signal sent, waiting for the exit or the stop timeout.
    Stopping,
    /// Not running, and not going to be started until asked (or waiting for its
    /// dependencies).
    Stopped,
    /// Exited; waiting for the restart delay.
    Backoff,
    /// Hit its start limit; stays down until `berth restart` / `berth start`.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub name: String,
    pub state: State,
    /// The container's init as seen from the host, while it runs.
    pub pid: Option<i32>,
    /// Seconds since the current process started.
    pub uptime: Option<f64>,
    /// How many times it was started again after an exit.
    pub restarts: u32,
    pub ready: bool,
    /// Current memory use in bytes (cgroup memory.current), where available.
    pub memory: Option<u64>,
    /// The last exit: "exited 3", "killed by SIGKILL".
    pub last_exit: Option<String>,
    /// `STATUS=` text from sd_notify.
    pub status_text: Option<String>,
    /// Limits that cannot be enforced here and other problems worth a look.
    pub warnings: Vec<String>,
    /// The container's addresses on its networks (eth0 first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddressInfo>,
}

/// A host file `berth up` re-read by itself (`--watch`, `host { watch #true }`, SIGHUP)
/// and refused: invalid, or its switch failed. Nothing running was touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The host file as `berth up` was given it.
    pub file: String,
    /// When berth read it, in seconds since the Unix epoch.
    pub time: u64,
    /// What made berth read it: `watch` (a file changed) or `sighup`.
    pub trigger: String,
    /// The generation that keeps running.
    pub generation: Option<u64>,
    /// Why: the diagnostics as `berth check` renders them (file:line:column), or why
    /// the switch could not be made.
    pub message: String,
}

/// One address of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    pub network: String,
    /// The interface inside the container (eth0, eth1, …).
    pub interface: String,
    /// Address and prefix length, e.g. `10.88.0.7/24`.
    pub address: String,
}

/// A network as `berth net` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub name: String,
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    /// The IPv6 subnet and gateway of a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<String>,
    pub mtu: u32,
    pub nat: bool,
    pub allow: Vec<String>,
    pub leases: Vec<LeaseInfo>,
}

/// A container's address on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub container: String,
    pub interface: String,
    /// The host end of its veth pair (on the bridge).
    pub host_interface: String,
    pub address: String,
}

/// A host port forwarded to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardInfo {
    pub container: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    /// Only this host address (every local address when absent).
    pub host_address: Option<String>,
    /// The container's address the forward goes to.
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    Ok {
        message: Option<String>,
    },
    Status {
        containers: Vec<ContainerStatus>,
        /// The last host file berth re-read by itself (watching, SIGHUP) and refused;
        /// absent when there is none, or a later valid read cleared it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<Rejection>,
    },
    Info {
        pid: u32,
        state_dir: String,
        log_dir: String,
        version: String,
    },
    Error {
        message: String,
    },
    Net {
        networks: Vec<NetworkInfo>,
        forwards: Vec<ForwardInfo>,
    },
}

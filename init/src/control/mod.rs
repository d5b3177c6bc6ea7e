//! The control socket: how `berth status|start|stop|restart|down|logs|exec` talk to the
//! running berth. A Unix stream socket (root only: mode 0600 in a 0700 directory, and
//! SO_PEERCRED checked on every connection) carrying newline-delimited JSON, one
//! [`proto::Envelope`] per line.
//!
//! - [`server::ControlServer`]: the supervisor's end; non-blocking, no threads, one
//!   epoll fd to add to the supervisor's event loop.
//! - [`client::Client`]: the CLI's end; blocking, with a deadline per call.

pub mod client;
pub mod proto;
pub mod server;

use std::path::PathBuf;
use std::time::Duration;

pub use client::Client;
pub use server::{ClientId, ControlServer};

/// Where berth listens unless told otherwise (`--socket`).
pub const DEFAULT_SOCKET: &str = "/run/berth/control.sock";

/// A control-socket failure, on either end. Each message is one line and says what to
/// do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket (no file, or a stale one).
    #[error("berth is not running (no control socket at {})", path.display())]
    NotRunning { path: PathBuf },
    /// `bind`: another berth answers on this socket.
    #[error("berth is already running with control socket {} (pid {})", path.display(), pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()))]
    AlreadyRunning { path: PathBuf, pid: Option<i32> },
    /// The socket exists but this user may not connect.
    #[error("permission denied on {}: the control socket is for root (try sudo)", path.display())]
    PermissionDenied { path: PathBuf },
    /// A system call on the socket failed.
    #[error("control socket {}: cannot {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The path exists and is something else than a socket; berth does not remove it.
    #[error("{} exists and is not a socket; remove it or choose another --socket", path.display())]
    NotASocket { path: PathBuf },
    /// No complete answer within the deadline.
    #[error("berth did not answer on {} within {}s", path.display(), timeout.as_secs_f64())]
    Timeout { path: PathBuf, timeout: Duration },
    /// The connection ended before a complete answer.
    #[error("berth closed the connection on {} without answering", path.display())]
    Closed { path: PathBuf },
    /// The answer could not be understood (another protocol version, or garbage).
    #[error("unexpected answer from berth on {}: {detail}", path.display())]
    Protocol { path: PathBuf, detail: String },
}

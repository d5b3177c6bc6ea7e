//! The supervisor's end of the control socket.
//!
//! No threads and no blocking: the server owns one epoll instance holding the listening
//! socket and every connection, and hands its fd to the supervisor's event loop. When
//! that fd is readable the supervisor calls [`ControlServer::poll`], answers each
//! request with [`ControlServer::reply`] (now or later: `down` answers when everything
//! stopped), and goes back to waiting. Unwritten answers are kept per connection and
//! flushed on later `poll` calls (the connection is registered for EPOLLOUT meanwhile).
//!
//! Misbehaving clients cost bounded memory and never stop the server: a line longer
//! than [`MAX_LINE`] ends the connection with an error, garbage and wrong protocol
//! versions get an error answer, a client that does not read its answers is dropped
//! once [`MAX_OUTPUT`] bytes are queued for it, and each poll reads at most
//! [`READ_BUDGET`] bytes per connection (level-triggered epoll reports the rest).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::event::{Timespec, epoll};
use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use super::ControlError;
use super::proto::{Envelope, Request, Response, VERSION};

/// Longest request line accepted; a longer one ends the connection with an error.
pub const MAX_LINE: usize = 64 * 1024;
/// Answers queued for one connection beyond which it is dropped (it does not read).
pub const MAX_OUTPUT: usize = 4 << 20;
/// Bytes read from one connection per `poll`, so one client cannot starve the loop.
pub const READ_BUDGET: usize = 64 * 1024;
/// Connections served at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 128;
/// epoll events handled per `poll`; more stay pending and keep the fd readable.
const EVENTS_PER_POLL: usize = 64;
/// The listener's epoll token; connections count from 1.
const LISTENER: u64 = 0;

/// One connection, valid until it closes. Answers to a closed connection are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

#[derive(Debug)]
struct Conn {
    fd: OwnedFd,
    input: Vec<u8>,
    /// Answers not yet written.
    output: Vec<u8>,
    /// Requests handed out by `poll` and not answered yet.
    pending: usize,
    /// Nothing more will be read: the peer shut down its side, or the connection is
    /// being closed after an error.
    read_closed: bool,
    /// Close once `output` is written (refused, or a protocol error that ends it).
    close_after_flush: bool,
    /// The peer is gone (reset, broken pipe, hang-up): drop without writing.
    dead: bool,
    /// What the connection is registered for in the epoll set.
    interest: epoll::EventFlags,
}

impl Conn {
    fn new(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            input: Vec::new(),
            output: Vec::new(),
            pending: 0,
            read_closed: false,
            close_after_flush: false,
            dead: false,
            interest: epoll::EventFlags::IN,
        }
    }

    /// Queues an answer and ends the connection after it.
    fn refuse(&mut self, message: &str) {
        queue(
            &mut self.output,
            &Response::Error {
                message: message.to_owned(),
            },
        );
        self.read_closed = true;
        self.close_after_flush = true;
        self.input = Vec::new();
    }

    fn wanted_interest(&self) -> epoll::EventFlags {
        let mut want = epoll::EventFlags::empty();
        if !self.read_closed {
            want |= epoll::EventFlags::IN;
        }
        if !self.output.is_empty() {
            want |= epoll::EventFlags::OUT;
        }
        want
    }

    fn finished(&self) -> bool {
        self.dead
            || (self.output.is_empty()
                && (self.close_after_flush || (self.read_closed && self.pending == 0)))
            || self.output.len() > MAX_OUTPUT
    }

    /// Reads what is there (up to the budget) and parses complete lines.
    fn read(&mut self, id: ClientId, requests: &mut Vec<(ClientId, Request)>) {
        let mut buf = [0u8; 8192];
        let mut budget = READ_BUDGET;
        while !self.read_closed && budget > 0 {
            let want = buf.len().min(budget);
            match net::recv(&self.fd, &mut buf[..want], RecvFlags::DONTWAIT) {
                Ok((0, _)) => self.read_closed = true,
                Ok((n, _)) => {
                    budget -= n;
                    self.input.extend_from_slice(&buf[..n]);
                    self.take_lines(id, requests);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    fn take_lines(&mut self, id: ClientId, requests: &mut Vec<(ClientId, Request)>) {
        let mut start = 0;
        while let Some(nl) = self.input[start..].iter().position(|&b| b == b'\n') {
            let line = &self.input[start..start + nl];
            start += nl + 1;
            if line.len() > MAX_LINE {
                self.refuse(&format!(
                    "request line longer than {MAX_LINE} bytes; closing the connection"
                ));
                return;
            }
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match parse_request(line) {
                Ok(request) => {
                    self.pending += 1;
                    requests.push((id, request));
                }
                Err(message) => queue(&mut self.output, &Response::Error { message }),
            }
        }
        self.input.drain(..start);
        if self.input.len() > MAX_LINE {
            self.refuse(&format!(
                "request line longer than {MAX_LINE} bytes; closing the connection"
            ));
        }
    }

    /// Writes queued answers until done or the socket is full.
    fn flush(&mut self) {
        while !self.output.is_empty() && !self.dead {
            match net::send(
                &self.fd,
                &self.output,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                // EPIPE, ECONNRESET: the client went away; nobody to tell.
                Err(_) => self.dead = true,
            }
        }
    }
}

/// Appends one answer line to `out`.
fn queue(out: &mut Vec<u8>, response: &Response) {
    let envelope = Envelope {
        v: VERSION,
        body: response,
    };
    match serde_json::to_vec(&envelope) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        // Responses are plain strings and numbers; this cannot fail, but an answer the
        // client understands beats a panic in PID 1.
        Err(e) => {
            let fallback = Envelope {
                v: VERSION,
                body: Response::Error {
                    message: format!("cannot encode the answer: {e}"),
                },
            };
            out.extend_from_slice(
                serde_json::to_string(&fallback)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
    }
    out.push(b'\n');
}

/// One request line to a request, or the error message to answer with.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let example = format!(r#"{{"v":{VERSION},"verb":"status"}}"#);
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        format!("invalid request: not JSON ({e}); send one JSON object per line, like {example}")
    })?;
    let Some(object) = value.as_object() else {
        return Err(format!(
            "invalid request: expected a JSON object, like {example}"
        ));
    };
    match object.get("v") {
        None => {
            return Err(format!(
                "invalid request: no protocol version `v`; this berth speaks control protocol version {VERSION}"
            ));
        }
        Some(v) if v.as_u64() != Some(u64::from(VERSION)) => {
            return Err(format!(
                "unsupported control protocol version {v}; this berth speaks version {VERSION}"
            ));
        }
        Some(_) => {}
    }
    serde_json::from_value::<Envelope<Request>>(value)
        .map(|e| e.body)
        .map_err(|e| format!("invalid request: {e}"))
}

/// The listening control socket and its connections.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    listener: OwnedFd,
    epoll: OwnedFd,
    /// `PATH.lock`, flock'ed for the server's lifetime, holding its pid: two berths
    /// starting at once cannot both decide that the socket is stale.
    _lock: File,
    clients: HashMap<u64, Conn>,
    next_id: u64,
}

impl ControlServer {
    /// Listens on `path` (mode 0600; the parent directory is created with mode 0700 if
    /// missing). Refuses if another berth answers there; a stale socket file left by a
    /// berth that died is replaced.
    pub fn bind(path: impl AsRef<Path>) -> Result<ControlServer, ControlError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source: io::Error| ControlError::Io { path, what, source }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io_err("create the directory"))?;
        }
        let lock = acquire_lock(&path)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => match probe(&path) {
                Probe::Listening(pid) => return Err(ControlError::AlreadyRunning { path, pid }),
                Probe::Stale => fs::remove_file(&path)
                    .or_else(ignore_missing)
                    .map_err(io_err("remove the stale socket"))?,
            },
            Ok(_) => return Err(ControlError::NotASocket { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect")(e)),
        }

        // The socket is made listening under a temporary name and renamed into place:
        // a client that sees the path can connect (bind(2) creates the file before
        // listen(2), and a connect in between is refused).
        let tmp = path.with_file_name(format!(".berth-{}.sock", std::process::id()));
        let staged = SocketAddrUnix::new(&tmp).is_ok();
        let at = if staged {
            tmp.as_path()
        } else {
            path.as_path()
        };
        let _ = fs::remove_file(at);
        let addr = SocketAddrUnix::new(at)
            .map_err(|e| io_err("use the path (too long for a socket?)")(e.into()))?;
        let listener = net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(|e| io_err("create a socket")(e.into()))?;
        net::bind(&listener, &addr).map_err(|e| io_err("bind")(e.into()))?;
        // Before listen(): nobody can connect while the mode is still the umask's.
        if let Err(e) = fs::set_permissions(at, fs::Permissions::from_mode(0o600)) {
            let _ = fs::remove_file(at);
            return Err(io_err("set the mode of")(e));
        }
        if let Err(e) = net::listen(&listener, 128) {
            let _ = fs::remove_file(at);
            return Err(io_err("listen")(e.into()));
        }
        if staged && let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("move the socket into place at")(e));
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| io_err("create an epoll instance for")(e.into()))?;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io_err("watch")(e.into()))?;
        Ok(ControlServer {
            path,
            listener,
            epoll,
            _lock: lock,
            clients: HashMap::new(),
            next_id: LISTENER + 1,
        })
    }

    /// The epoll fd to watch: readable whenever `poll` has something to do.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open connections.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Accepts connections, reads what clients sent, flushes queued answers, and
    /// returns the complete requests in arrival order. Never blocks.
    pub fn poll(&mut self) -> Vec<(ClientId, Request)> {
        let mut requests = Vec::new();
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS_PER_POLL);
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                Some(&zero),
            ) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(_) => return requests,
            }
        }
        for event in events.iter().copied() {
            let (token, flags) = (event.data.u64(), event.flags);
            if token == LISTENER {
                self.accept();
                continue;
            }
            let id = ClientId(token);
            let Some(conn) = self.clients.get_mut(&token) else {
                continue;
            };
            if flags
                .intersects(epoll::EventFlags::IN | epoll::EventFlags::HUP | epoll::EventFlags::ERR)
            {
                conn.read(id, &mut requests);
            }
            if flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR) {
                // Both directions are closed: answers could not be delivered. Requests
                // read above are still returned; their answers are dropped.
                conn.dead = true;
            }
            conn.flush();
            self.settle(token);
        }
        requests
    }

    /// Queues `response` for `client` and writes as much as the socket takes now. A
    /// client that went away is forgotten silently.
    pub fn reply(&mut self, client: ClientId, response: &Response) {
        let Some(conn) = self.clients.get_mut(&client.0) else {
            return;
        };
        conn.pending = conn.pending.saturating_sub(1);
        if conn.dead {
            return self.settle(client.0);
        }
        queue(&mut conn.output, response);
        conn.flush();
        self.settle(client.0);
    }

    fn accept(&mut self) {
        // Bounded, so a connection storm cannot keep the supervisor here; the listener
        // stays readable and the rest comes on the next poll.
        for _ in 0..32 {
            let fd = match net::accept_with(
                &self.listener,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            ) {
                Ok(fd) => fd,
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                // AGAIN: done. EMFILE and the like: try again on a later poll.
                Err(_) => return,
            };
            let mut conn = Conn::new(fd);
            match net::sockopt::socket_peercred(&conn.fd) {
                Ok(cred) if cred.uid.is_root() => {
                    if self.clients.len() >= MAX_CLIENTS {
                        conn.refuse(&format!("too many connections ({MAX_CLIENTS}); try again"));
                    }
                }
                Ok(_) => conn.refuse("permission denied: the control socket is for root"),
                Err(e) => conn.refuse(&format!(
                    "permission denied: cannot read the peer's credentials: {e}"
                )),
            }
            conn.flush();
            if conn.finished() {
                continue;
            }
            let token = self.next_id;
            self.next_id += 1;
            conn.interest = conn.wanted_interest();
            if epoll::add(
                &self.epoll,
                &conn.fd,
                epoll::EventData::new_u64(token),
                conn.interest,
            )
            .is_ok()
            {
                self.clients.insert(token, conn);
            }
        }
    }

    /// Drops a finished connection, or brings its epoll interest up to date.
    fn settle(&mut self, token: u64) {
        let Some(conn) = self.clients.get_mut(&token) else {
            return;
        };
        if conn.finished() {
            if let Some(conn) = self.clients.remove(&token) {
                let _ = epoll::delete(&self.epoll, &conn.fd);
            }
            return;
        }
        let want = conn.wanted_interest();
        if want != conn.interest
            && epoll::modify(
                &self.epoll,
                &conn.fd,
                epoll::EventData::new_u64(token),
                want,
            )
            .is_ok()
        {
            conn.interest = want;
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // The lock is still held here, so this is our socket, not a successor's.
        let _ = fs::remove_file(&self.path);
        // Released explicitly, not by closing our fd: a child forked meanwhile (a
        // container, a `Command` of another thread not yet at its exec) holds the same
        // open file description, and would keep the lock, refusing the next bind.
        let _ = flock(&self._lock, FlockOperation::Unlock);
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes `PATH.lock` and writes our pid into it, or says who holds it.
fn acquire_lock(path: &Path) -> Result<File, ControlError> {
    let lock_path = lock_path(path);
    let io_err = |what: &'static str| {
        let path = lock_path.clone();
        move |source: io::Error| ControlError::Io { path, what, source }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err("open the lock file"))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            let pid = match probe(path) {
                Probe::Listening(Some(pid)) => Some(pid),
                _ => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    text.trim().parse().ok()
                }
            };
            return Err(ControlError::AlreadyRunning {
                path: path.to_path_buf(),
                pid,
            });
        }
        Err(e) => return Err(io_err("lock the lock file")(e.into())),
    }
    let write_pid = |file: &mut File| -> io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())
    };
    write_pid(&mut file).map_err(io_err("write the lock file"))?;
    Ok(file)
}

enum Probe {
    /// Something accepts connections there; the pid of who listens, if known.
    Listening(Option<i32>),
    Stale,
}

/// Is anybody listening on `path`? A non-blocking connect: a hung berth with a full
/// backlog (EAGAIN) counts as listening, without waiting for it.
fn probe(path: &Path) -> Probe {
    let Ok(addr) = SocketAddrUnix::new(path) else {
        return Probe::Stale;
    };
    let Ok(sock) = net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    ) else {
        return Probe::Stale;
    };
    match net::connect(&sock, &addr) {
        // SO_PEERCRED of a connected client: the listener's credentials at listen().
        Ok(()) => Probe::Listening(
            net::sockopt::socket_peercred(&sock)
                .ok()
                .map(|c| c.pid.as_raw_nonzero().get()),
        ),
        Err(Errno::AGAIN | Errno::INPROGRESS) => Probe::Listening(None),
        Err(_) => Probe::Stale,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(br#"{"v":1,"verb":"status"}"#),
            Ok(Request::Status)
        );
        assert_eq!(
            parse_request(br#"{"verb":"start","name":"web","v":1}"#),
            Ok(Request::Start { name: "web".into() })
        );
        assert_eq!(
            parse_request(br#"{"v":1,"verb":"down"}"#),
            Ok(Request::Down)
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let e = parse_request(b"hello").unwrap_err();
        assert!(e.contains("not JSON") && e.contains(r#""v":1"#), "{e}");
        let e = parse_request(br#"{"v":2,"verb":"status"}"#).unwrap_err();
        assert!(
            e.contains("version 2") && e.contains("speaks version 1"),
            "{e}"
        );
        let e = parse_request(br#"{"verb":"status"}"#).unwrap_err();
        assert!(e.contains("no protocol version"), "{e}");
        let e = parse_request(br#"{"v":1,"verb":"explode"}"#).unwrap_err();
        assert!(e.contains("explode"), "{e}");
        let e = parse_request(br#"{"v":1,"verb":"start"}"#).unwrap_err();
        assert!(e.contains("name"), "{e}");
        assert!(parse_request(b"[1,2]").unwrap_err().contains("JSON object"));
    }

    #[test]
    fn answers_are_one_line_with_the_version() {
        let mut out = Vec::new();
        queue(
            &mut out,
            &Response::Ok {
                message: Some("a\nb".into()),
            },
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.starts_with(r#"{"v":1,"result":"ok""#), "{text}");
    }
}

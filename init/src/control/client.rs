//! The CLI's end of the control socket: one connection, blocking calls, each with a
//! deadline.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::ControlError;
use super::proto::{Envelope, Request, Response, VERSION};

/// How long a call waits for its answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer line accepted (a status of thousands of containers fits).
const MAX_ANSWER: usize = 64 << 20;

/// A connection to the running berth.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    /// Bytes received after the last complete answer.
    buf: Vec<u8>,
}

impl Client {
    /// Connects to the berth listening on `path`, waiting at most [`DEFAULT_TIMEOUT`]
    /// (a berth too busy to accept counts as not answering).
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ControlError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |what: &'static str, e: Errno| ControlError::Io {
            path: path.clone(),
            what,
            source: e.into(),
        };
        let addr = SocketAddrUnix::new(&path)
            .map_err(|e| io_err("use the path (too long for a socket?)", e))?;
        let sock = net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| io_err("create a socket", e))?;
        // A Unix connect to a full backlog sleeps, for at most the send timeout.
        net::sockopt::set_socket_timeout(&sock, net::sockopt::Timeout::Send, Some(DEFAULT_TIMEOUT))
            .map_err(|e| io_err("set a timeout on", e))?;
        loop {
            match net::connect(&sock, &addr) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::NOENT | Errno::CONNREFUSED | Errno::NOTDIR) => {
                    return Err(ControlError::NotRunning { path });
                }
                Err(Errno::ACCESS | Errno::PERM) => {
                    return Err(ControlError::PermissionDenied { path });
                }
                Err(Errno::AGAIN) => {
                    return Err(ControlError::Timeout {
                        path,
                        timeout: DEFAULT_TIMEOUT,
                    });
                }
                Err(e) => return Err(io_err("connect to", e)),
            }
        }
        Ok(Client {
            stream: UnixStream::from(sock),
            path,
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `request` and waits at most [`DEFAULT_TIMEOUT`] for the answer.
    pub fn call(&mut self, request: &Request) -> Result<Response, ControlError> {
        self.call_timeout(request, Some(DEFAULT_TIMEOUT))
    }

    /// Sends `request` and waits for the answer, at most `timeout` (`None`: as long as
    /// it takes, e.g. for `down`).
    pub fn call_timeout(
        &mut self,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<Response, ControlError> {
        let deadline = timeout.map(|t| (Instant::now() + t, t));
        let mut line = serde_json::to_vec(&Envelope {
            v: VERSION,
            body: request,
        })
        .map_err(|e| ControlError::Protocol {
            path: self.path.clone(),
            detail: format!("cannot encode the request: {e}"),
        })?;
        line.push(b'\n');
        self.stream
            .set_write_timeout(timeout.filter(|t| !t.is_zero()))
            .map_err(|e| self.io("set a timeout on", e))?;
        if let Err(e) = self.stream.write_all(&line) {
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timeout(timeout),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    ControlError::Closed {
                        path: self.path.clone(),
                    }
                }
                _ => self.io("send to", e),
            });
        }
        let answer = self
            .read_line(deadline)?
            .ok_or_else(|| ControlError::Closed {
                path: self.path.clone(),
            })?;
        parse_response(&answer).map_err(|detail| ControlError::Protocol {
            path: self.path.clone(),
            detail,
        })
    }

    /// Waits until berth closes the connection (it exits), at most `timeout`. Returns
    /// false on timeout. Answers that arrive meanwhile are ignored.
    pub fn wait_closed(&mut self, timeout: Option<Duration>) -> Result<bool, ControlError> {
        let deadline = timeout.map(|t| (Instant::now() + t, t));
        loop {
            match self.read_line(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(true),
                Err(ControlError::Timeout { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, or `None` at end of stream.
    fn read_line(
        &mut self,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<Option<Vec<u8>>, ControlError> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(ControlError::Protocol {
                    path: self.path.clone(),
                    detail: format!("answer longer than {MAX_ANSWER} bytes"),
                });
            }
            let left = match deadline {
                None => None,
                Some((at, total)) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.timeout(Some(total)));
                    }
                    Some(left)
                }
            };
            self.stream
                .set_read_timeout(left)
                .map_err(|e| self.io("set a timeout on", e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => {
                    return Err(ControlError::Closed {
                        path: self.path.clone(),
                    });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(self.timeout(deadline.map(|d| d.1)));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(self.io("read from", e)),
            }
        }
    }

    fn io(&self, what: &'static str, source: io::Error) -> ControlError {
        ControlError::Io {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn timeout(&self, timeout: Option<Duration>) -> ControlError {
        ControlError::Timeout {
            path: self.path.clone(),
            timeout: timeout.unwrap_or_default(),
        }
    }
}

/// One answer line to a response, or what is wrong with it.
pub fn parse_response(line: &[u8]) -> Result<Response, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let v = value.get("v").and_then(serde_json::Value::as_u64);
    if v != Some(u64::from(VERSION)) {
        // A berth of another version still explains itself in an error.
        if let Some(message) = value.get("message").and_then(serde_json::Value::as_str)
            && value.get("result").and_then(serde_json::Value::as_str) == Some("error")
        {
            return Ok(Response::Error {
                message: message.to_owned(),
            });
        }
        let theirs = v.map_or_else(|| "no".to_owned(), |v| v.to_string());
        return Err(format!(
            "the running berth speaks control protocol version {theirs}, this berth binary version {VERSION}; use the binary that matches the running berth"
        ));
    }
    serde_json::from_value::<Envelope<Response>>(value)
        .map(|e| e.body)
        .map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn responses_parse() {
        assert_eq!(
            parse_response(br#"{"v":1,"result":"ok","message":null}"#),
            Ok(Response::Ok { message: None })
        );
        assert_eq!(
            parse_response(
                br#"{"v":9,"result":"error","message":"unsupported control protocol version 1"}"#
            ),
            Ok(Response::Error {
                message: "unsupported control protocol version 1".into()
            })
        );
        assert!(
            parse_response(br#"{"v":9,"result":"ok"}"#)
                .unwrap_err()
                .contains("version 9")
        );
        assert!(parse_response(b"garbage").unwrap_err().contains("not JSON"));
    }
}

//! The verbs that talk to the running berth over its control socket: `status`, `start`,
//! `stop`, `restart`, `down`. Each returns the exit code: 0 ok, 1 error (one line on
//! `err`).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::control::proto::{ContainerStatus, Rejection, Request, Response, State};
use crate::control::{Client, ControlError};

/// Exit code of a failed control verb.
pub const FAILED: u8 = 1;

/// Connects, sends `request`, and returns the answer; berth's own errors
/// (`Response::Error`) and connection failures are written to `err` as one line.
pub(crate) fn call(
    socket: &Path,
    request: &Request,
    timeout: Option<Duration>,
    err: &mut dyn Write,
) -> Result<Response, u8> {
    let answer = Client::connect(socket).and_then(|mut c| c.call_timeout(request, timeout));
    match answer {
        Ok(Response::Error { message }) => Err(fail(err, &message)),
        Ok(response) => Ok(response),
        Err(e) => Err(fail(err, &e.to_string())),
    }
}

/// Writes `error: MESSAGE` and returns [`FAILED`].
pub(crate) fn fail(err: &mut dyn Write, message: &str) -> u8 {
    let _ = writeln!(err, "error: {message}");
    FAILED
}

pub(crate) fn unexpected(err: &mut dyn Write, response: &Response) -> u8 {
    let what = serde_json::to_string(response).unwrap_or_default();
    fail(err, &format!("unexpected answer from berth: {what}"))
}

/// The containers as berth reports them.
pub(crate) fn containers(socket: &Path, err: &mut dyn Write) -> Result<Vec<ContainerStatus>, u8> {
    match call(
        socket,
        &Request::Status,
        Some(crate::control::client::DEFAULT_TIMEOUT),
        err,
    )? {
        Response::Status { containers, .. } => Ok(containers),
        other => Err(unexpected(err, &other)),
    }
}

/// `berth status [--json] [--rejected]`. The JSON form stays the array of containers;
/// the host file berth refused (watching, SIGHUP) is `--rejected --json`, an object or
/// `null`. The table is followed by the refusal, when there is one.
pub fn status(
    socket: &Path,
    json: bool,
    rejected_only: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (containers, rejected) = match call(
        socket,
        &Request::Status,
        Some(crate::control::client::DEFAULT_TIMEOUT),
        err,
    ) {
        Ok(Response::Status {
            containers,
            rejected,
        }) => (containers, rejected),
        Ok(other) => return unexpected(err, &other),
        Err(code) => return code,
    };
    let encoded = match (json, rejected_only) {
        (true, false) => serde_json::to_string_pretty(&containers),
        (true, true) => serde_json::to_string_pretty(&rejected),
        (false, _) => Ok(String::new()),
    };
    let text = match encoded {
        Err(e) => return fail(err, &format!("cannot encode the status: {e}")),
        Ok(mut text) if json => {
            text.push('\n');
            text
        }
        Ok(_) => match (&rejected, rejected_only) {
            (None, true) => "no host file refused\n".to_string(),
            (Some(r), true) => rejection_block(r),
            (r, false) => {
                let mut text = status_table(&containers);
                if let Some(r) = r {
                    text.push('\n');
                    text.push_str(&rejection_block(r));
                }
                text
            }
        },
    };
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return FAILED;
    }
    0
}

/// `berth start NAME`.
pub fn start(socket: &Path, name: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    simple(
        socket,
        Request::Start {
            name: name.to_owned(),
        },
        out,
        err,
    )
}

/// `berth stop NAME`.
pub fn stop(socket: &Path, name: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    simple(
        socket,
        Request::Stop {
            name: name.to_owned(),
        },
        out,
        err,
    )
}

/// `berth restart NAME`.
pub fn restart(socket: &Path, name: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    simple(
        socket,
        Request::Restart {
            name: name.to_owned(),
        },
        out,
        err,
    )
}

/// `berth switch FILE`: the running berth evaluates FILE and applies it.
pub fn switch(
    socket: &Path,
    file: &Path,
    mode: crate::supervisor::SwitchMode,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    // berth reads the file itself, from its own working directory.
    let file = match std::fs::canonicalize(file) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "error: {}: {e}", file.display());
            return 1;
        }
    };
    simple(
        socket,
        Request::Switch {
            file: file.display().to_string(),
            dry_run: mode.dry_run,
            test: mode.test,
            boot: mode.boot,
            confirm_within_ms: mode
                .confirm_within
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        },
        out,
        err,
    )
}

/// `berth rollback [N]`.
pub fn rollback(
    socket: &Path,
    generation: Option<u64>,
    dry_run: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    simple(
        socket,
        Request::Rollback {
            generation,
            dry_run,
        },
        out,
        err,
    )
}

/// `berth confirm`.
pub fn confirm(socket: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    simple(socket, Request::Confirm, out, err)
}

fn simple(socket: &Path, request: Request, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match call(
        socket,
        &request,
        Some(crate::control::client::DEFAULT_TIMEOUT),
        err,
    ) {
        Ok(Response::Ok { message }) => {
            if let Some(message) = message {
                let _ = writeln!(out, "{message}");
            }
            0
        }
        Ok(other) => unexpected(err, &other),
        Err(code) => code,
    }
}

/// `berth down`: asks berth to stop everything and exit, and waits until it has (its
/// end of the connection closes when it exits), at most `timeout` (`None`: no limit).
pub fn down(
    socket: &Path,
    timeout: Option<Duration>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut client = match Client::connect(socket) {
        Ok(c) => c,
        Err(e) => return fail(err, &e.to_string()),
    };
    match client.call_timeout(&Request::Down, timeout) {
        Ok(Response::Ok { message }) => {
            if let Some(message) = message {
                let _ = writeln!(out, "{message}");
                let _ = out.flush();
            }
        }
        Ok(Response::Error { message }) => return fail(err, &message),
        Ok(other) => return unexpected(err, &other),
        // berth may exit right after stopping, before its answer is read.
        Err(ControlError::Closed { .. }) => {}
        Err(e) => return fail(err, &e.to_string()),
    }
    match client.wait_closed(timeout) {
        Ok(true) => {
            let _ = writeln!(out, "berth stopped");
            0
        }
        Ok(false) => fail(
            err,
            &format!(
                "berth did not exit within {}s; `berth status` shows what is still running",
                timeout.unwrap_or_default().as_secs_f64()
            ),
        ),
        Err(e) => fail(err, &e.to_string()),
    }
}

/// The table of `berth status`: one row per container, columns aligned.
pub fn status_table(containers: &[ContainerStatus]) -> String {
    // The ADDRESSES column appears only when some container is on a network.
    let show_addresses = containers.iter().any(|c| !c.addresses.is_empty());
    let mut header = vec![
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "MEMORY",
    ];
    if show_addresses {
        header.push("ADDRESSES");
    }
    header.push("WARNINGS");
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let mut state = state_name(c.state).to_owned();
            if matches!(c.state, State::Backoff | State::Failed | State::Stopped)
                && let Some(exit) = &c.last_exit
            {
                let _ = write!(state, " ({exit})");
            }
            let mut row = vec![
                c.name.clone(),
                state,
                c.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                c.uptime.map_or_else(|| "-".to_owned(), human_duration),
                c.restarts.to_string(),
                if c.ready { "yes" } else { "no" }.to_owned(),
                c.memory.map_or_else(|| "-".to_owned(), human_bytes),
            ];
            if show_addresses {
                row.push(if c.addresses.is_empty() {
                    "-".to_owned()
                } else {
                    c.addresses
                        .iter()
                        .map(|a| a.address.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                });
            }
            row.push(if c.warnings.is_empty() {
                "-".to_owned()
            } else {
                c.warnings.join("; ")
            });
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ", w = widths[i]);
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    text
}

/// How `berth status` shows a refused host file: what, when, what runs instead, and the
/// diagnostics as `berth check` renders them.
pub fn rejection_block(r: &Rejection) -> String {
    let by = match r.trigger.as_str() {
        "watch" => "after a change",
        "sighup" => "on SIGHUP",
        other => other,
    };
    let running = r.generation.map_or_else(
        || "what ran before".to_string(),
        |n| format!("generation {n}"),
    );
    let mut text = format!(
        "REFUSED HOST FILE {} (read at {} UTC, {by}); still running {running}, nothing was touched:\n",
        r.file,
        crate::generations::utc(r.time)
    );
    for line in r.message.lines() {
        if !line.trim().is_empty() {
            text.push_str("  ");
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Starting => "starting",
        State::Running => "running",
        State::Stopping => "stopping",
        State::Stopped => "stopped",
        State::Backoff => "backoff",
        State::Failed => "failed",
    }
}

/// "42s", "3m12s", "2h05m", "3d04h".
pub fn human_duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// Binary units: "512B", "1.5K", "12M", "2.0G".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if value < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{}{}", value.round() as u64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, state: State) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state,
            pid: None,
            uptime: None,
            restarts: 0,
            ready: false,
            memory: None,
            last_exit: None,
            status_text: None,
            warnings: Vec::new(),
            addresses: Vec::new(),
        }
    }

    #[test]
    fn table_is_aligned_with_human_units() {
        let mut db = container("db", State::Running);
        db.pid = Some(4242);
        db.uptime = Some(7384.2);
        db.ready = true;
        db.memory = Some(12 * 1024 * 1024 + 300_000);
        let mut web = container("web-frontend", State::Failed);
        web.restarts = 5;
        web.last_exit = Some("exited 3".into());
        web.warnings = vec![
            "memory limit not enforced".into(),
            "pids limit not enforced".into(),
        ];
        let table = status_table(&[db, web]);
        let expected = "\
NAME          STATE              PID   UPTIME  RESTARTS  READY  MEMORY  WARNINGS
db            running            4242  2h03m   0         yes    12M     -
web-frontend  failed (exited 3)  -     -       5         no     -       memory limit not enforced; pids limit not enforced
";
        assert_eq!(table, expected);
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(
            status_table(&[]),
            "NAME  STATE  PID  UPTIME  RESTARTS  READY  MEMORY  WARNINGS\n"
        );
    }

    #[test]
    fn units() {
        assert_eq!(human_duration(0.4), "0s");
        assert_eq!(human_duration(59.9), "59s");
        assert_eq!(human_duration(192.0), "3m12s");
        assert_eq!(human_duration(3600.0 * 26.0 + 5.0), "1d02h");
        assert_eq!(human_duration(f64::NAN), "0s");
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(300 * 1024 * 1024), "300M");
        assert_eq!(human_bytes(2 * 1024 * 1024 * 1024), "2.0G");
    }

    #[test]
    fn json_has_the_contract_fields() {
        let mut c = container("db", State::Backoff);
        c.pid = Some(7);
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&[c]).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(v[0]["name"], "db");
        assert_eq!(v[0]["state"], "backoff");
        assert_eq!(v[0]["pid"], 7);
        assert_eq!(v[0]["restarts"], 0);
        assert_eq!(v[0]["ready"], false);
    }
}

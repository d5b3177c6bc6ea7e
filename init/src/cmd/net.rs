//! `berth net [--json]`: the networks of the running berth, their bridges and leases,
//! and the port forwards.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use super::ctl::{FAILED, call, fail, unexpected};
use crate::control::proto::{ForwardInfo, NetworkInfo, Request, Response};

pub fn net(socket: &Path, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (networks, forwards) = match call(
        socket,
        &Request::Net,
        Some(crate::control::client::DEFAULT_TIMEOUT),
        err,
    ) {
        Ok(Response::Net { networks, forwards }) => (networks, forwards),
        Ok(other) => return unexpected(err, &other),
        Err(code) => return code,
    };
    let text = if json {
        let value = serde_json::json!({ "networks": networks, "forwards": forwards });
        match serde_json::to_string_pretty(&value) {
            Ok(t) => t + "\n",
            Err(e) => return fail(err, &format!("cannot encode the networks: {e}")),
        }
    } else {
        net_text(&networks, &forwards)
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

/// One block per network (its leases indented below it), then the forwards.
pub fn net_text(networks: &[NetworkInfo], forwards: &[ForwardInfo]) -> String {
    let mut t = String::new();
    if networks.is_empty() {
        t.push_str("no networks\n");
    }
    for n in networks {
        let _ = write!(
            t,
            "{}  bridge {}  subnet {}  gateway {}  mtu {}",
            n.name, n.bridge, n.subnet, n.gateway, n.mtu
        );
        if let (Some(s6), Some(g6)) = (&n.subnet6, &n.gateway6) {
            let _ = write!(t, "  subnet6 {s6}  gateway6 {g6}");
        }
        if n.nat {
            t.push_str("  nat");
        }
        if !n.allow.is_empty() {
            let _ = write!(t, "  allow {}", n.allow.join(","));
        }
        t.push('\n');
        let w = n
            .leases
            .iter()
            .map(|l| l.container.len())
            .max()
            .unwrap_or(0);
        for l in &n.leases {
            let _ = writeln!(
                t,
                "  {:<w$}  {:<15}  {} (host side {})",
                l.container, l.address, l.interface, l.host_interface
            );
        }
    }
    if !forwards.is_empty() {
        t.push_str("forwards\n");
        for f in forwards {
            let _ = writeln!(
                t,
                "  {}:{}/{} -> {} {}:{}",
                f.host_address.as_deref().unwrap_or("*"),
                f.host_port,
                f.protocol,
                f.container,
                f.to,
                f.container_port
            );
        }
    }
    t
}

//! berth's firewall: one nftables table, `inet berth`, replaced as a whole in one
//! transaction whenever the set of networks changes.
//!
//! The rule set is handed to Debian's `nft -f -`: nft parses it completely and sends
//! it to the kernel as one netlink batch, which the kernel commits all at once or not
//! at all; the `table …; delete table …; table … { … }` idiom makes "create or
//! replace" one batch, so there is never a moment with a half-written table or none.
//! Everything interpolated into the text is an interface name, an address or a
//! number, validated by the schema, so the text form is as safe as building JSON and
//! reads like the nft documentation.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use super::NetError;
use super::plan::NetPlan;

pub const TABLE: &str = "berth";

/// One port forward, resolved to the container's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub host_port: u16,
    pub proto: &'static str,
    pub address: Option<IpAddr>,
    pub to: Ipv4Addr,
    pub to_port: u16,
    pub bridge: String,
}

/// The complete table for `plan` (with `dnat` resolved), or `None` when berth needs
/// no rules at all.
pub fn ruleset(plan: &NetPlan, dnat: &[Dnat]) -> Option<String> {
    let mut forward = String::new();
    for (i, a) in plan.networks.iter().enumerate() {
        for (j, b) in plan.networks.iter().enumerate() {
            if i != j && !plan.allowed(i, j) {
                let _ = writeln!(
                    forward,
                    "\t\tiifname \"{}\" oifname \"{}\" drop",
                    a.bridge, b.bridge
                );
            }
        }
    }
    let mut post = String::new();
    for n in plan.networks.iter().filter(|n| n.nat) {
        let net = format!("{}/{}", n.subnet, n.prefix);
        let _ = writeln!(
            post,
            "\t\tip saddr {net} ip daddr != {net} oifname != \"{}\" masquerade",
            n.bridge
        );
        if let Some(v6) = n.v6 {
            let net = format!("{}/{}", v6.subnet, v6.prefix);
            let _ = writeln!(
                post,
                "\t\tip6 saddr {net} ip6 daddr != {net} oifname != \"{}\" masquerade",
                n.bridge
            );
        }
    }
    let mut pre = String::new();
    let mut bridges_with_forwards: Vec<&str> = Vec::new();
    for d in dnat {
        let dst = match d.address {
            Some(IpAddr::V4(a)) => format!("ip daddr {a}"),
            Some(IpAddr::V6(_)) => continue,
            None => "fib daddr type local".to_string(),
        };
        let _ = writeln!(
            pre,
            "\t\t{dst} {} dport {} dnat ip to {}:{}",
            d.proto, d.host_port, d.to, d.to_port
        );
        if !bridges_with_forwards.contains(&d.bridge.as_str()) {
            bridges_with_forwards.push(&d.bridge);
        }
    }
    // Forwards to localhost: the source 127.0.0.1 must not reach the container (it
    // would answer to its own loopback), so it is masqueraded to the gateway.
    for b in bridges_with_forwards {
        let _ = writeln!(post, "\t\toifname \"{b}\" ip saddr 127.0.0.0/8 masquerade");
    }
    if forward.is_empty() && post.is_empty() && pre.is_empty() {
        return None;
    }
    let mut t = format!("table inet {TABLE} {{\n}}\ndelete table inet {TABLE}\n");
    let _ = writeln!(t, "table inet {TABLE} {{");
    let _ = write!(
        t,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n{forward}\t}}\n"
    );
    let _ = write!(
        t,
        "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n{pre}\t}}\n"
    );
    let _ = write!(
        t,
        "\tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n{pre}\t}}\n"
    );
    let _ = write!(
        t,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{post}\t}}\n"
    );
    t.push_str("}\n");
    Some(t)
}

fn nft(input: &str) -> Result<(), NetError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Nft(format!("cannot run nft ({e}); install nftables")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| NetError::Nft(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Nft(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(NetError::Nft(format!(
            "nft refused berth's rule set: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Installs `ruleset` (replacing berth's table), or removes the table when `None`.
pub fn apply(ruleset: Option<&str>) -> Result<(), NetError> {
    match ruleset {
        Some(r) => nft(r),
        None => remove(),
    }
}

/// Removes berth's table if it exists; a missing `nft` means there is none.
pub fn remove() -> Result<(), NetError> {
    let script = format!("table inet {TABLE} {{\n}}\ndelete table inet {TABLE}\n");
    match nft(&script) {
        Err(NetError::Nft(m)) if m.starts_with("cannot run nft") => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::plan::NetworkPlan;

    fn net(name: &str, third: u8, nat: bool, allow: &[&str]) -> NetworkPlan {
        NetworkPlan {
            name: name.into(),
            bridge: format!("br-{name}"),
            subnet: Ipv4Addr::new(10, 0, third, 0),
            prefix: 24,
            gateway: Ipv4Addr::new(10, 0, third, 1),
            mtu: 1500,
            nat,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            dns: vec![],
            v6: None,
        }
    }

    #[test]
    fn one_network_without_nat_or_forwards_needs_no_table() {
        let plan = NetPlan {
            networks: vec![net("a", 1, false, &[])],
            containers: vec![],
        };
        assert_eq!(ruleset(&plan, &[]), None);
    }

    #[test]
    fn isolation_nat_and_forwards() {
        let plan = NetPlan {
            networks: vec![
                net("a", 1, true, &[]),
                net("b", 2, false, &[]),
                net("c", 3, false, &["a"]),
            ],
            containers: vec![],
        };
        let dnat = [Dnat {
            host_port: 8080,
            proto: "tcp",
            address: None,
            to: Ipv4Addr::new(10, 0, 1, 5),
            to_port: 80,
            bridge: "br-a".into(),
        }];
        let t = ruleset(&plan, &dnat).unwrap();
        // Replaced as a whole, in one file (one transaction).
        assert!(
            t.starts_with("table inet berth {\n}\ndelete table inet berth\ntable inet berth {\n")
        );
        for pair in [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")] {
            let rule = format!("iifname \"br-{}\" oifname \"br-{}\" drop", pair.0, pair.1);
            assert!(t.contains(&rule), "{rule}\n{t}");
        }
        assert!(!t.contains("iifname \"br-a\" oifname \"br-c\""), "{t}");
        assert!(!t.contains("iifname \"br-c\" oifname \"br-a\""), "{t}");
        assert!(
            t.contains(
                "ip saddr 10.0.1.0/24 ip daddr != 10.0.1.0/24 oifname != \"br-a\" masquerade"
            ),
            "{t}"
        );
        assert!(!t.contains("ip saddr 10.0.2.0/24"), "{t}");
        assert_eq!(
            t.matches("fib daddr type local tcp dport 8080 dnat ip to 10.0.1.5:80")
                .count(),
            2,
            "{t}"
        );
        assert!(
            t.contains("oifname \"br-a\" ip saddr 127.0.0.0/8 masquerade"),
            "{t}"
        );
    }
}

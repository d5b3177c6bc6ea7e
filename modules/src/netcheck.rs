//! Checks across nodes that need no running system: subnets that overlap, addresses
//! outside their subnet or taken twice, bridges and host ports used twice.

use std::collections::HashMap;

use berth_config::fasthash::FastMap;
use std::net::IpAddr;

use berth_config::kdl::Span;
use berth_config::{Diagnostic, FileId, Tree};

use crate::eval::{Node, slot};
use crate::provenance::{item_places, value_place};
use crate::schema::Kind;
use crate::units::network_of;
use crate::value::Value;

fn contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    net.0.is_ipv4() == ip.is_ipv4() && network_of(ip, net.1) == net.0
}

fn overlaps(a: (IpAddr, u8), b: (IpAddr, u8)) -> bool {
    let len = a.1.min(b.1);
    a.0.is_ipv4() == b.0.is_ipv4() && network_of(a.0, len) == network_of(b.0, len)
}

fn last_v4(net: (IpAddr, u8)) -> Option<IpAddr> {
    match net.0 {
        IpAddr::V4(a) if net.1 < 32 => {
            Some(IpAddr::V4((u32::from(a) | (u32::MAX >> net.1)).into()))
        }
        _ => None,
    }
}

fn place(tree: &Tree, n: &Node, path: &str) -> (FileId, Span) {
    value_place(tree, n, path).unwrap_or_default()
}

pub(crate) fn check(tree: &Tree, nodes: &[Node], diags: &mut Vec<Diagnostic>) {
    let networks: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.id.kind == Kind::Network)
        .collect();
    // Subnets of different networks must not overlap: routes would be ambiguous.
    let mut subnets: Vec<(&Node, &str, (IpAddr, u8))> = Vec::new();
    for n in &networks {
        for path in ["subnet", "subnet6"] {
            if let Some(Value::Cidr(ip, len)) = n.get(path) {
                subnets.push((n, path, (*ip, *len)));
            }
        }
    }
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            if overlaps(a.2, b.2) {
                let (pa, pb) = (place(tree, a.0, a.1), place(tree, b.0, b.1));
                diags.push(
                    Diagnostic::error(format!("subnets of {} and {} overlap", a.0.id, b.0.id))
                        .label(pb.0, pb.1, format!("{}/{}", b.2.0, b.2.1))
                        .label(pa.0, pa.1, format!("overlaps {}/{}", a.2.0, a.2.1))
                        .help(
                            "give each network its own subnet, e.g. 10.88.0.0/24 and 10.89.0.0/24",
                        ),
                );
            }
        }
    }
    let mut bridges: HashMap<&str, &Node> = HashMap::new();
    let mut reserved: HashMap<&str, ((IpAddr, u8), Vec<IpAddr>)> = HashMap::new();
    for n in &networks {
        let Some(Value::Cidr(ip, len)) = n.get("subnet") else {
            continue;
        };
        let net = (*ip, *len);
        let p = place(tree, n, "subnet");
        if *len > 30 {
            diags.push(
                Diagnostic::error(format!("the subnet of {} has no room for containers", n.id))
                    .label(p.0, p.1, "too small")
                    .help("use a prefix of /30 or shorter, e.g. /24"),
            );
            continue;
        }
        let mut taken = vec![net.0];
        taken.extend(last_v4(net));
        if let Some(Value::Ip(gw)) = n.get("gateway") {
            let gp = place(tree, n, "gateway");
            if !contains(net, *gw) || taken.contains(gw) {
                diags.push(
                    Diagnostic::error(format!(
                        "the gateway of {} is not a usable address of its subnet {}/{}",
                        n.id, net.0, net.1
                    ))
                    .label(gp.0, gp.1, "outside the subnet or reserved")
                    .help("pick an address inside the subnet other than its first and last"),
                );
            }
            taken.push(*gw);
        }
        reserved.insert(n.id.name.as_str(), (net, taken));
        if let Some(Value::Str(b)) = n.get("bridge")
            && let Some(other) = bridges.insert(b.as_str(), n)
        {
            let (pa, pb) = (place(tree, other, "bridge"), place(tree, n, "bridge"));
            diags.push(
                Diagnostic::error(format!(
                    "{} and {} use the same bridge `{b}`",
                    other.id, n.id
                ))
                .label(pb.0, pb.1, "here")
                .label(pa.0, pa.1, "and here")
                .help("bridge names are cut to 15 characters; set `bridge \"…\"` on one of them"),
            );
        }
    }

    // Every attached container needs an address of its own (one pass over the
    // containers, then one comparison per network).
    let (network, port) = (
        slot(Kind::Container, "network"),
        slot(Kind::Container, "port"),
    );
    let mut attached: FastMap<&str, u64> = FastMap::default();
    for c in nodes.iter().filter(|c| c.id.kind == Kind::Container) {
        for a in c.at(network).map(Value::as_list).unwrap_or_default() {
            if let Some(name) = a.field("name").and_then(Value::as_str) {
                *attached.entry(name).or_insert(0) += 1;
            }
        }
    }
    for n in &networks {
        let Some((net, taken)) = reserved.get(n.id.name.as_str()) else {
            continue;
        };
        let room = (1u64 << (32 - u32::from(net.1))).saturating_sub(taken.len() as u64);
        let attached = attached.get(n.id.name.as_str()).copied().unwrap_or(0);
        if attached > room {
            let p = place(tree, n, "subnet");
            diags.push(
                Diagnostic::error(format!(
                    "{} has room for {room} containers, {attached} are attached",
                    n.id
                ))
                .label(p.0, p.1, "too small")
                .help("use a larger subnet (a shorter prefix)"),
            );
        }
    }

    let mut statics: FastMap<(&str, IpAddr), (FileId, Span, &Node)> = FastMap::default();
    // (host port, protocol) → who forwards it: (host address, place, container).
    type Users<'n> = Vec<(Option<IpAddr>, FileId, Span, &'n Node)>;
    let mut ports: FastMap<(i64, &str), Users<'_>> = FastMap::default();
    for n in nodes.iter().filter(|n| n.id.kind == Kind::Container) {
        let attachments = n.at(network).map(Value::as_list).unwrap_or_default();
        let places = item_places(tree, n, "network", false);
        for (k, a) in attachments.iter().enumerate() {
            let (Some(Value::Str(net)), Some(Value::Ip(addr))) =
                (a.field("name"), a.field("address"))
            else {
                continue;
            };
            let p = places.get(k).copied().unwrap_or_default();
            let Some((subnet, taken)) = reserved.get(net.as_str()) else {
                continue;
            };
            if !contains(*subnet, *addr) {
                diags.push(Diagnostic::error(format!("address {addr} of {} is outside network `{net}` ({}/{})", n.id, subnet.0, subnet.1)).label(p.0, p.1, "not in the subnet").help("pick an address inside the network's subnet, or leave it out to get one assigned"));
            } else if taken.contains(addr) {
                diags.push(
                    Diagnostic::error(format!(
                        "address {addr} of {} is reserved in network `{net}`",
                        n.id
                    ))
                    .label(p.0, p.1, "network, broadcast or gateway address")
                    .help("pick another address, or leave it out to get one assigned"),
                );
            } else if let Some((f, s, other)) = statics.insert((net.as_str(), *addr), (p.0, p.1, n))
            {
                diags.push(
                    Diagnostic::error(format!(
                        "address {addr} in network `{net}` is given to {} and {}",
                        other.id, n.id
                    ))
                    .label(p.0, p.1, "here")
                    .label(f, s, "and here"),
                );
            }
        }
        let forwards = n.at(port).map(Value::as_list).unwrap_or_default();
        let places = item_places(tree, n, "port", false);
        for (k, fwd) in forwards.iter().enumerate() {
            let (Some(Value::Int(port)), Some(Value::Str(proto))) =
                (fwd.field("host"), fwd.field("protocol"))
            else {
                continue;
            };
            let addr = match fwd.field("address") {
                Some(Value::Ip(a)) => Some(*a),
                _ => None,
            };
            let p = places.get(k).copied().unwrap_or_default();
            let users = ports.entry((*port, proto.as_str())).or_default();
            // No address means every address, so it clashes with any other use.
            if let Some((_, f, s, other)) = users
                .iter()
                .find(|(a, ..)| a.is_none() || addr.is_none() || *a == addr)
            {
                diags.push(
                    Diagnostic::error(format!(
                        "host port {port}/{proto} is forwarded twice ({} and {})",
                        other.id, n.id
                    ))
                    .label(p.0, p.1, "here")
                    .label(*f, *s, "and here")
                    .help("each host port can go to one container; pick another host port"),
                );
            }
            users.push((addr, p.0, p.1, n));
        }
    }
}

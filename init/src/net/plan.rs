//! What the host's networks should look like, taken from an evaluated host: bridges,
//! subnets, which container is on which network (in declaration order: eth0, eth1, …)
//! and the port forwards. Pure data; `berth check` has already validated it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_modules::{Evaluation, Kind, Value, bridge_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    pub nat: bool,
    /// Networks whose containers may exchange traffic with this one.
    pub allow: Vec<String>,
    pub dns: Vec<IpAddr>,
    /// The IPv6 side of a dual-stack network (`subnet6`).
    pub v6: Option<Net6>,
}

/// An IPv6 subnet; the gateway (the bridge's address) is its first address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net6 {
    pub subnet: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Ipv6Addr,
}

impl Net6 {
    pub fn new(subnet: Ipv6Addr, prefix: u8) -> Net6 {
        Net6 {
            subnet,
            prefix,
            gateway: Ipv6Addr::from(u128::from(subnet) + 1),
        }
    }

    /// How many addresses containers may get: the subnet without its first (the
    /// subnet-router anycast address) and the gateway; at most 2^64.
    pub fn size(&self) -> u64 {
        let bits = 128 - u32::from(self.prefix);
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits).saturating_sub(2)
        }
    }

    /// The `i`th address containers may get (`i < size()`).
    pub fn nth(&self, i: u64) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.subnet) + 2 + u128::from(i))
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        u128::from(a) & mask == u128::from(self.subnet)
            && u128::from(a) - u128::from(self.subnet) >= 2
    }
}

impl NetworkPlan {
    /// The addresses containers may get: the subnet without its first, its last and
    /// the gateway.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let first = u32::from(self.subnet);
        let last = first | (u32::MAX >> self.prefix);
        (first + 1..last)
            .map(Ipv4Addr::from)
            .filter(|a| *a != self.gateway)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(a) & mask == u32::from(self.subnet)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
    /// Only connections to this host address (any local address when `None`).
    pub address: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub name: String,
    pub hostname: String,
    /// (index into `NetPlan::networks`, static address), eth0 first.
    pub attachments: Vec<(usize, Option<Ipv4Addr>)>,
    pub forwards: Vec<Forward>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPlan {
    pub networks: Vec<NetworkPlan>,
    /// Only containers attached to at least one of `networks`.
    pub containers: Vec<ContainerPlan>,
}

impl NetPlan {
    pub fn from_evaluation(ev: &Evaluation) -> NetPlan {
        let mut networks = Vec::new();
        for n in ev.of_kind(Kind::Network) {
            let Some(Value::Cidr(IpAddr::V4(subnet), prefix)) = n.get("subnet") else {
                continue;
            };
            let gateway = match n.get("gateway") {
                Some(Value::Ip(IpAddr::V4(g))) => *g,
                _ => Ipv4Addr::from(u32::from(*subnet) + 1),
            };
            let list = |path: &str| -> Vec<Value> {
                n.get(path).map(Value::as_list).unwrap_or_default().to_vec()
            };
            networks.push(NetworkPlan {
                name: n.id.name.clone(),
                bridge: match n.get("bridge") {
                    Some(Value::Str(b)) => b.clone(),
                    _ => bridge_name(&n.id.name),
                },
                subnet: *subnet,
                prefix: *prefix,
                gateway,
                mtu: match n.get("mtu") {
                    Some(Value::Int(m)) => *m as u32,
                    _ => 1500,
                },
                nat: n.get("nat").and_then(Value::as_bool).unwrap_or(false),
                allow: list("allow")
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                dns: list("dns")
                    .iter()
                    .filter_map(|v| match v {
                        Value::Ip(ip) => Some(*ip),
                        _ => None,
                    })
                    .collect(),
                v6: match n.get("subnet6") {
                    Some(Value::Cidr(IpAddr::V6(s6), p6)) => Some(Net6::new(*s6, *p6)),
                    _ => None,
                },
            });
        }
        let mut containers = Vec::new();
        for c in ev.of_kind(Kind::Container) {
            let mut attachments = Vec::new();
            for a in c.get("network").map(Value::as_list).unwrap_or_default() {
                let Some(name) = a.field("name").and_then(Value::as_str) else {
                    continue;
                };
                let Some(i) = networks.iter().position(|n| n.name == name) else {
                    continue;
                };
                let addr = match a.field("address") {
                    Some(Value::Ip(IpAddr::V4(ip))) => Some(*ip),
                    _ => None,
                };
                attachments.push((i, addr));
            }
            if attachments.is_empty() {
                continue;
            }
            let mut forwards = Vec::new();
            for f in c.get("port").map(Value::as_list).unwrap_or_default() {
                let (Some(Value::Int(h)), Some(Value::Int(p))) =
                    (f.field("host"), f.field("container"))
                else {
                    continue;
                };
                forwards.push(Forward {
                    host_port: *h as u16,
                    container_port: *p as u16,
                    proto: match f.field("protocol").and_then(Value::as_str) {
                        Some("udp") => Proto::Udp,
                        _ => Proto::Tcp,
                    },
                    address: match f.field("address") {
                        Some(Value::Ip(ip)) => Some(*ip),
                        _ => None,
                    },
                });
            }
            containers.push(ContainerPlan {
                name: c.id.name.clone(),
                hostname: c
                    .get("hostname")
                    .and_then(Value::as_str)
                    .unwrap_or(&c.id.name)
                    .to_string(),
                attachments,
                forwards,
            });
        }
        NetPlan {
            networks,
            containers,
        }
    }

    /// Whether containers of networks `a` and `b` may talk (one allows the other).
    pub fn allowed(&self, a: usize, b: usize) -> bool {
        let (na, nb) = (&self.networks[a], &self.networks[b]);
        na.allow.contains(&nb.name) || nb.allow.contains(&na.name)
    }
}

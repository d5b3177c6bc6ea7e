//! Address management: every container keeps its address on a network for as long as
//! its lease exists (`net/leases.json` under the state dir, written atomically). A new
//! container's first choice is a hash of its name into the subnet, so even without the
//! lease file the same host tends to get the same addresses.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::NetError;
use super::plan::NetPlan;

/// network → container → address.
pub type LeaseMap = BTreeMap<String, BTreeMap<String, IpAddr>>;

#[derive(Debug)]
pub struct Leases {
    pub path: PathBuf,
    pub map: LeaseMap,
}

impl Leases {
    pub fn load(path: &Path) -> Result<Leases, NetError> {
        let map = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NetError::Leases {
                path: path.to_path_buf(),
                why: format!("not a lease file ({e}); move it away to start afresh"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LeaseMap::new(),
            Err(e) => {
                return Err(NetError::Leases {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                });
            }
        };
        Ok(Leases {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn save(&self) -> Result<(), NetError> {
        let err = |why: String| NetError::Leases {
            path: self.path.clone(),
            why,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let mut text = serde_json::to_vec_pretty(&self.map).map_err(|e| err(e.to_string()))?;
        text.push(b'\n');
        crate::fsutil::write_atomic(&self.path, &text).map_err(|e| err(e.to_string()))
    }

    /// Gives every attachment of `plan` an address (and an IPv6 one on networks with
    /// `subnet6`, leased under `NETWORK/ipv6`), keeping existing leases; returns them
    /// per container, in attachment order. Leases of containers that are gone are
    /// kept (they come back to the same address) unless their address is needed.
    pub fn assign(&mut self, plan: &NetPlan) -> Result<Addresses, NetError> {
        for (ni, net) in plan.networks.iter().enumerate() {
            let members: Vec<(&str, Option<IpAddr>)> = plan
                .containers
                .iter()
                .filter_map(|c| {
                    c.attachments
                        .iter()
                        .find(|(i, _)| *i == ni)
                        .map(|(_, a)| (c.name.as_str(), a.map(IpAddr::V4)))
                })
                .collect();
            let hosts: Vec<IpAddr> = net.hosts().map(IpAddr::V4).collect();
            let pool = Pool {
                network: &net.name,
                size: hosts.len() as u64,
                nth: &|i| hosts[i as usize],
                valid: &|a| hosts.contains(&a),
            };
            self.assign_pool(&net.name, &pool, &members)?;
            if let Some(v6) = net.v6 {
                let members: Vec<(&str, Option<IpAddr>)> =
                    members.iter().map(|(n, _)| (*n, None)).collect();
                let pool = Pool {
                    network: &net.name,
                    size: v6.size(),
                    nth: &|i| IpAddr::V6(v6.nth(i)),
                    valid: &|a| matches!(a, IpAddr::V6(a) if v6.contains(a)),
                };
                self.assign_pool(&v6_key(&net.name), &pool, &members)?;
            }
        }
        let mut out = BTreeMap::new();
        for c in &plan.containers {
            let addrs = c
                .attachments
                .iter()
                .filter_map(|(i, _)| {
                    let net = &plan.networks[*i];
                    let v4 = match self.map.get(&net.name)?.get(&c.name)? {
                        IpAddr::V4(a) => *a,
                        IpAddr::V6(_) => return None,
                    };
                    let v6 = match self
                        .map
                        .get(&v6_key(&net.name))
                        .and_then(|l| l.get(&c.name))
                    {
                        Some(IpAddr::V6(a)) if net.v6.is_some() => Some(*a),
                        _ => None,
                    };
                    Some((v4, v6))
                })
                .collect();
            out.insert(c.name.clone(), addrs);
        }
        Ok(out)
    }

    /// The leases of one address family of one network (`key` in the lease file).
    fn assign_pool(
        &mut self,
        key: &str,
        pool: &Pool<'_>,
        members: &[(&str, Option<IpAddr>)],
    ) -> Result<(), NetError> {
        let path = self.path.clone();
        let leases = self.map.entry(key.to_string()).or_default();
        let present: HashSet<&str> = members.iter().map(|(n, _)| *n).collect();
        let mut got: BTreeMap<&str, IpAddr> = BTreeMap::new();
        let mut taken: HashSet<IpAddr> = HashSet::new();
        // Static addresses first: they are the config's word.
        for (name, addr) in members {
            if let Some(a) = addr {
                if let Some((holder, _)) = leases
                    .iter()
                    .find(|(h, l)| *l == a && h.as_str() != *name && present.contains(h.as_str()))
                    && !members.iter().any(|(m, s)| m == holder && s.is_some())
                {
                    return Err(NetError::Conflict(format!(
                        "address {a} of container `{name}` on network `{}` is leased to container `{holder}`; pick another address, or remove `{holder}`'s lease from {}",
                        pool.network,
                        path.display()
                    )));
                }
                got.insert(name, *a);
                taken.insert(*a);
            }
        }
        // Then the leases of containers still here, where still valid.
        for (name, addr) in members {
            if addr.is_some() {
                continue;
            }
            if let Some(l) = leases.get(*name)
                && (pool.valid)(*l)
                && !taken.contains(l)
            {
                got.insert(name, *l);
                taken.insert(*l);
            }
        }
        // Then new ones: hash of the name, probing upwards; addresses leased to
        // containers that are gone are taken only when nothing else is free.
        let stale: HashSet<IpAddr> = leases
            .iter()
            .filter(|(h, _)| !present.contains(h.as_str()))
            .map(|(_, a)| *a)
            .collect();
        let n = pool.size;
        for (name, addr) in members {
            if addr.is_some() || got.contains_key(name) {
                continue;
            }
            if n == 0 {
                return Err(NetError::Exhausted(pool.network.to_string()));
            }
            let start = first_choice(pool.network, name, n);
            let probe = |avoid_stale: bool| {
                (0..n)
                    .map(|k| {
                        (pool.nth)(((u128::from(start) + u128::from(k)) % u128::from(n)) as u64)
                    })
                    .find(|a| !(taken.contains(a) || avoid_stale && stale.contains(a)))
            };
            let a = probe(true)
                .or_else(|| probe(false))
                .ok_or_else(|| NetError::Exhausted(pool.network.to_string()))?;
            got.insert(name, a);
            taken.insert(a);
        }
        // Drop stale leases whose address went to someone else.
        leases.retain(|h, a| present.contains(h.as_str()) || !taken.contains(a));
        for (name, a) in &got {
            leases.insert(name.to_string(), *a);
        }
        Ok(())
    }
}

/// container → (IPv4 address, IPv6 address on dual-stack networks), per attachment.
pub type Addresses = BTreeMap<String, Vec<(Ipv4Addr, Option<Ipv6Addr>)>>;

/// The lease-file key of a network's IPv6 leases (`/` is never in a network's name).
fn v6_key(network: &str) -> String {
    format!("{network}/ipv6")
}

/// The addresses of one family a network hands out.
struct Pool<'a> {
    network: &'a str,
    size: u64,
    nth: &'a dyn Fn(u64) -> IpAddr,
    valid: &'a dyn Fn(IpAddr) -> bool,
}

/// The deterministic first candidate for `container` on `network`: an index into the
/// network's usable addresses.
fn first_choice(network: &str, container: &str, n: u64) -> u64 {
    let h = blake3::hash(format!("{network}\0{container}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b) % n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::plan::{ContainerPlan, NetworkPlan};

    fn plan(names: &[(&str, Option<Ipv4Addr>)], prefix: u8) -> NetPlan {
        NetPlan {
            networks: vec![NetworkPlan {
                name: "lan".into(),
                bridge: "br-lan".into(),
                subnet: Ipv4Addr::new(10, 88, 0, 0),
                prefix,
                gateway: Ipv4Addr::new(10, 88, 0, 1),
                mtu: 1500,
                nat: false,
                allow: vec![],
                dns: vec![],
                v6: None,
            }],
            containers: names
                .iter()
                .map(|(n, a)| ContainerPlan {
                    name: n.to_string(),
                    hostname: n.to_string(),
                    attachments: vec![(0, *a)],
                    forwards: vec![],
                })
                .collect(),
        }
    }

    fn leases() -> Leases {
        Leases {
            path: PathBuf::from("leases.json"),
            map: LeaseMap::new(),
        }
    }

    #[test]
    fn unique_stable_and_deterministic() {
        let names: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
        let p = plan(
            &names.iter().map(|n| (n.as_str(), None)).collect::<Vec<_>>(),
            24,
        );
        let mut l = leases();
        let a = l.assign(&p).unwrap();
        let set: HashSet<Ipv4Addr> = a.values().map(|v| v[0].0).collect();
        assert_eq!(set.len(), 200);
        assert!(!set.contains(&Ipv4Addr::new(10, 88, 0, 1)));
        // Same leases → same answer; no leases → the same deterministic choice.
        assert_eq!(l.assign(&p).unwrap(), a);
        assert_eq!(leases().assign(&p).unwrap(), a);
    }

    #[test]
    fn lease_survives_a_newcomer_hashing_onto_it() {
        let mut l = leases();
        let a = l.assign(&plan(&[("a", None)], 24)).unwrap()["a"][0].0;
        // `b` asks for a's address statically while `a` is gone: a moves on return.
        let p = plan(&[("b", Some(a))], 24);
        l.assign(&p).unwrap();
        let p = plan(&[("b", Some(a)), ("a", None)], 24);
        let got = l.assign(&p).unwrap();
        assert_ne!(got["a"][0].0, a);
        // A static address on a present container's lease is a conflict.
        let mut l = leases();
        let a = l.assign(&plan(&[("a", None)], 24)).unwrap()["a"][0].0;
        let e = l
            .assign(&plan(&[("a", None), ("b", Some(a))], 24))
            .unwrap_err();
        assert!(e.to_string().contains("leased to container `a`"), "{e}");
    }

    #[test]
    fn ipv6_addresses_are_unique_stable_and_in_the_subnet() {
        let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
        let mut p = plan(
            &names.iter().map(|n| (n.as_str(), None)).collect::<Vec<_>>(),
            24,
        );
        let net6 = crate::net::plan::Net6::new("fd00:88::".parse().unwrap(), 64);
        p.networks[0].v6 = Some(net6);
        let mut l = leases();
        let a = l.assign(&p).unwrap();
        let set: HashSet<Ipv6Addr> = a.values().map(|v| v[0].1.unwrap()).collect();
        assert_eq!(set.len(), 50);
        assert!(set.iter().all(|x| net6.contains(*x) && *x != net6.gateway));
        assert!(l.map.contains_key("lan/ipv6"));
        assert_eq!(l.assign(&p).unwrap(), a);
        assert_eq!(leases().assign(&p).unwrap(), a);
        // A lease file from before IPv6 (IPv4 only) still loads and keeps its addresses.
        let v4_only = plan(&[("c0", None)], 24);
        let mut old = leases();
        old.map.insert(
            "lan".into(),
            [("c0".to_string(), IpAddr::V4(a["c0"][0].0))].into(),
        );
        assert_eq!(
            old.assign(&v4_only).unwrap()["c0"],
            vec![(a["c0"][0].0, None)]
        );
    }

    #[test]
    fn exhausted_subnet_is_an_error() {
        let mut l = leases();
        // /30: two hosts, one is the gateway.
        let e = l
            .assign(&plan(&[("a", None), ("b", None)], 30))
            .unwrap_err();
        assert!(matches!(e, NetError::Exhausted(_)), "{e}");
    }
}

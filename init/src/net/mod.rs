//! Container networking: a bridge per network, a persistent network namespace per
//! container with a veth pair into each of its networks (eth0, eth1, … in declaration
//! order), stable addresses from a lease file, `/etc/hosts` and `/etc/resolv.conf`
//! for each container, and one nftables table for NAT, port forwards and isolation.
//!
//! Everything is set up over rtnetlink before any container starts, so a container's
//! process sees its network from its first instruction, and the namespace (with its
//! address) survives restarts of the container. What berth creates carries an
//! interface alias naming berth's state directory: a berth that starts after a crash
//! finds its leftovers by that alias and replaces them, never duplicates them.

mod ipam;
pub mod netlink;
mod netns;
pub mod nft;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::control::proto::{AddressInfo, ForwardInfo, LeaseInfo, NetworkInfo};
use crate::runtime::Mount;
pub use plan::{Net6, NetPlan};

use self::netlink::Netlink;
use self::nft::Dnat;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("lease file {path}: {why}")]
    Leases { path: PathBuf, why: String },
    #[error("{0}")]
    Conflict(String),
    #[error("network `{0}` has no free address left; use a larger subnet")]
    Exhausted(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "interface {0} exists and was not made by this berth; remove it or give the network another `bridge` name"
    )]
    NotOurs(String),
    #[error("{0}")]
    Nft(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Io { what, source }
}

/// One interface of a container.
#[derive(Debug, Clone)]
pub struct Interface {
    pub network: String,
    /// Inside the container: eth0, eth1, …
    pub name: String,
    /// The host end of the veth pair.
    pub host: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The IPv6 address and prefix length on a dual-stack network.
    pub v6: Option<(Ipv6Addr, u8)>,
}

/// What a container gets from the network setup.
#[derive(Debug, Clone)]
pub struct ContainerNet {
    /// The namespace file to join (`NamespaceMode::Path`).
    pub netns: PathBuf,
    /// `/etc/hosts` and `/etc/resolv.conf`.
    pub mounts: Vec<Mount>,
    pub interfaces: Vec<Interface>,
}

/// The networks berth runs, as set up.
#[derive(Debug)]
pub struct NetHost {
    plan: NetPlan,
    tag: String,
    netns_dir: PathBuf,
    files_dir: PathBuf,
    host: Netlink,
    containers: BTreeMap<String, ContainerNet>,
    dnat: Vec<(String, Dnat)>,
    /// False once torn down.
    live: bool,
}

impl Drop for NetHost {
    fn drop(&mut self) {
        self.down();
    }
}

/// The alias that marks berth's interfaces: one per state directory, so two berths
/// with different state directories never touch each other's.
fn tag_of(state_dir: &Path) -> String {
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let h = blake3::hash(dir.as_os_str().as_encoded_bytes()).to_hex();
    format!("berth:{}", &h[..12])
}

/// What decides a container's namespace and veths: per attachment (eth0 first) the
/// network's name, bridge, subnet and gateways, and the container's addresses on it.
type Wiring = Vec<(
    String,
    String,
    Ipv4Addr,
    u8,
    Option<Net6>,
    Option<(Ipv4Addr, Option<Ipv6Addr>)>,
)>;

fn wiring(
    plan: &NetPlan,
    c: &plan::ContainerPlan,
    address: impl Fn(usize) -> Option<(Ipv4Addr, Option<Ipv6Addr>)>,
) -> Wiring {
    c.attachments
        .iter()
        .enumerate()
        .map(|(k, (ni, _))| {
            let n = &plan.networks[*ni];
            (
                n.name.clone(),
                n.bridge.clone(),
                n.gateway,
                n.prefix,
                n.v6,
                address(k),
            )
        })
        .collect()
}

/// The host end of a container's `k`th veth: ≤ 15 bytes, stable, unique per state dir.
fn veth_name(tag: &str, container: &str, k: usize) -> String {
    let h = blake3::hash(format!("{tag}\0{container}\0{k}").as_bytes()).to_hex();
    format!("vb{}", &h[..11])
}

fn sysctl(path: &str, value: &str) -> Result<(), NetError> {
    std::fs::write(path, value).map_err(io_err(format!("write {value} to {path}")))
}

/// Addresses for every attachment of `plan`, from the lease file under `state_dir`
/// (saved when it changed).
fn lease(plan: &NetPlan, state_dir: &Path) -> Result<ipam::Addresses, NetError> {
    let mut leases = ipam::Leases::load(&state_dir.join("net").join("leases.json"))?;
    let before = leases.map.clone();
    let addresses = leases.assign(plan)?;
    leases.map.retain(|_, l| !l.is_empty());
    if leases.map != before {
        leases.save()?;
    }
    Ok(addresses)
}

impl NetHost {
    /// Reconciles what a previous berth left and sets up every network and every
    /// attached container's namespace. On error nothing of it is left behind.
    pub fn up(plan: NetPlan, state_dir: &Path) -> Result<NetHost, NetError> {
        let tag = tag_of(state_dir);
        let run = state_dir.join("run");
        let addresses = lease(&plan, state_dir)?;
        let host = Netlink::open().map_err(io_err("open a netlink socket"))?;
        let mut me = NetHost {
            plan,
            tag,
            netns_dir: run.join("netns"),
            files_dir: run.join("net"),
            host,
            containers: BTreeMap::new(),
            dnat: Vec::new(),
            live: true,
        };
        match me.build(&addresses) {
            Ok(()) => Ok(me),
            Err(e) => {
                me.down();
                Err(e)
            }
        }
    }

    fn build(&mut self, addresses: &ipam::Addresses) -> Result<(), NetError> {
        let leftovers = self.reconcile()?;
        if self.plan.networks.is_empty() {
            return if leftovers { nft::remove() } else { Ok(()) };
        }
        self.wire(addresses)
    }

    /// Bridges for every network of the plan (created or adjusted), a namespace and
    /// veths for every attached container that has none yet, then every container's
    /// names, the port forwards and the firewall.
    fn wire(&mut self, addresses: &ipam::Addresses) -> Result<(), NetError> {
        if self.plan.networks.is_empty() {
            self.dnat.clear();
            return nft::remove();
        }
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        if self.plan.networks.iter().any(|n| n.v6.is_some()) {
            sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
        }
        let mut bridges = Vec::new();
        for n in self.plan.networks.clone() {
            bridges.push(self.bridge(&n)?);
        }
        self.dnat.clear();
        for c in self.plan.containers.clone() {
            if !self.containers.contains_key(&c.name) {
                let addrs = addresses.get(&c.name).cloned().unwrap_or_default();
                let net = self.container(&c, &addrs, &bridges)?;
                self.containers.insert(c.name.clone(), net);
            }
            let iface = &self.containers[&c.name].interfaces[0];
            for f in &c.forwards {
                self.dnat.push((
                    c.name.clone(),
                    Dnat {
                        host_port: f.host_port,
                        proto: f.proto.as_str(),
                        address: f.address,
                        to: iface.address,
                        to_port: f.container_port,
                        bridge: self.plan.networks[c.attachments[0].0].bridge.clone(),
                    },
                ));
            }
        }
        self.write_names()?;
        let dnat: Vec<Dnat> = self.dnat.iter().map(|(_, d)| d.clone()).collect();
        let rules = nft::ruleset(&self.plan, &dnat);
        nft::apply(rules.as_deref())
    }

    /// Moves the running networks to `plan` (a `berth switch`): bridges of networks
    /// that are gone are removed, new ones made, the others adjusted in place (MTU,
    /// addresses); every container whose wiring changes — attached to other networks,
    /// a network with another subnet, gateway or bridge, another address — gets a new
    /// namespace and veths, and so does a new one; a removed container loses its.
    /// Names, port forwards and the firewall follow for everyone (`/etc/hosts` and
    /// `resolv.conf` are rewritten in place, so running containers see them).
    ///
    /// Returns the containers rewired: each must be started again to join its new
    /// namespace (the plan's `recreate`). The others keep theirs and their processes.
    pub fn switch(
        &mut self,
        plan: NetPlan,
        state_dir: &Path,
    ) -> Result<BTreeSet<String>, NetError> {
        let addresses = lease(&plan, state_dir)?;
        let old = std::mem::replace(&mut self.plan, plan);
        let mut rewired = BTreeSet::new();
        let wired: Vec<String> = self.containers.keys().cloned().collect();
        for name in wired {
            let was = old.containers.iter().find(|c| c.name == name).map(|c| {
                wiring(&old, c, |k| {
                    self.containers[&name]
                        .interfaces
                        .get(k)
                        .map(|i| (i.address, i.v6.map(|v| v.0)))
                })
            });
            let will = self
                .plan
                .containers
                .iter()
                .find(|c| c.name == name)
                .map(|c| {
                    let addrs = addresses.get(&name);
                    wiring(&self.plan, c, |k| addrs.and_then(|a| a.get(k)).copied())
                });
            if was == will {
                continue;
            }
            self.unwire(&name)?;
            if will.is_some() {
                rewired.insert(name);
            }
        }
        for c in &self.plan.containers {
            if !self.containers.contains_key(&c.name) {
                rewired.insert(c.name.clone());
            }
        }
        for n in &old.networks {
            if !self.plan.networks.iter().any(|m| m.bridge == n.bridge) {
                self.remove_bridge(&n.bridge)?;
            }
        }
        self.wire(&addresses)?;
        Ok(rewired)
    }

    /// Removes a container's veths and namespace file (a process still in the
    /// namespace keeps it until it exits).
    fn unwire(&mut self, name: &str) -> Result<(), NetError> {
        let prefix = format!("{}:veth:{name}:", self.tag);
        let links = self.host.links().map_err(io_err("list interfaces"))?;
        for l in links {
            if l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix)) {
                self.host
                    .delete_link(l.index)
                    .map_err(io_err(format!("remove {} of container `{name}`", l.name)))?;
            }
        }
        let path = self.netns_dir.join(name);
        netns::remove(&path).map_err(io_err(format!("remove {}", path.display())))?;
        self.containers.remove(name);
        Ok(())
    }

    /// Removes one of berth's bridges (never an interface that is not berth's).
    fn remove_bridge(&mut self, bridge: &str) -> Result<(), NetError> {
        let what = format!("remove bridge {bridge}");
        if let Some(l) = self.host.link(bridge).map_err(io_err(&what))?
            && l.alias
                .as_deref()
                .is_some_and(|a| a.starts_with(&format!("{}:bridge:", self.tag)))
        {
            self.host.delete_link(l.index).map_err(io_err(&what))?;
        }
        Ok(())
    }

    /// Removes veths and namespaces of a previous run, and bridges of networks that
    /// are gone; bridges of networks still configured are kept (adopted).
    fn reconcile(&mut self) -> Result<bool, NetError> {
        let mut found = false;
        let links = self.host.links().map_err(io_err("list interfaces"))?;
        for l in &links {
            let Some(alias) = l.alias.as_deref() else {
                continue;
            };
            let Some(rest) = alias.strip_prefix(&self.tag) else {
                continue;
            };
            let keep = rest.strip_prefix(":bridge:").is_some_and(|net| {
                self.plan
                    .networks
                    .iter()
                    .any(|n| n.name == net && n.bridge == l.name)
            });
            found = true;
            if !keep {
                self.host
                    .delete_link(l.index)
                    .map_err(io_err(format!("remove leftover interface {}", l.name)))?;
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.netns_dir) {
            for e in rd.flatten() {
                found = true;
                netns::remove(&e.path()).map_err(io_err(format!(
                    "remove leftover namespace {}",
                    e.path().display()
                )))?;
            }
        }
        Ok(found)
    }

    /// Creates or adopts a network's bridge; returns its index.
    fn bridge(&mut self, n: &plan::NetworkPlan) -> Result<u32, NetError> {
        let alias = format!("{}:bridge:{}", self.tag, n.name);
        let what = format!("bridge {} of network `{}`", n.bridge, n.name);
        let link = match self.host.link(&n.bridge).map_err(io_err(&what))? {
            Some(l) if l.alias.as_deref() == Some(alias.as_str()) => {
                self.host
                    .set_link(&n.bridge, Some(n.mtu), None, Some(true))
                    .map_err(io_err(&what))?;
                l
            }
            Some(_) => return Err(NetError::NotOurs(n.bridge.clone())),
            None => {
                self.host
                    .add_bridge(&n.bridge, n.mtu, &alias)
                    .map_err(io_err(format!("create {what}")))?;
                self.host
                    .link(&n.bridge)
                    .map_err(io_err(&what))?
                    .ok_or_else(|| NetError::Io {
                        what: what.clone(),
                        source: io::Error::other("gone right after it was created"),
                    })?
            }
        };
        let mut want = vec![(IpAddr::V4(n.gateway), n.prefix)];
        if let Some(v6) = n.v6 {
            // A bridge made while the host's default disables IPv6 would refuse it.
            sysctl(
                &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", n.bridge),
                "0",
            )?;
            want.push((IpAddr::V6(v6.gateway), v6.prefix));
        }
        for (a, len) in self.host.addresses(link.index).map_err(io_err(&what))? {
            if !want.contains(&(a, len)) {
                self.host
                    .delete_address(link.index, a, len)
                    .map_err(io_err(&what))?;
            }
        }
        for (a, len) in want {
            self.host
                .add_address(link.index, a, len)
                .map_err(io_err(format!("give {what} address {a}")))?;
        }
        // Port forwards to 127.0.0.1 leave through the bridge with a loopback source
        // (masqueraded in postrouting); the kernel drops such packets unless allowed.
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge),
            "1",
        )?;
        Ok(link.index)
    }

    /// A container's namespace, veths, addresses and default route.
    fn container(
        &mut self,
        c: &plan::ContainerPlan,
        addrs: &[(Ipv4Addr, Option<Ipv6Addr>)],
        bridges: &[u32],
    ) -> Result<ContainerNet, NetError> {
        let what = |s: &str| format!("network of container `{}`: {s}", c.name);
        let path = self.netns_dir.join(&c.name);
        let mut ns = netns::create(&path).map_err(io_err(what("create its namespace")))?;
        ns.netlink
            .up_index(1)
            .map_err(io_err(what("bring up loopback")))?;
        let mut interfaces = Vec::new();
        let mut route6 = false;
        for (k, ((ni, _), (addr, addr6))) in c.attachments.iter().zip(addrs).enumerate() {
            let n = &self.plan.networks[*ni];
            let host = veth_name(&self.tag, &c.name, k);
            let name = format!("eth{k}");
            let alias = format!("{}:veth:{}:{k}", self.tag, c.name);
            self.host
                .add_veth(&host, &alias, bridges[*ni], &name, ns.fd.as_fd(), n.mtu)
                .map_err(io_err(what(&format!("create veth {host} on {}", n.bridge))))?;
            let inner = ns
                .netlink
                .link(&name)
                .map_err(io_err(what(&name)))?
                .ok_or_else(|| NetError::Io {
                    what: what(&name),
                    source: io::Error::other("not found in the namespace after creation"),
                })?;
            ns.netlink
                .add_address(inner.index, IpAddr::V4(*addr), n.prefix)
                .map_err(io_err(what(&format!("address {addr} on {name}"))))?;
            let v6 = n.v6.zip(*addr6).map(|(net, a)| (a, net.prefix));
            if let Some((a, len)) = v6 {
                ns.netlink
                    .add_address(inner.index, IpAddr::V6(a), len)
                    .map_err(io_err(what(&format!("address {a} on {name}"))))?;
            }
            ns.netlink
                .up_index(inner.index)
                .map_err(io_err(what(&format!("bring up {name}"))))?;
            if k == 0 {
                ns.netlink
                    .add_default_route(inner.index, IpAddr::V4(n.gateway))
                    .map_err(io_err(what(&format!("default route via {}", n.gateway))))?;
            }
            // The IPv6 default route goes via the first dual-stack network.
            if let Some(net) = n.v6.filter(|_| v6.is_some() && !route6) {
                route6 = true;
                ns.netlink
                    .add_default_route(inner.index, IpAddr::V6(net.gateway))
                    .map_err(io_err(what(&format!("default route via {}", net.gateway))))?;
            }
            interfaces.push(Interface {
                network: n.name.clone(),
                name,
                host,
                address: *addr,
                prefix: n.prefix,
                v6,
            });
        }
        let dir = self.files_dir.join(&c.name);
        Ok(ContainerNet {
            netns: path,
            mounts: vec![
                Mount::Bind {
                    src: dir.join("hosts"),
                    dst: "/etc/hosts".into(),
                    ro: true,
                },
                Mount::Bind {
                    src: dir.join("resolv.conf"),
                    dst: "/etc/resolv.conf".into(),
                    ro: true,
                },
            ],
            interfaces,
        })
    }

    /// Writes each container's /etc/hosts (itself, then every container that shares a
    /// network with it, by name) and /etc/resolv.conf.
    fn write_names(&self) -> Result<(), NetError> {
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for c in &self.plan.containers {
            let Some(me) = self.containers.get(&c.name) else {
                continue;
            };
            let mut hosts =
                String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
            let own = if c.hostname == c.name {
                c.name.clone()
            } else {
                format!("{} {}", c.hostname, c.name)
            };
            hosts.push_str(&format!("{}\t{own}\n", me.interfaces[0].address));
            if let Some((a, _)) = me.interfaces.iter().find_map(|i| i.v6) {
                hosts.push_str(&format!("{a}\t{own}\n"));
            }
            for other in &self.plan.containers {
                if other.name == c.name {
                    continue;
                }
                let Some(them) = self.containers.get(&other.name) else {
                    continue;
                };
                // Their address on the first network we share.
                if let Some(i) = me
                    .interfaces
                    .iter()
                    .find_map(|mi| them.interfaces.iter().find(|ti| ti.network == mi.network))
                {
                    hosts.push_str(&format!("{}\t{}\n", i.address, other.name));
                }
                // And their IPv6 address on the first dual-stack network we share.
                if let Some((a, _)) =
                    me.interfaces
                        .iter()
                        .filter(|mi| mi.v6.is_some())
                        .find_map(|mi| {
                            them.interfaces
                                .iter()
                                .find(|ti| ti.network == mi.network)
                                .and_then(|ti| ti.v6)
                        })
                {
                    hosts.push_str(&format!("{a}\t{}\n", other.name));
                }
            }
            let first = &self.plan.networks[c.attachments[0].0];
            let resolv = resolv_conf(&first.dns, &host_resolv);
            let dir = self.files_dir.join(&c.name);
            std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
            // Written afresh at every start, before any container runs: no need for
            // fsync (the lease file is what must survive a crash).
            for (file, text) in [("hosts", &hosts), ("resolv.conf", &resolv)] {
                let p = dir.join(file);
                std::fs::write(&p, text).map_err(io_err(format!("write {}", p.display())))?;
            }
        }
        Ok(())
    }

    /// The network of container `name`, if it is attached to any.
    pub fn of(&self, name: &str) -> Option<&ContainerNet> {
        self.containers.get(name)
    }

    /// Removes everything: veths, namespaces, bridges, the nft table (the lease file
    /// stays). Problems are reported on stderr; it removes what it can.
    pub fn down(&mut self) {
        if !std::mem::replace(&mut self.live, false) {
            return;
        }
        let warn = |e: String| eprintln!("berth: warning: network teardown: {e}");
        match self.host.links() {
            Ok(links) => {
                // Veths first (a veth's bridge may not go before it), then bridges.
                let mut ours: Vec<_> = links
                    .into_iter()
                    .filter(|l| l.alias.as_deref().is_some_and(|a| a.starts_with(&self.tag)))
                    .collect();
                ours.sort_by_key(|l| l.alias.as_deref().is_some_and(|a| a.contains(":bridge:")));
                for l in ours {
                    if let Err(e) = self.host.delete_link(l.index) {
                        warn(format!("remove {}: {e}", l.name));
                    }
                }
            }
            Err(e) => warn(format!("list interfaces: {e}")),
        }
        if let Ok(rd) = std::fs::read_dir(&self.netns_dir) {
            for e in rd.flatten() {
                if let Err(err) = netns::remove(&e.path()) {
                    warn(format!("remove {}: {err}", e.path().display()));
                }
            }
        }
        let had_rules = !self.plan.networks.is_empty();
        if had_rules && let Err(e) = nft::remove() {
            warn(e.to_string());
        }
        self.containers.clear();
    }

    /// Addresses of a container, for `berth status`.
    pub fn addresses(&self, name: &str) -> Vec<AddressInfo> {
        self.of(name)
            .map(|c| {
                c.interfaces
                    .iter()
                    .flat_map(|i| {
                        let v4 = format!("{}/{}", i.address, i.prefix);
                        let v6 = i.v6.map(|(a, len)| format!("{a}/{len}"));
                        std::iter::once(v4).chain(v6).map(|address| AddressInfo {
                            network: i.network.clone(),
                            interface: i.name.clone(),
                            address,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Networks, bridges, leases and forwards, for `berth net`.
    pub fn report(&self) -> (Vec<NetworkInfo>, Vec<ForwardInfo>) {
        let networks = self
            .plan
            .networks
            .iter()
            .map(|n| NetworkInfo {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: format!("{}/{}", n.subnet, n.prefix),
                gateway: n.gateway.to_string(),
                subnet6: n.v6.map(|v| format!("{}/{}", v.subnet, v.prefix)),
                gateway6: n.v6.map(|v| v.gateway.to_string()),
                mtu: n.mtu,
                nat: n.nat,
                allow: n.allow.clone(),
                leases: self
                    .containers
                    .iter()
                    .flat_map(|(c, net)| {
                        net.interfaces
                            .iter()
                            .filter(|i| i.network == n.name)
                            .flat_map(|i| {
                                let v6 = i.v6.map(|(a, _)| a.to_string());
                                std::iter::once(i.address.to_string())
                                    .chain(v6)
                                    .map(|address| LeaseInfo {
                                        container: c.clone(),
                                        interface: i.name.clone(),
                                        host_interface: i.host.clone(),
                                        address,
                                    })
                            })
                    })
                    .collect(),
            })
            .collect();
        let forwards = self
            .dnat
            .iter()
            .map(|(c, d)| ForwardInfo {
                container: c.clone(),
                host_port: d.host_port,
                container_port: d.to_port,
                protocol: d.proto.to_string(),
                host_address: d.address.map(|a| a.to_string()),
                to: d.to.to_string(),
            })
            .collect();
        (networks, forwards)
    }
}

/// A container's resolv.conf: the network's `dns` servers, or the host's file without
/// loopback name servers (unreachable from inside a container).
fn resolv_conf(dns: &[IpAddr], host: &str) -> String {
    let mut out = String::from("# written by berth\n");
    if !dns.is_empty() {
        for d in dns {
            out.push_str(&format!("nameserver {d}\n"));
        }
        return out;
    }
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver")
            && words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_none_or(|a| a.is_loopback())
        {
            continue;
        }
        if !line.trim_start().starts_with('#') && !line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback_servers() {
        let host = "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n";
        assert_eq!(
            resolv_conf(&[], host),
            "# written by berth\nnameserver 10.0.0.2\nsearch example.org\n"
        );
        let dns = ["1.1.1.1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        assert_eq!(
            resolv_conf(&dns, host),
            "# written by berth\nnameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn names_fit_linux() {
        let t = tag_of(Path::new("/var/lib/berth"));
        let v = veth_name(&t, "a-very-long-container-name", 3);
        assert!(v.len() <= 15, "{v}");
        assert_ne!(v, veth_name(&t, "a-very-long-container-name", 2));
    }
}

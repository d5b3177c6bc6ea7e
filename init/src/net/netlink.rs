//! A small synchronous rtnetlink client: links, addresses and routes, one request
//! and its acknowledgement at a time. A socket talks to the network namespace it was
//! created in, so a socket made inside a container's namespace configures that
//! namespace from berth's own thread.
//!
//! The messages are encoded and decoded here, for the handful of attributes berth uses
//! (rtnetlink(7), `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`): a general
//! netlink library was most of berth's code by size, and all of it mapped into the
//! resident process.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

// linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
// linux/if_link.h
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFF_UP: u32 = 1;
const IFINFOMSG_LEN: usize = 16;
// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u8 = 0x02;
const IFADDRMSG_LEN: usize = 8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
/// Nested attributes (`NLA_F_NESTED`), as iproute2 marks them.
const NLA_F_NESTED: u16 = 0x8000;

/// One link as a dump reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub kind: Option<String>,
    pub up: bool,
}

/// A route socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Netlink {
    socket: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn malformed(what: &str) -> io::Error {
    io::Error::other(format!("malformed netlink answer: {what}"))
}

/// One request being written: the netlink header, the family header, attributes.
#[derive(Debug)]
struct Msg {
    buf: Vec<u8>,
    /// Offsets of the length fields of the nested attributes still open.
    open: Vec<usize>,
}

impl Msg {
    /// A message of `kind` whose family header is `fixed` (already in wire order).
    fn new(kind: u16, fixed: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&[0; 10]); // flags, sequence number, port: set by `finish`
        buf.extend_from_slice(fixed);
        Msg {
            buf,
            open: Vec::new(),
        }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        self.pad();
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self
    }

    fn u32(&mut self, kind: u16, v: u32) -> &mut Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    fn str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(kind, &data)
    }

    fn ip(&mut self, kind: u16, ip: IpAddr) -> &mut Msg {
        match ip {
            IpAddr::V4(v4) => self.attr(kind, &v4.octets()),
            IpAddr::V6(v6) => self.attr(kind, &v6.octets()),
        }
    }

    /// Opens a nested attribute; [`Msg::end`] closes it.
    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.pad();
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Raw bytes inside the open nested attribute (a family header).
    fn raw(&mut self, data: &[u8]) -> &mut Msg {
        self.pad();
        self.buf.extend_from_slice(data);
        self
    }

    fn end(&mut self) -> &mut Msg {
        self.pad();
        if let Some(at) = self.open.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(mut self, flags: u16, seq: u32) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`: family, type, index, flags, change mask.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut h = [family, prefix_len, flags, RT_SCOPE_UNIVERSE, 0, 0, 0, 0];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`: (type without the nested/byte-order flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = ne_u16(b, 0)? as usize;
        let kind = ne_u16(b, 2)? & 0x3fff;
        let data = b.get(4..len)?;
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((kind, data))
    })
}

fn string(data: &[u8]) -> String {
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn ip(data: &[u8]) -> Option<IpAddr> {
    match data.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
        _ => None,
    }
}

/// A link from the payload of an `RTM_NEWLINK` (an `ifinfomsg` and attributes).
fn parse_link(p: &[u8]) -> Option<Link> {
    let mut link = Link {
        index: ne_u32(p, 4)?,
        name: String::new(),
        alias: None,
        kind: None,
        up: ne_u32(p, 8)? & IFF_UP != 0,
    };
    for (kind, data) in attrs(p.get(IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_IFNAME => link.name = string(data),
            IFLA_IFALIAS => link.alias = Some(string(data)),
            IFLA_LINKINFO => {
                link.kind = attrs(data)
                    .find(|&(k, _)| k == IFLA_INFO_KIND)
                    .map(|(_, d)| string(d));
            }
            _ => {}
        }
    }
    Some(link)
}

/// A global address of link `index` from the payload of an `RTM_NEWADDR`.
fn parse_address(p: &[u8], index: u32) -> Option<(IpAddr, u8)> {
    let (prefix_len, scope) = (*p.get(1)?, *p.get(3)?);
    if ne_u32(p, 4)? != index || scope != RT_SCOPE_UNIVERSE {
        return None;
    }
    attrs(p.get(IFADDRMSG_LEN..)?)
        .find(|&(k, _)| k == IFA_ADDRESS)
        .and_then(|(_, d)| ip(d))
        .map(|a| (a, prefix_len))
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        // `None`: NETLINK_ROUTE, protocol 0.
        let socket = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        // Port 0: the kernel picks one; the peer is the kernel (port 0).
        rustix::net::bind(&socket, &SocketAddrNetlink::new(0, 0))?;
        rustix::net::connect(&socket, &SocketAddrNetlink::new(0, 0))?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    /// Sends one request; returns the payloads of the messages of the answer of type
    /// `answer` (none for a plain acknowledgement).
    fn request(&mut self, msg: Msg, flags: u16, answer: u16) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        let out = msg.finish(flags, self.seq);
        rustix::net::send(&self.socket, &out, SendFlags::empty())?;
        let mut found = Vec::new();
        loop {
            let (n, _) = rustix::net::recv(&self.socket, &mut self.buf[..], RecvFlags::empty())?;
            let mut b = &self.buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = ne_u32(b, 0).ok_or_else(|| malformed("header"))? as usize;
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(malformed("message length"));
                }
                let kind = ne_u16(b, 4).unwrap_or(0);
                let seq = ne_u32(b, 8).unwrap_or(0);
                let payload = &b[NLMSG_HDRLEN..len];
                b = b.get((len + 3) & !3..).unwrap_or(&[]);
                if seq != self.seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let code = ne_u32(payload, 0).ok_or_else(|| malformed("error"))? as i32;
                        return if code == 0 {
                            Ok(found)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    NLMSG_DONE => return Ok(found),
                    k if k == answer => found.push(payload.to_vec()),
                    _ => {}
                }
            }
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msg = Msg::new(RTM_GETLINK, &ifinfomsg(0, 0, 0));
        let answer = self.request(msg, NLM_F_DUMP, RTM_NEWLINK)?;
        Ok(answer.iter().filter_map(|p| parse_link(p)).collect())
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = Msg::new(RTM_GETLINK, &ifinfomsg(0, 0, 0));
        msg.str(IFLA_IFNAME, name);
        match self.request(msg, 0, RTM_NEWLINK) {
            Ok(answer) => Ok(answer.iter().find_map(|p| parse_link(p))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge, up, with an alias that marks it as berth's.
    pub fn add_bridge(&mut self, name: &str, mtu: u32, alias: &str) -> io::Result<()> {
        let mut msg = Msg::new(RTM_NEWLINK, &ifinfomsg(0, IFF_UP, IFF_UP));
        msg.str(IFLA_IFNAME, name)
            .u32(IFLA_MTU, mtu)
            .begin(IFLA_LINKINFO)
            .str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, 0)?;
        // The alias cannot be given at creation (the kernel ignores IFLA_IFALIAS there).
        self.set_link(name, Some(mtu), Some(alias), None)
    }

    /// Creates a veth pair: `host` (up, on bridge `master`) in this namespace and
    /// `peer` in the namespace of `netns`, both with `mtu`.
    pub fn add_veth(
        &mut self,
        host: &str,
        alias: &str,
        master: u32,
        peer: &str,
        netns: BorrowedFd<'_>,
        mtu: u32,
    ) -> io::Result<()> {
        let mut msg = Msg::new(RTM_NEWLINK, &ifinfomsg(0, IFF_UP, IFF_UP));
        msg.str(IFLA_IFNAME, host)
            .u32(IFLA_MTU, mtu)
            .u32(IFLA_MASTER, master)
            .begin(IFLA_LINKINFO)
            .str(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .raw(&ifinfomsg(0, 0, 0))
            .str(IFLA_IFNAME, peer)
            .u32(IFLA_MTU, mtu)
            .u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32)
            .end()
            .end()
            .end();
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, 0)?;
        self.set_link(host, None, Some(alias), None)
    }

    /// Changes MTU, alias and/or the up flag of a link by name.
    pub fn set_link(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        alias: Option<&str>,
        set_up: Option<bool>,
    ) -> io::Result<()> {
        let (flags, change) = match set_up {
            Some(true) => (IFF_UP, IFF_UP),
            Some(false) => (0, IFF_UP),
            None => (0, 0),
        };
        let mut msg = Msg::new(RTM_SETLINK, &ifinfomsg(0, flags, change));
        msg.str(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            msg.u32(IFLA_MTU, mtu);
        }
        if let Some(alias) = alias {
            msg.str(IFLA_IFALIAS, alias);
        }
        self.request(msg, 0, 0).map(drop)
    }

    /// Sets link `index` up.
    pub fn up_index(&mut self, index: u32) -> io::Result<()> {
        let msg = Msg::new(RTM_SETLINK, &ifinfomsg(index, IFF_UP, IFF_UP));
        self.request(msg, 0, 0).map(drop)
    }

    /// Deletes a link by index (for a veth, both ends go).
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let msg = Msg::new(RTM_DELLINK, &ifinfomsg(index, 0, 0));
        match self.request(msg, 0, 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map(drop),
        }
    }

    /// The global addresses of link `index` with their prefix lengths (IPv4, and IPv6
    /// but not its link-local ones, which the kernel manages).
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let msg = Msg::new(RTM_GETADDR, &ifaddrmsg(0, 0, 0, 0));
        let answer = self.request(msg, NLM_F_DUMP, RTM_NEWADDR)?;
        Ok(answer
            .iter()
            .filter_map(|p| parse_address(p, index))
            .collect())
    }

    fn address_msg(kind: u16, index: u32, addr: IpAddr, len: u8) -> Msg {
        let mut msg = match addr {
            IpAddr::V4(_) => Msg::new(kind, &ifaddrmsg(AF_INET, len, 0, index)),
            // No duplicate address detection: berth's leases make addresses unique,
            // and the address is usable at once, not seconds later.
            IpAddr::V6(_) => Msg::new(kind, &ifaddrmsg(AF_INET6, len, IFA_F_NODAD, index)),
        };
        msg.ip(IFA_LOCAL, addr).ip(IFA_ADDRESS, addr);
        match addr {
            IpAddr::V4(v4) if len < 31 => {
                let bcast = u32::from(v4) | (u32::MAX >> len);
                msg.ip(IFA_BROADCAST, IpAddr::V4(Ipv4Addr::from(bcast)));
            }
            IpAddr::V4(_) => {}
            IpAddr::V6(_) => {
                msg.u32(IFA_FLAGS, u32::from(IFA_F_NODAD));
            }
        }
        msg
    }

    /// Adds (or keeps) `addr/len` on link `index`.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, len: u8) -> io::Result<()> {
        let msg = Self::address_msg(RTM_NEWADDR, index, addr, len);
        self.request(msg, NLM_F_CREATE | NLM_F_REPLACE, 0).map(drop)
    }

    pub fn delete_address(&mut self, index: u32, addr: IpAddr, len: u8) -> io::Result<()> {
        let msg = Self::address_msg(RTM_DELADDR, index, addr, len);
        self.request(msg, 0, 0).map(drop)
    }

    /// Adds the default route via `gateway` out of link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> io::Result<()> {
        let family = match gateway {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        };
        // `struct rtmsg`: family, dst_len, src_len, tos, table, protocol, scope, type,
        // flags.
        let rtmsg = [
            family,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let mut msg = Msg::new(RTM_NEWROUTE, &rtmsg);
        msg.ip(RTA_GATEWAY, gateway).u32(RTA_OIF, index);
        self.request(msg, NLM_F_CREATE | NLM_F_REPLACE, 0).map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn nested_attributes_have_their_lengths_and_padding() {
        let mut msg = Msg::new(RTM_NEWLINK, &ifinfomsg(0, IFF_UP, IFF_UP));
        msg.str(IFLA_IFNAME, "br0")
            .begin(IFLA_LINKINFO)
            .str(IFLA_INFO_KIND, "bridge")
            .end();
        let b = msg.finish(NLM_F_REQUEST | NLM_F_ACK, 7);
        assert_eq!(ne_u32(&b, 0).unwrap() as usize, b.len());
        assert_eq!(b.len() % 4, 0);
        assert_eq!(ne_u16(&b, 4), Some(RTM_NEWLINK));
        assert_eq!(ne_u16(&b, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(ne_u32(&b, 8), Some(7));
        // The payload parses back as a link with the same name and kind.
        let link = parse_link(&b[NLMSG_HDRLEN..]).unwrap();
        assert_eq!(link.name, "br0");
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert!(link.up);
        // ifname "br0\0" = 4 + 4 bytes; linkinfo = 4 + kind (4 + "bridge\0" = 11, padded 12).
        let a: Vec<(u16, usize)> = attrs(&b[NLMSG_HDRLEN + IFINFOMSG_LEN..])
            .map(|(k, d)| (k, d.len()))
            .collect();
        assert_eq!(a, vec![(IFLA_IFNAME, 4), (IFLA_LINKINFO, 12)]);
    }

    #[test]
    fn addresses_keep_only_global_ones_of_the_link() {
        let v4 = "10.0.0.2".parse().unwrap();
        let msg = Netlink::address_msg(RTM_NEWADDR, 5, v4, 24);
        let b = msg.finish(0, 1);
        assert_eq!(parse_address(&b[NLMSG_HDRLEN..], 5), Some((v4, 24)));
        assert_eq!(parse_address(&b[NLMSG_HDRLEN..], 6), None);
        let bcast: Vec<&[u8]> = attrs(&b[NLMSG_HDRLEN + IFADDRMSG_LEN..])
            .filter(|&(k, _)| k == IFA_BROADCAST)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(bcast, vec![&[10, 0, 0, 255][..]]);
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let b = Netlink::address_msg(RTM_NEWADDR, 5, v6, 64).finish(0, 1);
        assert_eq!(b[NLMSG_HDRLEN + 2], IFA_F_NODAD);
        assert_eq!(parse_address(&b[NLMSG_HDRLEN..], 5), Some((v6, 64)));
        // A link-local address (scope link) is not reported.
        let mut ll = b.clone();
        ll[NLMSG_HDRLEN + 3] = 253;
        assert_eq!(parse_address(&ll[NLMSG_HDRLEN..], 5), None);
    }

    #[test]
    fn truncated_attributes_end_the_list() {
        // A length past the end and a length below the header both stop parsing.
        assert_eq!(attrs(&[8, 0, 3, 0, b'a']).count(), 0);
        assert_eq!(attrs(&[2, 0, 3, 0]).count(), 0);
        assert!(parse_link(&[0; 8]).is_none());
    }
}

//! The units users write: sizes, durations, CPUs, signals, addresses, ports.
//! Each parser returns a message meant for a diagnostic label and a help text.

use std::net::IpAddr;

/// Why a value does not fit its type: a short label and a help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub label: String,
    pub help: String,
}

pub fn invalid(label: impl Into<String>, help: impl Into<String>) -> Invalid {
    Invalid {
        label: label.into(),
        help: help.into(),
    }
}

/// Splits "1.5Gi" into ("1.5", "Gi").
fn number_and_unit(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Sizes in bytes. `K M G T P` and `Ki Mi Gi Ti Pi` are powers of 1024 (as systemd
/// and Docker read `512M`); `KB MB GB TB PB` are powers of 1000; `B` or no unit: bytes.
pub fn size(s: &str) -> Result<u64, Invalid> {
    let help = "write a size such as 512M, 1.5G, 1Gi (powers of 1024) or 1GB (powers of 1000)";
    let (num, unit) = number_and_unit(s.trim());
    let mult: f64 = match unit {
        "" | "B" | "b" => 1.0,
        "K" | "k" | "Ki" | "KiB" => 1024.0,
        "M" | "m" | "Mi" | "MiB" => 1024f64.powi(2),
        "G" | "g" | "Gi" | "GiB" => 1024f64.powi(3),
        "T" | "t" | "Ti" | "TiB" => 1024f64.powi(4),
        "P" | "p" | "Pi" | "PiB" => 1024f64.powi(5),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        _ => return Err(invalid(format!("unknown size unit `{unit}`"), help)),
    };
    let n: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| invalid("not a size", help))?;
    let bytes = (n * mult).round();
    if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
        return Err(invalid("size too large", help));
    }
    if unit.is_empty() && num.contains('.') {
        return Err(invalid(
            "a size without unit is a number of bytes and cannot have a fraction",
            help,
        ));
    }
    Ok(bytes as u64)
}

const NANOS: [(&str, u64); 10] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Durations in nanoseconds: `100ms`, `30s`, `5m`, `1h30m`, `1.5s`.
pub fn duration(s: &str) -> Result<u64, Invalid> {
    let help =
        "write a duration with its unit, such as 100ms, 30s, 5m, 1h30m (units: ns us ms s m h d)";
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(invalid("empty duration", help));
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(end);
        if num.is_empty() {
            return Err(invalid("not a duration", help));
        }
        let uend = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(uend);
        let unit = unit.trim();
        if unit.is_empty() {
            return Err(invalid(format!("`{num}` has no unit"), help));
        }
        let Some(&(_, mult)) = NANOS.iter().find(|(u, _)| *u == unit) else {
            return Err(invalid(format!("unknown duration unit `{unit}`"), help));
        };
        let n: f64 = num.parse().map_err(|_| invalid("not a duration", help))?;
        total += n * mult as f64;
        rest = next.trim_start();
    }
    if total > u64::MAX as f64 / 2.0 {
        return Err(invalid("duration too long", help));
    }
    Ok(total.round() as u64)
}

/// The canonical text of a duration: largest units first, e.g. `1m30s`, `100ms`, `0s`.
pub fn format_duration(ns: u64) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_duration(ns, &mut out);
    out
}

/// [`format_duration`] into a writer, without allocating.
pub fn write_duration(mut ns: u64, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    if ns == 0 {
        return out.write_str("0s");
    }
    for (unit, mult) in DURATION_UNITS {
        if ns >= mult {
            write!(out, "{}{unit}", ns / mult)?;
            ns %= mult;
        }
    }
    Ok(())
}

/// A size in the largest binary unit that divides it: `512M`, `1536K`, `100`.
pub fn format_size(bytes: u64) -> String {
    for (unit, mult) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return format!("{}{unit}", bytes / mult);
        }
    }
    bytes.to_string()
}

/// The name of a standard signal (1 to 31) without the `SIG` prefix.
pub fn standard_signal(n: i32) -> Option<&'static str> {
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| SIGNALS.get(i))
        .copied()
}

/// The units of [`write_duration`], largest first.
pub const DURATION_UNITS: [(&str, u64); 7] = [
    ("d", 86_400_000_000_000u64),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// The Linux signals by number, without the `SIG` prefix.
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// A signal by name (`SIGTERM`, `TERM`, `sigterm`, `SIGRTMIN+3`) or number; returns its
/// number on Linux.
pub fn signal(s: &str) -> Result<i32, Invalid> {
    let help =
        "write a signal name such as SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGRTMIN+3, or its number";
    let upper = s.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(n) = name.parse::<i32>() {
        return signal_number(n).ok_or_else(|| invalid("no such signal number", help));
    }
    if let Some(i) = SIGNALS.iter().position(|s| *s == name) {
        return Ok(i as i32 + 1);
    }
    match name {
        "IOT" => return Ok(6),
        "POLL" => return Ok(29),
        "RTMIN" => return Ok(34),
        "RTMAX" => return Ok(64),
        _ => {}
    }
    if let Some(off) = name.strip_prefix("RTMIN+")
        && let Ok(n) = off.parse::<i32>()
        && (0..=30).contains(&n)
    {
        return Ok(34 + n);
    }
    if let Some(off) = name.strip_prefix("RTMAX-")
        && let Ok(n) = off.parse::<i32>()
        && (0..=30).contains(&n)
    {
        return Ok(64 - n);
    }
    Err(invalid(format!("unknown signal `{s}`"), help))
}

pub fn signal_number(n: i32) -> Option<i32> {
    ((1..=31).contains(&n) || (34..=64).contains(&n)).then_some(n)
}

/// `SIGTERM`, `SIGRTMIN+3`.
pub fn signal_name(n: i32) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_signal_name(n, &mut out);
    out
}

/// [`signal_name`] into a writer, without allocating.
pub fn write_signal_name(n: i32, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    match n {
        1..=31 => write!(out, "SIG{}", SIGNALS[n as usize - 1]),
        34 => out.write_str("SIGRTMIN"),
        64 => out.write_str("SIGRTMAX"),
        35..=63 => write!(out, "SIGRTMIN+{}", n - 34),
        _ => write!(out, "{n}"),
    }
}

/// An IPv4 or IPv6 network in CIDR form, with no host bits set.
pub fn cidr(s: &str) -> Result<(IpAddr, u8), Invalid> {
    let help = "write a network such as 10.88.0.0/24 or fd00:88::/64";
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| invalid("missing `/prefix`", help))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| invalid(format!("`{addr}` is not an IP address"), help))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| invalid(format!("prefix length must be 0 to {max}"), help))?;
    let net = network_of(ip, len);
    if net != ip {
        return Err(invalid(
            "host bits are set",
            format!("the network is {net}/{len}"),
        ));
    }
    Ok((ip, len))
}

/// The network address of `ip` with a prefix of `len` bits.
pub fn network_of(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

pub fn ip(s: &str) -> Result<IpAddr, Invalid> {
    s.trim().parse().map_err(|_| {
        invalid(
            "not an IP address",
            "write an address such as 10.88.0.5 or fd00::5",
        )
    })
}

/// A cpuset list such as `0-3,6,8-9`.
pub fn cpuset(s: &str) -> Result<String, Invalid> {
    let help = "write CPUs as a list of numbers and ranges, such as 0-3,6";
    let s = s.trim();
    if s.is_empty() {
        return Err(invalid("empty CPU list", help));
    }
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (a.trim().parse::<u32>(), b.trim().parse::<u32>());
        match (a, b) {
            (Ok(a), Ok(b)) if a <= b => {}
            _ => {
                return Err(invalid(
                    format!("`{part}` is not a CPU number or range"),
                    help,
                ));
            }
        }
    }
    Ok(s.replace(' ', ""))
}

/// A host or container name per RFC 1123: labels of letters, digits and `-`.
pub fn hostname(s: &str) -> Result<String, Invalid> {
    let help = "a hostname is up to 64 characters of letters, digits, `-` and `.`, not starting or ending with `-`";
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(invalid("not a valid hostname", help))
    }
}

/// A network interface name: 1 to 15 bytes, no `/`, `:` or whitespace.
pub fn ifname(s: &str) -> Result<String, Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if ok {
        Ok(s.to_string())
    } else {
        Err(invalid(
            "not a valid interface name",
            "interface names are 1 to 15 characters without `/`, `:` or spaces",
        ))
    }
}

/// Linux capability names without `CAP_`, in kernel order: the index is the
/// capability number (as of Linux 6.x). Shared by validation and the runtime.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("512M").unwrap(), 512 << 20);
        assert_eq!(size("1.5G").unwrap(), 3 << 29);
        assert_eq!(size("1Gi").unwrap(), 1 << 30);
        assert_eq!(size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("12X").is_err());
        assert!(size("1.5").is_err());
        assert!(size("").is_err());
        assert_eq!(format_size(512 << 20), "512M");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("100ms").unwrap(), 100_000_000);
        assert_eq!(duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration("5m").unwrap(), 300_000_000_000);
        assert_eq!(duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration("1.5s").unwrap(), 1_500_000_000);
        assert!(duration("30").is_err());
        assert!(duration("5 parsecs").is_err());
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(100_000_000), "100ms");
    }

    #[test]
    fn signals() {
        assert_eq!(signal("SIGTERM").unwrap(), 15);
        assert_eq!(signal("term").unwrap(), 15);
        assert_eq!(signal("9").unwrap(), 9);
        assert_eq!(signal("SIGRTMIN+3").unwrap(), 37);
        assert!(signal("SIGFOO").is_err());
        assert!(signal("32").is_err());
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(37), "SIGRTMIN+3");
    }

    #[test]
    fn networks() {
        assert_eq!(cidr("10.88.0.0/24").unwrap().1, 24);
        assert_eq!(
            cidr("10.88.0.1/24").unwrap_err().help,
            "the network is 10.88.0.0/24"
        );
        assert!(cidr("10.88.0.0/33").is_err());
        assert!(cidr("fd00:88::/64").is_ok());
        assert!(cpuset("0-3,6").is_ok());
        assert!(cpuset("3-1").is_err());
        assert!(hostname("web-1").is_ok());
        assert!(hostname("-web").is_err());
        assert!(ifname("br-lan").is_ok());
        assert!(ifname("a-very-long-bridge-name").is_err());
    }
}

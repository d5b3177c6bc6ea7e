//! Capability sets by name, as a plain 64-bit mask (bit N = capability number N).

use std::fmt;

/// Capability names in kernel order (index = capability number).
const NAMES: [&str; 41] = berth_modules::units::CAPABILITIES;

/// Docker's (and Podman's, crun's) default set for containers.
const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capabilities.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u64);

impl Caps {
    pub const EMPTY: Caps = Caps(0);

    /// The 14 capabilities Docker grants by default.
    pub fn docker_default() -> Caps {
        DOCKER_DEFAULT
            .iter()
            .filter_map(|name| number(name))
            .fold(Caps::EMPTY, |caps, n| caps.with(n))
    }

    /// Every capability the kernel defines up to `last_cap` (see
    /// /proc/sys/kernel/cap_last_cap).
    pub fn all(last_cap: u32) -> Caps {
        Caps(if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        })
    }

    /// Parses names like `NET_ADMIN` or `CAP_NET_ADMIN` (case-insensitive); returns the
    /// first unknown name as the error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Caps, String> {
        let mut caps = Caps::EMPTY;
        for name in names {
            match number(name) {
                Some(n) => caps = caps.with(n),
                None => return Err(name.to_owned()),
            }
        }
        Ok(caps)
    }

    pub fn with(self, cap: u32) -> Caps {
        if cap < 64 {
            Caps(self.0 | (1 << cap))
        } else {
            self
        }
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        (0..NAMES.len() as u32)
            .filter(|&n| self.contains(n))
            .filter_map(|n| NAMES.get(n as usize).copied())
            .collect()
    }
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Caps({:#x}: {})", self.0, self.names().join(" "))
    }
}

/// The number of capability `name` (with or without the `CAP_` prefix).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// The highest capability number this kernel knows, from
/// /proc/sys/kernel/cap_last_cap (40 on 5.9+ kernels if the file is unreadable).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_is_the_14_capabilities() {
        let caps = Caps::docker_default();
        assert_eq!(caps.0.count_ones(), 14);
        assert!(caps.contains(number("CAP_CHOWN").unwrap()));
        assert!(!caps.contains(number("sys_admin").unwrap()));
        assert_eq!(
            caps.0, 0xa80425fb,
            "the well-known CapBnd of a Docker container"
        );
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_reported() {
        let caps = Caps::from_names(["NET_ADMIN", "cap_sys_time"]);
        assert_eq!(caps.map(|c| c.names()), Ok(vec!["NET_ADMIN", "SYS_TIME"]));
        assert_eq!(Caps::from_names(["NET_ADMN"]), Err("NET_ADMN".to_owned()));
        assert_eq!(Caps::all(40).0, (1 << 41) - 1);
    }
}

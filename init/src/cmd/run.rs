//! `berth run FILE NAME [-- CMD…]`: one container of a host, once, in the foreground.
//!
//! The container is created exactly as `berth up` creates it (same namespaces, rootfs,
//! mounts, user, capabilities, cgroup limits), but with berth's own stdin, stdout and
//! stderr, without supervision (no restart, readiness or health checks, no log file),
//! and berth exits with the container's exit code (128 + N when signal N killed it).
//! Signals berth receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are passed on to the
//! container's init. It takes no lock and can run beside a `berth up` of the same host:
//! its cgroup is `NAME.run-PID` (container names cannot contain a dot).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::Signal;

use super::INVALID;
use crate::runtime::spawn::spawn_with;
use crate::runtime::{CgroupTree, Stdio, wait};
use crate::state::{cgroup_name, cgroup2_mount};

/// Signals passed on to the container.
const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

pub fn run(
    file: &Path,
    name: &str,
    command: &[String],
    state_dir: &Path,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let fail = super::fail;
    let Some(ev) = super::load(file, err, color) else {
        return INVALID;
    };
    let specs = crate::unit::units(&ev, state_dir);
    // Networks with a subnet are berth up's (it owns the bridges, leases and firewall,
    // and may be running): here the container gets loopback only, and says so.
    let bridged: Vec<String> = ev
        .node(berth_modules::Kind::Container, name)
        .and_then(|n| n.get("network"))
        .map(berth_modules::Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.field("name").and_then(berth_modules::Value::as_str))
        .filter(|n| !matches!(*n, "host" | "none"))
        .map(str::to_string)
        .collect();
    super::leak(ev);
    if !bridged.is_empty() {
        let _ = writeln!(
            err,
            "berth: warning: container {name}: network {} is not joined by `berth run` (networks are set up by `berth up`); it gets loopback only",
            bridged.join(", ")
        );
    }
    let Some(mut spec) = specs.into_iter().find(|s| s.name == name) else {
        return fail(
            err,
            format!("{}: no container named `{name}`", file.display()),
        );
    };
    if !command.is_empty() {
        spec.argv = command.to_vec();
    }
    // The container's network namespace is made from here on, beside berth's work
    // below (netns.rs): the earlier, the less the container's init waits for it.
    let net = (!spec.host_network)
        .then(crate::runtime::NetHelper::start)
        .flatten();
    for w in &spec.warnings {
        let _ = writeln!(err, "berth: warning: {w}");
    }
    if let Err(e) = spec.create_volumes() {
        return fail(err, format!("container {name}: {e}"));
    }
    let Some(mount) = cgroup2_mount() else {
        return fail(err, "no cgroup v2 hierarchy is mounted; berth needs one (mount -t cgroup2 none /sys/fs/cgroup)".into());
    };
    let tree = match CgroupTree::create(&mount, &cgroup_name(state_dir)) {
        Ok(t) => t,
        Err(e) => return fail(err, e.to_string()),
    };
    let cgroup = match tree.create_cgroup(&format!("{name}.run-{}", std::process::id())) {
        Ok(c) => c,
        Err(e) => return fail(err, e.to_string()),
    };
    let code = run_in(&spec, &cgroup, net, err);
    // Whatever the container left behind goes with its cgroup.
    if let Err(e) = cgroup.kill_and_remove(Duration::from_secs(2)) {
        let _ = writeln!(err, "berth: warning: {e}");
    }
    // berth's subtree too, unless a `berth up` (or another run) still uses it.
    let _ = tree.remove();
    code
}

fn run_in(
    spec: &crate::unit::UnitSpec,
    cgroup: &crate::runtime::Cgroup,
    net: Option<crate::runtime::NetHelper>,
    err: &mut dyn Write,
) -> u8 {
    let name = &spec.name;
    match cgroup.apply_limits(&spec.limits) {
        Ok(unenforced) => {
            for w in unenforced {
                let _ = writeln!(err, "berth: warning: {w}");
            }
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return INVALID;
        }
    }
    let cgroup_fd = match cgroup.open_fd() {
        Ok(fd) => fd,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return INVALID;
        }
    };
    // Blocked before the container exists, so none of them is lost in between; the
    // child unblocks everything before exec.
    let signals = match crate::supervisor::signalfd_for(None, &FORWARDED)
        .and_then(|fd| fd.ok_or_else(|| std::io::Error::other("no signalfd")))
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = writeln!(err, "error: signalfd: {e}");
            return INVALID;
        }
    };
    let config = spec.spawn_config(
        [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
        Some(cgroup_fd),
        Vec::new(),
        Vec::new(),
    );
    let child = match spawn_with(&config, net) {
        Ok(c) => c,
        Err(e) => {
            // The error names the container.
            let _ = writeln!(err, "error: {e}");
            return INVALID;
        }
    };
    drop(config);
    loop {
        let mut fds = [
            PollFd::new(&child.pidfd, PollFlags::IN),
            PollFd::new(&signals, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                let _ = writeln!(err, "error: poll: {e}");
                let _ = wait::kill_and_reap(&child);
                return INVALID;
            }
        }
        let (exited, signalled) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if signalled {
            for sig in crate::supervisor::read_signals(&signals) {
                if let Some(sig) = Signal::from_named_raw(sig) {
                    let _ = wait::signal(&child.pidfd.as_fd(), sig);
                }
            }
        }
        if exited {
            return match wait::wait(&child.pidfd) {
                Ok(wait::ExitStatus::Exited(code)) => code.clamp(0, 255) as u8,
                Ok(wait::ExitStatus::Signaled { signal, .. }) => (128 + signal).clamp(0, 255) as u8,
                Err(e) => {
                    let _ = writeln!(err, "error: wait for container {name}: {e}");
                    INVALID
                }
            };
        }
    }
}

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::INVALID;
use crate::control::server::ControlServer;
use crate::runtime::CgroupTree;
use crate::state::{StateLock, cgroup_name, cgroup2_mount};
use crate::supervisor::{Setup, Supervisor, host_watch};

/// `berth up FILE`: evaluate, start every container in dependency order, supervise
/// until SIGTERM/SIGINT or `berth down`, stop in reverse order. SIGHUP reads FILE again
/// and switches to it; with `watch` (or the host's `watch` option) so does every change
/// to FILE or its imports.
pub fn up(
    file: &Path,
    state_dir: &Path,
    socket: &Path,
    watch: bool,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    // Validate everything before the first side effect.
    let Some(ev) = super::load(file, err, color) else {
        return INVALID;
    };
    let fail = super::fail;
    // What FILE's read loaded: the files to watch.
    let files = crate::watch::files_of(file, &ev.tree.sources);
    let lock = match StateLock::acquire(state_dir) {
        Ok(l) => l,
        Err(e) => return fail(err, e.to_string()),
    };
    let Some(mount) = cgroup2_mount() else {
        return fail(err, "no cgroup v2 hierarchy is mounted; berth needs one (mount -t cgroup2 none /sys/fs/cgroup)".into());
    };
    let control = match ControlServer::bind(socket) {
        Ok(c) => c,
        Err(e) => return fail(err, e.to_string()),
    };
    let cgroups = match CgroupTree::create(&mount, &cgroup_name(&lock.dir)) {
        Ok(c) => c,
        Err(e) => return fail(err, e.to_string()),
    };
    // What runs: FILE, or what a switch or rollback made the boot default since FILE
    // was last read; an interrupted or unconfirmed switch is resolved here.
    let start = crate::generations::Generations::new(&lock.dir).start(file, ev, "boot");
    for line in &start.report {
        let _ = writeln!(err, "berth: {line}");
    }
    let ev = start.evaluation;
    // Containers a berth that died left running are stopped: what starts now is one
    // generation, nothing mixed with what ran before.
    match cgroups.children() {
        Ok(names) => {
            for name in names.iter().filter(|n| !n.contains(".run-")) {
                let _ = match cgroups.cgroup(name).kill_and_remove(Duration::from_secs(2)) {
                    Ok(()) => writeln!(
                        err,
                        "berth: cleaned up `{name}`, left behind by a berth that died"
                    ),
                    Err(e) => writeln!(err, "berth: warning: {e}"),
                };
            }
        }
        Err(e) => {
            let _ = writeln!(err, "berth: warning: {e}");
        }
    }
    // Bridges, container namespaces, addresses and firewall, before any container.
    let net = match crate::net::NetHost::up(crate::net::NetPlan::from_evaluation(&ev), &lock.dir) {
        Ok(n) => n,
        Err(e) => {
            let _ = cgroups.remove();
            return fail(err, format!("networks: {e}"));
        }
    };
    let specs = crate::unit::units(&ev, &lock.dir);
    for problem in crate::unit::prepare_volumes(&ev, &lock.dir) {
        let _ = writeln!(err, "berth: warning: {problem}");
    }
    let setup = Setup {
        state_dir: lock.dir.clone(),
        log_dir: lock.logs(),
        run_dir: lock.run(),
        cgroups: cgroups.clone(),
        cgroup_mount: mount,
        control,
        notify_parent: std::env::var("NOTIFY_SOCKET").ok(),
        net: Some(net),
    };
    let mut sup = match Supervisor::new(setup, specs) {
        Ok(s) => s,
        Err(e) => return fail(err, e.to_string()),
    };
    sup.follow(file, files, watch, host_watch(&ev));
    let _ = writeln!(
        err,
        "berth: up: {} containers from {}, state in {}",
        ev.of_kind(berth_modules::Kind::Container).count(),
        file.display(),
        lock.dir.display()
    );
    // The supervisor keeps what it needs; the evaluation and whatever evaluating took
    // go back to the system before berth settles down for a long time.
    drop(ev);
    super::release_free_memory();
    let result = sup.run();
    // Every container is stopped: dropping the supervisor also tears the networks down.
    drop(sup);
    // Everything is stopped: remove the (empty) cgroups berth made.
    let _ = cgroups.remove();
    match result {
        Ok(()) => 0,
        Err(e) => fail(err, e.to_string()),
    }
}

//! The end of the machine: every process stopped, file systems unmounted, reboot(2).

use std::time::{Duration, Instant};

use super::Power;
use super::console::log;
use super::mounts::unmount_all;

/// How long processes left after the containers get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Reaps every exited child; true when there are no children left.
pub fn reap_all() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid pointer to an int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            continue;
        }
        return pid < 0;
    }
}

/// Signals every other process and waits (reaping) until none is left or `limit`.
fn kill_all(signal: i32, limit: Duration) {
    // SAFETY: kill(-1) from PID 1 signals every process but itself and kernel threads.
    unsafe { libc::kill(-1, signal) };
    let deadline = Instant::now() + limit;
    while !reap_all() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Closes every fd of berth but stdio and the kernel log: what berth still holds open
/// on a file system (after a panic: the supervisor's logs and state lock) would keep it
/// busy, neither unmountable nor to be made read-only. Only for the end: nothing runs
/// afterwards that could own one of them.
fn close_files() {
    // The fds it closes are owned by nothing that runs again (finish never returns,
    // nothing unwinds); an empty range is a no-op, a failure leaves them open.
    let close = |from: u32, to: u32| {
        let _ = crate::runtime::sys::close_range(from, to);
    };
    let mut from = 3;
    if let Some(k) = super::console::kmsg_fd().and_then(|k| u32::try_from(k).ok())
        && k >= 3
    {
        close(from, k - 1);
        from = k + 1;
    }
    close(from, u32::MAX);
}

/// The containers are stopped (or never started): TERM the rest, a grace period, KILL,
/// sync, unmount (read-only what stays busy), and reboot(2) with `power`. Never returns.
pub fn finish(power: Power) -> ! {
    log(&format!(
        "{}: stopping the remaining processes",
        power.verb()
    ));
    kill_all(libc::SIGTERM, GRACE);
    kill_all(libc::SIGKILL, Duration::from_secs(1));
    close_files();
    rustix::fs::sync();
    unmount_all();
    rustix::fs::sync();
    log(&format!(
        "{}: file systems unmounted, {}",
        power.verb(),
        power.doing()
    ));
    let _ = rustix::system::reboot(power.command());
    // reboot(2) returns only on failure (not PID 1 of the initial pid namespace, or no
    // CAP_SYS_BOOT); there is nothing left to run, so wait for the next signal forever.
    log("reboot(2) failed; halting here");
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

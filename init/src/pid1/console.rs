//! PID 1's log: each line goes to the console (berth's stderr, which the kernel opened
//! on /dev/console) and to the kernel log (/dev/kmsg), so it is on the screen and in
//! `dmesg` both.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

static KMSG: Mutex<Option<File>> = Mutex::new(None);

/// The `berth.test-timing=1` switch (see [`super`]): phase times on the console.
static TIMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the phase times of [`timing`] on.
pub fn set_timing(on: bool) {
    TIMING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `berth.test-timing=1` is set.
pub fn timing_on() -> bool {
    TIMING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Logs `timing: MESSAGE` when `berth.test-timing=1` is set (a test-only switch for
/// profiling the boot; off by default, as every console line costs time under TCG).
pub fn timing(msg: impl FnOnce() -> String) {
    if timing_on() {
        log(&format!("timing: {}", msg()));
    }
}

/// Opens /dev/kmsg (after /dev is mounted); until then lines go to the console only.
pub fn open_kmsg() {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg")
        && let Ok(mut k) = KMSG.lock()
    {
        *k = Some(f);
    }
}

/// The kernel log's fd, which shutdown keeps open to the end.
pub fn kmsg_fd() -> Option<i32> {
    use std::os::fd::AsRawFd;
    let k = match KMSG.lock() {
        Ok(k) => k,
        Err(p) => p.into_inner(),
    };
    k.as_ref().map(File::as_raw_fd)
}

/// Logs one line, `berth: MESSAGE`, prefixed by the seconds since boot.
pub fn log(msg: &str) {
    let line = format!("[{:8.3}] berth: {msg}\n", uptime());
    let _ = std::io::stderr().write_all(line.as_bytes());
    kmsg(msg);
}

/// Writes `berth: MESSAGE` to the kernel log only (nothing before [`open_kmsg`], so
/// nothing outside PID 1 mode): for lines that are already on the console by other
/// means, such as the supervisor's container events on its stderr.
pub fn kmsg(msg: &str) {
    // A poisoned lock (a panic while writing) must not stop the panic hook's own log.
    let mut k = match KMSG.lock() {
        Ok(k) => k,
        Err(p) => p.into_inner(),
    };
    if let Some(f) = k.as_mut() {
        // <6>: info; the kernel adds its own time stamp. (The kernel rate-limits what
        // one opener writes to /dev/kmsg: bursts beyond 10 lines in 5 s are dropped
        // there, never on the console.)
        let _ = f.write_all(format!("<6>berth: {msg}").as_bytes());
    }
}

/// Seconds since boot (CLOCK_BOOTTIME, as the kernel's own time stamps).
pub fn uptime() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

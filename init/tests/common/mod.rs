//! What the integration tests share.

pub mod berth;

/// True if the test can run. Under CI=true a missing requirement fails the test (CI
/// must never pass by skipping); elsewhere the test says why and skips.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("requirement missing under CI=true: {what}");
    }
    eprintln!("SKIPPED: {what}");
    false
}

/// Root, which the tests that create containers, cgroups and mounts need.
#[allow(dead_code)]
pub fn root() -> bool {
    require(
        rustix::process::geteuid().is_root(),
        "this test must run as root",
    )
}

/// An empty directory `berth-KIND-PID-NAME` under the temporary directory for one test
/// (what an earlier test of this process left under that name is removed). The first
/// call in a test process also removes the `berth-KIND-PID-*` directories of test
/// processes that have ended, so repeated runs do not fill /tmp while the last run's
/// directories stay for a look after a failure.
#[allow(dead_code)]
pub fn scratch_dir(kind: &str, name: &str) -> std::path::PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let tmp = std::env::temp_dir();
    SWEPT.call_once(|| sweep_ended(&tmp));
    let dir = tmp.join(format!("berth-{kind}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes `berth-KIND-PID-*` under `tmp` (KIND one of the tests' kinds) whose PID is
/// no running process. Errors are ignored: whatever cannot go stays.
fn sweep_ended(tmp: &std::path::Path) {
    const KINDS: [&str; 3] = ["up", "cli", "net"];
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("berth-")) else {
            continue;
        };
        let Some((kind, rest)) = rest.split_once('-') else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && KINDS.contains(&kind)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// /bin/busybox, which the container tests run (`None`, or a failure under CI=true,
/// without it).
#[allow(dead_code)]
pub fn busybox() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from("/bin/busybox");
    require(
        path.exists(),
        "/bin/busybox (apt-get install busybox-static)",
    )
    .then_some(path)
}

/// A rootfs with only busybox: /bin/busybox (bound read-only from the host: copying it
/// would race with the other tests' clones, which inherit the copy's write fd for a
/// moment and make exec fail with ETXTBSY) and applets as symlinks to it.
#[allow(dead_code)]
pub fn busybox_rootfs(
    busybox: &std::path::Path,
) -> (tempfile::TempDir, berth_init::runtime::Mount) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    for applet in ["sh", "cat", "ls", "touch", "echo"] {
        std::os::unix::fs::symlink("busybox", dir.path().join("bin").join(applet)).unwrap();
    }
    let mount = berth_init::runtime::Mount::Bind {
        src: busybox.to_owned(),
        dst: "/bin/busybox".into(),
        ro: true,
    };
    (dir, mount)
}

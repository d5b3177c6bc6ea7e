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

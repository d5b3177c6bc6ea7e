//! Every VM scenario of berth as PID 1. Each boots its own small image (5–20 s under
//! TCG); cargo runs them in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_vmtests::{CHECK_CONTAINER_MOUNTS, Scenario, boot, kernel};

/// A check container: runs `script` (busybox sh) after `after` are ready, with the
/// console, the control socket and the cgroup tree (read-only at /host/cgroup).
fn check(after: &[&str], script: &str) -> String {
    let after = after
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "container \"check\" {{\n{CHECK_CONTAINER_MOUNTS}  after {after}\n  exec \"/bin/busybox\" \"sh\" \"-c\" #\"exec >/dev/console 2>&1; {script}\"#\n}}\n"
    )
}

#[test]
fn boot_all_ready_then_berth_poweroff_leaves_a_clean_disk() {
    let Some(k) = kernel() else { return };
    let kdl = format!(
        r#"host "vm" {{
  kernel-modules "virtio_pci" "virtio_blk" "ext4"
  filesystem "/dev/vda" "/var/lib/berth" type="ext4"
}}
volume "data"
container "writer" {{
  rootfs "host"
  mount "data" "/data"
  exec "/bin/busybox" "sh" "-c" "echo written-by-writer > /data/proof; sync; exec sleep 1000"
}}
container "sleeper" {{
  rootfs "host"
  exec "/bin/busybox" "sleep" "1000"
}}
{}"#,
        check(
            &["writer", "sleeper"],
            "n=$(berth status | grep -c running); echo CHECK-RUNNING $n; berth poweroff"
        )
    );
    let mut s = Scenario::new("poweroff", &kdl);
    s.disk = Some("32M".into());
    let out = boot(&k, &s);
    out.expect(&[
        "all 3 containers ready",
        "CHECK-RUNNING 3",
        "poweroff: stopping every container",
        "file systems unmounted",
        "reboot: Power down",
    ]);
    let disk = out.dir.join("image/disk.img");
    let fsck = std::process::Command::new("fsck.ext4")
        .arg("-n")
        .arg(&disk)
        .output()
        .unwrap();
    if !fsck.status.success() {
        out.fail(&format!(
            "fsck.ext4 -n: {}\n{}",
            fsck.status,
            String::from_utf8_lossy(&fsck.stdout)
        ));
    }
    let cat = std::process::Command::new("debugfs")
        .args(["-R", "cat /volumes/data/proof"])
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).trim(),
        "written-by-writer",
        "the volume on the state disk"
    );
}

//! Every VM scenario of berth as PID 1. Each boots its own small image (5–20 s under
//! TCG); cargo runs them in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_vmtests::{Action, CHECK_CONTAINER_MOUNTS, Scenario, boot, kernel};

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
            "n=$(berth status | grep -c running); echo CHECK-RUNNING $n; \
             berth down 2>&1 | grep -q \"machine's init\" && echo CHECK-DOWN-REFUSED; berth poweroff"
        )
    );
    let mut s = Scenario::new("poweroff", &kdl);
    s.disk = Some("32M".into());
    let out = boot(&k, &s);
    out.expect(&[
        "all 3 containers ready",
        "CHECK-RUNNING 3",
        "CHECK-DOWN-REFUSED",
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

const SLEEPER: &str = r#"
container "sleeper" {
  rootfs "host"
  stop-timeout "1s"
  exec "/bin/busybox" "sleep" "1000"
}
"#;

#[test]
fn ctrl_alt_del_reboots() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new("ctrl-alt-del", &format!("host \"vm\"\n{SLEEPER}"));
    s.actions.push(Action::CtrlAltDel {
        wait_for: "all 1 containers ready".into(),
    });
    let out = boot(&k, &s);
    out.expect(&[
        "reboot: stopping every container",
        "container sleeper: stopping",
        "reboot: file systems unmounted, restarting",
        "reboot: Restarting system",
    ]);
}

#[test]
fn invalid_host_at_boot_shows_diagnostics_then_the_rescue_shell_where_busybox_poweroff_works() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new(
        "invalid-config",
        &format!("host \"vm\" {{\n  rescue-shell \"/bin/busybox\" \"sh\"\n}}\n{SLEEPER}"),
    );
    s.files.push((
        "broken.kdl".into(),
        "host \"vm\"\ncontainer \"web\" {\n  rootfs \"host\"\n  exec \"/bin/true\"\n  limits {\n    memory \"lots\"\n  }\n}\n".into(),
    ));
    s.append = "berth.config=/etc/berth/broken.kdl".into();
    s.actions.push(Action::Type {
        wait_for: "rescue shell [".into(),
        text: "echo RESCUE-$((6*7)); busybox poweroff\n".into(),
    });
    let out = boot(&k, &s);
    out.expect(&[
        "broken.kdl:6",
        "cannot boot the host /etc/berth/broken.kdl",
        "starting the rescue shell",
        "RESCUE-42",
        "poweroff: file systems unmounted, powering off",
        "reboot: Power down",
    ]);
    out.expect_not("container sleeper: started");
}

#[test]
fn a_panic_in_berth_reboots_the_machine() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new("panic", &format!("host \"vm\"\n{SLEEPER}"));
    s.append = "berth.test-panic=ready".into();
    let out = boot(&k, &s);
    out.expect(&[
        "PANIC:",
        "test-only panic once every container is ready",
        "rebooting after the panic",
        "reboot: Restarting system",
    ]);
    out.expect_not("Attempted to kill init");
}

#[test]
fn memory_limit_oom_kills_inside_the_container_only() {
    let Some(k) = kernel() else { return };
    let kdl = format!(
        r#"host "vm"
{SLEEPER}
container "hog" {{
  rootfs "host"
  stop-timeout "1s"
  limits {{
    memory "16M"
  }}
  exec "/bin/busybox" "sh" "-c" "dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived; exec sleep 1000"
}}
container "hog-restart" {{
  rootfs "host"
  restart "always"
  limits {{
    memory "16M"
  }}
  exec "/bin/busybox" "dd" "if=/dev/zero" "of=/dev/null" "bs=64M" "count=1"
}}
{}"#,
        check(
            &["hog", "sleeper"],
            "sleep 2; oom=$(grep oom_kill /host/cgroup/berth/hog/memory.events | cut -d' ' -f2); \
             max=$(cat /host/cgroup/berth/hog/memory.max); \
             up=$(berth status | grep -E '^(sleeper|hog) ' | grep -c running); \
             echo CHECK-MEMORY oom_kill=$oom memory.max=$max running=$up; berth poweroff"
        )
    );
    let out = boot(&k, &Scenario::new("memory", &kdl));
    out.expect(&[
        "CHECK-MEMORY",
        "container hog-restart: killed by SIGKILL",
        "container hog-restart: restarting",
        "reboot: Power down",
    ]);
    let oom = berth_vmtests::number(&out.console, "oom_kill").unwrap_or(0);
    if oom < 1 {
        out.fail("memory.events of hog shows no oom_kill");
    }
    assert_eq!(
        berth_vmtests::number(&out.console, "memory.max"),
        Some(16 << 20)
    );
    assert_eq!(
        berth_vmtests::number(&out.console, "running"),
        Some(2),
        "hog's shell and the sleeper outlive the OOM kill"
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_cpu_max_throttles() {
    let Some(k) = kernel() else { return };
    let kdl = format!(
        r#"host "vm"
container "bomb" {{
  rootfs "host"
  stop-timeout "1s"
  limits {{
    pids 16
    cpu 0.3
  }}
  exec "/bin/busybox" "sh" "-c" "b() {{ b | b & }}; b; exec sleep 1000"
}}
container "spin" {{
  rootfs "host"
  stop-timeout "1s"
  limits {{
    cpu 0.2
  }}
  exec "/bin/busybox" "sh" "-c" "while :; do :; done"
}}
{}"#,
        check(
            &["bomb", "spin"],
            "sleep 3; cg=/host/cgroup/berth; cur=$(cat $cg/bomb/pids.current); \
             ev=$(cut -d' ' -f2 $cg/bomb/pids.events); \
             thr=$(grep nr_throttled $cg/spin/cpu.stat | cut -d' ' -f2); \
             up=$(berth status | grep -c running); \
             echo CHECK-LIMITS pids.current=$cur pids.max.events=$ev nr_throttled=$thr running=$up; berth poweroff"
        )
    );
    let out = boot(&k, &Scenario::new("limits", &kdl));
    out.expect(&["CHECK-LIMITS", "reboot: Power down"]);
    let n = |k: &str| berth_vmtests::number(&out.console, k).unwrap_or(-1);
    if !(1..=16).contains(&n("pids.current")) || n("pids.max.events") < 1 {
        out.fail("the fork bomb was not held at pids.max 16");
    }
    if n("nr_throttled") < 1 {
        out.fail("cpu.max did not throttle the spinner");
    }
    assert_eq!(n("running"), 3, "berth answers and every container runs");
}

#[test]
fn a_thousand_orphans_are_reaped_by_pid1() {
    let Some(k) = kernel() else { return };
    let kdl = format!(
        "host \"vm\"\n{SLEEPER}\n{}",
        check(
            &["sleeper"],
            "orphans() { cat /host/proc/[0-9]*/stat 2>/dev/null | awk '$4==1 && $2==\"(berth-orphan)\"' | wc -l; }; \
             m=0; i=0; while [ $i -lt 60 ]; do n=$(orphans); [ $n -gt $m ] && m=$n; \
             [ $n -ge 1000 ] && break; [ $n -lt $m ] && break; sleep 0.3; i=$((i+1)); done; \
             echo CHECK-ORPHANS parented=$m; \
             i=0; while [ $i -lt 60 ] && [ $(orphans) -gt 0 ]; do sleep 0.5; i=$((i+1)); done; sleep 1; \
             z=$(cat /host/proc/[0-9]*/stat 2>/dev/null | awk '$3==\"Z\"' | wc -l); \
             echo CHECK-REAPED zombies=$z left=$(orphans); berth poweroff"
        )
    );
    let mut s = Scenario::new("orphans", &kdl);
    s.append = "berth.test-orphans=1000".into();
    let out = boot(&k, &s);
    out.expect(&[
        "test: making 1000 orphans",
        "CHECK-REAPED",
        "reboot: Power down",
    ]);
    let n = |k: &str| berth_vmtests::number(&out.console, k).unwrap_or(-1);
    if n("parented") != 1000 {
        out.fail("not all 1000 orphans were reparented to PID 1");
    }
    if n("zombies") != 0 || n("left") != 0 {
        out.fail("orphans left behind");
    }
}

#[test]
fn berth_vm_builds_and_boots_with_the_console_on_its_output() {
    let Some(k) = kernel() else { return };
    let dir = berth_vmtests::target_dir().join("vmtests/run/berth-vm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let host = dir.join("host.kdl");
    std::fs::write(
        &host,
        format!(
            "host \"vm\"\n{SLEEPER}\n{}",
            check(&["sleeper"], "echo CHECK-VM; berth poweroff")
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(berth_vmtests::berth_bin())
        .arg("vm")
        .arg(&host)
        .arg("--kernel")
        .arg(&k.vmlinuz)
        .arg("--modules")
        .arg(&k.modules)
        .args(["--add", "/bin/busybox", "--no-reboot", "-o"])
        .arg(dir.join("image"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "booting",
        "TCG",
        "all 2 containers ready",
        "CHECK-VM",
        "reboot: Power down",
    ] {
        assert!(
            text.contains(needle),
            "berth vm output lacks {needle:?}:\n{text}"
        );
    }
}

/// `host { watch #true }` under PID 1: an editor-style save of the host file (write a
/// temporary file, rename it over) that raises one container's memory limit is
/// switched to in place — memory.max holds the new value, no pid changes — and an
/// invalid save is refused (`berth status` shows it, nothing restarts).
#[test]
fn a_watched_host_file_edit_is_applied_in_place_and_an_invalid_one_refused() {
    let Some(k) = kernel() else { return };
    // The script names the limits through variables, so editing them in the host file
    // leaves the editing container's own definition (this script) unchanged.
    let script = "pids() { berth status | awk '$1==\"limited\"||$1==\"sleeper\"{print $1 $3 $5}' | tr '\\n' ' '; }; \
        save() { sed \"s/\\\"$1\\\"/\\\"$2\\\"/\" /cfg/host.kdl > /cfg/.host.kdl.tmp && mv /cfg/.host.kdl.tmp /cfg/host.kdl; }; \
        max() { cat /host/cgroup/berth/limited/memory.max; }; \
        before=$(pids); a=16; b=48; save ${a}M ${b}M; \
        i=0; while [ $i -lt 100 ] && [ \"$(max)\" != 50331648 ]; do sleep 0.1; i=$((i+1)); done; \
        after=$(pids); same=0; [ \"$before\" = \"$after\" ] && same=1; \
        echo CHECK-WATCH memory.max=$(max) same=$same; \
        save ${b}M lots; \
        i=0; while [ $i -lt 100 ] && ! berth status | grep -q 'REFUSED HOST FILE'; do sleep 0.1; i=$((i+1)); done; \
        berth status | grep -q 'REFUSED HOST FILE' && echo CHECK-REFUSED; \
        after=$(pids); same=0; [ \"$before\" = \"$after\" ] && same=1; \
        echo CHECK-UNTOUCHED kept=$(max) untouched=$same; berth poweroff";
    let kdl = format!(
        r##"host "vm" {{
  watch #true
}}
container "limited" {{
  rootfs "host"
  stop-timeout "1s"
  limits {{
    memory "16M"
  }}
  exec "/bin/busybox" "sleep" "1000"
}}
{SLEEPER}
container "editor" {{
{CHECK_CONTAINER_MOUNTS}  mount "/etc/berth" "/cfg"
  after "limited" "sleeper"
  exec "/bin/busybox" "sh" "-c" #"exec >/dev/console 2>&1; {script}"#
}}
"##
    );
    let out = boot(&k, &Scenario::new("watch", &kdl));
    out.expect(&[
        "berth: watching /etc/berth/host.kdl",
        "CHECK-WATCH",
        "watch: switched to generation",
        "CHECK-REFUSED",
        "watch: refused /etc/berth/host.kdl",
        "CHECK-UNTOUCHED",
        "reboot: Power down",
    ]);
    assert_eq!(
        berth_vmtests::number(&out.console, "memory.max"),
        Some(48 << 20),
        "memory.max after the watched edit"
    );
    assert_eq!(
        berth_vmtests::number(&out.console, "same"),
        Some(1),
        "no pid changed"
    );
    assert_eq!(berth_vmtests::number(&out.console, "kept"), Some(48 << 20));
    assert_eq!(
        berth_vmtests::number(&out.console, "untouched"),
        Some(1),
        "the refused edit restarted nothing"
    );
}

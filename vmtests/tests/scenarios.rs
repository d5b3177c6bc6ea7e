//! Every VM scenario of berth as PID 1. Each boots its own small image (5–20 s under
//! TCG); cargo runs them in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_vmtests::{Action, CHECK_CONTAINER_MOUNTS, Scenario, boot, build, kernel};

/// A check container: runs `script` (busybox sh) after `after` are ready, with the
/// console, the control socket and the cgroup tree (read-only at /host/cgroup).
fn check(after: &[&str], script: &str) -> String {
    check_with("", after, script)
}

/// [`check`] with `mounts` (lines of KDL) added to the container.
fn check_with(mounts: &str, after: &[&str], script: &str) -> String {
    let after = after
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "container \"check\" {{\n{CHECK_CONTAINER_MOUNTS}{mounts}  after {after}\n  exec \"/bin/busybox\" \"sh\" \"-c\" #\"exec >/dev/console 2>&1; {script}\"#\n}}\n"
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
  stop-timeout "1s"
  mount "data" "/data"
  exec "/bin/busybox" "sh" "-c" "echo written-by-writer > /data/proof; sync; exec sleep 1000"
}}
container "sleeper" {{
  rootfs "host"
  stop-timeout "1s"
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
    out.expect_clean_disk();
    let disk = out.dir.join("image/disk.img");
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
        // --tcg: software emulation also where KVM would work, as the output says.
        .args(["--add", "/bin/busybox", "--no-reboot", "--tcg", "-o"])
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

/// The state disk and the check container's view of the state dir (for `berth plan`
/// and `berth generations`) and of a volume `marks` that counts its boots.
const STATE_DISK: &str = r#"host "vm" {
  kernel-modules "virtio_pci" "virtio_blk" "ext4"
  filesystem "/dev/vda" "/var/lib/berth" type="ext4"
}
volume "marks"
"#;

/// A check container that knows which boot of the machine it runs in: `$p` counts them
/// on the state disk (volume `marks`); `case $p in 1) …;; 2) …;; esac` does one thing
/// per boot.
fn phased_check(after: &[&str], script: &str) -> String {
    check_with(
        "  mount \"marks\" \"/marks\"\n  mount \"/var/lib/berth\" \"/var/lib/berth\" ro=#true\n",
        after,
        &format!(
            "p=$(( $(cat /marks/boots 2>/dev/null || echo 0) + 1 )); echo $p > /marks/boots; sync; {script}"
        ),
    )
}

/// Generations across reboots: a switch not confirmed before a reboot is reverted at
/// the next boot; a confirmed one survives it; a switch interrupted by a crash of PID 1
/// (`BERTH_TEST_CRASH_AT_STEP`: a panic, so a reboot, after 2 of its 3 steps) is
/// finished at the next boot; a host file that does not evaluate at boot starts the
/// last good generation, with its diagnostics on the console. Two power cycles of one
/// machine: the first reboots three times in the same qemu, the second boots the same
/// disk with a broken host file on the kernel command line.
#[test]
fn generations_survive_reboots_unconfirmed_switches_revert_and_a_broken_host_boots_the_last_good() {
    let Some(k) = kernel() else { return };
    let host = |memory: &str, more: &str| {
        format!(
            r#"{STATE_DISK}
container "svc" {{
  rootfs "host"
  stop-signal "SIGKILL"
  limits {{
    memory "{memory}"
  }}
  exec "/bin/busybox" "sleep" "1000"
}}
{more}
{}"#,
            phased_check(
                &["svc"],
                "cur=$(berth generations | grep -F '(current' | awk '{print $1}'); \
                 echo CHECK-BOOT-$p current=$cur mem=$(cat /host/cgroup/berth/svc/memory.max); \
                 case $p in \
                 1) berth switch /etc/berth/changed.kdl --confirm-within 10m && \
                    echo CHECK-SWITCHED mem=$(cat /host/cgroup/berth/svc/memory.max); \
                    berth generations; berth reboot;; \
                 2) berth switch /etc/berth/changed.kdl --confirm-within 10m && berth confirm && berth reboot;; \
                 3) berth switch /etc/berth/third.kdl;; \
                 *) echo CHECK-EXTRA $(berth status | grep -c '^extra. .*running'); berth generations; berth poweroff;; \
                 esac"
            )
        )
    };
    let extra = (1..=2)
        .map(|i| format!("container \"extra{i}\" {{\n  rootfs \"host\"\n  stop-signal \"SIGKILL\"\n  exec \"/bin/busybox\" \"sleep\" \"1000\"\n}}\n"))
        .collect::<String>();
    let mut s = Scenario::new("generations-reboot", &host("32M", ""));
    s.disk = Some("32M".into());
    s.files.push(("changed.kdl".into(), host("48M", "")));
    s.files.push(("third.kdl".into(), host("64M", &extra)));
    s.files.push((
        "broken.kdl".into(),
        host("48M", "").replace("memory \"48M\"", "memory \"lots\""),
    ));
    s.reboot = true;
    // Reaches PID 1's environment (the kernel passes it on); only the third switch has
    // more than two steps.
    s.append = "BERTH_TEST_CRASH_AT_STEP=2".into();
    s.timeout = std::time::Duration::from_secs(300);
    let image = build(&k, &s);
    let out = image.boot(&s);
    let (m32, m48) = ("mem=33554432", "mem=50331648");
    out.expect_in_order(&[
        &format!("CHECK-BOOT-1 current=1 {m32}"),
        &format!("CHECK-SWITCHED {m48}"),
        "(current) (unconfirmed: back to 1",
        "reboot: Restarting system",
        "generation 2 was not confirmed before berth stopped; generation 1 starts",
        &format!("CHECK-BOOT-2 current=1 {m32}"),
        "generation 3 confirmed; it is the boot default",
        "reboot: Restarting system",
        &format!("CHECK-BOOT-3 current=3 {m48}"),
        "test-only crash after 2 steps of a switch",
        "rebooting after the panic",
        "reboot: Restarting system",
        "the switch from generation 3 to 4 was interrupted after 2 of 3 steps; finished it: generation 4 starts",
        "CHECK-BOOT-4 current=4 mem=67108864",
        "CHECK-EXTRA 2",
        "(current, booted)",
        "reboot: Power down",
    ]);
    assert!(out.exited, "qemu powered off");
    // Also after the panic: every file system unmounted or read-only.
    out.expect_not("cannot unmount");
    out.expect_clean_disk();

    s.append = "berth.config=/etc/berth/broken.kdl".into();
    let out = image.boot(&s);
    out.expect_in_order(&[
        "broken.kdl:",
        "the host /etc/berth/broken.kdl does not evaluate",
        "starting generation 4",
        "CHECK-BOOT-5 current=4 mem=67108864",
        "reboot: Power down",
    ]);
    out.expect_clean_disk();
}

/// `berth switch` on a 20-container machine with real cgroup v2 limits: one
/// container's memory limit changes; the plan has one `live` step, no pid changes, and
/// memory.max holds the new value.
#[test]
fn switch_of_one_memory_limit_in_a_20_container_host_is_one_live_step() {
    let Some(k) = kernel() else { return };
    let names: Vec<String> = (1..=20).map(|i| format!("c{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let host = |c07: &str| {
        let mut kdl = String::from("host \"vm\"\n");
        for n in &names {
            let memory = if n == "c07" { c07 } else { "32M" };
            kdl += &format!(
                "container \"{n}\" {{\n  rootfs \"host\"\n  stop-signal \"SIGKILL\"\n  limits {{\n    memory \"{memory}\"\n  }}\n  exec \"/bin/busybox\" \"sleep\" \"1000\"\n}}\n"
            );
        }
        kdl + &format!(
            "container \"check\" {{\n{CHECK_CONTAINER_MOUNTS}  mount \"/var/lib/berth\" \"/var/lib/berth\" ro=#true\n  after {}\n  exec \"/bin/busybox\" \"sh\" \"-c\" #\"exec >/dev/console 2>&1; {}\"#\n}}\n",
            refs.iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(" "),
            "pids() { berth status | awk '$1 ~ /^c[0-9]/ {print $1, $3}'; }; \
             before=$(pids); plan=$(berth plan /etc/berth/changed.kdl); echo \"$plan\"; \
             berth switch /etc/berth/changed.kdl; after=$(pids); \
             [ \"$before\" = \"$after\" ] && same=yes || same=no; \
             echo CHECK-SWITCH containers=$(echo \"$before\" | grep -c ' [0-9]') \
               steps=$(echo \"$plan\" | grep -c '^[-+~] ') live=$(echo \"$plan\" | grep -c '^~ container c07: live$') \
               pids_unchanged=$same memory.max=$(cat /host/cgroup/berth/c07/memory.max) \
               other=$(cat /host/cgroup/berth/c08/memory.max); \
             berth poweroff"
        )
    };
    let mut s = Scenario::new("switch-20", &host("32M"));
    s.files.push(("changed.kdl".into(), host("48M")));
    let out = boot(&k, &s);
    out.expect(&[
        "all 21 containers ready",
        r#"limits.memory: "32M" -> "48M"  (live)"#,
        "Plan: 1 live.",
        "CHECK-SWITCH containers=20 steps=1 live=1 pids_unchanged=yes",
        "reboot: Power down",
    ]);
    let n = |k: &str| berth_vmtests::number(&out.console, k);
    assert_eq!(n("memory.max"), Some(48 << 20), "c07's new limit");
    assert_eq!(n("other"), Some(32 << 20), "c08 untouched");
}

/// A host for the power tests: a shell on the console once everything is ready
/// (`berth.test-shell=1`, in PID 1's namespaces, as an admin at the console would have)
/// and a container that says on the console when it was stopped with SIGTERM (and only
/// then exits 0); it is ready once its trap is set (a SIGTERM before that is ignored, as
/// by any PID 1 of a namespace without a handler, and the stop ran into its timeout).
fn power_host(disk: bool) -> String {
    format!(
        r#"host "vm" {{
  rescue-shell "/bin/busybox" "sh"
{}}}
container "svc" {{
  rootfs "host"
  stop-timeout "5s"
  mount "/dev/console" "/dev/console"
  exec "/bin/busybox" "sh" "-c" "exec >/dev/console 2>&1; trap 'echo SVC-TERM; exit 0' TERM; touch /tmp/trapped; sleep 1000 & wait"
  ready "exec" "/bin/busybox" "test" "-e" "/tmp/trapped" interval="100ms"
}}
"#,
        if disk {
            "  kernel-modules \"virtio_pci\" \"virtio_blk\" \"ext4\"\n  filesystem \"/dev/vda\" \"/var/lib/berth\" type=\"ext4\"\n"
        } else {
            ""
        }
    )
}

const SHELL_READY: &str = "test: console shell";

/// `command` typed at the console shell once it is up, in place of the shell (an
/// interactive shell ignores SIGTERM, so it would hold the shutdown for its grace
/// period). The test shell has no controlling terminal, so its end does not hang the
/// console up under the lines still to come.
fn at_console(command: &str) -> Action {
    Action::Type {
        wait_for: SHELL_READY.into(),
        text: format!("exec {command}\n"),
    }
}

/// The console of one clean stop: the container stopped with SIGTERM and exited 0, the
/// file systems unmounted, then the kernel's last word for `verb`.
fn clean_stop(verb: &str, kernel: &str) -> Vec<String> {
    let doing = match verb {
        "reboot" => "restarting",
        "poweroff" => "powering off",
        _ => "halting",
    };
    vec![
        format!("{verb}: stopping every container"),
        "SVC-TERM".into(),
        "container svc: exited 0".into(),
        format!("{verb}: file systems unmounted, {doing}"),
        kernel.into(),
    ]
}

/// Every way to reboot the machine, one after the other in the same qemu (the guest's
/// reboot restarts it, the state disk stays): busybox `reboot` (SIGTERM to PID 1),
/// systemd's SIGRTMIN+5, `berth reboot` over the control socket; then SIGPWR (power
/// failure) powers it off. The state disk is clean at the end.
#[test]
fn reboot_by_busybox_systemd_signal_and_berth_then_sigpwr_powers_off() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new("power-reboots", &power_host(true));
    s.disk = Some("16M".into());
    s.append = "berth.test-shell=1".into();
    s.reboot = true;
    // glibc's SIGRTMIN is 34, so systemd's SIGRTMIN+5 (reboot) is 39.
    for command in [
        "busybox reboot",
        "busybox kill -39 1",
        "berth reboot",
        "busybox kill -PWR 1",
    ] {
        s.actions.push(at_console(command));
    }
    s.timeout = std::time::Duration::from_secs(180);
    let out = boot(&k, &s);
    let mut want = Vec::new();
    for _ in 0..3 {
        want.extend(clean_stop("reboot", "reboot: Restarting system"));
    }
    want.extend(clean_stop("poweroff", "reboot: Power down"));
    out.expect_in_order(&want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.count(" starting as PID 1"), 4, "four boots");
    assert!(out.exited, "qemu exits at the power-off");
    out.expect_not("killed by SIGKILL");
    out.expect_clean_disk();
}

/// Power-off and halt, each its own boot of one image (at the same time): busybox
/// `poweroff` (SIGUSR2), systemd's SIGRTMIN+4 (poweroff); busybox `halt` (SIGUSR1),
/// systemd's SIGRTMIN+3 (halt) and `berth halt` over the control socket (the CPU stops,
/// qemu stays: the test ends it).
#[test]
fn poweroff_and_halt_by_busybox_systemd_signals_and_berth() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new("power-off-halt", &power_host(false));
    s.append = "berth.test-shell=1".into();
    let image = build(&k, &s);
    let cases = [
        ("busybox poweroff", "poweroff"),
        ("busybox kill -38 1", "poweroff"),
        ("busybox halt", "halt"),
        ("busybox kill -37 1", "halt"),
        ("berth halt", "halt"),
    ];
    std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|&(command, verb)| {
                let last = if verb == "halt" {
                    "reboot: System halted"
                } else {
                    "reboot: Power down"
                };
                let mut s = s.clone();
                s.actions = vec![at_console(command)];
                if verb == "halt" {
                    s.actions.push(Action::Quit {
                        wait_for: last.into(),
                    });
                }
                let image = &image;
                (command, verb, last, scope.spawn(move || image.boot(&s)))
            })
            .collect();
        for (command, verb, last, run) in runs {
            let out = run.join().expect("boot thread");
            let want = clean_stop(verb, last);
            out.expect_in_order(&want.iter().map(String::as_str).collect::<Vec<_>>());
            assert!(out.exited, "{command}: qemu ended");
            out.expect_not("killed by SIGKILL");
        }
    });
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

/// PID 1's own settings and the containers' view of /proc on the Debian kernel (which,
/// unlike the build machine's, has /proc/kcore, /proc/sysrq-trigger and friends): the
/// hostname set from the host, `oom_score_adj` -1000, its log in the kernel log
/// (`dmesg`), a listed device that never appears given up after its `wait`, and every
/// masked and read-only /proc path of the container that the kernel has, covered.
#[test]
fn pid1_sets_the_hostname_protects_itself_logs_to_kmsg_and_gives_up_on_a_missing_device() {
    let Some(k) = kernel() else { return };
    let script = "m=0; for p in acpi asound kcore keys latency_stats timer_list timer_stats sched_debug scsi interrupts; do \
         [ -e /host/proc/$p ] || continue; m=$((m+1)); \
         grep -q \" /proc/$p \" /proc/self/mountinfo || echo MASKED-MISSING /proc/$p; done; \
         [ -e /host/proc/kcore ] && [ $(wc -c </proc/kcore) = 0 ] && grep -q ' /proc/kcore ' /proc/self/mountinfo && echo CHECK-KCORE-MASKED; \
         grep -q ' /sys/firmware ' /proc/self/mountinfo || echo MASKED-MISSING /sys/firmware; \
         for p in bus fs irq sys sysrq-trigger; do [ -e /host/proc/$p ] || continue; \
         awk -v p=/proc/$p '$5 == p && $6 ~ /^ro/ { f = 1 } END { exit !f }' /proc/self/mountinfo || echo RO-MISSING /proc/$p; done; \
         [ -e /host/proc/sysrq-trigger ] && echo CHECK-SYSRQ-PRESENT; \
         echo CHECK-MASKED masked=$m; echo CHECK-CONTAINER-OOM=$(cat /proc/self/oom_score_adj); \
         touch /run/berth/masks-checked; exec sleep 1000";
    let kdl = format!(
        "host \"audit-vm\" {{\n  rescue-shell \"/bin/busybox\" \"sh\"\n  filesystem \"/dev/vdz\" \"/mnt/absent\" type=\"ext4\" wait=\"1s\"\n}}\n{SLEEPER}\n{}",
        check_with("  stop-timeout \"1s\"\n", &["sleeper"], script)
    );
    let mut s = Scenario::new("pid1-self", &kdl);
    s.append = "berth.test-shell=1".into();
    s.actions.push(Action::Type {
        wait_for: SHELL_READY.into(),
        text: "until [ -e /run/berth/masks-checked ]; do sleep 0.1; done; \
               echo PID1-HOST=$(hostname) OOM=$(cat /proc/1/oom_score_adj) \
               KMSG=$(dmesg | grep -c 'berth: berth .* starting as PID [1]') \
               EVENTS=$(dmesg | grep -c 'berth: container sleepe[r]: ready'); exec busybox poweroff\n"
            .into(),
    });
    let out = boot(&k, &s);
    out.expect(&[
        "filesystem: device /dev/vdz did not appear within 1s",
        "all 2 containers ready",
        "CHECK-KCORE-MASKED",
        "CHECK-SYSRQ-PRESENT",
        "CHECK-MASKED",
        // PID 1's -1000 is not inherited by its containers.
        "CHECK-CONTAINER-OOM=0",
        "PID1-HOST=audit-vm OOM=-1000 KMSG=1 EVENTS=1",
        "reboot: Power down",
    ]);
    out.expect_not("MASKED-MISSING");
    out.expect_not("RO-MISSING");
    // acpi, kcore, keys, timer_list, interrupts at least, on the Debian kernel.
    if berth_vmtests::number(&out.console, "masked").unwrap_or(0) < 5 {
        out.fail("fewer masked /proc paths checked than the Debian kernel has");
    }
}

/// Every limit of the schema, in its cgroup file on the real kernel (only memory.max,
/// pids.max and cpu.max are exercised by the scenarios above), and every controller
/// the kernel has enabled for berth's subtree.
#[test]
fn every_limit_is_written_to_its_cgroup_file() {
    let Some(k) = kernel() else { return };
    let kdl = format!(
        r#"host "vm"
container "limited" {{
  rootfs "host"
  stop-timeout "1s"
  limits {{
    memory "64M"
    memory-high "48M"
    memory-swap "16M"
    cpu 0.5
    cpu-weight 300
    pids 50
    io-weight 200
    cpuset "0"
  }}
  exec "/bin/busybox" "sleep" "1000"
}}
{}"#,
        check(
            &["limited"],
            "cg=/host/cgroup/berth; l=$cg/limited; \
             echo CHECK-SUBTREE $(cat $cg/cgroup.subtree_control) /; \
             echo CHECK-CONTROLLERS $(cat /host/cgroup/cgroup.controllers) /; \
             echo CHECK-FILES mem=$(cat $l/memory.max) high=$(cat $l/memory.high) swap=$(cat $l/memory.swap.max) \
             cpu=$(cat $l/cpu.max | tr ' ' ,) weight=$(cat $l/cpu.weight) pids=$(cat $l/pids.max) \
             io=$(cat $l/io.weight | tr ' ' ,) cpus=$(cat $l/cpuset.cpus) warnings=$(berth status | grep -c 'not enforced'); \
             berth poweroff"
        )
    );
    let out = boot(&k, &Scenario::new("all-limits", &kdl));
    out.expect(&[
        "CHECK-FILES mem=67108864 high=50331648 swap=16777216 cpu=50000,100000 weight=300 pids=50 io=default,200 cpus=0 warnings=0",
        "reboot: Power down",
    ]);
    // Every controller the kernel offers is enabled for berth's subtree.
    let list = |key: &str| -> Vec<String> {
        let line = out
            .console
            .lines()
            .find_map(|l| l.split(key).nth(1))
            .unwrap_or_else(|| out.fail(&format!("no {key} line")));
        line.split_whitespace()
            .take_while(|w| *w != "/")
            .map(str::to_string)
            .collect()
    };
    let (offered, enabled) = (list("CHECK-CONTROLLERS"), list("CHECK-SUBTREE"));
    for c in ["cpuset", "cpu", "io", "memory", "pids"] {
        if !offered.iter().any(|o| o == c) || !enabled.iter().any(|e| e == c) {
            out.fail(&format!(
                "controller {c}: offered {offered:?}, enabled for berth {enabled:?}"
            ));
        }
    }
}

/// `on-panic "shell"`: a panic in berth starts the rescue shell on the console, and the
/// machine reboots when it exits; `on-panic "halt"` halts. Never "Attempted to kill
/// init".
#[test]
fn a_panic_with_on_panic_shell_starts_the_rescue_shell_and_with_halt_halts() {
    let Some(k) = kernel() else { return };
    let host = |on_panic: &str| {
        format!(
            "host \"vm\" {{\n  on-panic \"{on_panic}\"\n  rescue-shell \"/bin/busybox\" \"sh\"\n}}\n{SLEEPER}"
        )
    };
    let mut s = Scenario::new("panic-shell", &host("shell"));
    s.append = "berth.test-panic=ready".into();
    s.actions.push(Action::Type {
        wait_for: "rescue shell [".into(),
        // The shell is the console's controlling process: its exit hangs the tty up,
        // dropping output not yet sent, so it lets the line out first.
        text: "echo PANIC-SHELL-$((6*7)); sleep 1; exit\n".into(),
    });
    let out = boot(&k, &s);
    out.expect_in_order(&[
        "PANIC:",
        "on-panic \"shell\": starting the rescue shell",
        "PANIC-SHELL-42",
        "reboot: Restarting system",
    ]);
    out.expect_not("Attempted to kill init");

    let mut s = Scenario::new("panic-halt", &host("halt"));
    s.append = "berth.test-panic=ready".into();
    s.actions.push(Action::Quit {
        wait_for: "reboot: System halted".into(),
    });
    let out = boot(&k, &s);
    out.expect_in_order(&["PANIC:", "reboot: System halted"]);
    out.expect_not("rescue shell [");
    out.expect_not("Attempted to kill init");
}

/// A container whose rootfs is a directory of the build machine, put in the image by
/// `berth build` (with `--add`: the tree lives under target/, which may be below /tmp,
/// hidden at boot), and the container runs in it (only `rootfs "host"` containers were
/// booted before).
#[test]
fn a_directory_rootfs_is_packed_into_the_image_and_the_container_runs_in_it() {
    let Some(k) = kernel() else { return };
    let rootfs = berth_vmtests::target_dir().join("vmtests/run/dir-rootfs-tree");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::write(rootfs.join("marker"), "from-the-dir-rootfs\n").unwrap();
    let kdl = format!(
        r#"host "vm"
container "own" {{
  rootfs "/srv/own-rootfs"
  stop-timeout "1s"
  mount "/dev/console" "/dev/console"
  exec "/bin/busybox" "sh" "-c" "exec >/dev/console 2>&1; echo OWN-ROOT $(cat /marker) $(ls /bin | tr '\n' ' ')/; exec /bin/busybox sleep 1000"
}}
{}"#,
        check(&["own"], "sleep 1; berth poweroff")
    );
    let mut s = Scenario::new("dir-rootfs", &kdl);
    s.add.push(format!("{}:/srv/own-rootfs", rootfs.display()));
    let out = boot(&k, &s);
    out.expect(&[
        "container own: started",
        "OWN-ROOT from-the-dir-rootfs busybox sh /",
        "reboot: Power down",
    ]);
}

/// A host file that does not exist at boot: said on the console, then the fallback
/// (the rescue shell of the image's host; no generation has booted yet).
#[test]
fn a_missing_host_file_at_boot_is_named_then_the_rescue_shell_starts() {
    let Some(k) = kernel() else { return };
    let mut s = Scenario::new(
        "missing-config",
        &format!("host \"vm\" {{\n  rescue-shell \"/bin/busybox\" \"sh\"\n}}\n{SLEEPER}"),
    );
    s.append = "berth.config=/etc/berth/missing.kdl".into();
    s.actions.push(Action::Type {
        wait_for: "rescue shell [".into(),
        text: "echo RESCUE-$((6*7)); busybox poweroff\n".into(),
    });
    let out = boot(&k, &s);
    out.expect(&[
        "/etc/berth/missing.kdl",
        "cannot boot the host /etc/berth/missing.kdl",
        "starting the rescue shell",
        "RESCUE-42",
        "reboot: Power down",
    ]);
    out.expect_not("container sleeper: started");
}

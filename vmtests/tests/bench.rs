//! Measurements (ignored by default; `cargo test -p berth-vmtests --test bench --
//! --ignored --nocapture`): boot to all-containers-ready with berth as PID 1 against
//! busybox init starting the same number of processes from a shell script, same
//! kernel, same image, same run; and berth's RSS as PID 1 with 10 containers. The
//! berth in the images is `BERTH_IN_IMAGE` when set (`BERTH_IN_IMAGE=$(scripts/build-static)`,
//! the release build appliances get), else the one cargo built for the tests.
//! `BENCH_TIMING=1` boots berth with `berth.test-timing=1`: the times of its phases on
//! the console (`console.log` of each scenario), for profiling; those console lines slow
//! it down, so not for the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_vmtests::{
    CHECK_CONTAINER_MOUNTS, Scenario, berth_in_image, boot, kernel, log_time, number,
};

/// Rounds (each boots both images once): `ROUNDS` from the environment, default 3.
fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3)
}

#[test]
#[ignore = "measurement: boots 6 VMs"]
fn boot_to_ready_berth_vs_busybox_init() {
    let Some(k) = kernel() else { return };
    let mut kdl = String::from("host \"bench\"\n");
    for i in 0..9 {
        kdl.push_str(&format!(
            "container \"c{i}\" {{\n  rootfs \"host\"\n  stop-timeout \"1s\"\n  exec \"/bin/busybox\" \"sleep\" \"1000\"\n}}\n"
        ));
    }
    // The check container starts beside the others, as busybox's script starts all ten
    // at once (no `after`: an ordering would add a second start layer busybox does not
    // have); it reads PID 1's memory a second later, when all ten run.
    kdl.push_str(&format!(
        "container \"check\" {{\n{CHECK_CONTAINER_MOUNTS}  exec \"/bin/busybox\" \"sh\" \"-c\" #\"exec >/dev/console 2>&1; sleep 1; f() {{ grep $1 /host/proc/1/status | tr -s ' ' | cut -d' ' -f2; }}; echo BENCH rss_kib=$(f VmRSS) anon_kib=$(f RssAnon) file_kib=$(f RssFile) shmem_kib=$(f RssShmem); berth poweroff\"#\n}}\n"
    ));
    let dir = berth_vmtests::target_dir().join("vmtests/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let inittab = dir.join("inittab");
    std::fs::write(&inittab, "::sysinit:/bin/busybox sh /etc/bench.rc\n").unwrap();
    let rc = dir.join("bench.rc");
    std::fs::write(
        &rc,
        "b=/bin/busybox; $b mount -t proc proc /proc\n\
         read up idle < /proc/uptime; echo \"BENCH-START uptime=$up\"\n\
         $b mount -t sysfs sys /sys; $b mount -t devtmpfs dev /dev\n\
         $b mount -t cgroup2 none /sys/fs/cgroup\n\
         i=0; while [ $i -lt 10 ]; do $b sleep 1000 & i=$((i+1)); done\n\
         read up idle < /proc/uptime; echo \"BENCH-READY uptime=$up\"\n\
         $b poweroff -f\n",
    )
    .unwrap();
    let mut berth = Vec::new();
    let mut berth_own = Vec::new();
    let mut busybox = Vec::new();
    let mut busybox_own = Vec::new();
    let mut rss = Vec::new();
    let mut anon = Vec::new();
    let mut file = Vec::new();
    let mut shmem = Vec::new();
    let rounds = rounds();
    for round in 0..rounds {
        let mut s = Scenario::new(&format!("bench-berth-{round}"), &kdl);
        if std::env::var("BENCH_TIMING").as_deref() == Ok("1") {
            // Where berth's part goes (console lines cost time: not for the ratio).
            s.append = "berth.test-timing=1".into();
        }
        let out = boot(&k, &s);
        out.expect(&["all 10 containers ready", "BENCH rss_kib="]);
        let ready = log_time(&out.console, "all 10 containers ready").unwrap();
        let start = log_time(&out.console, "starting as PID 1").unwrap();
        berth.push(ready);
        berth_own.push(ready - start);
        rss.push(number(&out.console, "rss_kib").unwrap());
        anon.push(number(&out.console, "anon_kib").unwrap());
        file.push(number(&out.console, "file_kib").unwrap());
        shmem.push(number(&out.console, "shmem_kib").unwrap());

        let mut s = Scenario::new(&format!("bench-busybox-{round}"), "host \"bench\"\n");
        s.add = vec![
            "/bin/busybox:/sbin/init".into(),
            format!("{}:/etc/inittab", inittab.display()),
            format!("{}:/etc/bench.rc", rc.display()),
        ];
        s.append = "rdinit=/sbin/init".into();
        let out = boot(&k, &s);
        out.expect(&["BENCH-READY"]);
        let f = |key: &str| {
            out.console
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split("uptime=").nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap()
        };
        busybox.push(f("BENCH-READY"));
        busybox_own.push(f("BENCH-READY") - f("BENCH-START"));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "boot to 10 ready (s since kernel start, mean of {rounds}): berth {:.3} {berth:?}, busybox init {:.3} {busybox:?}, ratio {:.3}; medians {:.3} / {:.3}, ratio {:.3}",
        mean(&berth),
        mean(&busybox),
        mean(&berth) / mean(&busybox),
        median(&berth),
        median(&busybox),
        median(&berth) / median(&busybox)
    );
    println!(
        "init's own part (init start to ready): berth {:.3} {berth_own:?}, busybox {:.3} {busybox_own:?}",
        mean(&berth_own),
        mean(&busybox_own)
    );
    println!(
        "berth RSS as PID 1 with 10 containers (KiB): {rss:?}, anonymous {anon:?}, file-backed {file:?}, shmem (the binary's pages on the initramfs' tmpfs) {shmem:?}; the berth in the image: {} ({})",
        berth_in_image().display(),
        if std::fs::read(berth_in_image())
            .unwrap()
            .windows(15)
            .any(|w| w == b"/lib64/ld-linux")
        {
            "dynamically linked"
        } else {
            "static"
        }
    );
}

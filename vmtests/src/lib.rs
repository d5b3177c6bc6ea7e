//! The VM test harness: each scenario is a host file plus a check, built into an image
//! with `berth build`, booted under qemu (software emulation) with Debian's kernel, and
//! judged by what the guest writes on its serial console. On failure the whole console
//! is printed.
//!
//! The kernel (Debian bookworm's linux-image-6.1.*-amd64, fetched with `apt-get
//! download` and unpacked with `dpkg -x`, modules indexed with `depmod -b`) is prepared
//! once under `target/vmtests/kernel` and shared by every scenario and every run; qemu
//! boots it unpacked from its bzImage (through its PVH entry), which under software
//! emulation saves the kernel's own decompression, most of a boot's time.
//!
//! An [`Image`] is built once and booted as often as a scenario needs, keeping its state
//! disk (`Scenario::reboot`: the guest's reboots restart it in the same qemu; another
//! [`Image::boot`]: the machine switched on again, e.g. with another command line).
//! Under CI=true a missing qemu, kernel or tool fails the test; elsewhere it is skipped
//! with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `target/` of this workspace (the test binary lives in `target/PROFILE/deps`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `berth` binary cargo built next to this test (`target/PROFILE/berth`).
pub fn berth_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/PROFILE");
    profile_dir.join("berth")
}

/// The berth to put in the images as /init: `BERTH_IN_IMAGE` when set (scripts/test
/// sets it to the release build of scripts/build-static, the binary appliances get),
/// otherwise the one that builds them ([`berth_bin`]).
pub fn berth_in_image() -> PathBuf {
    std::env::var_os("BERTH_IN_IMAGE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(berth_bin)
}

/// True if the scenario can run; under CI=true a missing requirement panics.
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

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The guest's kernel: a bzImage and its modules directory (with modules.dep).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub vmlinuz: PathBuf,
    pub modules: PathBuf,
    /// The same kernel unpacked (an ELF with a PVH entry point), which qemu boots
    /// directly: under software emulation the bzImage's own xz decompression takes
    /// longer than the rest of the boot together. `None` when it could not be unpacked
    /// (then the bzImage boots).
    pub vmlinux: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn prepare_kernel() -> Result<Kernel, String> {
    let dir = target_dir().join("vmtests/kernel");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // One preparation at a time, also across test processes.
    let lock = std::fs::File::create(dir.join(".lock")).map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on an open fd; released when `lock` is dropped.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    }
    let pkg = dir.join("pkg");
    let ready = dir.join(".ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&pkg);
        let list = run(Command::new("apt-cache").args([
            "search",
            "--names-only",
            r"^linux-image-6\.1\.[0-9-]+-amd64$",
        ]))?;
        let mut names: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        names.sort_by_key(|n| version_key(n));
        let name = names
            .last()
            .ok_or("apt knows no linux-image-6.1.*-amd64 (apt-get update?)")?;
        for e in std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        run(Command::new("apt-get")
            .args(["download", "-q", name])
            .current_dir(&dir))?;
        let deb = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download wrote no .deb")?;
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&pkg))?;
        let release = only_entry(&pkg.join("lib/modules"))?;
        run(Command::new("depmod").arg("-b").arg(&pkg).arg(&release))?;
        let _ = std::fs::remove_file(&deb);
        std::fs::write(&ready, name).map_err(|e| e.to_string())?;
    }
    let release = only_entry(&pkg.join("lib/modules"))?;
    let vmlinuz = pkg.join(format!("boot/vmlinuz-{release}"));
    let vmlinux = dir.join(format!("vmlinux-{release}"));
    if !vmlinux.exists()
        && let Err(e) = unpack_bzimage(&vmlinuz, &vmlinux)
    {
        eprintln!(
            "vmtests: cannot unpack {} ({e}); booting the bzImage",
            vmlinuz.display()
        );
    }
    drop(lock);
    Ok(Kernel {
        vmlinuz,
        modules: pkg.join("lib/modules").join(&release),
        vmlinux: vmlinux.exists().then_some(vmlinux),
    })
}

/// Writes the kernel inside a bzImage (an xz-compressed ELF: Debian's) to `out`, using
/// the payload offset and length of its setup header (boot protocol 2.08+).
fn unpack_bzimage(bzimage: &Path, out: &Path) -> Result<(), String> {
    let b = std::fs::read(bzimage).map_err(|e| e.to_string())?;
    let word = |at: usize| -> Result<usize, String> {
        b.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
            .ok_or_else(|| "too short for a bzImage".to_string())
    };
    let setup_sects = match b.get(0x1f1) {
        Some(0) => 4,
        Some(&n) => usize::from(n),
        None => return Err("too short for a bzImage".into()),
    };
    let start = (setup_sects + 1) * 512 + word(0x248)?;
    let payload = b
        .get(start..start + word(0x24c)?)
        .ok_or("the payload lies outside the file")?;
    if !payload.starts_with(b"\xfd7zXZ\x00") {
        return Err("the payload is not xz-compressed".into());
    }
    let tmp = out.with_extension("tmp");
    let mut xz = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&tmp).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("xz: {e}"))?;
    let mut stdin = xz.stdin.take().ok_or("xz stdin")?;
    let payload = payload.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&payload));
    let status = xz.wait().map_err(|e| e.to_string())?;
    let _ = feeder.join();
    let elf = std::fs::read(&tmp)
        .map(|d| d.starts_with(b"\x7fELF"))
        .unwrap_or(false);
    if !status.success() || !elf {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("xz -dc: {status}, ELF: {elf}"));
    }
    std::fs::rename(&tmp, out).map_err(|e| e.to_string())
}

/// `linux-image-6.1.0-56-amd64` → [6, 1, 0, 56] for sorting.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn only_entry(dir: &Path) -> Result<String, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .pop()
        .ok_or_else(|| format!("{} is empty", dir.display()))
}

static KERNEL: OnceLock<Result<Kernel, String>> = OnceLock::new();

/// The kernel, prepared once per run; `None` (skip) or a panic (CI) when something
/// needed is missing.
pub fn kernel() -> Option<Kernel> {
    let tools_ok = [
        "qemu-system-x86_64",
        "mkfs.ext4",
        "fsck.ext4",
        "depmod",
        "xz",
        "dpkg",
        "apt-get",
    ]
    .iter()
    .all(|t| have(t));
    if !require(
        tools_ok,
        "qemu-system-x86_64, e2fsprogs, kmod, xz-utils, dpkg and apt-get (scripts/test installs them)",
    ) {
        return None;
    }
    if !require(
        busybox().is_some(),
        "a static busybox at /bin/busybox (apt-get install busybox-static)",
    ) {
        return None;
    }
    if !require(
        berth_bin().exists(),
        "the berth binary (cargo build -p berth-init)",
    ) {
        return None;
    }
    if !require(
        berth_in_image().exists(),
        "the berth named by BERTH_IN_IMAGE (scripts/build-static)",
    ) {
        return None;
    }
    match KERNEL.get_or_init(prepare_kernel) {
        Ok(k) => Some(k.clone()),
        Err(e) => {
            require(false, &format!("the guest kernel: {e}"));
            None
        }
    }
}

/// Debian's static busybox.
pub fn busybox() -> Option<PathBuf> {
    let p = PathBuf::from("/bin/busybox");
    let b = std::fs::read(&p).ok()?;
    // Static: no PT_INTERP program header; a crude but sufficient check for the
    // "/lib64/ld-linux" string of dynamic executables.
    let dynamic = b.windows(15).any(|w| w == b"/lib64/ld-linux");
    (!dynamic).then_some(p)
}

/// Something the harness does while the guest runs. Actions run in order, each when
/// its text appears on the console after the previous action ran (so the same text can
/// be waited for again after a reboot).
#[derive(Debug, Clone)]
pub enum Action {
    /// When the console shows `wait_for`, type `text` on it.
    Type { wait_for: String, text: String },
    /// When the console shows `wait_for`, press ctrl-alt-del on the guest's keyboard
    /// (qemu monitor `sendkey`).
    CtrlAltDel { wait_for: String },
    /// When the console shows `wait_for`, end qemu: for a guest that halted (the CPU
    /// stops, qemu stays) or has nothing more to show.
    Quit { wait_for: String },
}

/// One VM test.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The host file.
    pub kdl: String,
    /// Other files next to it (name, text), e.g. a broken host for `berth.config=`.
    pub files: Vec<(String, String)>,
    /// More `--add SRC:DST` for the image.
    pub add: Vec<String>,
    /// `--disk SIZE` for the image.
    pub disk: Option<String>,
    /// Extra kernel command line.
    pub append: String,
    pub actions: Vec<Action>,
    /// A reboot of the guest restarts it in the same qemu (same disk, same command
    /// line); without it qemu ends at the first reboot (`-no-reboot`).
    pub reboot: bool,
    pub timeout: Duration,
}

impl Scenario {
    pub fn new(name: &str, kdl: &str) -> Scenario {
        Scenario {
            name: name.into(),
            kdl: kdl.into(),
            files: Vec::new(),
            add: Vec::new(),
            disk: None,
            append: String::new(),
            actions: Vec::new(),
            reboot: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a boot left behind.
#[derive(Debug)]
pub struct Outcome {
    pub console: String,
    /// qemu ended before the timeout: by itself (the guest powered off, or rebooted
    /// under `-no-reboot`) or by a [`Action::Quit`].
    pub exited: bool,
    pub dir: PathBuf,
    pub seconds: f64,
}

impl Outcome {
    /// Panics with the whole console unless it contains every one of `needles`.
    pub fn expect(&self, needles: &[&str]) {
        let missing: Vec<&&str> = needles
            .iter()
            .filter(|n| !self.console.contains(**n))
            .collect();
        if !missing.is_empty() {
            panic!(
                "console lacks {missing:?} (qemu {}; image in {}):\n----- console -----\n{}\n-------------------",
                if self.exited { "exited" } else { "timed out" },
                self.dir.display(),
                self.console
            );
        }
    }

    /// Panics with the whole console unless `needles` appear on it in this order.
    pub fn expect_in_order(&self, needles: &[&str]) {
        let mut from = 0;
        for n in needles {
            match self.console[from..].find(n) {
                Some(at) => from += at + n.len(),
                None => self.fail(&format!(
                    "console lacks {n:?} after what came before it in {needles:?} (qemu {})",
                    if self.exited { "exited" } else { "timed out" }
                )),
            }
        }
    }

    /// How many times `needle` appears on the console.
    pub fn count(&self, needle: &str) -> usize {
        self.console.matches(needle).count()
    }

    /// Panics with the whole console if it contains `needle`.
    pub fn expect_not(&self, needle: &str) {
        if self.console.contains(needle) {
            panic!(
                "console shows {needle:?}:\n----- console -----\n{}\n-------------------",
                self.console
            );
        }
    }

    /// Panics with the console and `why`.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n----- console -----\n{}\n-------------------",
            self.console
        );
    }

    /// Panics with the console unless `fsck.ext4 -n` finds the state disk clean.
    pub fn expect_clean_disk(&self) {
        let disk = self.dir.join("image/disk.img");
        let fsck = Command::new("fsck.ext4")
            .arg("-n")
            .arg(&disk)
            .output()
            .expect("run fsck.ext4");
        if !fsck.status.success() {
            self.fail(&format!(
                "fsck.ext4 -n {}: {}\n{}",
                disk.display(),
                fsck.status,
                String::from_utf8_lossy(&fsck.stdout)
            ));
        }
    }
}

/// A scenario's image, built once and booted as often as the scenario needs, with its
/// state disk kept between boots (a machine switched off and on again).
#[derive(Debug)]
pub struct Image {
    pub dir: PathBuf,
    /// What qemu boots: the unpacked kernel when there is one, else the image's bzImage.
    kernel: PathBuf,
    boots: AtomicU32,
}

/// Builds the scenario's image with `berth build` into `target/vmtests/run/NAME`.
/// Panics with the reason if the image cannot be built.
pub fn build(kernel: &Kernel, s: &Scenario) -> Image {
    let dir = target_dir().join("vmtests/run").join(&s.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let host = dir.join("host.kdl");
    std::fs::write(&host, &s.kdl).unwrap();
    let mut add = Vec::new();
    for (name, text) in &s.files {
        std::fs::write(dir.join(name), text).unwrap();
        add.push(format!("{}:/etc/berth/{name}", dir.join(name).display()));
    }
    let image = dir.join("image");
    let mut build = Command::new(berth_bin());
    build
        .arg("build")
        .arg(&host)
        .arg("--kernel")
        .arg(&kernel.vmlinuz)
        .arg("--modules")
        .arg(&kernel.modules)
        .arg("--add")
        .arg("/bin/busybox:/bin/busybox")
        .arg("--berth")
        .arg(berth_in_image())
        .arg("-o")
        .arg(&image)
        .env("NO_COLOR", "1");
    if let Some(d) = &s.disk {
        build.args(["--disk", d]);
    }
    for a in add.iter().chain(&s.add) {
        build.arg("--add").arg(a);
    }
    let out = build.output().expect("run berth build");
    assert!(
        out.status.success(),
        "berth build {}: {}{}",
        s.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let kernel = kernel
        .vmlinux
        .clone()
        .unwrap_or_else(|| image.join("vmlinuz"));
    Image {
        dir,
        kernel,
        boots: AtomicU32::new(0),
    }
}

/// Builds the scenario's image and boots it once (see [`Image::boot`]).
pub fn boot(kernel: &Kernel, s: &Scenario) -> Outcome {
    build(kernel, s).boot(s)
}

impl Image {
    /// Boots the image with the scenario's command line, actions, reboot rule and
    /// timeout; returns when qemu ends (see [`Outcome::exited`]) or at the timeout. The
    /// console goes to `console.log` (`console-N.log` for the Nth boot of the image).
    /// An image without a state disk may boot several times at once (from threads).
    pub fn boot(&self, s: &Scenario) -> Outcome {
        let boot = self.boots.fetch_add(1, Ordering::SeqCst) + 1;
        let image = self.dir.join("image");
        let monitor = self.dir.join(format!("monitor-{boot}.sock"));
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", "tcg", "-m", "1024", "-smp", "2"])
            .args(["-display", "none", "-serial", "stdio", "-nic", "none"])
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", monitor.display()))
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(image.join("initramfs.gz"))
            .arg("-append")
            .arg(format!("console=ttyS0 panic=-1 quiet {}", s.append));
        if !s.reboot {
            qemu.arg("-no-reboot");
        }
        if s.disk.is_some() {
            qemu.arg("-drive").arg(format!(
                "file={},if=virtio,format=raw",
                image.join("disk.img").display()
            ));
        }
        let start = Instant::now();
        let mut child = qemu
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run qemu-system-x86_64");
        let console = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let c2 = console.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                c2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdin = child.stdin.take().unwrap();
        let mut actions = s.actions.clone().into_iter().peekable();
        // Where the console was when the last action ran: the next waits for its text
        // after that.
        let mut seen = 0;
        let deadline = start + s.timeout;
        let exited = loop {
            if let Ok(Some(_)) = child.try_wait() {
                break true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            if let Some(a) = actions.peek() {
                let text = console.lock().unwrap().clone();
                let (Action::Type { wait_for, .. }
                | Action::CtrlAltDel { wait_for }
                | Action::Quit { wait_for }) = a;
                if text
                    .get(seen..)
                    .is_some_and(|t| t.contains(wait_for.as_str()))
                {
                    seen = text.len();
                    match a {
                        Action::Type { text: t, .. } => {
                            let _ = stdin.write_all(t.as_bytes());
                            let _ = stdin.flush();
                        }
                        Action::CtrlAltDel { .. } => {
                            if let Ok(mut m) = std::os::unix::net::UnixStream::connect(&monitor) {
                                let _ = m.write_all(b"sendkey ctrl-alt-delete\n");
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                        Action::Quit { .. } => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break true;
                        }
                    }
                    actions.next();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = reader.join();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let mut text = console.lock().unwrap().clone();
        if !err.trim().is_empty() {
            text.push_str("\n[qemu stderr] ");
            text.push_str(&err);
        }
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "vmtests: {} boot {}: {seconds:.1} s",
            self.dir.file_name().unwrap_or_default().to_string_lossy(),
            boot
        );
        let log = match boot {
            1 => "console.log".to_string(),
            n => format!("console-{n}.log"),
        };
        std::fs::write(self.dir.join(log), &text).unwrap();
        Outcome {
            console: text,
            exited,
            dir: self.dir.clone(),
            seconds,
        }
    }
}

/// A shell snippet for check containers: print `CHECK-OK name` or `CHECK-FAIL name:
/// why` on the console.
pub const CHECK_CONTAINER_MOUNTS: &str = r#"
  rootfs "host"
  restart "never"
  mount "/dev/console" "/dev/console"
  mount "/run/berth" "/run/berth"
  mount "/sys/fs/cgroup" "/host/cgroup" ro=#true
  mount "/proc" "/host/proc" ro=#true
"#;

/// The seconds since boot of the last console line of berth's log containing
/// `needle` (`[   9.954] berth: …`).
pub fn log_time(console: &str, needle: &str) -> Option<f64> {
    console
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix('[')?
                .split(']')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .next_back()
}

/// The `key=N` number a check printed on the console (`CHECK-X key=N`).
pub fn number(console: &str, key: &str) -> Option<i64> {
    let k = format!("{key}=");
    console
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(k.as_str()))
        })
        .filter_map(|v| v.parse().ok())
        .next_back()
}

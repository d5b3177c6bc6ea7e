//! `berth vm FILE`: build the image and boot it in qemu, the console on this terminal.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use super::build::{BuildOptions, Built, build_image};
use super::{INVALID, load};

/// How the machine is emulated.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// MiB of memory.
    pub memory: u32,
    pub cpus: u32,
    /// Extra kernel command line.
    pub append: String,
    /// Exit qemu when the guest reboots.
    pub no_reboot: bool,
    /// Software emulation (TCG) even where KVM works; otherwise KVM is used when it
    /// works ([`kvm_works`]).
    pub tcg: bool,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            memory: 1024,
            cpus: 2,
            append: String::new(),
            no_reboot: false,
            tcg: false,
        }
    }
}

/// Whether to boot with KVM: where it works, unless `--tcg` asks for software
/// emulation.
pub fn use_kvm(vm: &VmOptions, kvm_works: bool) -> bool {
    kvm_works && !vm.tcg
}

/// The qemu command line for an image (the program first), with KVM or TCG.
pub fn qemu_args(built: &Built, vm: &VmOptions, kvm: bool) -> Vec<String> {
    let mut a: Vec<String> = vec!["qemu-system-x86_64".into()];
    if kvm {
        a.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]);
    } else {
        a.extend(["-accel".into(), "tcg".into()]);
    }
    a.extend([
        "-m".into(),
        vm.memory.to_string(),
        "-smp".into(),
        vm.cpus.to_string(),
        "-nographic".into(),
        "-nic".into(),
        "none".into(),
        "-kernel".into(),
        built.kernel.display().to_string(),
        "-initrd".into(),
        built.initramfs.display().to_string(),
        "-append".into(),
        format!("console=ttyS0 panic=-1 quiet {}", vm.append)
            .trim()
            .to_string(),
    ]);
    if vm.no_reboot {
        a.push("-no-reboot".into());
    }
    if let Some(disk) = &built.disk {
        a.extend([
            "-drive".into(),
            format!("file={},if=virtio,format=raw", disk.display()),
        ]);
    }
    a
}

/// KVM works when a guest can actually run, not merely when /dev/kvm opens: on some
/// machines (nested virtualisation without VMX) /dev/kvm exists and guests hang. The
/// check: the kernel reports the vmx or svm CPU flag and /dev/kvm opens read-write.
pub fn kvm_works() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let virt = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    virt && std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The kernel of the running system, /boot/vmlinuz-RELEASE.
pub fn default_kernel() -> Option<PathBuf> {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let k = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    k.exists().then_some(k)
}

/// `berth vm`: builds into `opts.out` and replaces this process with qemu. Returns
/// only on failure.
pub fn vm(
    opts: &BuildOptions,
    vm: &VmOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    let Some(ev) = load(&opts.file, err, color) else {
        return INVALID;
    };
    let built = match build_image(opts, &ev) {
        Ok((b, _)) => b,
        Err(e) => {
            let _ = writeln!(err, "error: berth vm: {e}");
            return INVALID;
        }
    };
    std::mem::forget(ev);
    let kvm = use_kvm(vm, kvm_works());
    let args = qemu_args(&built, vm, kvm);
    let _ = writeln!(
        out,
        "berth vm: booting {} with {} (ctrl-a x quits qemu)",
        opts.file.display(),
        if kvm {
            "KVM"
        } else {
            "TCG (software emulation)"
        }
    );
    let _ = out.flush();
    let e = std::process::Command::new(&args[0]).args(&args[1..]).exec();
    let _ = writeln!(
        err,
        "error: berth vm: cannot run {}: {e} (apt-get install qemu-system-x86)",
        args[0]
    );
    INVALID
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_is_used_where_it_works_unless_tcg_is_asked_for() {
        let auto = VmOptions::default();
        assert!(use_kvm(&auto, true));
        assert!(!use_kvm(&auto, false));
        let tcg = VmOptions {
            tcg: true,
            ..VmOptions::default()
        };
        assert!(!use_kvm(&tcg, true));
        let built = Built {
            kernel: PathBuf::from("/k"),
            initramfs: PathBuf::from("/i"),
            disk: None,
        };
        let accel = |kvm| qemu_args(&built, &auto, kvm)[1..5].join(" ");
        assert_eq!(accel(true), "-accel kvm -cpu host");
        assert!(accel(false).starts_with("-accel tcg"));
    }
}

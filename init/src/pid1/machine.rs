//! What PID 1 prepares before it can read its state dir: the kernel modules and the
//! file systems of a host, and where the state dir is. The state dir may live on a disk
//! that one of those file systems mounts, and it holds the generations; so at boot the
//! host file of the image decides these (or, when it does not evaluate, the image's
//! record of the last host that built), then the generation that starts adds what it
//! needs more.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_modules::{Node, Value};
use serde::{Deserialize, Serialize};

use super::console::log;
use super::mounts::{self, FsEntry};
use super::rescue::strings;
use crate::build::kmod::ModIndex;

/// The boot-time needs of a host (its `kernel-modules`, `filesystem`s and `state-dir`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub kernel_modules: Vec<String>,
    pub filesystems: Vec<FsEntry>,
    pub state_dir: PathBuf,
}

impl Default for Machine {
    fn default() -> Machine {
        Machine {
            kernel_modules: Vec::new(),
            filesystems: Vec::new(),
            state_dir: PathBuf::from(crate::state::DEFAULT_STATE_DIR),
        }
    }
}

impl Machine {
    pub fn of_host(host: &Node) -> Machine {
        let filesystems = host
            .get("filesystem")
            .map(Value::as_list)
            .unwrap_or_default()
            .iter()
            .map(|fs| {
                let field = |n: &str| fs.field(n).and_then(Value::as_str).unwrap_or("");
                FsEntry {
                    device: field("device").to_string(),
                    target: PathBuf::from(field("target")),
                    fstype: field("type").to_string(),
                    options: field("options").to_string(),
                    wait: match fs.field("wait") {
                        Some(Value::Duration(ns)) => Duration::from_nanos(*ns),
                        _ => Duration::from_secs(10),
                    },
                }
            })
            .collect();
        Machine {
            kernel_modules: strings(host.get("kernel-modules")),
            filesystems,
            state_dir: PathBuf::from(
                host.get("state-dir")
                    .and_then(Value::as_str)
                    .unwrap_or(crate::state::DEFAULT_STATE_DIR),
            ),
        }
    }

    /// Loads the modules and mounts the file systems. Errors are logged; boot goes on.
    pub fn prepare(&self) {
        load_modules(&self.kernel_modules);
        for entry in &self.filesystems {
            match mounts::mount_filesystem(entry) {
                Ok(()) => log(&format!(
                    "mounted {} on {}",
                    entry.device,
                    entry.target.display()
                )),
                Err(e) => log(&format!("filesystem: {e}")),
            }
        }
    }

    /// What `other` needs that this one did not prepare: modules not loaded, file
    /// systems on mount points not mounted. (The state dir stays where the generations
    /// were read from.)
    pub fn missing_from(&self, other: &Machine) -> Machine {
        Machine {
            kernel_modules: other
                .kernel_modules
                .iter()
                .filter(|m| !self.kernel_modules.contains(m))
                .cloned()
                .collect(),
            filesystems: other
                .filesystems
                .iter()
                .filter(|f| !self.filesystems.iter().any(|g| g.target == f.target))
                .cloned()
                .collect(),
            state_dir: self.state_dir.clone(),
        }
    }
}

/// Loads `wanted` and what they need (modules.dep, soft pre-dependencies) with
/// finit_module(2). Errors are logged; boot goes on.
fn load_modules(wanted: &[String]) {
    if wanted.is_empty() {
        return;
    }
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let dir = Path::new("/lib/modules").join(&release);
    let ix = match ModIndex::read(&dir) {
        Ok(ix) => ix,
        Err(e) => {
            log(&format!("kernel modules: {e}"));
            return;
        }
    };
    let order = match ix.load_order(wanted) {
        Ok(o) => o,
        Err(missing) => {
            log(&format!(
                "kernel modules not in {}: {}",
                dir.display(),
                missing.join(", ")
            ));
            let rest: Vec<String> = wanted
                .iter()
                .filter(|w| !missing.contains(w))
                .cloned()
                .collect();
            ix.load_order(&rest).unwrap_or_default()
        }
    };
    let mut loaded = 0;
    for name in &order {
        let Some(rel) = ix.path_of(name) else {
            continue;
        };
        let path = dir.join(&rel);
        match finit_module(&path) {
            Ok(()) => loaded += 1,
            // A driver for hardware this machine lacks (crc32c_intel without SSE4.2).
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => log(&format!(
                "kernel module {name}: no device for it here, skipped"
            )),
            Err(e) => log(&format!("kernel module {name} ({}): {e}", path.display())),
        }
    }
    log(&format!(
        "loaded {loaded} kernel modules ({})",
        order.join(" ")
    ));
}

fn finit_module(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let name = path.to_string_lossy();
    // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses (Linux 5.17).
    let flags = if name.ends_with(".xz") || name.ends_with(".zst") || name.ends_with(".gz") {
        4
    } else {
        0
    };
    use std::os::fd::AsRawFd;
    // SAFETY: finit_module with an open fd, an empty NUL-terminated parameter string
    // and integer flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn machine(kdl: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.kdl");
        std::fs::write(&file, kdl).unwrap();
        let ev = berth_modules::evaluate(&berth_config::FsSource, &file).unwrap();
        Machine::of_host(ev.host())
    }

    #[test]
    fn a_host_s_boot_needs_and_what_another_adds() {
        let a = machine(
            "host h {\n  kernel-modules \"ext4\"\n  filesystem \"/dev/vda\" \"/var/lib/berth\" type=\"ext4\"\n}\n",
        );
        assert_eq!(a.kernel_modules, ["ext4"]);
        assert_eq!(a.filesystems[0].target, Path::new("/var/lib/berth"));
        assert_eq!(a.filesystems[0].wait, Duration::from_secs(10));
        assert_eq!(a.state_dir, Path::new("/var/lib/berth"));
        // Through the boot record and back.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Machine>(&json).unwrap(), a);

        let b = machine(
            "host h {\n  kernel-modules \"ext4\" \"veth\"\n  filesystem \"/dev/vda\" \"/var/lib/berth\" type=\"ext4\"\n  filesystem \"/dev/vdb\" \"/srv\" type=\"ext4\" wait=\"2s\"\n  state-dir \"/srv/berth\"\n}\n",
        );
        let more = a.missing_from(&b);
        assert_eq!(more.kernel_modules, ["veth"]);
        assert_eq!(more.filesystems.len(), 1);
        assert_eq!(more.filesystems[0].target, Path::new("/srv"));
        assert_eq!(more.filesystems[0].wait, Duration::from_secs(2));
        assert_eq!(more.state_dir, a.state_dir);
        assert_eq!(
            b.missing_from(&b),
            Machine {
                state_dir: b.state_dir.clone(),
                ..Machine::default()
            }
        );
    }
}

//! Kernel modules: the index depmod writes (modules.dep, modules.softdep,
//! modules.alias, modules.builtin), the closure of the modules a host lists, and the
//! order to load them in. `berth build` copies the closure and a filtered index into
//! the image; PID 1 reads that index and loads each module with finit_module(2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

/// A module's name as the kernel knows it: the file name without `.ko*`, with `-` as
/// `_` (what `modprobe` accepts either way).
pub fn module_name(s: &str) -> String {
    let base = s.rsplit('/').next().unwrap_or(s);
    let base = base.split_once(".ko").map_or(base, |(stem, _)| stem);
    base.replace('-', "_")
}

/// depmod's index of one kernel's modules.
#[derive(Debug, Default, Clone)]
pub struct ModIndex {
    /// name → (path relative to the modules directory, its dependencies' paths as
    /// modules.dep lists them: load them from the last to the first).
    pub dep: BTreeMap<String, (String, Vec<String>)>,
    /// name → modules to load before it (`softdep NAME pre: …`), as written (names or
    /// aliases).
    pub softdep_pre: BTreeMap<String, Vec<String>>,
    /// The softdep lines, verbatim, by module.
    pub softdep_lines: BTreeMap<String, String>,
    /// alias → module names.
    pub alias: HashMap<String, Vec<String>>,
    /// The alias lines, by module.
    pub alias_lines: BTreeMap<String, Vec<String>>,
    /// Modules built into the kernel.
    pub builtin: HashSet<String>,
}

impl ModIndex {
    /// Reads the index of `dir` (`/lib/modules/VERSION`). modules.dep is required (run
    /// `depmod -b ROOT VERSION` to make it); the other files are optional.
    pub fn read(dir: &Path) -> io::Result<ModIndex> {
        let dep_text = std::fs::read_to_string(dir.join("modules.dep")).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: {e} (make it with `depmod -b ROOT VERSION`)",
                    dir.join("modules.dep").display()
                ),
            )
        })?;
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        Ok(ModIndex::parse(
            &dep_text,
            &read("modules.softdep"),
            &read("modules.alias"),
            &read("modules.builtin"),
        ))
    }

    pub fn parse(dep: &str, softdep: &str, alias: &str, builtin: &str) -> ModIndex {
        let mut ix = ModIndex::default();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            ix.dep.insert(
                module_name(path),
                (
                    path.to_string(),
                    deps.split_whitespace().map(str::to_string).collect(),
                ),
            );
        }
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(name) = words.next().map(module_name) else {
                continue;
            };
            let mut pre = false;
            for w in words {
                match w {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    m if pre => ix
                        .softdep_pre
                        .entry(name.clone())
                        .or_default()
                        .push(m.into()),
                    _ => {}
                }
            }
            ix.softdep_lines.insert(name, line.to_string());
        }
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(a), Some(m)) = (words.next(), words.next(), words.next()) {
                let m = module_name(m);
                ix.alias.entry(a.to_string()).or_default().push(m.clone());
                ix.alias_lines.entry(m).or_default().push(line.to_string());
            }
        }
        ix.builtin = builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(module_name)
            .collect();
        ix
    }

    /// The module names a name or alias stands for.
    fn resolve(&self, name: &str) -> Vec<String> {
        let n = module_name(name);
        if self.dep.contains_key(&n) || self.builtin.contains(&n) {
            return vec![n];
        }
        self.alias.get(name).cloned().unwrap_or_default()
    }

    /// The order to load `wanted` (names or aliases) in: every module after its soft
    /// pre-dependencies (e.g. crc32c_generic before libcrc32c: its `softdep pre: crc32c`)
    /// and its dependencies. Built-in modules are left out; names found nowhere are
    /// returned as the error, all of them.
    pub fn load_order(&self, wanted: &[String]) -> Result<Vec<String>, Vec<String>> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        let mut missing = Vec::new();
        for w in wanted {
            let names = self.resolve(w);
            if names.is_empty() {
                missing.push(w.clone());
            }
            for n in names {
                self.visit(&n, &mut seen, &mut order);
            }
        }
        if missing.is_empty() {
            Ok(order)
        } else {
            Err(missing)
        }
    }

    fn visit(&self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(name.to_string()) || self.builtin.contains(name) {
            return;
        }
        for pre in self.softdep_pre.get(name).into_iter().flatten() {
            for n in self.resolve(pre) {
                self.visit(&n, seen, order);
            }
        }
        if let Some((_, deps)) = self.dep.get(name) {
            for d in deps.iter().rev() {
                self.visit(&module_name(d), seen, order);
            }
            order.push(name.to_string());
        }
    }

    /// The index restricted to `names` (modules.dep, modules.softdep, modules.alias
    /// text), for the image.
    pub fn subset_files(&self, names: &[String]) -> [(String, String); 3] {
        let keep: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut dep = String::new();
        let mut softdep = String::new();
        let mut alias = String::new();
        for (name, (path, deps)) in &self.dep {
            if keep.contains(name.as_str()) {
                dep.push_str(&format!("{path}:"));
                for d in deps {
                    dep.push(' ');
                    dep.push_str(d);
                }
                dep.push('\n');
                if let Some(l) = self.softdep_lines.get(name) {
                    softdep.push_str(l);
                    softdep.push('\n');
                }
                for l in self.alias_lines.get(name).into_iter().flatten() {
                    alias.push_str(l);
                    alias.push('\n');
                }
            }
        }
        [
            ("modules.dep".into(), dep),
            ("modules.softdep".into(), softdep),
            ("modules.alias".into(), alias),
        ]
    }

    /// The file of a module, relative to the modules directory.
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        self.dep.get(name).map(|(p, _)| PathBuf::from(p))
    }
}

/// The kernel release of a bzImage (from its setup header: the `kernel_version`
/// string), e.g. `6.1.0-56-amd64`.
pub fn bzimage_version(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let off = u16::from_le_bytes([*image.get(0x20e)?, *image.get(0x20f)?]) as usize + 0x200;
    let s = image.get(off..(off + 256).min(image.len()))?;
    let end = s.iter().position(|&b| b == 0 || b == b' ')?;
    let v = std::str::from_utf8(&s[..end]).ok()?;
    (!v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/lib/libcrc32c.ko:\n\
kernel/crypto/crc32c_generic.ko:\n\
kernel/net/netfilter/nf_tables.ko: kernel/lib/libcrc32c.ko kernel/net/netfilter/nfnetlink.ko\n\
kernel/net/netfilter/nfnetlink.ko:\n\
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\n\
kernel/net/802/stp.ko: kernel/net/llc/llc.ko\n\
kernel/net/llc/llc.ko:\n";

    fn index() -> ModIndex {
        ModIndex::parse(
            DEP,
            "softdep libcrc32c pre: crc32c\n",
            "alias crc32c crc32c_generic\nalias crypto-crc32c crc32c_generic\n",
            "kernel/drivers/input/keyboard/atkbd.ko\n",
        )
    }

    #[test]
    fn soft_dependencies_and_dependencies_come_first() {
        let order = index()
            .load_order(&["nf-tables".into(), "bridge".into(), "atkbd".into()])
            .unwrap();
        assert_eq!(
            order,
            [
                "nfnetlink",
                "crc32c_generic",
                "libcrc32c",
                "nf_tables",
                "llc",
                "stp",
                "bridge"
            ]
        );
    }

    #[test]
    fn unknown_modules_are_all_reported() {
        assert_eq!(
            index().load_order(&["nope".into(), "bridge".into(), "nada".into()]),
            Err(vec!["nope".to_string(), "nada".to_string()])
        );
    }

    #[test]
    fn subset_keeps_only_the_closure() {
        let ix = index();
        let order = ix.load_order(&["nf_tables".into()]).unwrap();
        let [(_, dep), (_, soft), (_, alias)] = ix.subset_files(&order);
        assert!(dep.contains("nf_tables.ko: kernel/lib/libcrc32c.ko"));
        assert!(!dep.contains("bridge"));
        assert_eq!(soft, "softdep libcrc32c pre: crc32c\n");
        assert!(alias.contains("alias crc32c crc32c_generic"));
        assert_eq!(module_name("kernel/x/virtio-blk.ko.xz"), "virtio_blk");
    }
}

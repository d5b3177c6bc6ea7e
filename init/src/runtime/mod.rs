//! The low-level container runtime: cgroup v2, container creation, waiting.
//!
//! Independent of berth's config types: it takes plain structs ([`SpawnConfig`],
//! [`Limits`]) that the apply step fills from the evaluated host.
//!
//! - [`cgroup`]: berth's subtree and one cgroup per container; limits (reporting the
//!   ones that cannot be enforced), kill, freeze, events.
//! - [`spawn()`]: clone3 into the container's cgroup and pid namespace, the other new
//!   namespaces, rootfs, mounts, pivot_root, privileges, exec; a failing step is named
//!   in the error. [`begin`] returns right after the clone, for an event loop.
//!   [`NetHelper`] makes a container's new network namespace beside its init
//!   ([`spawn::spawn_with`]).
//! - [`wait`]: pidfd-based waiting and reaping.
//!
//! Needs Linux 5.12 (clone3 with CLONE_INTO_CGROUP, the new mount API, openat2,
//! mount_setattr, close_range, cgroup.kill needs 5.14).

pub mod caps;
pub mod cgroup;
mod child;
pub mod config;
mod layout;
mod netns;
mod ops;
mod plan;
pub mod spawn;
pub(crate) mod sys;
pub mod wait;

pub use caps::Caps;
pub use cgroup::{Cgroup, CgroupError, CgroupTree, Events, Limits, Unenforced};
pub use config::{Mount, NamespaceMode, Namespaces, Rootfs, SpawnConfig, Stdio, User};
pub use netns::NetHelper;
pub use spawn::{Child, Progress, SpawnError, Starting, begin, spawn};
pub use sys::disable_thp;
pub use wait::ExitStatus;

//! berth's effects side: the commands of the `berth` binary. `main.rs` only parses
//! arguments and calls into here.

pub mod alloc;
pub mod build;
pub mod cmd;
pub mod control;
pub mod fsutil;
pub mod generations;
pub mod logs;
pub mod net;
pub mod pid1;
pub mod plan;
pub mod probe;
pub mod runtime;
pub mod state;
pub mod supervisor;
pub mod unit;
pub mod watch;

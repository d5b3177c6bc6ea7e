//! berth's effects side: the commands of the `berth` binary. `main.rs` only parses
//! arguments and calls into here.

pub mod cmd;
pub mod fsutil;
pub mod logs;
pub mod runtime;

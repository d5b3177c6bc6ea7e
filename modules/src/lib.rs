//! The option schema and evaluation.
//!
//! [`evaluate`] loads a host with `berth-config`, type-checks every definition against
//! the [`schema`], merges definitions by priority, checks references and cycles, and
//! returns an [`Evaluation`]: typed nodes, the dependency [`graph::HostGraph`] with
//! start layers, and blake3 hashes of every node and of the whole generation.

pub mod canon;
mod check;
pub mod docs;
mod eval;
pub mod graph;
mod netcheck;
mod par;
pub mod provenance;
pub mod schema;
mod sorted;
pub mod units;
pub mod value;
pub mod why;

pub use eval::{Evaluation, Failure, Node, NodeId, bridge_name, evaluate, evaluate_tree};
pub use schema::{ApplyClass, Kind};
pub use sorted::SortedMap;
pub use value::Value;

//! berth's host language.
//!
//! Turns KDL text into a [`Tree`]: every entity (`container "web"`, `network "lan"`, …)
//! with every definition of every option, each carrying its priority and provenance
//! (file, span, module instance). Pure: the only input is a [`Source`] that reads files.
//! Which options exist, their types and how definitions merge is the schema's business
//! (crate `berth-modules`); this crate knows only the syntax and the node kinds.

pub mod diag;
pub mod edit;
pub mod fasthash;
pub mod fmt;
pub mod kdl;
mod load;
pub mod source;
pub mod subst;
pub mod tree;

pub use diag::{Diagnostic, Label, Severity};
pub use load::{KindSpec, Naming, load};
pub use source::{FileId, FsSource, MemSource, Source, SourceFile, SourceMap};
pub use tree::{Arg, Entity, Instance, InstanceId, OptionDef, Origin, Priority, Tree};

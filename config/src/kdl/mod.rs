//! berth's own KDL v2 parser, and the syntax tree it produces.
//!
//! The `kdl` crate stays the reference (and the formatter): this parser only builds
//! what evaluation needs, an order of magnitude or two faster.

mod ast;
mod parser;

pub use ast::*;

/// Parses a KDL v2 document. Returns the document (nodes that failed to parse are left
/// out) and every syntax error found.
pub fn parse(text: &str) -> (Document, Vec<ParseError>) {
    parser::parse(text)
}

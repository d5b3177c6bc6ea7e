//! berth's own KDL v2 parser: the evaluation path's parser, ~100× faster than the `kdl`
//! crate (which berth uses only where formatting must be preserved).
mod ast;
mod parser;

pub use ast::*;

/// Parses a KDL v2 document. Returns the document (nodes that failed to parse are left
/// out) and every syntax error found.
pub fn parse(text: &str) -> (Document, Vec<ParseError>) {
    parser::parse(text)
}

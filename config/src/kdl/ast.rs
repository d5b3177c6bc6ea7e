//! The syntax tree berth's own KDL v2 parser produces: just what evaluation needs
//! (names, type annotations, values, byte spans), no formatting trivia. Slashdashed
//! (`/-`) nodes, entries and children blocks are dropped by the parser.

/// A byte range in one source text. `u32` keeps nodes small; files over 4 GiB are
/// refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A value with the span of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `(annotation)` before the node name. Boxed, as in [`Entry`]: annotations are
    /// rare, and every node and entry is moved several times while it is built.
    pub ty: Option<Box<Spanned<String>>>,
    pub name: Spanned<String>,
    /// Arguments and properties, in source order. Duplicate property keys are kept
    /// (KDL says the last one wins; berth reports duplicates instead).
    pub entries: Vec<Entry>,
    /// `None` when the node has no `{ }` block.
    pub children: Option<Vec<Node>>,
    /// From the annotation (or name) to the end of the last entry or the closing `}`.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key, for a property (`key=value`); `None` for an argument.
    pub name: Option<Spanned<String>>,
    /// `(annotation)` before the value. Boxed: 8 bytes instead of 32 in every entry.
    pub ty: Option<Box<Spanned<String>>>,
    pub value: Value,
    /// Span of the value's text (without key or annotation).
    pub value_span: Span,
    /// Span of the whole entry: key, annotation and value.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    /// KDL integers may be written in decimal, hex, octal or binary.
    Integer(i128),
    /// Also `#inf`, `#-inf`, `#nan`.
    Float(f64),
    Bool(bool),
    Null,
}

/// A syntax error. The parser reports every error it can find in one pass: after an
/// error it resynchronises at the next node boundary it can recognise.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub span: Span,
    /// What is wrong, e.g. "unterminated string".
    pub message: String,
    /// Short text for the label under the span, e.g. "string starts here".
    pub label: String,
    pub help: Option<String>,
}

//! `berth fmt`: the canonical layout of a KDL host file, every comment kept.
//!
//! The formatter works on the tokens of the original text, not on a syntax tree: it
//! changes only the whitespace between tokens and the `;` that separate nodes. Every
//! token is copied byte for byte: strings stay quoted (or raw, or multi-line) as
//! written, numbers stay as written, comments stay where they are relative to the other
//! tokens. The layout:
//!
//! - one node per line, indented 4 spaces per level of nesting; a `;` ending a node
//!   becomes a line break;
//! - one space between a node's name and its entries and between entries; none around
//!   the `=` of a property, inside `(type)` or between it and what it annotates;
//! - ` {` before a children block, its nodes on their own lines, `}` on a line of its
//!   own at the parent's indentation; a block with nothing in it is written `{}`;
//! - a `//` comment after a node (or after `{`, `;` or `}`) stays at the end of its line
//!   after one space; a comment on its own line stays on its own line, at the indentation
//!   of the level it is in (a comment before a `}` is inside the block); a `/* */`
//!   comment keeps its place between tokens with one space around it;
//! - runs of blank lines between nodes and comments become one blank line; there is none
//!   at the start of the file, right after a `{` or right before a `}`; the file ends
//!   with exactly one newline (an empty document is written as an empty file);
//! - `/-` is attached to what it comments out (`/-node`, `/-"arg"`, `/-{`), which is
//!   laid out like anything else;
//! - a line continuation `\` inside a node is kept (one space before it), its comments
//!   too, and the continued line is indented one level deeper than the node; a
//!   continuation that continues nothing (an empty line, `;`, `}` or the end of the file
//!   follows) is dropped, its comments kept; one outside a node is a line break;
//! - multi-line strings and block comments are copied verbatim, newlines included: the
//!   lines inside them are never re-indented;
//! - a byte order mark is kept; every newline written is `\n`.
//!
//! Safety net: [`format`] parses its input and its output with berth's parser and
//! refuses to return a text whose document differs from the input's (spans ignored), or
//! whose comments and tokens are not the input's.

use crate::kdl::{self, Document, Entry, Node, ParseError, Span, Spanned, Value};

/// The message of the error [`format`] returns instead of a text that would mean
/// something else than its input.
pub const MEANING_CHANGED: &str = "internal formatter error: formatting would change the meaning of this file; the file was left as it is (please report)";

/// Spaces per level of nesting.
const INDENT: usize = 4;

/// Formats a KDL document canonically (see the [module documentation](self)), keeping
/// every comment. Syntax errors in `text` are returned as they are; so is, as a single
/// error with the message [`MEANING_CHANGED`], a formatter bug that would change the
/// document's meaning or lose a comment.
pub fn format(text: &str) -> Result<String, Vec<ParseError>> {
    let (before, errors) = kdl::parse(text);
    if !errors.is_empty() {
        return Err(errors);
    }
    let out = layout(text);
    let (after, errors) = kdl::parse(&out);
    if errors.is_empty() && same_meaning(&before, &after) && same_tokens(text, &out) {
        Ok(out)
    } else {
        Err(vec![ParseError {
            span: Span::default(),
            message: MEANING_CHANGED.into(),
            label: "not formatted".into(),
            help: None,
        }])
    }
}

/// The comments of a KDL text (`//` ones without the newline ending them, `/* */` ones
/// whole), in order, as the formatter sees them. Only meaningful for text that parses.
pub fn comments(text: &str) -> Vec<&str> {
    significant(&tokenize(text.strip_prefix('\u{feff}').unwrap_or(text)))
        .into_iter()
        .filter_map(|t| match t {
            Tok::LineComment(c) | Tok::BlockComment(c) => Some(c),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ safety net

/// Whether two documents are the same apart from spans: the same nodes with the same
/// names, annotations, entries (keys, annotations, values) and children. Floats compare
/// by bits, so `#nan` equals itself.
pub fn same_meaning(a: &Document, b: &Document) -> bool {
    same_nodes(&a.nodes, &b.nodes)
}

fn same_nodes(a: &[Node], b: &[Node]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_node(x, y))
}

fn same_node(a: &Node, b: &Node) -> bool {
    same_name(a.ty.as_deref(), b.ty.as_deref())
        && a.name.value == b.name.value
        && a.entries.len() == b.entries.len()
        && a.entries
            .iter()
            .zip(&b.entries)
            .all(|(x, y)| same_entry(x, y))
        && match (&a.children, &b.children) {
            (Some(x), Some(y)) => same_nodes(x, y),
            (None, None) => true,
            _ => false,
        }
}

fn same_entry(a: &Entry, b: &Entry) -> bool {
    same_name(a.name.as_ref(), b.name.as_ref())
        && same_name(a.ty.as_deref(), b.ty.as_deref())
        && same_value(&a.value, &b.value)
}

fn same_name(a: Option<&Spanned<String>>, b: Option<&Spanned<String>>) -> bool {
    a.map(|s| &s.value) == b.map(|s| &s.value)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Whether the two texts have the same tokens, newlines, `;` and line continuations
/// left out (the comments of a continuation stay).
fn same_tokens(a: &str, b: &str) -> bool {
    let strip = |t: &str| t.strip_prefix('\u{feff}').map_or(0, |_| 3);
    let (ta, tb) = (tokenize(&a[strip(a)..]), tokenize(&b[strip(b)..]));
    strip(a) == strip(b) && significant(&ta) == significant(&tb)
}

/// The tokens that formatting must keep, in order.
fn significant<'a>(toks: &[Tok<'a>]) -> Vec<Tok<'a>> {
    let mut out = Vec::with_capacity(toks.len());
    for t in toks {
        match t {
            Tok::Newline | Tok::Semi => {}
            Tok::Escline(cs) => out.extend(cs.iter().cloned()),
            t => out.push(t.clone()),
        }
    }
    out
}

// -------------------------------------------------------------------- tokens

/// A token of KDL text. Whitespace is not one: the formatter writes its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    /// A name or a value: identifier, number, keyword, quoted or raw string (multi-line
    /// ones included), as written.
    Atom(&'a str),
    /// `// ...`, without the newline that ends it.
    LineComment(&'a str),
    /// `/* ... */`, nested ones included.
    BlockComment(&'a str),
    Slashdash,
    Open,
    Close,
    Semi,
    Eq,
    LParen,
    RParen,
    Newline,
    /// A line continuation: `\`, then the comments up to and including the newline
    /// (or the end of the text) it consumes. Only comments are in the list.
    Escline(Vec<Tok<'a>>),
}

/// Length of the newline at `i` (CRLF counts as one), or 0.
fn newline_len(b: &[u8], i: usize) -> usize {
    match b.get(i..) {
        Some([b'\r', b'\n', ..]) => 2,
        Some([b'\r' | b'\n' | 0x0b | 0x0c, ..]) => 1,
        Some([0xc2, 0x85, ..]) => 2,
        Some([0xe2, 0x80, 0xa8 | 0xa9, ..]) => 3,
        _ => 0,
    }
}

/// Length of the unicode space at `i`, or 0.
fn space_len(b: &[u8], i: usize) -> usize {
    match b.get(i..) {
        Some([b' ' | b'\t', ..]) => 1,
        Some([0xc2, 0xa0, ..]) => 2,
        Some([0xe1, 0x9a, 0x80, ..] | [0xe3, 0x80, 0x80, ..]) => 3,
        Some([0xe2, 0x80, 0x80..=0x8a | 0xaf, ..] | [0xe2, 0x81, 0x9f, ..]) => 3,
        _ => 0,
    }
}

/// Length of the character whose first byte is at `i` (1 past the end).
fn char_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(0xf0..) => 4,
        Some(0xe0..) => 3,
        Some(0xc0..) => 2,
        _ => 1,
    }
}

fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut lexer = Lexer {
        src: text,
        b: text.as_bytes(),
        pos: 0,
    };
    let mut toks = Vec::new();
    while let Some(t) = lexer.next_token() {
        toks.push(t);
    }
    toks
}

/// A scanner for text that parses: on anything else it still makes progress and never
/// panics, but what it returns is unspecified.
struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn starts_with_at(&self, i: usize, s: &[u8]) -> bool {
        self.b.get(i..).is_some_and(|rest| rest.starts_with(s))
    }

    /// The text from `start` to the current position (clamped to the end).
    fn take(&mut self, start: usize) -> &'a str {
        self.pos = self.pos.min(self.b.len());
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn next_token(&mut self) -> Option<Tok<'a>> {
        loop {
            let i = self.pos;
            let c = self.at(i)?;
            let space = space_len(self.b, i);
            if space > 0 {
                self.pos += space;
                continue;
            }
            let nl = newline_len(self.b, i);
            if nl > 0 {
                self.pos += nl;
                return Some(Tok::Newline);
            }
            let punct = |p: &mut Self, t: Tok<'a>| {
                p.pos += 1;
                t
            };
            return Some(match c {
                b'/' => match self.at(i + 1) {
                    Some(b'/') => Tok::LineComment(self.line_comment()),
                    Some(b'*') => Tok::BlockComment(self.block_comment()),
                    Some(b'-') => {
                        self.pos += 2;
                        Tok::Slashdash
                    }
                    _ => Tok::Atom(self.word()),
                },
                b'{' => punct(self, Tok::Open),
                b'}' => punct(self, Tok::Close),
                b';' => punct(self, Tok::Semi),
                b'=' => punct(self, Tok::Eq),
                b'(' => punct(self, Tok::LParen),
                b')' => punct(self, Tok::RParen),
                b'\\' => self.escline(),
                b'"' => Tok::Atom(self.string(0)),
                b'#' if matches!(self.at(i + 1), Some(b'#' | b'"')) => {
                    let mut q = i;
                    while self.at(q) == Some(b'#') {
                        q += 1;
                    }
                    Tok::Atom(self.string(q - i))
                }
                _ => Tok::Atom(self.word()),
            });
        }
    }

    /// At `//`: the comment, without the newline ending it.
    fn line_comment(&mut self) -> &'a str {
        let start = self.pos;
        while self.pos < self.b.len() && newline_len(self.b, self.pos) == 0 {
            self.pos += char_len(self.b, self.pos);
        }
        self.take(start)
    }

    /// At `/*`: the comment, nested ones included.
    fn block_comment(&mut self) -> &'a str {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while self.pos < self.b.len() {
            if self.starts_with_at(self.pos, b"*/") {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if self.starts_with_at(self.pos, b"/*") {
                self.pos += 2;
                depth += 1;
            } else {
                self.pos += char_len(self.b, self.pos);
            }
        }
        self.take(start)
    }

    /// At `\`: a line continuation with its comments and newline.
    fn escline(&mut self) -> Tok<'a> {
        let start = self.pos;
        self.pos += 1;
        let mut comments = Vec::new();
        loop {
            let space = space_len(self.b, self.pos);
            if space > 0 {
                self.pos += space;
            } else if self.starts_with_at(self.pos, b"/*") {
                comments.push(Tok::BlockComment(self.block_comment()));
            } else {
                break;
            }
        }
        if self.starts_with_at(self.pos, b"//") {
            comments.push(Tok::LineComment(self.line_comment()));
        }
        let nl = newline_len(self.b, self.pos);
        if nl == 0 && self.pos < self.b.len() {
            // Not a continuation (the text does not parse): a lone `\`.
            self.pos = start + 1;
            return Tok::Atom(self.take(start));
        }
        self.pos += nl;
        Tok::Escline(comments)
    }

    /// A quoted (`hashes == 0`) or raw string, at its first `#` or `"`.
    fn string(&mut self, hashes: usize) -> &'a str {
        let start = self.pos;
        let q = start + hashes;
        let multiline = self.starts_with_at(q, b"\"\"\"") && newline_len(self.b, q + 3) > 0;
        let quotes = if multiline { 3 } else { 1 };
        let mut i = q + quotes;
        while let Some(c) = self.at(i) {
            if c == b'\\' && hashes == 0 {
                i += 1 + char_len(self.b, i + 1);
            } else if c == b'"'
                && (i..i + quotes).all(|j| self.at(j) == Some(b'"'))
                && (i + quotes..i + quotes + hashes).all(|j| self.at(j) == Some(b'#'))
            {
                i += quotes + hashes;
                break;
            } else {
                i += char_len(self.b, i);
            }
        }
        self.pos = i;
        self.take(start)
    }

    /// An identifier, number or keyword: up to whitespace or punctuation. Never empty.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let mut i = start;
        if self.at(i) == Some(b'#') {
            i += 1;
        }
        while let Some(c) = self.at(i) {
            let stop = matches!(
                c,
                b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b';' | b'=' | b'"' | b'#' | b'[' | b']'
            ) || space_len(self.b, i) > 0
                || newline_len(self.b, i) > 0;
            if stop {
                break;
            }
            i += char_len(self.b, i);
        }
        if i == start {
            i += char_len(self.b, i);
        }
        self.pos = i;
        self.take(start)
    }
}

// -------------------------------------------------------------------- layout

/// What a piece of a line is, for the spacing between pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Atom,
    LParen,
    RParen,
    Eq,
    Slashdash,
    Open,
    Close,
    BlockComment,
    LineComment,
    Backslash,
}

/// What was written last, for the blank-line rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing yet: no blank line at the start of the file.
    Nothing,
    /// A block's `{`: no blank line right after it.
    Open,
    Other,
}

/// The text between two pieces on one line.
fn sep(prev: Piece, next: Piece) -> &'static str {
    use Piece::*;
    match (prev, next) {
        (_, LineComment | BlockComment | Backslash) | (BlockComment, _) => " ",
        (LParen | RParen | Eq | Slashdash, _) | (_, RParen | Eq) => "",
        _ => " ",
    }
}

fn layout(text: &str) -> String {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let toks = tokenize(body);
    let mut p = Printer {
        out: String::with_capacity(text.len() + text.len() / 8),
        line: String::new(),
        indent: 0,
        prev: None,
        closed: false,
        depth: 0,
        in_node: false,
        slashdash: false,
        escline: Vec::new(),
        newlines: 0,
        last: Last::Nothing,
    };
    p.out.push_str(bom);
    let mut i = 0;
    while let Some(tok) = toks.get(i) {
        i += 1;
        match tok {
            Tok::Newline => p.newline(),
            Tok::Escline(comments) => p.escline(comments),
            Tok::LineComment(t) => p.line_comment(t),
            Tok::BlockComment(t) => p.block_comment(t, toks.get(i)),
            Tok::Semi => p.semicolon(),
            Tok::Open => match empty_block_end(&toks, i) {
                Some(end) => {
                    p.slashdash = false;
                    p.piece(Piece::Open, "{}");
                    i = end;
                }
                None => p.open(),
            },
            Tok::Close => p.close(),
            Tok::Slashdash => {
                p.piece(Piece::Slashdash, "/-");
                p.slashdash = true;
            }
            Tok::LParen => p.start(Piece::LParen, "("),
            Tok::Atom(t) => p.start(Piece::Atom, t),
            Tok::RParen => p.piece(Piece::RParen, ")"),
            Tok::Eq => p.piece(Piece::Eq, "="),
        }
    }
    p.drop_escline();
    p.flush();
    p.out
}

/// If the `{` just before `i` opens a block with nothing in it (whitespace only), the
/// index after its `}`.
fn empty_block_end(toks: &[Tok<'_>], mut i: usize) -> Option<usize> {
    loop {
        match toks.get(i)? {
            Tok::Newline => i += 1,
            Tok::Escline(comments) if comments.is_empty() => i += 1,
            Tok::Close => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Writes the output line by line.
struct Printer<'a> {
    out: String,
    /// The line being written, without its indentation.
    line: String,
    /// The indentation of `line`, in spaces.
    indent: usize,
    /// The last piece of `line`.
    prev: Option<Piece>,
    /// `line` is complete: only a trailing comment may still join it.
    closed: bool,
    /// Nesting level of children blocks.
    depth: usize,
    /// Inside a node: after its name (or annotation), before what ends it.
    in_node: bool,
    /// After `/-`, before what it comments out: newlines there end nothing.
    slashdash: bool,
    /// Line continuations inside a node (their comments), written once the node goes
    /// on: one line each.
    escline: Vec<Vec<Tok<'a>>>,
    /// Newlines since the last token, for blank lines.
    newlines: usize,
    last: Last,
}

impl<'a> Printer<'a> {
    /// Appends a piece to the current line, starting it if needed (blank line and
    /// indentation).
    fn push(&mut self, kind: Piece, text: &str) {
        match self.prev {
            None => {
                if !self.in_node
                    && kind != Piece::Close
                    && self.newlines >= 2
                    && self.last == Last::Other
                {
                    self.out.push('\n');
                }
                self.indent = (self.depth + usize::from(self.in_node)) * INDENT;
            }
            Some(prev) => self.line.push_str(sep(prev, kind)),
        }
        self.line.push_str(text);
        self.prev = Some(kind);
        self.newlines = 0;
        self.last = Last::Other;
    }

    /// Appends a piece, on a new line if the current one is complete.
    fn piece(&mut self, kind: Piece, text: &str) {
        self.flush_escline();
        if self.closed {
            self.flush();
        }
        self.push(kind, text);
    }

    /// A piece that may start a node.
    fn start(&mut self, kind: Piece, text: &str) {
        self.slashdash = false;
        self.piece(kind, text);
        self.in_node = true;
    }

    /// Whether a comment may join the complete current line (`{ // ...`, `; // ...`):
    /// not after a `//` comment, which would swallow it.
    fn can_attach(&self) -> bool {
        self.closed && self.prev != Some(Piece::LineComment)
    }

    /// Appends a comment to the complete current line.
    fn attach(&mut self, kind: Piece, text: &str) {
        self.line.push(' ');
        self.line.push_str(text);
        self.prev = Some(kind);
        self.newlines = 0;
    }

    fn flush(&mut self) {
        if self.prev.is_some() {
            self.out.extend(std::iter::repeat_n(' ', self.indent));
            self.out.push_str(&self.line);
            self.out.push('\n');
            self.line.clear();
        }
        self.prev = None;
        self.closed = false;
    }

    fn newline(&mut self) {
        if self.slashdash {
            return;
        }
        if self.in_node {
            self.drop_escline();
            self.in_node = false;
        }
        self.newlines += 1;
        self.flush();
    }

    fn line_comment(&mut self, text: &str) {
        if self.can_attach() {
            self.attach(Piece::LineComment, text);
        } else {
            self.piece(Piece::LineComment, text);
        }
        if !self.slashdash {
            self.in_node = false;
        }
        self.closed = true;
    }

    fn block_comment(&mut self, text: &str, next: Option<&Tok<'_>>) {
        let trailing = matches!(
            next,
            None | Some(Tok::Newline | Tok::LineComment(_) | Tok::Escline(_))
        );
        if trailing && self.can_attach() {
            self.attach(Piece::BlockComment, text);
        } else {
            self.piece(Piece::BlockComment, text);
        }
    }

    fn semicolon(&mut self) {
        self.drop_escline();
        if self.in_node {
            self.in_node = false;
            self.closed = true;
        }
    }

    fn open(&mut self) {
        self.slashdash = false;
        self.piece(Piece::Open, "{");
        self.depth += 1;
        self.in_node = false;
        self.closed = true;
        self.last = Last::Open;
    }

    fn close(&mut self) {
        self.drop_escline();
        self.in_node = false;
        self.slashdash = false;
        self.flush();
        self.depth = self.depth.saturating_sub(1);
        self.piece(Piece::Close, "}");
        // The parent node goes on: a comment, `/-{...}` or `;` may follow.
        self.in_node = true;
    }

    fn escline(&mut self, comments: &[Tok<'a>]) {
        if self.in_node && !self.slashdash {
            let ends_line = |g: &[Tok<'_>]| g.iter().any(|t| matches!(t, Tok::LineComment(_)));
            match self.escline.last_mut() {
                // Continuations in a row continue one line, unless one ends with a `//`
                // comment, which nothing may follow on its line: then the next one is a
                // line of its own, if it has comments (else it adds nothing).
                Some(last) if !ends_line(last) => last.extend(comments.iter().cloned()),
                Some(_) if comments.is_empty() => {}
                _ => self.escline.push(comments.to_vec()),
            }
            return;
        }
        // Between nodes, or between `/-` and its target, a continuation is a line
        // break (not a blank line).
        for c in comments {
            match c {
                Tok::LineComment(t) => self.line_comment(t),
                Tok::BlockComment(t) => self.block_comment(t, None),
                _ => {}
            }
        }
        if !self.slashdash {
            self.flush();
        }
    }

    /// Writes the pending continuations: the node goes on on the next line.
    fn flush_escline(&mut self) {
        for group in std::mem::take(&mut self.escline) {
            self.push(Piece::Backslash, "\\");
            for c in &group {
                match c {
                    Tok::LineComment(t) => self.push(Piece::LineComment, t),
                    Tok::BlockComment(t) => self.push(Piece::BlockComment, t),
                    _ => {}
                }
            }
            self.flush();
        }
    }

    /// Drops the pending continuations (the node ends), keeping their comments.
    fn drop_escline(&mut self) {
        for c in std::mem::take(&mut self.escline).into_iter().flatten() {
            match c {
                Tok::LineComment(t) => self.line_comment(t),
                Tok::BlockComment(t) => self.piece(Piece::BlockComment, t),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn atoms(text: &str) -> Vec<Tok<'_>> {
        tokenize(text)
    }

    #[test]
    fn tokens_keep_strings_and_comments_whole() {
        use Tok::*;
        assert_eq!(
            atoms("a \"x\\\"y\" #\"r\"q\"# ##\"z\"## #true 1.5e3 // c\n"),
            vec![
                Atom("a"),
                Atom("\"x\\\"y\""),
                Atom("#\"r\"q\"#"),
                Atom("##\"z\"##"),
                Atom("#true"),
                Atom("1.5e3"),
                LineComment("// c"),
                Newline
            ]
        );
        assert_eq!(
            atoms("/* a /* b */ c */x/-(t)k=v;{}"),
            vec![
                BlockComment("/* a /* b */ c */"),
                Atom("x"),
                Slashdash,
                LParen,
                Atom("t"),
                RParen,
                Atom("k"),
                Eq,
                Atom("v"),
                Semi,
                Open,
                Close
            ]
        );
        assert_eq!(
            atoms("s \"\"\"\n  a \"\" \\\"\"\"\n  \"\"\" #\"\"\"\n\"\"\"\n\"\"\"#"),
            vec![
                Atom("s"),
                Atom("\"\"\"\n  a \"\" \\\"\"\"\n  \"\"\""),
                Atom("#\"\"\"\n\"\"\"\n\"\"\"#"),
            ]
        );
        assert_eq!(
            atoms("a \\ /* c */ // d\r\nb \\\u{2028}c\u{85}"),
            vec![
                Atom("a"),
                Escline(vec![BlockComment("/* c */"), LineComment("// d")]),
                Atom("b"),
                Escline(vec![]),
                Atom("c"),
                Newline
            ]
        );
        // A whitespace escape makes a single-line string span lines.
        assert_eq!(atoms("\"a\\\n   b\""), vec![Atom("\"a\\\n   b\"")]);
    }

    #[test]
    fn lexer_never_panics_on_garbage() {
        for text in [
            "\\", "\"", "#", "#\"", "/*", "\"\"\"\n", "a\\b", "\u{feff}", "é\\é", "[]",
        ] {
            let _ = tokenize(text);
            let _ = layout(text);
        }
    }

    #[test]
    fn same_meaning_ignores_spans_only() {
        let doc = |t: &str| kdl::parse(t).0;
        assert!(same_meaning(
            &doc("a 1 k=#nan { b }"),
            &doc("a   1 k=#nan {\n  b\n}")
        ));
        assert!(!same_meaning(&doc("a 1"), &doc("a 2")));
        assert!(!same_meaning(&doc("a 1"), &doc("a k=1")));
        assert!(!same_meaning(&doc("a (t)1"), &doc("a 1")));
        assert!(!same_meaning(&doc("a"), &doc("a {}")));
        assert!(!same_meaning(&doc("a { b }"), &doc("a { c }")));
        assert!(!same_meaning(&doc("a; b"), &doc("a b")));
    }

    #[test]
    fn refuses_a_layout_that_changes_tokens() {
        assert!(same_tokens("a; b // c", "a\nb // c"));
        assert!(!same_tokens("a // c", "a"));
        assert!(!same_tokens("a \"b\"", "a b"));
    }

    #[test]
    fn comments_lists_every_comment() {
        assert_eq!(
            comments("// a\nn /* b */ 1 \\ // c\n 2 // d"),
            vec!["// a", "/* b */", "// c", "// d"]
        );
    }
}

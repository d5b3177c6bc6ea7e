//! A hand-written KDL v2 parser over the source bytes.
//!
//! Why not the `kdl` crate: it keeps every byte of formatting and runs at about 1 MB/s,
//! while berth evaluates megabytes of KDL on every run. This parser scans bytes, takes
//! ASCII fast paths, allocates one `String` per name or value and nothing per token.
//!
//! The grammar is KDL 2.0.0's. Where the `kdl` crate accepts more than the spec (a
//! bare `-inf`, U+007F, `0X10`, `#"""x"#`), the spec wins.
//!
//! Error handling: every failure records a [`ParseError`] and unwinds (`Err(Fail)`) to
//! the enclosing node list, which skips to the end of the broken node
//! ([`Parser::recover`]) and goes on, so one pass reports every broken node and keeps
//! every good one.

use super::ast::{Document, Entry, Node, ParseError, Span, Spanned, Value};

/// Children blocks nested deeper than this are refused: nesting is parsed by recursion,
/// and the limit keeps the stack bounded whatever the input.
pub(crate) const MAX_DEPTH: usize = 128;

pub(super) fn parse(text: &str) -> (Document, Vec<ParseError>) {
    if u32::try_from(text.len()).is_err() {
        let error = ParseError {
            span: Span::default(),
            message: format!("file is too large: {} bytes (at most 4 GiB)", text.len()),
            label: "file too large".into(),
            help: None,
        };
        return (Document::default(), vec![error]);
    }
    let mut p = Parser { src: text, bytes: text.as_bytes(), pos: 0, errors: Vec::new() };
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    let nodes = p.nodes(0);
    (Document { nodes }, p.errors)
}

/// The error has been recorded; the caller must resynchronise.
struct Fail;

type PResult<T> = Result<T, Fail>;

/// What kind of token a value was, for the checks and messages that depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Quoted,
    Number,
    Keyword,
}

/// Where a value is expected, for the "expected ..." messages.
#[derive(Clone, Copy)]
enum Want {
    NodeName,
    Entry,
    TypedValue,
    PropValue,
    TypeName,
}

impl Want {
    fn what(self) -> &'static str {
        match self {
            Want::NodeName => "a node name",
            Want::Entry => "an argument or property",
            Want::TypedValue => "a value after the type annotation",
            Want::PropValue => "a value after `=`",
            Want::TypeName => "a type name",
        }
    }
}

/// A token that is a value, before the context decides whether it may be one.
struct Tok {
    value: Value,
    span: Span,
    kind: Kind,
}

/// One line of a multi-line string, as ranges into a buffer (the source for raw
/// strings, the unescaped text for quoted ones).
struct Line {
    start: usize,
    end: usize,
    /// End of the leading run written literally: an escape such as `\s` is content,
    /// never indentation, so only this run may match the closing line's prefix.
    literal_end: usize,
    src_start: usize,
    src_end: usize,
}

/// ASCII bytes that may appear in a bare identifier.
const IDENT_ASCII: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = !matches!(
            b as u8,
            b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b';' | b'[' | b']' | b'"' | b'#' | b'='
        );
        b += 1;
    }
    t
};

const KEYWORD_HELP: &str = "the keywords are #true, #false, #null, #inf, #-inf and #nan";

fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\t' | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

/// A character as a message shows it: invisible ones by code point.
fn show_char(c: char) -> String {
    if c.is_control() || is_unicode_space(c) || c == '\u{feff}' || ('\u{2000}'..='\u{206f}').contains(&c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    errors: Vec<ParseError>,
}

impl<'a> Parser<'a> {
    // ---------------------------------------------------------------- primitives

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn starts_with_at(&self, i: usize, s: &[u8]) -> bool {
        self.bytes.get(i..).is_some_and(|rest| rest.starts_with(s))
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.starts_with_at(self.pos, s)
    }

    /// Positions handed here always sit on character boundaries; `get` keeps a bug in
    /// that from becoming a panic.
    fn slice(&self, start: usize, end: usize) -> &'a str {
        debug_assert!(self.src.is_char_boundary(start) && self.src.is_char_boundary(end));
        self.src.get(start..end).unwrap_or("")
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.src.get(i..).and_then(|s| s.chars().next())
    }

    fn char_len_at(&self, i: usize) -> usize {
        self.char_at(i).map_or(1, char::len_utf8)
    }

    /// Length of the newline at `i` (CRLF counts as one), or 0.
    fn newline_len(&self, i: usize) -> usize {
        match self.bytes.get(i..) {
            Some([b'\r', b'\n', ..]) => 2,
            Some([b'\r' | b'\n' | 0x0b | 0x0c, ..]) => 1,
            Some([0xc2, 0x85, ..]) => 2,
            Some([0xe2, 0x80, 0xa8 | 0xa9, ..]) => 3,
            _ => 0,
        }
    }

    /// Length of the unicode space at `i`, or 0.
    fn space_len(&self, i: usize) -> usize {
        match self.bytes.get(i..) {
            Some([b' ' | b'\t', ..]) => 1,
            Some([0xc2, 0xa0, ..]) => 2,
            Some([0xe1, 0x9a, 0x80, ..] | [0xe3, 0x80, 0x80, ..]) => 3,
            Some([0xe2, 0x80, 0x80..=0x8a | 0xaf, ..] | [0xe2, 0x81, 0x9f, ..]) => 3,
            _ => 0,
        }
    }

    /// Length of the code point at `i` if KDL forbids it literally, or 0.
    fn disallowed_len(&self, i: usize) -> usize {
        match self.bytes.get(i..) {
            Some([0x00..=0x08 | 0x0e..=0x1f | 0x7f, ..]) => 1,
            Some([0xe2, 0x80, 0x8e | 0x8f | 0xaa..=0xae, ..]) => 3,
            Some([0xe2, 0x81, 0xa6..=0xa9, ..] | [0xef, 0xbb, 0xbf, ..]) => 3,
            _ => 0,
        }
    }

    // ------------------------------------------------------------------- errors

    fn error(&mut self, start: usize, end: usize, message: String, label: &str, help: Option<String>) {
        self.errors.push(ParseError {
            span: Span::new(start, end),
            message,
            label: label.into(),
            help,
        });
    }

    fn report_disallowed(&mut self, i: usize, len: usize) {
        let c = self.char_at(i).unwrap_or('\0');
        let (message, help) = if c == '\u{feff}' {
            (
                "byte order mark (U+FEFF) after the start of the file".to_string(),
                "a BOM is only allowed as the very first character".to_string(),
            )
        } else {
            (
                format!("disallowed character {} in KDL text", show_char(c)),
                format!(
                    "control, direction-control and BOM characters may not appear literally; in a quoted string write `\\u{{{:x}}}`",
                    c as u32
                ),
            )
        };
        self.error(i, i + len, message, "disallowed character", Some(help));
    }

    /// End of the malformed token that starts at `i`: up to the next character that
    /// could end a value, so that the error span covers what the user wrote.
    fn bad_token_end(&self, mut i: usize) -> usize {
        while let Some(&b) = self.bytes.get(i) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b';' | b'{' | b'}' | b'=' | b')')
                || self.space_len(i) > 0
                || self.newline_len(i) > 0
            {
                break;
            }
            i += utf8_len(b);
        }
        i.min(self.bytes.len())
    }

    // --------------------------------------------------------------- whitespace

    /// `ws*`: unicode spaces and `/* */` comments. Returns whether anything was skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment(),
                Some(0x80..) => match self.space_len(self.pos) {
                    0 => break,
                    n => self.pos += n,
                },
                _ => break,
            }
        }
        self.pos > start
    }

    /// `node-space*`: whitespace and line continuations. Returns whether anything was
    /// skipped.
    fn skip_node_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            self.skip_ws();
            if !(self.peek() == Some(b'\\') && self.escline()) {
                break;
            }
        }
        self.pos > start
    }

    /// `line-space*`: node space, newlines and `//` comments.
    fn skip_line_space(&mut self) {
        loop {
            self.skip_node_space();
            let nl = self.newline_len(self.pos);
            if nl > 0 {
                self.pos += nl;
            } else if self.starts_with(b"//") {
                self.line_comment();
            } else {
                break;
            }
        }
    }

    /// `escline := '\' ws* (single-line-comment | newline | eof)`, at a `\`. Leaves the
    /// position alone and returns false when the `\` does not start one.
    fn escline(&mut self) -> bool {
        let save = self.pos;
        self.pos += 1;
        self.skip_ws();
        let nl = self.newline_len(self.pos);
        if nl > 0 {
            self.pos += nl;
        } else if self.starts_with(b"//") {
            self.line_comment();
        } else if self.pos < self.bytes.len() {
            self.pos = save;
            return false;
        }
        true
    }

    /// At `//`: skips the comment and the newline ending it.
    fn line_comment(&mut self) {
        self.pos += 2;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef => {
                    let nl = self.newline_len(self.pos);
                    if nl > 0 {
                        self.pos += nl;
                        return;
                    }
                    match self.disallowed_len(self.pos) {
                        0 => self.pos += 1,
                        d => {
                            self.report_disallowed(self.pos, d);
                            self.pos += d;
                        }
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// At `/*`: skips a block comment, nested ones included.
    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'*' if self.peek_at(1) == Some(b'/') => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                b'/' if self.peek_at(1) == Some(b'*') => {
                    self.pos += 2;
                    depth += 1;
                }
                0x00..=0x08 | 0x0e..=0x1f | 0x7f | 0xe2 | 0xef => match self.disallowed_len(self.pos) {
                    0 => self.pos += 1,
                    d => {
                        self.report_disallowed(self.pos, d);
                        self.pos += d;
                    }
                },
                _ => self.pos += 1,
            }
        }
        self.error(
            start,
            start + 2,
            "unterminated block comment".into(),
            "comment starts here",
            Some("close it with `*/`; block comments nest, so every `/*` needs its own `*/`".into()),
        );
    }

    // ------------------------------------------------------------------- nodes

    /// `nodes`: a document (depth 0) or the inside of a children block, up to EOF or
    /// the block's `}` (left for the caller).
    fn nodes(&mut self, depth: usize) -> Vec<Node> {
        let in_block = depth > 0;
        let mut nodes = Vec::new();
        loop {
            self.skip_line_space();
            let Some(b) = self.peek() else { break };
            match b {
                b'}' if in_block => break,
                b'}' => {
                    self.error(
                        self.pos,
                        self.pos + 1,
                        "unexpected `}`".into(),
                        "no `{` to close",
                        None,
                    );
                    self.pos += 1;
                    continue;
                }
                b';' => {
                    self.error(
                        self.pos,
                        self.pos + 1,
                        "unexpected `;` with no node before it".into(),
                        "empty node",
                        None,
                    );
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let slashdash = self.starts_with(b"/-");
            if slashdash {
                let start = self.pos;
                self.pos += 2;
                self.skip_line_space();
                if matches!(self.peek(), None | Some(b'}' | b';')) {
                    self.error(
                        start,
                        start + 2,
                        "`/-` must be followed by a node".into(),
                        "comments out nothing",
                        None,
                    );
                    continue;
                }
            }
            match self.node(depth) {
                Ok(node) if !slashdash => nodes.push(node),
                Ok(_) => {}
                Err(Fail) => self.recover(in_block),
            }
        }
        nodes
    }

    /// One node and its terminator (`;`, newline, `//` comment, EOF, or the `}` of the
    /// enclosing block, which is left in place).
    fn node(&mut self, depth: usize) -> PResult<Node> {
        let start = self.pos;
        let ty = if self.peek() == Some(b'(') {
            let ty = self.type_annotation()?;
            self.skip_node_space();
            Some(ty)
        } else {
            None
        };
        let name = self.string_token(Want::NodeName)?;
        let mut end = name.span.end as usize;
        let mut entries = Vec::new();
        let mut children = None;
        // Once any children block (even a slashdashed one) is seen, only more
        // slashdashed blocks may follow: entries must come first.
        let mut block_seen = false;
        let mut space_before = false;
        loop {
            let spaced = self.skip_node_space() || space_before;
            space_before = false;
            let Some(b) = self.peek() else { break };
            match b {
                b';' => {
                    self.pos += 1;
                    break;
                }
                b'}' if depth > 0 => break,
                b'}' => {
                    self.error(self.pos, self.pos + 1, "unexpected `}`".into(), "no `{` to close", None);
                    self.pos += 1;
                    return Err(Fail);
                }
                b'{' => {
                    if children.is_some() {
                        self.error(
                            self.pos,
                            self.pos + 1,
                            "a node can have only one children block".into(),
                            "second children block",
                            Some("merge the blocks, or comment this one out with `/-`".into()),
                        );
                        return Err(Fail);
                    }
                    children = Some(self.children(depth + 1)?);
                    end = self.pos;
                    block_seen = true;
                }
                b'/' if self.peek_at(1) == Some(b'-') => {
                    let sd = self.pos;
                    self.pos += 2;
                    self.skip_line_space();
                    match self.peek() {
                        Some(b'{') => {
                            self.children(depth + 1)?;
                            block_seen = true;
                        }
                        None | Some(b';' | b'}') => {
                            self.error(
                                sd,
                                sd + 2,
                                "`/-` must be followed by an entry or a children block".into(),
                                "comments out nothing",
                                None,
                            );
                            return Err(Fail);
                        }
                        _ => {
                            if block_seen {
                                self.entry_after_block(sd);
                                return Err(Fail);
                            }
                            if !spaced {
                                self.missing_space(sd);
                                return Err(Fail);
                            }
                            let (_, space) = self.entry()?;
                            space_before = space;
                        }
                    }
                }
                b'/' if self.peek_at(1) == Some(b'/') => {
                    self.line_comment();
                    break;
                }
                _ => {
                    let nl = self.newline_len(self.pos);
                    if nl > 0 {
                        self.pos += nl;
                        break;
                    }
                    if block_seen {
                        self.entry_after_block(self.pos);
                        return Err(Fail);
                    }
                    if !spaced && starts_value(b) {
                        self.missing_space(self.pos);
                        return Err(Fail);
                    }
                    let (entry, space) = self.entry()?;
                    end = entry.span.end as usize;
                    entries.push(entry);
                    space_before = space;
                }
            }
        }
        Ok(Node {
            ty,
            name: Spanned { value: name.value, span: name.span },
            entries,
            children,
            span: Span::new(start, end),
        })
    }

    fn entry_after_block(&mut self, at: usize) {
        let end = self.bad_token_end(at).max(at + 1);
        self.error(
            at,
            end,
            "arguments and properties must come before the children block".into(),
            "after the children block",
            Some("move it before the `{`, or end the node with a newline or `;` first".into()),
        );
        self.pos = end;
    }

    fn missing_space(&mut self, at: usize) {
        self.error(
            at,
            at + self.char_len_at(at),
            "missing whitespace before this entry".into(),
            "add a space before this",
            None,
        );
    }

    /// At `{`: a children block, `}` included.
    fn children(&mut self, depth: usize) -> PResult<Vec<Node>> {
        let open = self.pos;
        if depth > MAX_DEPTH {
            self.error(
                open,
                open + 1,
                format!("children blocks are nested too deeply (more than {MAX_DEPTH} levels)"),
                "too deep",
                None,
            );
            // The `{` is left in place: recovery skips the whole block without recursing.
            return Err(Fail);
        }
        self.pos += 1;
        let nodes = self.nodes(depth);
        if self.peek() == Some(b'}') {
            self.pos += 1;
            Ok(nodes)
        } else {
            self.error(
                open,
                open + 1,
                "unclosed children block".into(),
                "this `{` is never closed",
                Some("add a matching `}`".into()),
            );
            Err(Fail)
        }
    }

    /// An argument or a property. Also returns whether whitespace after it was already
    /// consumed (looking for a `=`), since the next entry needs some before it.
    fn entry(&mut self) -> PResult<(Entry, bool)> {
        let start = self.pos;
        if self.peek() == Some(b'(') {
            let ty = self.type_annotation()?;
            self.skip_node_space();
            let tok = self.value(Want::TypedValue)?;
            let spaced = self.skip_node_space();
            if self.peek() == Some(b'=') {
                self.error(
                    start,
                    self.pos + 1,
                    "a property key cannot have a type annotation".into(),
                    "annotated key",
                    Some("annotate the value instead: `key=(type)value`".into()),
                );
                return Err(Fail);
            }
            let entry = Entry {
                name: None,
                ty: Some(ty),
                value: tok.value,
                value_span: tok.span,
                span: Span::new(start, tok.span.end as usize),
            };
            return Ok((entry, spaced));
        }
        let tok = self.value(Want::Entry)?;
        let spaced = self.skip_node_space();
        if self.peek() != Some(b'=') {
            let entry = Entry { name: None, ty: None, value: tok.value, value_span: tok.span, span: tok.span };
            return Ok((entry, spaced));
        }
        let eq = self.pos;
        let Value::String(key) = tok.value else {
            let text = self.slice(start, tok.span.end as usize);
            self.error(
                start,
                tok.span.end as usize,
                format!("property keys must be strings, not `{text}`"),
                "not a string",
                Some(format!("quote the key: \"{text}\"=...")),
            );
            return Err(Fail);
        };
        self.pos += 1;
        self.skip_node_space();
        let ty = if self.peek() == Some(b'(') {
            let ty = self.type_annotation()?;
            self.skip_node_space();
            Some(ty)
        } else {
            None
        };
        if self.at_line_end() {
            self.error(eq, eq + 1, "expected a value after `=`".into(), "property has no value", None);
            return Err(Fail);
        }
        let value = self.value(if ty.is_some() { Want::TypedValue } else { Want::PropValue })?;
        let spaced = self.skip_node_space();
        let entry = Entry {
            name: Some(Spanned { value: key, span: tok.span }),
            ty,
            value: value.value,
            value_span: value.span,
            span: Span::new(start, value.span.end as usize),
        };
        Ok((entry, spaced))
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some(b';' | b'}' | b'{')) || self.newline_len(self.pos) > 0
    }

    /// At `(`: `'(' node-space* string node-space* ')'`. The span is the type name's.
    fn type_annotation(&mut self) -> PResult<Spanned<String>> {
        let open = self.pos;
        self.pos += 1;
        self.skip_node_space();
        if self.peek() == Some(b')') {
            self.error(
                open,
                self.pos + 1,
                "empty type annotation".into(),
                "no type name",
                Some("write a type name between the parentheses, e.g. `(u8)`, or remove them".into()),
            );
            self.pos += 1;
            return Err(Fail);
        }
        let name = self.string_token(Want::TypeName)?;
        self.skip_node_space();
        if self.peek() != Some(b')') {
            let at = self.pos;
            self.error(
                open,
                at,
                "unclosed type annotation".into(),
                "expected `)` after the type name",
                None,
            );
            return Err(Fail);
        }
        self.pos += 1;
        Ok(Spanned { value: name.value, span: name.span })
    }

    /// A value that must be a string: a node name, type name.
    fn string_token(&mut self, want: Want) -> PResult<Spanned<String>> {
        let tok = self.value(want)?;
        match tok.value {
            Value::String(value) => Ok(Spanned { value, span: tok.span }),
            _ => {
                let (start, end) = (tok.span.start as usize, tok.span.end as usize);
                let text = self.slice(start, end);
                let what = if tok.kind == Kind::Keyword { "a keyword" } else { "a number" };
                self.error(
                    start,
                    end,
                    format!("{} must be a string, but `{text}` is {what}", capitalized(want.what())),
                    "not a string",
                    Some(format!("quote it: \"{text}\"")),
                );
                Err(Fail)
            }
        }
    }

    // ------------------------------------------------------------------ values

    /// `string | number | keyword`, followed by something that may end a value.
    fn value(&mut self, want: Want) -> PResult<Tok> {
        let start = self.pos;
        let Some(b) = self.peek() else {
            let n = self.bytes.len();
            self.error(n, n, format!("expected {}, found the end of the file", want.what()), "file ends here", None);
            return Err(Fail);
        };
        let (value, kind) = match b {
            b'"' => (Value::String(self.quoted_string()?), Kind::Quoted),
            b'#' if matches!(self.peek_at(1), Some(b'#' | b'"')) => {
                (Value::String(self.raw_string()?), Kind::Quoted)
            }
            b'#' => (self.keyword()?, Kind::Keyword),
            b'0'..=b'9' => (self.number()?, Kind::Number),
            b'+' | b'-' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                (self.number()?, Kind::Number)
            }
            _ => (self.identifier(want)?, Kind::Ident),
        };
        self.value_end(start, kind)?;
        Ok(Tok { value, span: Span::new(start, self.pos), kind })
    }

    /// A value must be followed by whitespace, a node terminator or punctuation that
    /// can follow it (`=`, `)`, braces): `1abc` is not a number followed by `abc`.
    fn value_end(&mut self, start: usize, kind: Kind) -> PResult<()> {
        let at = self.pos;
        let ends = match self.peek() {
            None => true,
            Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b';' | b'=' | b')' | b'{' | b'}' | b'\\') => {
                true
            }
            Some(b'/') => matches!(self.peek_at(1), Some(b'/' | b'*')),
            Some(0x80..) => self.space_len(at) > 0 || self.newline_len(at) > 0,
            _ => false,
        };
        if ends {
            return Ok(());
        }
        let d = self.disallowed_len(at);
        if d > 0 {
            self.report_disallowed(at, d);
            self.pos = self.bad_token_end(at + d);
            return Err(Fail);
        }
        let end = self.bad_token_end(at).max(at + 1);
        let text = self.slice(start, end);
        let c = self.char_at(at).unwrap_or('?');
        let quotable = !text.contains(['"', '\\']);
        match kind {
            Kind::Number => {
                let help = if quotable {
                    format!("a bare string can't start with a digit; to make it a string, quote it: \"{text}\"")
                } else {
                    "numbers are written like `12`, `-3.5`, `1e10`, `0xff`, `0o17`, `0b101`".into()
                };
                self.error(start, end, format!("invalid number `{text}`"), "not a number", Some(help));
            }
            Kind::Ident if c == '(' => self.error(
                at,
                at + 1,
                format!("`(` is not allowed in a bare string (in `{text}`)"),
                "not allowed here",
                Some("a type annotation goes before the value: `(type)value`".into()),
            ),
            Kind::Ident if c == '"' => self.error(
                at,
                at + 1,
                "missing whitespace between a bare string and a quoted string".into(),
                "add a space before this",
                None,
            ),
            Kind::Ident => {
                let help = quotable.then(|| format!("quote the string: \"{text}\""));
                self.error(
                    at,
                    at + c.len_utf8(),
                    format!("{} is not allowed in a bare string (in `{text}`)", show_char(c)),
                    "not allowed here",
                    help,
                );
            }
            Kind::Quoted | Kind::Keyword => {
                self.error(at, at + c.len_utf8(), "missing whitespace after a value".into(), "add a space before this", None)
            }
        }
        self.pos = end;
        Err(Fail)
    }

    /// A bare identifier string, or the error for whatever stands where a value should.
    fn identifier(&mut self, want: Want) -> PResult<Value> {
        let start = self.pos;
        let end = self.ident_end(start);
        if end == start {
            return Err(self.not_a_value(want));
        }
        let text = self.slice(start, end);
        // `.5` and `-.5` are neither identifiers (a dot-ident can't continue with a digit)
        // nor numbers (a digit must come before the dot).
        let after_dot = match text.as_bytes() {
            [b'.', rest @ ..] | [b'+' | b'-', b'.', rest @ ..] => rest.first().copied(),
            _ => None,
        };
        if after_dot.is_some_and(|b| b.is_ascii_digit()) {
            let fixed = text.replacen('.', "0.", 1);
            self.error(
                start,
                end,
                format!("invalid number `{text}`"),
                "not a number",
                Some(format!("write a digit before the decimal point: `{fixed}`")),
            );
            self.pos = end;
            return Err(Fail);
        }
        if matches!(text, "true" | "false" | "null" | "inf" | "-inf" | "nan") {
            self.error(
                start,
                end,
                format!("`{text}` is a keyword in KDL v2: write `#{text}`"),
                "bare keyword",
                Some(format!("for the string, quote it: \"{text}\"")),
            );
            self.pos = end;
            return Err(Fail);
        }
        self.pos = end;
        Ok(Value::String(text.to_owned()))
    }

    /// The error for a character that cannot start a value.
    fn not_a_value(&mut self, want: Want) -> Fail {
        let at = self.pos;
        let d = self.disallowed_len(at);
        if d > 0 {
            self.report_disallowed(at, d);
            return Fail;
        }
        let c = self.char_at(at).unwrap_or('?');
        let len = c.len_utf8();
        let (message, help) = match (c, want) {
            ('{', Want::NodeName) => (
                "found a children block where a node name was expected".to_string(),
                Some("did you forget the node name, or end the node before its children block?".to_string()),
            ),
            ('/', _) if self.peek_at(1) == Some(b'-') => (
                format!("`/-` is not allowed here; expected {}", want.what()),
                Some("`/-` comments out a whole node, entry or children block".into()),
            ),
            ('\\', _) => (
                "unexpected `\\`".to_string(),
                Some("a line continuation `\\` must be followed by a newline or a `//` comment".into()),
            ),
            ('=', Want::Entry) => ("property without a key".to_string(), Some("write `key=value`".into())),
            _ if self.newline_len(at) > 0 => (format!("expected {}, found the end of the line", want.what()), None),
            (';', _) => (format!("expected {}, found `;`", want.what()), None),
            _ => (format!("unexpected {}, expected {}", show_char(c), want.what()), None),
        };
        self.error(at, at + len, message, "unexpected here", help);
        Fail
    }

    /// End of the run of identifier characters from `i`.
    fn ident_end(&self, mut i: usize) -> usize {
        while let Some(&b) = self.bytes.get(i) {
            if b < 0x80 {
                if !IDENT_ASCII[b as usize] {
                    break;
                }
                i += 1;
            } else {
                if self.space_len(i) > 0 || self.newline_len(i) > 0 || self.disallowed_len(i) > 0 {
                    break;
                }
                i += utf8_len(b);
            }
        }
        i.min(self.bytes.len())
    }

    /// At `#` not followed by `#` or `"`: `#true`, `#false`, `#null`, `#inf`, `#-inf`, `#nan`.
    fn keyword(&mut self) -> PResult<Value> {
        let start = self.pos;
        let end = self.ident_end(start + 1);
        let value = match self.slice(start + 1, end) {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            "inf" => Value::Float(f64::INFINITY),
            "-inf" => Value::Float(f64::NEG_INFINITY),
            "nan" => Value::Float(f64::NAN),
            word => {
                let lower = word.to_ascii_lowercase();
                let help = if matches!(lower.as_str(), "true" | "false" | "null" | "inf" | "-inf" | "nan") {
                    format!("keywords are case-sensitive: write `#{lower}`")
                } else {
                    KEYWORD_HELP.to_string()
                };
                let end = end.max(start + 1);
                self.error(start, end, format!("unknown keyword `#{word}`"), "not a keyword", Some(help));
                self.pos = end;
                return Err(Fail);
            }
        };
        self.pos = end;
        Ok(value)
    }

    /// A number; the position is at a digit or at a sign followed by a digit.
    fn number(&mut self) -> PResult<Value> {
        let start = self.pos;
        let mut i = start;
        let negative = match self.peek() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let radix = match self.bytes.get(i..) {
            Some([b'0', b'x', ..]) => 16,
            Some([b'0', b'o', ..]) => 8,
            Some([b'0', b'b', ..]) => 2,
            _ => 10,
        };
        if radix != 10 {
            return self.radix_integer(start, i + 2, radix, negative);
        }
        let int_start = i;
        i = self.digits_end(i);
        let mut is_float = false;
        if self.bytes.get(i) == Some(&b'.') {
            if !self.bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                let end = self.bad_token_end(i);
                self.error(
                    start,
                    end,
                    format!("invalid number `{}`: expected a digit after the decimal point", self.slice(start, end)),
                    "not a number",
                    Some("write at least one digit after the `.`, e.g. `1.0`".into()),
                );
                self.pos = end;
                return Err(Fail);
            }
            i = self.digits_end(i + 1);
            is_float = true;
        }
        if matches!(self.bytes.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !self.bytes.get(j).is_some_and(u8::is_ascii_digit) {
                let end = self.bad_token_end(i);
                self.error(
                    start,
                    end,
                    format!("invalid number `{}`: the exponent has no digits", self.slice(start, end)),
                    "not a number",
                    Some("an exponent looks like `1.5e10` or `2E-3`".into()),
                );
                self.pos = end;
                return Err(Fail);
            }
            i = self.digits_end(j);
            is_float = true;
        }
        self.pos = i;
        let text = self.slice(start, i);
        if is_float {
            let parsed = if text.contains('_') { text.replace('_', "").parse() } else { text.parse() };
            return match parsed {
                Ok(f) => Ok(Value::Float(f)),
                Err(_) => {
                    self.error(start, i, format!("invalid number `{text}`"), "not a number", None);
                    Err(Fail)
                }
            };
        }
        let digits = self.bytes.get(int_start..i).unwrap_or_default();
        self.accumulate(start, i, digits, 10, negative)
    }

    /// End of `digit (digit | '_')*` from `i` (which may also be a non-digit: then `i`).
    fn digits_end(&self, mut i: usize) -> usize {
        if !self.bytes.get(i).is_some_and(u8::is_ascii_digit) {
            return i;
        }
        while self.bytes.get(i).is_some_and(|b| b.is_ascii_digit() || *b == b'_') {
            i += 1;
        }
        i
    }

    /// `0x`, `0o` or `0b` and its digits; `i` is just after the prefix.
    fn radix_integer(&mut self, start: usize, mut i: usize, radix: u32, negative: bool) -> PResult<Value> {
        let is_digit = |b: u8| (b as char).to_digit(radix).is_some();
        if !self.bytes.get(i).is_some_and(|&b| is_digit(b)) {
            let name = match radix {
                16 => "hexadecimal",
                8 => "octal",
                _ => "binary",
            };
            let end = self.bad_token_end(start);
            self.error(
                start,
                end,
                format!("invalid number `{}`: expected a {name} digit after the prefix", self.slice(start, end)),
                "not a number",
                Some("`_` separators may only come after the first digit".into()),
            );
            self.pos = end;
            return Err(Fail);
        }
        let digits_start = i;
        while self.bytes.get(i).is_some_and(|&b| is_digit(b) || b == b'_') {
            i += 1;
        }
        self.pos = i;
        let digits = self.bytes.get(digits_start..i).unwrap_or_default();
        self.accumulate(start, i, digits, radix, negative)
    }

    /// The integer value of `digits` (`_` ignored). Negative numbers accumulate
    /// downwards so that `i128::MIN` itself fits.
    fn accumulate(&mut self, start: usize, end: usize, digits: &[u8], radix: u32, negative: bool) -> PResult<Value> {
        let mut acc: i128 = 0;
        for &b in digits {
            let Some(d) = (b as char).to_digit(radix) else { continue };
            let next = acc.checked_mul(i128::from(radix)).and_then(|a| {
                if negative { a.checked_sub(i128::from(d)) } else { a.checked_add(i128::from(d)) }
            });
            match next {
                Some(n) => acc = n,
                None => {
                    self.error(
                        start,
                        end,
                        format!("integer `{}` is out of range", self.slice(start, end)),
                        "too large",
                        Some("integers must fit in 128 bits (about ±1.7e38); write a float like `1e40` if precision does not matter".into()),
                    );
                    return Err(Fail);
                }
            }
        }
        Ok(Value::Integer(acc))
    }

    // ----------------------------------------------------------------- strings

    /// At `"`: a single-line or multi-line quoted string, unescaped.
    fn quoted_string(&mut self) -> PResult<String> {
        let start = self.pos;
        if self.starts_with(b"\"\"\"") {
            let nl = self.newline_len(start + 3);
            if nl == 0 {
                return Err(self.multiline_needs_newline(start, b"\"\"\""));
            }
            return self.multiline_string(start, start + 3 + nl);
        }
        self.pos += 1;
        let mut out = String::new();
        let mut seg = self.pos;
        let mut failed = false;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                self.error(
                    start,
                    start + 1,
                    "unterminated string".into(),
                    "string starts here",
                    Some("add the closing `\"`".into()),
                );
                return Err(Fail);
            };
            match b {
                b'"' => {
                    out.push_str(self.slice(seg, self.pos));
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    out.push_str(self.slice(seg, self.pos));
                    failed |= !self.escape(&mut out);
                    seg = self.pos;
                }
                0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef => {
                    if self.newline_len(self.pos) > 0 {
                        self.error(
                            start,
                            self.pos,
                            "unterminated string: a single-line string can't contain a newline".into(),
                            "string starts here",
                            Some("close it before the line ends, write `\\n` for a newline, or use a multi-line string: `\"\"\"` followed by a newline".into()),
                        );
                        return Err(Fail);
                    }
                    match self.disallowed_len(self.pos) {
                        0 => self.pos += 1,
                        d => {
                            self.report_disallowed(self.pos, d);
                            self.pos += d;
                            failed = true;
                        }
                    }
                }
                _ => self.pos += 1,
            }
        }
        if failed { Err(Fail) } else { Ok(out) }
    }

    /// The error for `"""` (or `#"""`) not followed by a newline. Skips to the closing
    /// delimiter on the same line so that recovery doesn't take it for an opening one.
    fn multiline_needs_newline(&mut self, start: usize, close: &[u8]) -> Fail {
        self.error(
            start,
            start + close.len(),
            "a multi-line string must start with a newline right after the opening `\"\"\"`".into(),
            "multi-line string opens here",
            Some("put the text on the following lines and the closing `\"\"\"` on its own line; for a string of just quotes, write `\"\\\"\"`".into()),
        );
        let mut i = start + close.len();
        while i < self.bytes.len() && self.newline_len(i) == 0 {
            if self.starts_with_at(i, close) {
                i += close.len();
                break;
            }
            i += 1;
        }
        self.pos = i.min(self.bytes.len());
        while !self.src.is_char_boundary(self.pos) {
            self.pos += 1;
        }
        Fail
    }

    /// At `\` in a quoted string: appends what the escape stands for (nothing for a
    /// whitespace escape). Returns false after reporting an invalid escape.
    fn escape(&mut self, out: &mut String) -> bool {
        let start = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            // The string's own loop reports the missing closing quote.
            None => return true,
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'\\') => '\\',
            Some(b'"') => '"',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b's') => ' ',
            Some(b'u') => return self.unicode_escape(start, out),
            Some(_) => {
                let mut skipped = false;
                loop {
                    let n = self.space_len(self.pos).max(self.newline_len(self.pos));
                    if n == 0 {
                        break;
                    }
                    self.pos += n;
                    skipped = true;
                }
                if skipped {
                    return true;
                }
                let c = self.char_at(self.pos).unwrap_or('?');
                self.pos += c.len_utf8();
                let help = if c == '/' {
                    "KDL v2 has no `\\/` escape: write `/` as it is".to_string()
                } else {
                    "the escapes are \\n \\r \\t \\\\ \\\" \\b \\f \\s \\u{XXXX}, and `\\` before whitespace, which removes it".to_string()
                };
                self.error(start, self.pos, format!("invalid escape `\\{c}`"), "unknown escape", Some(help));
                return false;
            }
        };
        self.pos += 1;
        out.push(c);
        true
    }

    /// At the `u` of `\u{XXXX}`.
    fn unicode_escape(&mut self, start: usize, out: &mut String) -> bool {
        self.pos += 1;
        let bad = |p: &mut Self, end: usize, why: &str| {
            p.pos = end;
            p.error(
                start,
                end,
                format!("invalid unicode escape: {why}"),
                "invalid escape",
                Some("write 1 to 6 hex digits of a Unicode scalar value in braces, e.g. `\\u{1F600}`".into()),
            );
            false
        };
        if self.peek() != Some(b'{') {
            return bad(self, self.pos, "expected `{` after `\\u`");
        }
        let digits_start = self.pos + 1;
        let mut i = digits_start;
        while self.bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        let n = i - digits_start;
        if self.bytes.get(i) != Some(&b'}') {
            return bad(self, i, "expected hex digits and `}`");
        }
        if n == 0 || n > 6 {
            return bad(self, i + 1, "expected 1 to 6 hex digits");
        }
        let hex = self.slice(digits_start, i);
        match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
            Some(c) => {
                out.push(c);
                self.pos = i + 1;
                true
            }
            None => bad(self, i + 1, "not a Unicode scalar value (surrogates and values above 10FFFF are not)"),
        }
    }

    /// A multi-line quoted string whose body starts at `body_start` (after the newline).
    ///
    /// Whitespace escapes are resolved first, then the closing line's whitespace is
    /// removed from every line, then the other escapes apply: so an escape never counts
    /// as indentation, and a whitespace escape may join lines but not hide the closing
    /// line's indentation.
    fn multiline_string(&mut self, start: usize, body_start: usize) -> PResult<String> {
        self.pos = body_start;
        let mut buf = String::new();
        let mut lines = Vec::new();
        let mut line = Line { start: 0, end: 0, literal_end: usize::MAX, src_start: body_start, src_end: 0 };
        let mut seg = body_start;
        let mut failed = false;
        let close = loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                self.error(
                    start,
                    start + 3,
                    "unterminated multi-line string".into(),
                    "string starts here",
                    Some("close it with `\"\"\"` on its own line".into()),
                );
                return Err(Fail);
            };
            match b {
                b'"' if self.starts_with(b"\"\"\"") => {
                    buf.push_str(self.slice(seg, self.pos));
                    break self.pos;
                }
                b'\\' => {
                    buf.push_str(self.slice(seg, self.pos));
                    let before = buf.len();
                    failed |= !self.escape(&mut buf);
                    if buf.len() > before {
                        line.literal_end = line.literal_end.min(before);
                    }
                    seg = self.pos;
                }
                0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef => {
                    let nl = self.newline_len(self.pos);
                    if nl > 0 {
                        buf.push_str(self.slice(seg, self.pos));
                        line.end = buf.len();
                        line.src_end = self.pos;
                        self.pos += nl;
                        let next = Line { start: buf.len(), end: 0, literal_end: usize::MAX, src_start: self.pos, src_end: 0 };
                        lines.push(std::mem::replace(&mut line, next));
                        seg = self.pos;
                        continue;
                    }
                    match self.disallowed_len(self.pos) {
                        0 => self.pos += 1,
                        d => {
                            self.report_disallowed(self.pos, d);
                            self.pos += d;
                            failed = true;
                        }
                    }
                }
                _ => self.pos += 1,
            }
        };
        line.end = buf.len();
        line.src_end = close;
        lines.push(line);
        self.pos = close + 3;
        if failed {
            return Err(Fail);
        }
        for line in &mut lines {
            line.literal_end = line.literal_end.min(line.end);
        }
        self.dedent(&buf, &lines, close, 3)
    }

    /// At `#`: a raw string, single-line or multi-line.
    fn raw_string(&mut self) -> PResult<String> {
        let start = self.pos;
        let mut q = start;
        while self.bytes.get(q) == Some(&b'#') {
            q += 1;
        }
        let hashes = q - start;
        if self.bytes.get(q) != Some(&b'"') {
            let end = self.bad_token_end(start);
            self.error(
                start,
                end,
                format!("`{}` starts neither a raw string nor a keyword", self.slice(start, end)),
                "invalid",
                Some(format!("a raw string looks like `#\"text\"#`; {KEYWORD_HELP}")),
            );
            self.pos = end;
            return Err(Fail);
        }
        let mut closer = Vec::with_capacity(hashes + 3);
        if self.starts_with_at(q, b"\"\"\"") {
            closer.extend_from_slice(b"\"\"\"");
            closer.resize(3 + hashes, b'#');
            let nl = self.newline_len(q + 3);
            if nl == 0 {
                return Err(self.multiline_needs_newline(start, &closer));
            }
            return self.multiline_raw_string(start, q + 3 + nl, &closer);
        }
        closer.push(b'"');
        closer.resize(1 + hashes, b'#');
        let body_start = q + 1;
        self.pos = body_start;
        let mut failed = false;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                self.error(
                    start,
                    body_start,
                    "unterminated raw string".into(),
                    "raw string starts here",
                    Some(format!("close it with `{}`", String::from_utf8_lossy(&closer))),
                );
                return Err(Fail);
            };
            match b {
                b'"' if self.starts_with(&closer) => break,
                0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef => {
                    if self.newline_len(self.pos) > 0 {
                        self.error(
                            start,
                            self.pos,
                            "unterminated raw string: a single-line raw string can't contain a newline".into(),
                            "raw string starts here",
                            Some(format!(
                                "close it with `{}` before the line ends, or use a multi-line raw string: `{}\"\"\"` followed by a newline",
                                String::from_utf8_lossy(&closer),
                                "#".repeat(hashes)
                            )),
                        );
                        return Err(Fail);
                    }
                    match self.disallowed_len(self.pos) {
                        0 => self.pos += 1,
                        d => {
                            self.report_disallowed(self.pos, d);
                            self.pos += d;
                            failed = true;
                        }
                    }
                }
                _ => self.pos += 1,
            }
        }
        let body = self.slice(body_start, self.pos);
        self.pos += closer.len();
        if failed { Err(Fail) } else { Ok(body.to_owned()) }
    }

    /// A multi-line raw string whose body starts at `body_start`; `closer` is `"""#…`.
    fn multiline_raw_string(&mut self, start: usize, body_start: usize, closer: &[u8]) -> PResult<String> {
        self.pos = body_start;
        let mut lines = Vec::new();
        let mut line_start = body_start;
        let mut failed = false;
        let close = loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                self.error(
                    start,
                    start + closer.len(),
                    "unterminated multi-line raw string".into(),
                    "string starts here",
                    Some(format!("close it with `{}` on its own line", String::from_utf8_lossy(closer))),
                );
                return Err(Fail);
            };
            match b {
                b'"' if self.starts_with(closer) => break self.pos,
                0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef => {
                    let nl = self.newline_len(self.pos);
                    if nl > 0 {
                        lines.push(Line {
                            start: line_start,
                            end: self.pos,
                            literal_end: self.pos,
                            src_start: line_start,
                            src_end: self.pos,
                        });
                        self.pos += nl;
                        line_start = self.pos;
                        continue;
                    }
                    match self.disallowed_len(self.pos) {
                        0 => self.pos += 1,
                        d => {
                            self.report_disallowed(self.pos, d);
                            self.pos += d;
                            failed = true;
                        }
                    }
                }
                _ => self.pos += 1,
            }
        };
        lines.push(Line { start: line_start, end: close, literal_end: close, src_start: line_start, src_end: close });
        self.pos = close + closer.len();
        if failed {
            return Err(Fail);
        }
        let src = self.src;
        self.dedent(src, &lines, close, closer.len())
    }

    /// Joins the lines of a multi-line string after removing the closing line's
    /// whitespace from each; whitespace-only lines become empty.
    fn dedent(&mut self, buf: &str, lines: &[Line], close: usize, close_len: usize) -> PResult<String> {
        let Some((last, body)) = lines.split_last() else { return Ok(String::new()) };
        let prefix = buf.get(last.start..last.end).unwrap_or("");
        if last.literal_end < last.end || !prefix.chars().all(is_unicode_space) {
            self.error(
                close,
                close + close_len,
                "the closing `\"\"\"` of a multi-line string must be on its own line".into(),
                "closing quotes",
                Some("only whitespace may come before the closing `\"\"\"` on its line; that whitespace is the indentation removed from every line".into()),
            );
            return Err(Fail);
        }
        let mut out = String::with_capacity(buf.len());
        let mut failed = false;
        for (i, line) in body.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let text = buf.get(line.start..line.end).unwrap_or("");
            if line.literal_end == line.end && text.chars().all(is_unicode_space) {
                continue;
            }
            if line.start + prefix.len() <= line.literal_end && text.starts_with(prefix) {
                out.push_str(text.get(prefix.len()..).unwrap_or(""));
            } else {
                let shown: String = prefix.chars().map(|c| if c == '\t' { "\\t".into() } else { show_char(c) }).collect::<Vec<_>>().join(" ");
                self.error(
                    line.src_start,
                    line.src_end,
                    "multi-line string line is not indented like its closing `\"\"\"`".into(),
                    "indentation differs",
                    Some(if prefix.is_empty() {
                        "every non-blank line must start with the whitespace before the closing `\"\"\"`".into()
                    } else {
                        format!("every non-blank line must start with exactly the whitespace before the closing `\"\"\"` ({shown})")
                    }),
                );
                failed = true;
            }
        }
        if failed { Err(Fail) } else { Ok(out) }
    }

    // ---------------------------------------------------------------- recovery

    /// After an error: skips the rest of the broken node, up to a newline or `;` outside
    /// any braces, or up to the `}` closing the enclosing block (left in place). Strings
    /// and comments are skipped as units so their contents don't end the node early.
    fn recover(&mut self, in_block: bool) {
        let mut depth = 0usize;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b';' if depth == 0 => {
                    self.pos += 1;
                    return;
                }
                b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' if depth > 0 => {
                    depth -= 1;
                    self.pos += 1;
                }
                b'}' if in_block => return,
                b'"' => self.skip_quoted_lenient(),
                b'#' => self.skip_raw_lenient(),
                b'/' if self.peek_at(1) == Some(b'/') => {
                    self.skip_to_newline();
                    if depth == 0 {
                        return;
                    }
                }
                b'/' if self.peek_at(1) == Some(b'*') => self.skip_block_comment_quiet(),
                b'\\' => {
                    // A line continuation: the node goes on past the newline.
                    self.pos += 1;
                    while self.space_len(self.pos) > 0 {
                        self.pos += self.space_len(self.pos);
                    }
                    self.pos += self.newline_len(self.pos);
                }
                _ => {
                    let nl = self.newline_len(self.pos);
                    if nl > 0 {
                        self.pos += nl;
                        if depth == 0 {
                            return;
                        }
                    } else {
                        self.pos += utf8_len(b);
                    }
                }
            }
        }
        self.pos = self.pos.min(self.bytes.len());
    }

    fn skip_to_newline(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            let nl = self.newline_len(self.pos);
            if nl > 0 {
                self.pos += nl;
                return;
            }
            self.pos += utf8_len(b);
        }
        self.pos = self.bytes.len();
    }

    fn skip_block_comment_quiet(&mut self) {
        self.pos += 2;
        let mut depth = 1usize;
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b'*' && self.peek_at(1) == Some(b'/') {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else if b == b'/' && self.peek_at(1) == Some(b'*') {
                self.pos += 2;
                depth += 1;
            } else {
                self.pos += utf8_len(b);
            }
        }
        self.pos = self.bytes.len();
    }

    /// At `"`: skips a quoted string without checking it. A single-line one also ends
    /// at a newline, which is left for recovery to end the node on.
    fn skip_quoted_lenient(&mut self) {
        if self.starts_with(b"\"\"\"") && self.newline_len(self.pos + 3) > 0 {
            self.pos += 3;
            while let Some(&b) = self.bytes.get(self.pos) {
                if self.starts_with(b"\"\"\"") {
                    self.pos += 3;
                    return;
                }
                self.pos += if b == b'\\' { 1 + self.char_len_at(self.pos + 1) } else { utf8_len(b) };
            }
        } else {
            self.pos += 1;
            while let Some(&b) = self.bytes.get(self.pos) {
                match b {
                    b'"' => {
                        self.pos += 1;
                        return;
                    }
                    b'\\' => self.pos += 1 + self.newline_len(self.pos + 1).max(self.char_len_at(self.pos + 1)),
                    _ if self.newline_len(self.pos) > 0 => return,
                    _ => self.pos += utf8_len(b),
                }
            }
        }
        self.pos = self.pos.min(self.bytes.len());
    }

    /// At `#`: skips a raw string (or just the `#`s when no string follows).
    fn skip_raw_lenient(&mut self) {
        let start = self.pos;
        while self.peek() == Some(b'#') {
            self.pos += 1;
        }
        let hashes = self.pos - start;
        if self.peek() != Some(b'"') {
            return;
        }
        let multiline = self.starts_with(b"\"\"\"") && self.newline_len(self.pos + 3) > 0;
        let mut closer = if multiline { b"\"\"\"".to_vec() } else { b"\"".to_vec() };
        closer.resize(closer.len() + hashes, b'#');
        self.pos += if multiline { 3 } else { 1 };
        while let Some(&b) = self.bytes.get(self.pos) {
            if self.starts_with(&closer) {
                self.pos += closer.len();
                return;
            }
            if !multiline && self.newline_len(self.pos) > 0 {
                return;
            }
            self.pos += utf8_len(b);
        }
        self.pos = self.pos.min(self.bytes.len());
    }
}

/// Whether `b` can be the first byte of a value (or of a type annotation before one).
fn starts_value(b: u8) -> bool {
    b >= 0x80 || IDENT_ASCII[b as usize] || matches!(b, b'"' | b'#' | b'(')
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

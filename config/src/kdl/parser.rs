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
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    if text.len() >= SPLIT_MIN
        && let Some(mid) = split_point(text.as_bytes())
    {
        let (doc, errors, _) = parse_split(text, start, mid);
        return (doc, errors);
    }
    let mut p = Parser::new(text, start, usize::MAX);
    let nodes = p.nodes(0);
    (Document { nodes }, p.errors)
}

/// Texts at least this long are parsed as two halves on two threads.
const SPLIT_MIN: usize = 256 * 1024;

/// A likely start of a top-level node near the middle: a line that starts with an
/// ASCII letter right after a line that is just `}`. Only a guess: [`parse_split`]
/// checks that the first half really ends there.
fn split_point(bytes: &[u8]) -> Option<usize> {
    let mut i = bytes.len() / 2;
    let end = bytes.len().saturating_sub(2);
    while i < end {
        let nl = i + memchr_nl(&bytes[i..end])?;
        i = nl + 1;
        if nl >= 2
            && bytes[nl - 1] == b'}'
            && bytes[nl - 2] == b'\n'
            && bytes.get(i).is_some_and(u8::is_ascii_alphabetic)
        {
            return Some(i);
        }
    }
    None
}

fn memchr_nl(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Parses `text[start..mid]` and `text[mid..]` at once. The first half's parser stops
/// at `mid` only if it gets there between two top-level nodes; a parse from there is
/// then exactly what one pass would go on with (the parser keeps no other state across
/// top-level nodes). Otherwise (`mid` was inside a string or a comment, say) the second
/// result is dropped and the first parser goes on to the end, as one pass would. The
/// flag says whether the halves were joined.
fn parse_split(text: &str, start: usize, mid: usize) -> (Document, Vec<ParseError>, bool) {
    std::thread::scope(|s| {
        let second = std::thread::Builder::new().spawn_scoped(s, || {
            let mut p = Parser::new(text, mid, usize::MAX);
            let nodes = p.nodes(0);
            (nodes, p.errors)
        });
        let mut p = Parser::new(text, start, mid);
        let mut nodes = p.nodes(0);
        let second = match second {
            Ok(handle) => match handle.join() {
                Ok(second) => Some(second),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => None,
        };
        let joined = match second {
            Some((more, errors)) if p.pos == mid => {
                nodes.extend(more);
                p.errors.extend(errors);
                true
            }
            _ => {
                // Not stopped at `mid` (or no second thread): finish in one pass.
                p.stop = usize::MAX;
                nodes.extend(p.nodes(0));
                false
            }
        };
        (Document { nodes }, p.errors, joined)
    })
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

/// One line of a multi-line string, as a range of the string's text buffer.
struct Line {
    start: usize,
    end: usize,
    /// End of the leading run written literally: an escape such as `\s` is content,
    /// never indentation, so only this run may match the closing line's prefix.
    literal_end: usize,
    src_start: usize,
    src_end: usize,
}

impl Line {
    fn new(start: usize, src_start: usize) -> Self {
        Line {
            start,
            end: start,
            literal_end: usize::MAX,
            src_start,
            src_end: src_start,
        }
    }
}

/// The delimiter that closes a string: `"`, `"""`, `"#`, `"""##`…
#[derive(Clone, Copy)]
struct Closer {
    quotes: usize,
    hashes: usize,
}

impl Closer {
    fn len(self) -> usize {
        self.quotes + self.hashes
    }
}

impl std::fmt::Display for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", "\"".repeat(self.quotes), "#".repeat(self.hashes))
    }
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

/// Bytes a quoted string's scan must stop at: quotes, escapes, control characters and
/// the lead bytes of multi-byte newlines and disallowed code points.
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(
            b as u8,
            0x00..=0x1f | 0x7f | 0xc2 | 0xe2 | 0xef | b'"' | b'\\'
        );
        b += 1;
    }
    t
};

const KEYWORD_HELP: &str = "the keywords are #true, #false, #null, #inf, #-inf and #nan";

fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\t' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
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
    if c.is_control()
        || is_unicode_space(c)
        || c == '\u{feff}'
        || ('\u{2000}'..='\u{206f}').contains(&c)
    {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

trait Help {
    fn help(self, text: impl Into<String>);
}

impl Help for &mut ParseError {
    fn help(self, text: impl Into<String>) {
        self.help = Some(text.into());
    }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    errors: Vec<ParseError>,
    /// Nodes and entries under construction, for all levels at once: each list is
    /// collected from its own top part into an exactly sized `Vec` when it is complete.
    /// Growing one `Vec` per list instead costs allocations and, worse, leaves up to
    /// half of every list unused: memory is most of the parse time.
    node_stack: Vec<Node>,
    entry_stack: Vec<Entry>,
    /// The top-level node list ends where a node would start at this offset (see
    /// [`parse_split`]); `usize::MAX` for none.
    stop: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, pos: usize, stop: usize) -> Self {
        Parser {
            src: text,
            bytes: text.as_bytes(),
            pos,
            errors: Vec::new(),
            node_stack: Vec::new(),
            entry_stack: Vec::new(),
            stop,
        }
    }

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

    /// Records an error; `.help(...)` on the result adds a hint.
    #[cold]
    fn error(
        &mut self,
        start: usize,
        end: usize,
        message: impl Into<String>,
        label: &str,
    ) -> &mut ParseError {
        self.errors.push(ParseError {
            span: Span::new(start, end),
            message: message.into(),
            label: label.into(),
            help: None,
        });
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    #[cold]
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
        self.error(i, i + len, message, "disallowed character")
            .help(help);
    }

    /// End of the malformed token that starts at `i`: up to the next character that
    /// could end a value, so that the error span covers what the user wrote. Only for
    /// spans: recovery restarts at the offending character, so that a string inside the
    /// bad token is still skipped whole.
    fn bad_token_end(&self, mut i: usize) -> usize {
        while let Some(&b) = self.bytes.get(i) {
            if matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b';' | b'{' | b'}' | b'=' | b')'
            ) || self.space_len(i) > 0
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
    ///
    /// Inlined: nearly always this is a run of ASCII spaces (indentation, the space
    /// between entries); comments and other spaces take [`Parser::skip_ws_rest`].
    #[inline]
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while let Some(b' ' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'/' | 0x80..)) {
            self.skip_ws_rest();
        }
        self.pos > start
    }

    /// [`Parser::skip_ws`] past comments and non-ASCII spaces.
    #[inline(never)]
    fn skip_ws_rest(&mut self) {
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
    #[cold]
    #[inline(never)]
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
    #[inline(never)]
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
                0x00..=0x08 | 0x0e..=0x1f | 0x7f | 0xe2 | 0xef => {
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
        self.error(
            start,
            start + 2,
            "unterminated block comment",
            "comment starts here",
        )
        .help("close it with `*/`; block comments nest, so every `/*` needs its own `*/`");
    }

    // ------------------------------------------------------------------- nodes

    /// `nodes`: a document (depth 0) or the inside of a children block, up to EOF or
    /// the block's `}` (left for the caller).
    fn nodes(&mut self, depth: usize) -> Vec<Node> {
        let in_block = depth > 0;
        let base = self.node_stack.len();
        loop {
            self.skip_line_space();
            if !in_block && self.pos >= self.stop {
                if self.pos == self.stop {
                    break;
                }
                // Went past the split point inside a node: no split.
                self.stop = usize::MAX;
            }
            let Some(b) = self.peek() else { break };
            match b {
                b'}' if in_block => break,
                b'}' => {
                    self.error(self.pos, self.pos + 1, "unexpected `}`", "no `{` to close");
                    self.pos += 1;
                    continue;
                }
                b';' => {
                    self.error(
                        self.pos,
                        self.pos + 1,
                        "unexpected `;` with no node before it",
                        "empty node",
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
                        "`/-` must be followed by a node",
                        "comments out nothing",
                    );
                    continue;
                }
            }
            match self.node(depth) {
                Ok(node) if !slashdash => self.node_stack.push(node),
                Ok(_) => {}
                Err(Fail) => self.recover(in_block),
            }
        }
        if base == 0 {
            // The document itself (or a block while no other list is open): hand over
            // the stack instead of copying it.
            let mut nodes = std::mem::take(&mut self.node_stack);
            nodes.shrink_to_fit();
            return nodes;
        }
        self.node_stack.drain(base..).collect()
    }

    /// One node and its terminator (`;`, newline, `//` comment, EOF, or the `}` of the
    /// enclosing block, which is left in place).
    fn node(&mut self, depth: usize) -> PResult<Node> {
        let base = self.entry_stack.len();
        let node = self.node_inner(depth, base);
        if node.is_err() {
            self.entry_stack.truncate(base);
        }
        node
    }

    /// [`Parser::node`], with the node's entries collected on the stack above `base`.
    fn node_inner(&mut self, depth: usize, base: usize) -> PResult<Node> {
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
                    self.error(self.pos, self.pos + 1, "unexpected `}`", "no `{` to close");
                    self.pos += 1;
                    return Err(Fail);
                }
                b'{' => {
                    if children.is_some() {
                        self.error(
                            self.pos,
                            self.pos + 1,
                            "a node can have only one children block",
                            "second children block",
                        )
                        .help("merge the blocks, or comment this one out with `/-`");
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
                                "`/-` must be followed by an entry or a children block",
                                "comments out nothing",
                            );
                            return Err(Fail);
                        }
                        _ => {
                            if block_seen {
                                return Err(self.entry_after_block(sd));
                            }
                            if !spaced {
                                return Err(self.missing_space(sd));
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
                        return Err(self.entry_after_block(self.pos));
                    }
                    if !spaced && starts_value(b) {
                        return Err(self.missing_space(self.pos));
                    }
                    let (entry, space) = self.entry()?;
                    end = entry.span.end as usize;
                    self.entry_stack.push(entry);
                    space_before = space;
                }
            }
        }
        Ok(Node {
            ty,
            name: Spanned {
                value: name.value,
                span: name.span,
            },
            entries: self.entry_stack.drain(base..).collect(),
            children,
            span: Span::new(start, end),
        })
    }

    #[cold]
    fn entry_after_block(&mut self, at: usize) -> Fail {
        let end = self.bad_token_end(at).max(at + 1);
        self.error(
            at,
            end,
            "arguments and properties must come before the children block",
            "after the children block",
        )
        .help("move it before the `{`, or end the node with a newline or `;` first");
        self.pos = at;
        Fail
    }

    #[cold]
    fn missing_space(&mut self, at: usize) -> Fail {
        let end = at + self.char_len_at(at);
        self.error(
            at,
            end,
            "missing whitespace before this entry",
            "add a space before this",
        );
        Fail
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
                "unclosed children block",
                "this `{` is never closed",
            )
            .help("add a matching `}`");
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
                    "a property key cannot have a type annotation",
                    "annotated key",
                )
                .help("annotate the value instead: `key=(type)value`");
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
            let entry = Entry {
                name: None,
                ty: None,
                value: tok.value,
                value_span: tok.span,
                span: tok.span,
            };
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
            )
            .help(format!("quote the key: \"{text}\"=..."));
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
            self.error(
                eq,
                eq + 1,
                "expected a value after `=`",
                "property has no value",
            );
            return Err(Fail);
        }
        let value = self.value(if ty.is_some() {
            Want::TypedValue
        } else {
            Want::PropValue
        })?;
        let spaced = self.skip_node_space();
        let entry = Entry {
            name: Some(Spanned {
                value: key,
                span: tok.span,
            }),
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
    fn type_annotation(&mut self) -> PResult<Box<Spanned<String>>> {
        let open = self.pos;
        self.pos += 1;
        self.skip_node_space();
        if self.peek() == Some(b')') {
            self.error(open, self.pos + 1, "empty type annotation", "no type name")
                .help("write a type name between the parentheses, e.g. `(u8)`, or remove them");
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
                "unclosed type annotation",
                "expected `)` after the type name",
            );
            return Err(Fail);
        }
        self.pos += 1;
        Ok(Box::new(Spanned {
            value: name.value,
            span: name.span,
        }))
    }

    /// A value that must be a string: a node name, type name.
    fn string_token(&mut self, want: Want) -> PResult<Spanned<String>> {
        let tok = self.value(want)?;
        match tok.value {
            Value::String(value) => Ok(Spanned {
                value,
                span: tok.span,
            }),
            _ => {
                let (start, end) = (tok.span.start as usize, tok.span.end as usize);
                let text = self.slice(start, end);
                let what = if tok.kind == Kind::Keyword {
                    "a keyword"
                } else {
                    "a number"
                };
                self.error(
                    start,
                    end,
                    format!(
                        "{} must be a string, but `{text}` is {what}",
                        capitalized(want.what())
                    ),
                    "not a string",
                )
                .help(format!("quote it: \"{text}\""));
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
            self.error(
                n,
                n,
                format!("expected {}, found the end of the file", want.what()),
                "file ends here",
            );
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
        Ok(Tok {
            value,
            span: Span::new(start, self.pos),
            kind,
        })
    }

    /// A value must be followed by whitespace, a node terminator or punctuation that
    /// can follow it (`=`, `)`, braces): `1abc` is not a number followed by `abc`.
    fn value_end(&mut self, start: usize, kind: Kind) -> PResult<()> {
        let at = self.pos;
        let ends = match self.peek() {
            None => true,
            Some(
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b';' | b'=' | b')' | b'{' | b'}'
                | b'\\',
            ) => true,
            Some(b'/') => matches!(self.peek_at(1), Some(b'/' | b'*')),
            Some(0x80..) => self.space_len(at) > 0 || self.newline_len(at) > 0,
            _ => false,
        };
        if ends {
            return Ok(());
        }
        Err(self.bad_value_end(start, kind))
    }

    /// The error for a value followed by something that cannot follow it.
    #[cold]
    #[inline(never)]
    fn bad_value_end(&mut self, start: usize, kind: Kind) -> Fail {
        let at = self.pos;
        let d = self.disallowed_len(at);
        if d > 0 {
            self.report_disallowed(at, d);
            self.pos = at + d;
            return Fail;
        }
        let end = self.bad_token_end(at).max(at + 1);
        let text = self.slice(start, end);
        let c = self.char_at(at).unwrap_or('?');
        let quotable = !text.contains(['"', '\\']);
        match kind {
            Kind::Number => {
                let help = if quotable {
                    format!(
                        "a bare string can't start with a digit; to make it a string, quote it: \"{text}\""
                    )
                } else {
                    "numbers are written like `12`, `-3.5`, `1e10`, `0xff`, `0o17`, `0b101`".into()
                };
                self.error(
                    start,
                    end,
                    format!("invalid number `{text}`"),
                    "not a number",
                )
                .help(help);
            }
            Kind::Ident if c == '(' => {
                let message = format!("`(` is not allowed in a bare string (in `{text}`)");
                self.error(at, at + 1, message, "not allowed here")
                    .help("a type annotation goes before the value: `(type)value`");
            }
            Kind::Ident if c == '"' => {
                let message = "missing whitespace between a bare string and a quoted string";
                self.error(at, at + 1, message, "add a space before this");
            }
            Kind::Ident => {
                let help = quotable.then(|| format!("quote the string: \"{text}\""));
                let message = format!(
                    "{} is not allowed in a bare string (in `{text}`)",
                    show_char(c)
                );
                self.error(at, at + c.len_utf8(), message, "not allowed here")
                    .help = help;
            }
            Kind::Quoted | Kind::Keyword => {
                let message = "missing whitespace after a value";
                self.error(at, at + c.len_utf8(), message, "add a space before this");
            }
        }
        self.pos = at;
        Fail
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
            )
            .help(format!("write a digit before the decimal point: `{fixed}`"));
            self.pos = end;
            return Err(Fail);
        }
        if matches!(text, "true" | "false" | "null" | "inf" | "-inf" | "nan") {
            self.error(
                start,
                end,
                format!("`{text}` is a keyword in KDL v2: write `#{text}`"),
                "bare keyword",
            )
            .help(format!("for the string, quote it: \"{text}\""));
            self.pos = end;
            return Err(Fail);
        }
        self.pos = end;
        Ok(Value::String(text.to_owned()))
    }

    /// The error for a character that cannot start a value.
    #[cold]
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
                Some(
                    "did you forget the node name, or end the node before its children block?"
                        .to_string(),
                ),
            ),
            ('/', _) if self.peek_at(1) == Some(b'-') => (
                format!("`/-` is not allowed here; expected {}", want.what()),
                Some("`/-` comments out a whole node, entry or children block".into()),
            ),
            ('\\', _) => (
                "unexpected `\\`".to_string(),
                Some(
                    "a line continuation `\\` must be followed by a newline or a `//` comment"
                        .into(),
                ),
            ),
            ('=', Want::Entry) => (
                "property without a key".to_string(),
                Some("write `key=value`".into()),
            ),
            _ if self.newline_len(at) > 0 => (
                format!("expected {}, found the end of the line", want.what()),
                None,
            ),
            (';', _) => (format!("expected {}, found `;`", want.what()), None),
            _ => (
                format!("unexpected {}, expected {}", show_char(c), want.what()),
                None,
            ),
        };
        self.error(at, at + len, message, "unexpected here").help = help;
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
                let help = if matches!(
                    lower.as_str(),
                    "true" | "false" | "null" | "inf" | "-inf" | "nan"
                ) {
                    format!("keywords are case-sensitive: write `#{lower}`")
                } else {
                    KEYWORD_HELP.to_string()
                };
                let end = end.max(start + 1);
                self.error(
                    start,
                    end,
                    format!("unknown keyword `#{word}`"),
                    "not a keyword",
                )
                .help(help);
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
                    format!(
                        "invalid number `{}`: expected a digit after the decimal point",
                        self.slice(start, end)
                    ),
                    "not a number",
                )
                .help("write at least one digit after the `.`, e.g. `1.0`");
                self.pos = i;
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
                    format!(
                        "invalid number `{}`: the exponent has no digits",
                        self.slice(start, end)
                    ),
                    "not a number",
                )
                .help("an exponent looks like `1.5e10` or `2E-3`");
                self.pos = i;
                return Err(Fail);
            }
            i = self.digits_end(j);
            is_float = true;
        }
        self.pos = i;
        let text = self.slice(start, i);
        if is_float {
            let parsed = if text.contains('_') {
                text.replace('_', "").parse()
            } else {
                text.parse()
            };
            return match parsed {
                Ok(f) => Ok(Value::Float(f)),
                Err(_) => {
                    self.error(start, i, format!("invalid number `{text}`"), "not a number");
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
        while self
            .bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'_')
        {
            i += 1;
        }
        i
    }

    /// `0x`, `0o` or `0b` and its digits; `i` is just after the prefix.
    fn radix_integer(
        &mut self,
        start: usize,
        mut i: usize,
        radix: u32,
        negative: bool,
    ) -> PResult<Value> {
        let is_digit = |b: u8| (b as char).is_digit(radix);
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
                format!(
                    "invalid number `{}`: expected a {name} digit after the prefix",
                    self.slice(start, end)
                ),
                "not a number",
            )
            .help("`_` separators may only come after the first digit");
            self.pos = i;
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
    fn accumulate(
        &mut self,
        start: usize,
        end: usize,
        digits: &[u8],
        radix: u32,
        negative: bool,
    ) -> PResult<Value> {
        let mut acc: i128 = 0;
        for &b in digits {
            let Some(d) = (b as char).to_digit(radix) else {
                continue;
            };
            let next = acc.checked_mul(i128::from(radix)).and_then(|a| {
                if negative {
                    a.checked_sub(i128::from(d))
                } else {
                    a.checked_add(i128::from(d))
                }
            });
            match next {
                Some(n) => acc = n,
                None => {
                    let message = format!("integer `{}` is out of range", self.slice(start, end));
                    self.error(start, end, message, "too large").help(
                        "integers must fit in 128 bits (about ±1.7e38); write a float like `1e40` if precision does not matter",
                    );
                    return Err(Fail);
                }
            }
        }
        Ok(Value::Integer(acc))
    }

    // ----------------------------------------------------------------- strings

    /// At `"`: a quoted string, unescaped.
    fn quoted_string(&mut self) -> PResult<String> {
        self.string(self.pos, 0)
    }

    /// At `#`: a raw string.
    fn raw_string(&mut self) -> PResult<String> {
        let start = self.pos;
        let mut q = start;
        while self.bytes.get(q) == Some(&b'#') {
            q += 1;
        }
        if self.bytes.get(q) != Some(&b'"') {
            let end = self.bad_token_end(start);
            let message = format!(
                "`{}` starts neither a raw string nor a keyword",
                self.slice(start, end)
            );
            self.error(start, end, message, "invalid").help(format!(
                "a raw string looks like `#\"text\"#`; {KEYWORD_HELP}"
            ));
            self.pos = q;
            return Err(Fail);
        }
        self.string(start, q - start)
    }

    /// A quoted (`hashes == 0`) or raw string starting at `start`, its first `"` after
    /// the hashes. `"""` opens a multi-line string, which a newline must follow.
    fn string(&mut self, start: usize, hashes: usize) -> PResult<String> {
        let q = start + hashes;
        let multiline = self.starts_with_at(q, b"\"\"\"");
        let closer = Closer {
            quotes: if multiline { 3 } else { 1 },
            hashes,
        };
        if multiline {
            let nl = self.newline_len(q + 3);
            if nl == 0 {
                return Err(self.multiline_needs_newline(start, closer));
            }
            self.pos = q + 3 + nl;
        } else {
            self.pos = q + 1;
        }
        let escapes = hashes == 0;
        let label = if escapes {
            "string starts here"
        } else {
            "raw string starts here"
        };
        let mut buf = String::new();
        // A multi-line string's lines, as ranges of `buf` (the line breaks left out).
        let mut lines = Vec::new();
        let mut line = Line::new(0, self.pos);
        let mut seg = self.pos;
        let mut failed = false;
        let close = loop {
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| !STRING_STOP[b as usize])
            {
                self.pos += 1;
            }
            let Some(&b) = self.bytes.get(self.pos) else {
                let what = if multiline {
                    "multi-line string"
                } else {
                    "string"
                };
                self.error(
                    start,
                    q + closer.quotes,
                    format!("unterminated {what}"),
                    label,
                )
                .help(format!("close it with `{closer}`"));
                return Err(Fail);
            };
            match b {
                b'"' if self.closes_at(self.pos, closer) => {
                    if buf.is_empty() {
                        // No escape or line break before: one exact copy.
                        buf = self.slice(seg, self.pos).to_owned();
                    } else {
                        buf.push_str(self.slice(seg, self.pos));
                    }
                    break self.pos;
                }
                b'\\' if escapes => {
                    buf.push_str(self.slice(seg, self.pos));
                    let before = buf.len();
                    failed |= !self.escape(&mut buf);
                    if buf.len() > before {
                        line.literal_end = line.literal_end.min(before);
                    }
                    seg = self.pos;
                }
                b'"' | b'\\' => self.pos += 1,
                _ => {
                    let nl = self.newline_len(self.pos);
                    if nl == 0 {
                        failed |= self.skip_control();
                        continue;
                    }
                    if !multiline {
                        let what = if escapes { "string" } else { "raw string" };
                        let message = format!(
                            "unterminated {what}: a single-line string can't contain a newline"
                        );
                        self.error(start, self.pos, message, label).help(format!(
                            "close it with `{closer}` before the line ends{}, or make it a multi-line string: `{}\"\"\"` followed by a newline",
                            if escapes { ", write `\\n` for a newline" } else { "" },
                            "#".repeat(hashes)
                        ));
                        return Err(Fail);
                    }
                    buf.push_str(self.slice(seg, self.pos));
                    line.end = buf.len();
                    line.src_end = self.pos;
                    self.pos += nl;
                    lines.push(std::mem::replace(&mut line, Line::new(buf.len(), self.pos)));
                    seg = self.pos;
                }
            }
        };
        self.pos = close + closer.len();
        if failed {
            return Err(Fail);
        }
        if !multiline {
            return Ok(buf);
        }
        line.end = buf.len();
        line.src_end = close;
        lines.push(line);
        self.dedent(&buf, &lines, close, closer)
    }

    fn closes_at(&self, i: usize, closer: Closer) -> bool {
        let quotes_end = i + closer.quotes;
        let hashes_end = quotes_end + closer.hashes;
        self.bytes
            .get(i..quotes_end)
            .is_some_and(|q| q.iter().all(|&b| b == b'"'))
            && self
                .bytes
                .get(quotes_end..hashes_end)
                .is_some_and(|h| h.iter().all(|&b| b == b'#'))
    }

    /// At a control byte or a multi-byte lead byte that is not a newline: skips the
    /// character, reporting it if KDL forbids it. Returns whether it did.
    fn skip_control(&mut self) -> bool {
        match self.disallowed_len(self.pos) {
            0 => {
                self.pos += 1;
                false
            }
            d => {
                self.report_disallowed(self.pos, d);
                self.pos += d;
                true
            }
        }
    }

    /// The error for `"""` (or `#"""`) not followed by a newline. Skips to the closing
    /// delimiter on the same line so that recovery doesn't take it for an opening one.
    #[cold]
    fn multiline_needs_newline(&mut self, start: usize, closer: Closer) -> Fail {
        let open_end = start + closer.len();
        self.error(
            start,
            open_end,
            "a multi-line string must start with a newline right after the opening `\"\"\"`",
            "multi-line string opens here",
        )
        .help("put the text on the next lines and the closing `\"\"\"` on a line of its own; for a string of just quotes, write `\"\\\"\"`");
        let mut i = open_end;
        while i < self.bytes.len() && self.newline_len(i) == 0 {
            if self.closes_at(i, closer) {
                i += closer.len();
                break;
            }
            i += utf8_len(self.bytes.get(i).copied().unwrap_or(0));
        }
        self.pos = i.min(self.bytes.len());
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
                let after = self.pos;
                loop {
                    match self.space_len(self.pos).max(self.newline_len(self.pos)) {
                        0 => break,
                        n => self.pos += n,
                    }
                }
                if self.pos > after {
                    return true;
                }
                let c = self.char_at(self.pos).unwrap_or('?');
                self.pos += c.len_utf8();
                let message = format!("invalid escape `\\{c}`");
                self.error(start, self.pos, message, "unknown escape").help(if c == '/' {
                    "KDL v2 has no `\\/` escape: write `/` as it is"
                } else {
                    "the escapes are \\n \\r \\t \\\\ \\\" \\b \\f \\s \\u{XXXX}, and `\\` before whitespace, which removes it"
                });
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
            )
            .help("write 1 to 6 hex digits of a Unicode scalar value in braces, e.g. `\\u{1F600}`");
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
        if self.bytes.get(i) != Some(&b'}') {
            return bad(self, i, "expected hex digits and `}`");
        }
        if !(1..=6).contains(&(i - digits_start)) {
            return bad(self, i + 1, "expected 1 to 6 hex digits");
        }
        let hex = self.slice(digits_start, i);
        match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
            Some(c) => {
                out.push(c);
                self.pos = i + 1;
                true
            }
            None => bad(self, i + 1, "not a Unicode scalar value"),
        }
    }

    /// Joins the lines of a multi-line string after removing the closing line's
    /// whitespace from each; whitespace-only lines become empty.
    ///
    /// For quoted strings `buf` has whitespace escapes resolved and other escapes
    /// applied, with `Line::literal_end` marking where escapes begin: the spec resolves
    /// whitespace escapes before dedenting and other escapes after, so an escape never
    /// counts as indentation, and a whitespace escape may join lines but not hide the
    /// closing line's indentation.
    fn dedent(
        &mut self,
        buf: &str,
        lines: &[Line],
        close: usize,
        closer: Closer,
    ) -> PResult<String> {
        let Some((last, body)) = lines.split_last() else {
            return Ok(String::new());
        };
        let prefix = buf.get(last.start..last.end).unwrap_or("");
        if last.literal_end < last.end || !prefix.chars().all(is_unicode_space) {
            self.error(
                close,
                close + closer.len(),
                "the closing `\"\"\"` of a multi-line string must be on a line of its own",
                "closing quotes",
            )
            .help("only whitespace may come before the closing `\"\"\"` on its line; that whitespace is the indentation removed from every line");
            return Err(Fail);
        }
        let mut out = String::with_capacity(buf.len());
        let mut failed = false;
        for (i, line) in body.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let text = buf.get(line.start..line.end).unwrap_or("");
            let literal_end = line.literal_end.min(line.end);
            if literal_end == line.end && text.chars().all(is_unicode_space) {
                continue;
            }
            if line.start + prefix.len() <= literal_end && text.starts_with(prefix) {
                out.push_str(text.get(prefix.len()..).unwrap_or(""));
                continue;
            }
            let shown: Vec<String> = prefix.chars().map(show_char).collect();
            let message = "multi-line string line is not indented like its closing `\"\"\"`";
            self.error(line.src_start, line.src_end, message, "indentation differs").help(format!(
                "every non-blank line must start with exactly the whitespace before the closing `\"\"\"` ({})",
                if shown.is_empty() { "none".to_string() } else { shown.join(" ") }
            ));
            failed = true;
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
                self.pos += if b == b'\\' {
                    1 + self.char_len_at(self.pos + 1)
                } else {
                    utf8_len(b)
                };
            }
        } else {
            self.pos += 1;
            while let Some(&b) = self.bytes.get(self.pos) {
                match b {
                    b'"' => {
                        self.pos += 1;
                        return;
                    }
                    b'\\' => {
                        self.pos += 1 + self
                            .newline_len(self.pos + 1)
                            .max(self.char_len_at(self.pos + 1))
                    }
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
        let mut closer = if multiline {
            b"\"\"\"".to_vec()
        } else {
            b"\"".to_vec()
        };
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
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ok(text: &str) -> Vec<Node> {
        let (doc, errors) = parse(text);
        assert!(
            errors.is_empty(),
            "unexpected errors for {text:?}: {errors:#?}"
        );
        doc.nodes
    }

    fn errors(text: &str) -> Vec<ParseError> {
        let (_, errors) = parse(text);
        assert!(!errors.is_empty(), "no error for {text:?}");
        errors
    }

    fn slice(text: &str, span: Span) -> &str {
        &text[span.start as usize..span.end as usize]
    }

    fn values(text: &str) -> Vec<Value> {
        ok(text)
            .remove(0)
            .entries
            .into_iter()
            .map(|e| e.value)
            .collect()
    }

    /// One pass, never split.
    fn parse_one_pass(text: &str) -> (Document, Vec<ParseError>) {
        let mut p = Parser::new(text, 0, usize::MAX);
        let nodes = p.nodes(0);
        (Document { nodes }, p.errors)
    }

    /// Many top-level nodes, some broken, with `middle` in the middle of the text.
    fn large(middle: &str) -> String {
        let mut text = String::new();
        let mut i = 0;
        while text.len() < SPLIT_MIN * 3 / 5 {
            text.push_str(&format!(
                "container \"c{i}\" {{\n    exec \"/bin/sh\" \"-c\" \"{i}\"\n    env A=\"{i}\"\n}}\n"
            ));
            if i % 997 == 0 {
                text.push_str("broken \"unterminated\n}\n");
            }
            i += 1;
        }
        let first = text.len();
        text.push_str(middle);
        let end = text.len() + first;
        while text.len() < end {
            text.push_str(&format!(
                "network \"n{i}\" {{\n    subnet 1 2 =3\n}}\nvolume \"v{i}\" {{\n}}\n"
            ));
            i += 1;
        }
        text
    }

    #[test]
    fn a_large_text_parsed_in_two_halves_equals_one_pass() {
        for middle in [
            "",
            // The guessed split points are inside a string and a comment: the second
            // half's parse must be dropped.
            &format!(
                "x #\"\"\"\n{}\"\"\"#\n",
                "}\ncontainer \"fake\" {\n".repeat(20_000)
            ),
            &format!("/*\n{}*/\n", "}\ncontainer \"fake\" {\n".repeat(20_000)),
            &format!("x \"\"\"\n{}\"\"\"\n", "}\nbad\u{0}\n".repeat(20_000)),
        ] {
            let text = large(middle);
            assert!(text.len() >= SPLIT_MIN);
            let mid = split_point(text.as_bytes()).unwrap();
            let (doc, errors, joined) = parse_split(&text, 0, mid);
            assert_eq!(joined, middle.is_empty());
            let (doc1, errors1) = parse_one_pass(&text);
            assert!(!errors.is_empty());
            assert_eq!(errors, errors1);
            assert_eq!(doc, doc1);
        }
    }

    #[test]
    fn spans_slice_to_their_text() {
        let text =
            "// head\n(ty)\"my node\" 1 key=(u8)0x10 #\"raw\"# {\n    child  arg\n}\nnext; last";
        let nodes = ok(text);
        let n = &nodes[0];
        assert_eq!(slice(text, n.name.span), "\"my node\"");
        assert_eq!(n.name.value, "my node");
        assert_eq!(slice(text, n.ty.as_ref().unwrap().span), "ty");
        assert_eq!(slice(text, n.span), &text[8..text.find("}\n").unwrap() + 1]);
        assert_eq!(slice(text, n.entries[0].span), "1");
        let prop = &n.entries[1];
        assert_eq!(slice(text, prop.span), "key=(u8)0x10");
        assert_eq!(slice(text, prop.value_span), "0x10");
        assert_eq!(slice(text, prop.name.as_ref().unwrap().span), "key");
        assert_eq!(slice(text, prop.ty.as_ref().unwrap().span), "u8");
        assert_eq!(prop.value, Value::Integer(16));
        assert_eq!(slice(text, n.entries[2].value_span), "#\"raw\"#");
        let child = &n.children.as_ref().unwrap()[0];
        assert_eq!(slice(text, child.name.span), "child");
        assert_eq!(slice(text, child.span), "child  arg");
        assert_eq!(slice(text, nodes[1].span), "next");
        assert_eq!(slice(text, nodes[2].span), "last");
    }

    #[test]
    fn node_span_ends_at_last_entry_not_at_slashdashed_ones() {
        let text = "a 1 /-2 /-{ x }\n";
        let n = &ok(text)[0];
        assert_eq!(slice(text, n.span), "a 1");
        assert_eq!(n.entries.len(), 1);
        assert_eq!(n.children, None);
    }

    #[test]
    fn three_broken_nodes_three_errors_good_nodes_kept() {
        let text = "good 1\nbad 1x\nalso-good \"s\"\nbad2 true\nparent {\n    fine\n    bad3 \"open\n    fine2\n}\nlast #true\n";
        let (doc, errors) = parse(text);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        let names: Vec<_> = doc.nodes.iter().map(|n| n.name.value.as_str()).collect();
        assert_eq!(names, ["good", "also-good", "parent", "last"]);
        let kids: Vec<_> = doc.nodes[2]
            .children
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.name.value.as_str())
            .collect();
        assert_eq!(kids, ["fine", "fine2"]);
        assert_eq!(slice(text, errors[0].span), "1x");
        assert_eq!(slice(text, errors[1].span), "true");
        assert_eq!(
            errors[2].message,
            "unterminated string: a single-line string can't contain a newline"
        );
    }

    #[test]
    fn recovery_skips_braces_strings_and_comments_of_the_broken_node() {
        let text = "bad 1x { a \"}\" ; b /* } */ } \"\"\"\n  ;\n  \"\"\" // }\nafter\n";
        let (doc, errors) = parse(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(doc.nodes.len(), 1);
        assert_eq!(doc.nodes[0].name.value, "after");
    }

    #[test]
    fn stray_close_brace_is_reported_and_skipped() {
        let (doc, errors) = parse("a\n}\nb\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "unexpected `}`");
        assert_eq!(doc.nodes.len(), 2);
    }

    #[test]
    fn nesting_depth_is_limited() {
        let nested = |levels: usize| "n {".repeat(levels) + &"}".repeat(levels);
        let nodes = ok(&nested(MAX_DEPTH));
        let mut depth = 0;
        let mut node = &nodes[0];
        while let Some(c) = node.children.as_ref().and_then(|c| c.first()) {
            node = c;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH - 1);

        let errs = errors(&nested(MAX_DEPTH + 1));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("nested too deeply"), "{errs:?}");

        // Far deeper than any stack would allow if the parser recursed without limit.
        let (_, errs) = parse(&("{".repeat(1_000_000)));
        assert!(!errs.is_empty());
        let (_, errs) = parse(&(nested(100_000) + "\nafter"));
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn good_error_messages() {
        let e = &errors("node true")[0];
        assert_eq!(e.message, "`true` is a keyword in KDL v2: write `#true`");
        assert_eq!(
            e.help.as_deref(),
            Some("for the string, quote it: \"true\"")
        );

        let e = &errors("node \"abc")[0];
        assert_eq!(e.message, "unterminated string");
        assert_eq!(e.label, "string starts here");
        assert_eq!(e.span, Span::new(5, 6));

        let e = &errors("node }")[0];
        assert_eq!(e.message, "unexpected `}`");

        let e = &errors("node key=")[0];
        assert_eq!(e.message, "expected a value after `=`");

        let e = &errors("node 1=2")[0];
        assert!(
            e.message.starts_with("property keys must be strings"),
            "{e:?}"
        );

        let e = &errors("node \"x\\q\"")[0];
        assert_eq!(e.message, "invalid escape `\\q`");

        let e = &errors("node #True")[0];
        assert_eq!(
            e.help.as_deref(),
            Some("keywords are case-sensitive: write `#true`")
        );

        let e = &errors("node 12abc")[0];
        assert_eq!(e.message, "invalid number `12abc`");
        assert!(e.help.as_deref().unwrap().contains("\"12abc\""));

        let e = &errors("{ child }")[0];
        assert_eq!(
            e.message,
            "found a children block where a node name was expected"
        );

        let e = &errors("a {\n  b\n")[0];
        assert_eq!(e.message, "unclosed children block");
        assert_eq!(e.span, Span::new(2, 3));

        let e = &errors("a 170141183460469231731687303715884105728")[0];
        assert!(e.message.contains("out of range"), "{e:?}");

        let e = &errors("a \"\"\"\n  x\n y\n  \"\"\"")[0];
        assert!(e.message.contains("not indented like its closing"), "{e:?}");
        assert_eq!(e.span, Span::new(10, 12));

        let e = &errors("a \"\u{202e}\"")[0];
        assert!(e.message.contains("U+202E"), "{e:?}");
    }

    #[test]
    fn numbers() {
        let vals = values(
            "n 0 -0 +7 1_000 0xf_f_ 0xFF 0o17 -0b101 1.5 -2.5e3 1E+2 1e-2 1_0.2_5e1_0 \
             170141183460469231731687303715884105727 -170141183460469231731687303715884105728",
        );
        assert_eq!(
            vals,
            [
                Value::Integer(0),
                Value::Integer(0),
                Value::Integer(7),
                Value::Integer(1000),
                Value::Integer(255),
                Value::Integer(255),
                Value::Integer(15),
                Value::Integer(-5),
                Value::Float(1.5),
                Value::Float(-2500.0),
                Value::Float(100.0),
                Value::Float(0.01),
                Value::Float(10.25e10),
                Value::Integer(i128::MAX),
                Value::Integer(i128::MIN),
            ]
        );
        assert_eq!(values("n 1e400"), [Value::Float(f64::INFINITY)]);
        for bad in [
            "n 0x_1", "n 1.", "n .5", "n -.5", "n 1e", "n 1._5", "n 0b2", "n 0X10", "n 1.0.0",
            "n 0xg",
        ] {
            errors(bad);
        }
    }

    #[test]
    fn keywords_and_bare_strings() {
        let vals = values("n #true #false #null #inf #-inf +inf - .x -.x +. a,b ü");
        assert_eq!(
            vals[..5],
            [
                Value::Bool(true),
                Value::Bool(false),
                Value::Null,
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY)
            ]
        );
        let strings: Vec<_> = vals[5..]
            .iter()
            .map(|v| match v {
                Value::String(s) => s.as_str(),
                _ => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(strings, ["+inf", "-", ".x", "-.x", "+.", "a,b", "ü"]);
        assert!(matches!(values("n #nan")[0], Value::Float(f) if f.is_nan()));
        for bad in [
            "n null", "n -inf", "n nan", "n #yes", "n #", "n a#b", "n a(b)", "n [x]",
        ] {
            errors(bad);
        }
    }

    #[test]
    fn quoted_strings_and_escapes() {
        let vals = values(r#"n "a\nb\t\"\\\b\f\r\s" "\u{41}\u{1F600}" "x\   y" "" "é""#);
        assert_eq!(
            vals,
            [
                Value::String("a\nb\t\"\\\u{8}\u{c}\r ".into()),
                Value::String("A😀".into()),
                Value::String("xy".into()),
                Value::String(String::new()),
                Value::String("é".into()),
            ]
        );
        assert_eq!(
            values("n \"one \\\n\n   two\"")[0],
            Value::String("one two".into())
        );
        for bad in [
            r#"n "\u{D800}""#,
            r#"n "\u{110000}""#,
            r#"n "\u{}""#,
            r#"n "\u{1234567}""#,
            r#"n "\u41""#,
            "n \"a\nb\"",
        ] {
            errors(bad);
        }
    }

    #[test]
    fn multi_line_strings() {
        let text =
            "n \"\"\"\n    line one\n\n      indented \\\n  joined\n    \\s escaped\n    \"\"\"";
        assert_eq!(
            values(text)[0],
            Value::String("line one\n\n  indented joined\n  escaped".into())
        );
        assert_eq!(values("n \"\"\"\n\"\"\"")[0], Value::String(String::new()));
        assert_eq!(
            values("n \"\"\"\r\n  a\r\n  b\r\n  \"\"\"")[0],
            Value::String("a\nb".into())
        );
        assert_eq!(
            values("n \"\"\"\n  \"q\" \"\"q\n  \"\"\"")[0],
            Value::String("\"q\" \"\"q".into())
        );
        errors("n \"\"\"x\"\"\"");
        errors("n \"\"\"\n  a\n  b\"\"\"");
        errors("n \"\"\"\n\\s a\n  \"\"\"");
    }

    #[test]
    fn raw_strings() {
        let vals = values("n #\"a\\n\"b\"# ##\"x\"#y\"## #\"\"#");
        assert_eq!(
            vals,
            [
                Value::String("a\\n\"b".into()),
                Value::String("x\"#y".into()),
                Value::String(String::new())
            ]
        );
        assert_eq!(
            values("n #\"\"\"\n   raw \\n\n  \"\"\"#")[0],
            Value::String(" raw \\n".into())
        );
        for bad in [
            "n #\"\"\"#",
            "n #\"\"\"x\"#",
            "n ##\"a\"#",
            "n #\"a\"##",
            "n #\"a\nb\"#",
            "n #\"a",
        ] {
            errors(bad);
        }
    }

    #[test]
    fn properties_types_and_slashdash() {
        let n = &ok("(t)n (u)1 k=v \"q k\"=(w)2 k=3 /-dropped=1 /- 4 /-(t)5 #\"r\"# =6\n")[0];
        assert_eq!(n.ty.as_ref().unwrap().value, "t");
        let shown: Vec<_> = n
            .entries
            .iter()
            .map(|e| {
                (
                    e.name.as_ref().map(|k| k.value.clone()),
                    e.ty.as_ref().map(|t| t.value.clone()),
                    e.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (None, Some("u".into()), Value::Integer(1)),
                (Some("k".into()), None, Value::String("v".into())),
                (Some("q k".into()), Some("w".into()), Value::Integer(2)),
                (Some("k".into()), None, Value::Integer(3)),
                (Some("r".into()), None, Value::Integer(6)),
            ]
        );
        let nodes = ok("/- a { b }\nc /-{ x } { y } /-{ z }; /-d 1;e");
        let names: Vec<_> = nodes.iter().map(|n| n.name.value.as_str()).collect();
        assert_eq!(names, ["c", "e"]);
        assert_eq!(nodes[0].children.as_ref().unwrap()[0].name.value, "y");
        for bad in [
            "a /-",
            "a /-;",
            "a { } b",
            "a { } { }",
            "a /-{ } b",
            "(t)k=1",
            "a (t)k=1",
            "a (t)/-1",
            "a \"s\"/-1",
            "/-",
        ] {
            errors(bad);
        }
    }

    #[test]
    fn whitespace_newlines_comments_and_continuations() {
        let text = "\u{feff}a\u{85}b\u{2028}c\u{2029}d\u{b}e\u{c}f\rg\r\nh\u{3000}1 \\ // cont\n  2 /* x /* nested */ */ 3 // end\ni";
        let nodes = ok(text);
        let names: Vec<_> = nodes.iter().map(|n| n.name.value.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
        assert_eq!(nodes[7].entries.len(), 3);
        ok("");
        ok("\\\n");
        ok("a \\");
        errors("a \\ b");
        errors("a /* unterminated");
        errors("a\u{feff}");
        errors("// \u{7f} in a comment\n");
    }

    #[test]
    fn never_panics_on_truncations_of_tricky_input() {
        let text = "\u{feff}(t)\"n\u{e9}\" 0x1_f -1.5e+3 #\"r\"# ##\"\"\"\n  r\n  \"\"\"## \"\"\"\n  \\u{1F600} \\\n  x\n  \"\"\" k=(u)#true {\n  /* c /* d */ */ child \\ // x\n  /-{ z } ; \u{2028} \u{85}é 😀\n}";
        for (i, _) in text.char_indices() {
            let _ = parse(&text[..i]);
            let _ = parse(&text[i..]);
        }
    }
}

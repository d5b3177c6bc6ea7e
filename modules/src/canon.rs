//! The canonical JSON form of an evaluation and its hashes.
//!
//! The form depends only on evaluated values: formatting, comments, the order of nodes
//! and options, and how files are split into imports do not change it. Unordered lists
//! (`port`, `after`, …) are sorted. Keys are sorted (serde_json's map is ordered).

use serde_json::{Map, Value as Json};

use crate::eval::{Evaluation, Node};
use crate::schema::Kind;
use crate::units::{DURATION_UNITS, standard_signal, write_signal_name};
use crate::value::Value;

/// A node's values as a JSON object nested by path (`limits.memory` → `{"limits":
/// {"memory": …}}`).
pub fn node_values(node: &Node) -> Json {
    let mut root = Map::new();
    for (spec, value) in node.options() {
        let mut json = value.to_json();
        if spec.unordered
            && let Json::Array(items) = &mut json
        {
            items.sort_by_cached_key(|v| v.to_string());
        }
        let mut obj = &mut root;
        let mut segments = spec.path.split('.').peekable();
        while let Some(seg) = segments.next() {
            if segments.peek().is_none() {
                obj.insert(seg.to_string(), json);
                break;
            }
            let entry = obj
                .entry(seg.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            let Json::Object(inner) = entry else { break };
            obj = inner;
        }
    }
    Json::Object(root)
}

/// A node's hash: blake3 over a type-tagged binary encoding of every option value in
/// schema order (the same information as [`node_values`], without building JSON).
pub fn node_hash(node: &Node) -> blake3::Hash {
    node_hash_with(node, &mut Vec::with_capacity(1024))
}

/// [`node_hash`] with a scratch buffer the caller reuses across nodes. The whole
/// encoding goes through one `update`: the same bytes as one update per option.
pub(crate) fn node_hash_with(node: &Node, buf: &mut Vec<u8>) -> blake3::Hash {
    buf.clear();
    buf.extend_from_slice(node.id.kind.name().as_bytes());
    buf.push(0);
    buf.extend_from_slice(node.id.name.as_bytes());
    buf.push(0);
    for (spec, value) in node.options() {
        buf.extend_from_slice(spec.path.as_bytes());
        buf.push(0);
        match value {
            Value::List(items) if spec.unordered => {
                // Each item encoded on its own, the encodings sorted.
                let mut encoded = Vec::with_capacity(64 * items.len());
                let mut ranges = Vec::with_capacity(items.len());
                for v in items {
                    let at = encoded.len();
                    encode(v, &mut encoded);
                    ranges.push(at..encoded.len());
                }
                ranges.sort_unstable_by(|a, b| encoded[a.clone()].cmp(&encoded[b.clone()]));
                buf.push(b'L');
                buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for r in ranges {
                    buf.extend_from_slice(&encoded[r]);
                }
            }
            v => encode(v, buf),
        }
    }
    blake3::hash(buf)
}

/// Appends `b` with its length in front.
fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends the text of `v` (an address, a duration) with its length in front, without
/// an intermediate `String`.
fn text(out: &mut Vec<u8>, v: impl FnOnce(&mut Utf8<'_>) -> std::fmt::Result) {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    // Writing to a Vec cannot fail.
    let _ = v(&mut Utf8(out));
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// `fmt::Write` into a byte buffer.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Type tag, then a self-delimiting payload, so distinct values never encode alike.
fn encode(v: &Value, out: &mut Vec<u8>) {
    use std::fmt::Write as _;
    match v {
        Value::Bool(b) => out.extend_from_slice(&[b'b', u8::from(*b)]),
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(b'f');
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            out.push(b's');
            bytes(out, s.as_bytes());
        }
        Value::Size(n) => {
            out.push(b'z');
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Max => out.push(b'M'),
        Value::Duration(n) => {
            out.push(b'd');
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Signal(n) => {
            out.push(b'g');
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Ip(ip) => {
            out.push(b'a');
            text(out, |w| write!(w, "{ip}"));
        }
        Value::Cidr(ip, len) => {
            out.push(b'c');
            text(out, |w| write!(w, "{ip}"));
            out.push(*len);
        }
        Value::List(items) => {
            out.push(b'l');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                encode(i, out);
            }
        }
        Value::Map(m) => {
            out.push(b'm');
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            for (k, v) in m {
                bytes(out, k.as_bytes());
                encode(v, out);
            }
        }
        Value::Record(m) => {
            out.push(b'r');
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            for (k, v) in m {
                bytes(out, k.as_bytes());
                encode(v, out);
            }
        }
    }
}

/// The generation hash: over every node's identity and hash, in canonical order.
///
/// The bytes are collected first and hashed with one `update` (the same hash as one
/// update per piece): blake3 then compresses whole chunks at once with SIMD instead of
/// going through its buffering for every few bytes.
pub fn host_hash(nodes: &[Node]) -> blake3::Hash {
    let mut buf: Vec<u8> = Vec::with_capacity(16 + nodes.len() * 56);
    buf.extend_from_slice(b"berth-host-v1\0");
    for n in nodes {
        buf.extend_from_slice(n.id.kind.name().as_bytes());
        buf.push(0);
        buf.extend_from_slice(n.id.name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(n.hash.as_bytes());
    }
    blake3::hash(&buf)
}

/// A hash as 64 lowercase hex digits, as `Hash::to_hex` writes them.
fn json_hex(out: &mut Vec<u8>, hash: &blake3::Hash) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 64];
    for (k, b) in hash.as_bytes().iter().enumerate() {
        hex[2 * k] = HEX[(b >> 4) as usize];
        hex[2 * k + 1] = HEX[(b & 0xf) as usize];
    }
    out.extend_from_slice(&hex);
}

/// `berth eval --json`: the hash, every node by kind and name with its own hash and
/// values, and the graph (edges and start layers by node id). Written node by node
/// straight from the values, so a large host never holds its JSON form in memory. Keys
/// come in sorted order, like every object in the canonical form; the bytes are those
/// of serde_json's compact form of [`node_values`] (a test checks that).
pub fn write_evaluation_json(eval: &Evaluation, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = JsonOut {
        buf: Vec::with_capacity(FLUSH_AT + 4096),
        scratch: Vec::new(),
        w,
    };
    out.buf.extend_from_slice(b"{\"containers\":");
    // A large graph's JSON is rendered on a thread of its own meanwhile (the containers
    // already keep this thread and one other busy; this evens them out).
    let (containers, graph) = crate::par::both(
        eval.graph.edges.len(),
        || out.kind(eval, Kind::Container),
        || {
            let mut buf = Vec::new();
            graph_json(eval, &mut buf);
            buf
        },
    );
    containers?;
    out.write_all()?;
    out.w.write_all(&graph)?;
    out.buf.extend_from_slice(b",\"hash\":\"");
    json_hex(&mut out.buf, &eval.hash);
    out.buf.extend_from_slice(b"\",\"host\":");
    out.node(eval.host());
    out.buf.extend_from_slice(b",\"networks\":");
    out.kind(eval, Kind::Network)?;
    out.buf.extend_from_slice(b",\"volumes\":");
    out.kind(eval, Kind::Volume)?;
    out.buf.push(b'}');
    out.write_all()
}

/// `,"graph":{"edges":[…],"layers":[…]}`.
fn graph_json(eval: &Evaluation, buf: &mut Vec<u8>) {
    buf.extend_from_slice(b",\"graph\":{\"edges\":[");
    for (k, e) in eval.graph.edges.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"from\":");
        json_id(buf, &eval.nodes[e.from]);
        buf.extend_from_slice(b",\"kind\":");
        json_str(buf, e.kind.name());
        buf.extend_from_slice(b",\"to\":");
        json_id(buf, &eval.nodes[e.to]);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"layers\":[");
    for (k, layer) in eval.graph.layers.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.push(b'[');
        for (j, &i) in layer.iter().enumerate() {
            if j > 0 {
                buf.push(b',');
            }
            json_id(buf, &eval.nodes[i]);
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b"]}");
}

const FLUSH_AT: usize = 1 << 16;

/// From this many nodes of a kind on, their JSON is rendered on two threads.
const PARALLEL_MIN: usize = 2048;

/// Nodes per chunk when rendering on two threads (about 256 KiB of JSON).
const CHUNK: usize = 256;

/// The output buffer and where it goes.
struct JsonOut<'w> {
    buf: Vec<u8>,
    /// For the items of unordered lists, which are sorted by their JSON text.
    scratch: Vec<u8>,
    w: &'w mut dyn std::io::Write,
}

impl JsonOut<'_> {
    fn write_all(&mut self) -> std::io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn flush_some(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.write_all()?;
        }
        Ok(())
    }

    /// `{"NAME":{"hash":…,"options":…},…}` for every node of a kind. Nodes are sorted
    /// by kind, so they are one slice.
    fn kind(&mut self, eval: &Evaluation, kind: Kind) -> std::io::Result<()> {
        let start = eval.nodes.partition_point(|n| n.id.kind < kind);
        let end = eval.nodes.partition_point(|n| n.id.kind <= kind);
        let nodes = &eval.nodes[start..end];
        self.buf.push(b'{');
        if nodes.len() >= PARALLEL_MIN {
            self.entries_parallel(nodes)?;
        } else {
            for (k, n) in nodes.iter().enumerate() {
                self.entry(n, k > 0);
                self.flush_some()?;
            }
        }
        self.buf.push(b'}');
        Ok(())
    }

    /// `"NAME":{…}` of one node, after a comma unless it is the first.
    fn entry(&mut self, n: &Node, comma: bool) {
        if comma {
            self.buf.push(b',');
        }
        json_str(&mut self.buf, &n.id.name);
        self.buf.push(b':');
        self.node(n);
    }

    /// The entries of many nodes, in chunks: the odd chunks rendered on another thread
    /// while this one renders and writes the even ones, then writes each odd chunk in
    /// its turn. The output is the same bytes as one pass; the other thread is at most
    /// two chunks ahead, and its buffers come back for reuse.
    fn entries_parallel(&mut self, nodes: &[Node]) -> std::io::Result<()> {
        let chunks: Vec<&[Node]> = nodes.chunks(CHUNK).collect();
        let chunks = &chunks;
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut sink = std::io::sink();
                let mut r = JsonOut {
                    buf: Vec::new(),
                    scratch: Vec::new(),
                    w: &mut sink,
                };
                for chunk in chunks.iter().skip(1).step_by(2) {
                    r.buf = empty_rx.try_recv().unwrap_or_default();
                    r.buf.clear();
                    for n in *chunk {
                        r.entry(n, true);
                    }
                    // Fails when this thread's output is no longer wanted.
                    if full_tx.send(std::mem::take(&mut r.buf)).is_err() {
                        return;
                    }
                }
            });
            let Ok(worker) = worker else {
                // No thread: one pass.
                for (k, n) in nodes.iter().enumerate() {
                    self.entry(n, k > 0);
                    self.flush_some()?;
                }
                return Ok(());
            };
            // Takes the receiving ends, so that they are gone (and the worker stops)
            // when this returns, also on an error.
            let write_in_turn = |out: &mut Self,
                                 full_rx: std::sync::mpsc::Receiver<Vec<u8>>,
                                 empty_tx: std::sync::mpsc::Sender<Vec<u8>>|
             -> std::io::Result<bool> {
                for (c, chunk) in chunks.iter().enumerate() {
                    if c % 2 == 0 {
                        for (k, n) in chunk.iter().enumerate() {
                            out.entry(n, c > 0 || k > 0);
                            out.flush_some()?;
                        }
                        continue;
                    }
                    let Ok(part) = full_rx.recv() else {
                        return Ok(false);
                    };
                    out.write_all()?;
                    out.w.write_all(&part)?;
                    // The worker may be done; then the buffer is simply dropped.
                    let _ = empty_tx.send(part);
                }
                Ok(true)
            };
            let complete = write_in_turn(self, full_rx, empty_tx)?;
            match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                // The worker stops early only by a panic.
                Ok(()) if !complete => Err(std::io::Error::other("JSON worker stopped")),
                Ok(()) => Ok(()),
            }
        })
    }

    fn node(&mut self, n: &Node) {
        self.buf.extend_from_slice(b"{\"hash\":\"");
        json_hex(&mut self.buf, &n.hash);
        self.buf.extend_from_slice(b"\",\"options\":");
        let layout = &layouts()[n.id.kind as usize];
        if !self.group(layout, n) {
            self.buf.extend_from_slice(b"{}");
        }
        self.buf.push(b'}');
    }

    /// One object of the nested options; writes nothing and returns false when no
    /// option under it has a value.
    fn group(&mut self, items: &[Item], n: &Node) -> bool {
        let open = self.buf.len();
        self.buf.push(b'{');
        let mut any = false;
        for item in items {
            let mark = self.buf.len();
            if any {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(&item.quoted);
            let wrote = match &item.child {
                Child::Leaf(i) => match &n.values[*i] {
                    Some(v) => {
                        let unordered = n.schema().options[*i].unordered;
                        self.value(v, unordered);
                        true
                    }
                    None => false,
                },
                Child::Group(inner) => self.group(inner, n),
            };
            if wrote {
                any = true;
            } else {
                self.buf.truncate(mark);
            }
        }
        if any {
            self.buf.push(b'}');
        } else {
            self.buf.truncate(open);
        }
        any
    }

    fn value(&mut self, v: &Value, unordered: bool) {
        match v {
            Value::List(items) if unordered && items.len() > 1 => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let mut ranges = Vec::with_capacity(items.len());
                for item in items {
                    let at = scratch.len();
                    json_value(&mut scratch, item);
                    ranges.push(at..scratch.len());
                }
                ranges.sort_by(|a, b| scratch[a.clone()].cmp(&scratch[b.clone()]));
                self.buf.push(b'[');
                for (k, r) in ranges.into_iter().enumerate() {
                    if k > 0 {
                        self.buf.push(b',');
                    }
                    self.buf.extend_from_slice(&scratch[r]);
                }
                self.buf.push(b']');
                self.scratch = scratch;
            }
            v => json_value(&mut self.buf, v),
        }
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    json_escaped(out, s.as_bytes());
    out.push(b'"');
}

/// What serde_json writes for each byte: 0 for the byte itself, else the letter after
/// the backslash (`u` for `\u00XX`).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// The bytes of a string without its quotes: runs that need no escape are copied whole.
fn json_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A node's id as a JSON string: `"container.web"`, `"host"`.
fn json_id(out: &mut Vec<u8>, n: &Node) {
    out.push(b'"');
    json_escaped(out, n.id.kind.name().as_bytes());
    if !n.id.name.is_empty() {
        out.push(b'.');
        json_escaped(out, n.id.name.as_bytes());
    }
    out.push(b'"');
}

/// The decimal digits of `n`, as `Display` writes them.
fn json_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn json_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    json_u64(out, n.unsigned_abs());
}

/// [`crate::units::write_duration`] into bytes.
fn json_duration(out: &mut Vec<u8>, mut ns: u64) {
    if ns == 0 {
        out.extend_from_slice(b"0s");
        return;
    }
    for (unit, mult) in DURATION_UNITS {
        if ns >= mult {
            json_u64(out, ns / mult);
            out.extend_from_slice(unit.as_bytes());
            ns %= mult;
        }
    }
}

/// An address as `Display` writes it (IPv4 by hand: `fmt` is slow for four bytes).
fn json_ip(out: &mut Vec<u8>, ip: &std::net::IpAddr) {
    use std::fmt::Write as _;
    match ip {
        std::net::IpAddr::V4(a) => {
            for (k, b) in a.octets().into_iter().enumerate() {
                if k > 0 {
                    out.push(b'.');
                }
                json_u64(out, u64::from(b));
            }
        }
        std::net::IpAddr::V6(a) => {
            let _ = write!(Utf8(out), "{a}");
        }
    }
}

/// A string that needs no escaping (numbers, addresses, durations, signal names).
fn json_plain(out: &mut Vec<u8>, v: impl FnOnce(&mut Utf8<'_>) -> std::fmt::Result) {
    out.push(b'"');
    let _ = v(&mut Utf8(out));
    out.push(b'"');
}

/// [`Value::to_json`], written as serde_json writes it.
fn json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => json_i64(out, *i),
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        Value::Str(s) => json_str(out, s),
        Value::Size(b) => json_u64(out, *b),
        Value::Max => out.extend_from_slice(b"\"max\""),
        Value::Duration(ns) => {
            out.push(b'"');
            json_duration(out, *ns);
            out.push(b'"');
        }
        Value::Signal(n) => match standard_signal(*n) {
            Some(name) => {
                out.extend_from_slice(b"\"SIG");
                out.extend_from_slice(name.as_bytes());
                out.push(b'"');
            }
            None => json_plain(out, |w| write_signal_name(*n, w)),
        },
        Value::Ip(ip) => {
            out.push(b'"');
            json_ip(out, ip);
            out.push(b'"');
        }
        Value::Cidr(ip, len) => {
            out.push(b'"');
            json_ip(out, ip);
            out.push(b'/');
            json_u64(out, u64::from(*len));
            out.push(b'"');
        }
        Value::List(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                json_value(out, item);
            }
            out.push(b']');
        }
        Value::Map(m) => json_object(out, m.iter().map(|(k, v)| (k.as_str(), v))),
        Value::Record(m) => json_object(out, m.iter().map(|(k, v)| (*k, v))),
    }
}

/// `{"KEY":VALUE,…}` in the order given (sorted, from a BTreeMap).
fn json_object<'v>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'v str, &'v Value)>) {
    out.push(b'{');
    for (k, (key, item)) in entries.enumerate() {
        if k > 0 {
            out.push(b',');
        }
        json_str(out, key);
        out.push(b':');
        json_value(out, item);
    }
    out.push(b'}');
}

/// The options of a kind as nested objects: one level per path segment, keys sorted
/// (the order of serde_json's map). Built once per process.
#[derive(Debug)]
struct Item {
    key: &'static str,
    /// `"key":`, as written before the value.
    quoted: Vec<u8>,
    child: Child,
}

#[derive(Debug)]
enum Child {
    /// Index into the kind's options.
    Leaf(usize),
    Group(Vec<Item>),
}

fn layouts() -> &'static [Vec<Item>; 4] {
    static LAYOUTS: std::sync::OnceLock<[Vec<Item>; 4]> = std::sync::OnceLock::new();
    LAYOUTS.get_or_init(|| Kind::ALL.map(|k| layout(k.schema().options)))
}

fn layout(options: &'static [crate::schema::OptionSpec]) -> Vec<Item> {
    let mut root: Vec<Item> = Vec::new();
    for (i, o) in options.iter().enumerate() {
        let mut level = &mut root;
        let mut segments = o.path.split('.').peekable();
        while let Some(seg) = segments.next() {
            let last = segments.peek().is_none();
            let pos = match level.iter().position(|it| it.key == seg) {
                Some(p) => p,
                None => {
                    let mut quoted = Vec::with_capacity(seg.len() + 3);
                    json_str(&mut quoted, seg);
                    quoted.push(b':');
                    level.push(Item {
                        key: seg,
                        quoted,
                        child: if last {
                            Child::Leaf(i)
                        } else {
                            Child::Group(Vec::new())
                        },
                    });
                    level.len() - 1
                }
            };
            match &mut level[pos].child {
                Child::Group(inner) if !last => level = inner,
                // The schema has no path that is also a block of other paths (a test
                // checks that), so this is the leaf just pushed.
                _ => break,
            }
        }
    }
    sort(&mut root);
    root
}

fn sort(items: &mut [Item]) {
    items.sort_by(|a, b| a.key.cmp(b.key));
    for it in items {
        if let Child::Group(inner) = &mut it.child {
            sort(inner);
        }
    }
}

/// [`write_evaluation_json`] as a value, for tests and small hosts.
pub fn evaluation_json(eval: &Evaluation) -> Json {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail, and the writer produces valid JSON.
    let _ = write_evaluation_json(eval, &mut buf);
    serde_json::from_slice(&buf).unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nested layout of the JSON form needs every path to be either an option or a
    /// block of options, never both.
    #[test]
    fn no_option_path_is_also_a_block() {
        for kind in Kind::ALL {
            let options = kind.schema().options;
            for a in options {
                for b in options {
                    assert!(
                        !b.path
                            .strip_prefix(a.path)
                            .is_some_and(|r| r.starts_with('.')),
                        "{kind}: `{}` is an option and a block (`{}`)",
                        a.path,
                        b.path
                    );
                }
            }
        }
    }
}

//! The canonical JSON form of an evaluation and its hashes.
//!
//! The form depends only on evaluated values: formatting, comments, the order of nodes
//! and options, and how files are split into imports do not change it. Unordered lists
//! (`port`, `after`, …) are sorted. Keys are sorted (serde_json's map is ordered).

use serde_json::{Map, Value as Json, json};

use crate::eval::{Evaluation, Node};
use crate::schema::Kind;
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
    let mut h = blake3::Hasher::new();
    h.update(node.id.kind.name().as_bytes());
    h.update(&[0]);
    h.update(node.id.name.as_bytes());
    h.update(&[0]);
    let mut buf = Vec::with_capacity(256);
    for (spec, value) in node.options() {
        buf.clear();
        buf.extend_from_slice(spec.path.as_bytes());
        buf.push(0);
        match value {
            Value::List(items) if spec.unordered => {
                let mut encoded: Vec<Vec<u8>> = items
                    .iter()
                    .map(|v| {
                        let mut b = Vec::new();
                        encode(v, &mut b);
                        b
                    })
                    .collect();
                encoded.sort_unstable();
                buf.push(b'L');
                buf.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
                for e in encoded {
                    buf.extend_from_slice(&e);
                }
            }
            v => encode(v, &mut buf),
        }
        h.update(&buf);
    }
    h.finalize()
}

/// Type tag, then a self-delimiting payload, so distinct values never encode alike.
fn encode(v: &Value, out: &mut Vec<u8>) {
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
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
            bytes(out, ip.to_string().as_bytes());
        }
        Value::Cidr(ip, len) => {
            out.push(b'c');
            bytes(out, ip.to_string().as_bytes());
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
pub fn host_hash(nodes: &[Node]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"berth-host-v1\0");
    for n in nodes {
        h.update(n.id.kind.name().as_bytes());
        h.update(&[0]);
        h.update(n.id.name.as_bytes());
        h.update(&[0]);
        h.update(n.hash.as_bytes());
    }
    h.finalize()
}

/// `berth eval --json`: the hash, every node by kind and name with its own hash and
/// values, and the graph (edges and start layers by node id). Written node by node, so
/// a large host never holds its whole JSON form in memory. Keys come in sorted order,
/// like every object in the canonical form.
pub fn write_evaluation_json(eval: &Evaluation, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let node_json =
        |n: &Node| json!({ "hash": n.hash.to_hex().as_str(), "options": node_values(n) });
    let id = |i: usize| eval.nodes[i].id.to_string();
    let kinds = |kind: Kind, w: &mut dyn std::io::Write| -> std::io::Result<()> {
        w.write_all(b"{")?;
        for (k, n) in eval.of_kind(kind).enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, &n.id.name)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, &node_json(n))?;
        }
        w.write_all(b"}")
    };
    w.write_all(b"{\"containers\":")?;
    kinds(Kind::Container, w)?;
    let edges: Vec<Json> = eval
        .graph
        .edges
        .iter()
        .map(|e| json!({ "from": id(e.from), "kind": e.kind.name(), "to": id(e.to) }))
        .collect();
    let layers: Vec<Json> = eval
        .graph
        .layers
        .iter()
        .map(|l| Json::Array(l.iter().map(|&i| json!(id(i))).collect()))
        .collect();
    w.write_all(b",\"graph\":")?;
    serde_json::to_writer(&mut *w, &json!({ "edges": edges, "layers": layers }))?;
    write!(w, ",\"hash\":\"{}\",\"host\":", eval.hash.to_hex())?;
    serde_json::to_writer(&mut *w, &node_json(eval.host()))?;
    w.write_all(b",\"networks\":")?;
    kinds(Kind::Network, w)?;
    w.write_all(b",\"volumes\":")?;
    kinds(Kind::Volume, w)?;
    w.write_all(b"}")
}

/// [`write_evaluation_json`] as a value, for tests and small hosts.
pub fn evaluation_json(eval: &Evaluation) -> Json {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail, and the writer produces valid JSON.
    let _ = write_evaluation_json(eval, &mut buf);
    serde_json::from_slice(&buf).unwrap_or(Json::Null)
}

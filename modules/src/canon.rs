//! The canonical JSON form of an evaluation and its hashes.
//!
//! The form depends only on evaluated values: formatting, comments, the order of nodes
//! and options, and how files are split into imports do not change it. Unordered lists
//! (`port`, `after`, …) are sorted. Keys are sorted (serde_json's map is ordered).

use serde_json::{Map, Value as Json, json};

use crate::eval::{Evaluation, Node};
use crate::schema::Kind;

/// A node's values as a JSON object nested by path (`limits.memory` → `{"limits":
/// {"memory": …}}`).
pub fn node_values(node: &Node) -> Json {
    let mut root = Map::new();
    for (spec, value) in node.options() {
        let mut json = value.to_json();
        if spec.unordered
            && let Json::Array(items) = &mut json {
                items.sort_by_cached_key(|v| v.to_string());
            }
        let mut obj = &mut root;
        let mut segments = spec.path.split('.').peekable();
        while let Some(seg) = segments.next() {
            if segments.peek().is_none() {
                obj.insert(seg.to_string(), json);
                break;
            }
            let entry = obj.entry(seg.to_string()).or_insert_with(|| Json::Object(Map::new()));
            let Json::Object(inner) = entry else { break };
            obj = inner;
        }
    }
    Json::Object(root)
}

pub fn node_hash(node: &Node) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(node.id.kind.name().as_bytes());
    h.update(&[0]);
    h.update(node.id.name.as_bytes());
    h.update(&[0]);
    h.update(node_values(node).to_string().as_bytes());
    h.finalize()
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
/// values, and the graph (edges and start layers by node id).
pub fn evaluation_json(eval: &Evaluation) -> Json {
    let node_json = |n: &Node| json!({ "hash": n.hash.to_hex().as_str(), "options": node_values(n) });
    let mut out = Map::new();
    out.insert("hash".into(), json!(eval.hash.to_hex().as_str()));
    out.insert("host".into(), node_json(eval.host()));
    for (kind, key) in [(Kind::Network, "networks"), (Kind::Volume, "volumes"), (Kind::Container, "containers")] {
        let nodes: Map<String, Json> = eval.of_kind(kind).map(|n| (n.id.name.clone(), node_json(n))).collect();
        out.insert(key.into(), Json::Object(nodes));
    }
    let id = |i: usize| eval.nodes[i].id.to_string();
    let edges: Vec<Json> = eval.graph.edges.iter().map(|e| json!({ "from": id(e.from), "to": id(e.to), "kind": e.kind.name() })).collect();
    let layers: Vec<Json> = eval.graph.layers.iter().map(|l| Json::Array(l.iter().map(|&i| json!(id(i))).collect())).collect();
    out.insert("graph".into(), json!({ "edges": edges, "layers": layers }));
    Json::Object(out)
}

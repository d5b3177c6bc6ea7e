//! The evaluated host written back as KDL: every node with its effective values,
//! defaults included.

use berth_modules::schema::Shape;
use berth_modules::{Evaluation, Node, Value};

fn kdl_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One value as KDL entries.
fn entries(v: &Value) -> String {
    match v {
        Value::Str(s) => kdl_str(s),
        Value::Int(i) => i.to_string(),
        Value::List(items) => items.iter().map(entries).collect::<Vec<_>>().join(" "),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| format!("{}={}", kdl_key(k), entries(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn kdl_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !k.starts_with(|c: char| c.is_ascii_digit());
    if bare { k.to_string() } else { kdl_str(k) }
}

/// A record: positional fields in schema order, then properties.
fn record(fields: &[berth_modules::schema::Field], v: &Value) -> String {
    let mut parts = Vec::new();
    for f in fields {
        let Some(fv) = v.field(f.name) else { continue };
        if f.positional {
            parts.push(entries(fv));
        } else {
            parts.push(format!("{}={}", f.name, entries(fv)));
        }
    }
    parts.join(" ")
}

fn node(out: &mut String, n: &Node) {
    let header = if n.id.name.is_empty() {
        n.id.kind.to_string()
    } else {
        format!("{} {}", n.id.kind, kdl_str(&n.id.name))
    };
    out.push_str(&format!("{header} {{\n"));
    let mut block: Option<&str> = None;
    for (spec, v) in n.options() {
        let (prefix, leaf) = spec
            .path
            .rsplit_once('.')
            .map_or((None, spec.path), |(p, l)| (Some(p), l));
        if block != prefix {
            if block.is_some() {
                out.push_str("    }\n");
            }
            if let Some(p) = prefix {
                out.push_str(&format!("    {p} {{\n"));
            }
            block = prefix;
        }
        let indent = if prefix.is_some() { "        " } else { "    " };
        match (spec.shape, v) {
            (Shape::Records(fields), Value::List(items)) => {
                for item in items {
                    out.push_str(&format!("{indent}{leaf} {}\n", record(fields, item)));
                }
            }
            (Shape::Ready, r) => {
                let kind = r.field("kind").map(entries).unwrap_or_default();
                let extra = r
                    .field("port")
                    .or(r.field("command"))
                    .map(|x| format!(" {}", entries(x)))
                    .unwrap_or_default();
                let props = ["interval", "timeout", "retries"]
                    .iter()
                    .filter_map(|k| r.field(k).map(|x| format!(" {k}={}", entries(x))))
                    .collect::<String>();
                out.push_str(&format!("{indent}{leaf} {kind}{extra}{props}\n"));
            }
            (_, Value::List(items)) if items.is_empty() => {}
            (_, Value::Map(m)) if m.is_empty() => {}
            _ => out.push_str(&format!("{indent}{leaf} {}\n", entries(v))),
        }
    }
    if block.is_some() {
        out.push_str("    }\n");
    }
    out.push_str("}\n");
}

pub fn host_kdl(ev: &Evaluation) -> String {
    let mut out = format!("// generation {}\n", ev.hash.to_hex());
    for n in &ev.nodes {
        node(&mut out, n);
    }
    out
}

use std::io::Write;
use std::path::Path;

use super::{INVALID, leak, load};

/// `berth graph FILE [--dot]`: start layers and edges, or Graphviz.
pub fn graph(file: &Path, dot: bool, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let Some(ev) = load(file, err, color) else {
        return INVALID;
    };
    let g = &ev.graph;
    let id = |i: usize| ev.nodes[i].id.to_string();
    let mut s = String::new();
    if dot {
        s.push_str("digraph berth {\n  rankdir=LR;\n  node [shape=box];\n");
        for (l, layer) in g.layers.iter().enumerate() {
            s.push_str(&format!("  {{ rank=same; // layer {l}\n"));
            for &i in layer {
                s.push_str(&format!("    \"{}\";\n", id(i)));
            }
            s.push_str("  }\n");
        }
        for e in &g.edges {
            let style = match e.kind {
                berth_modules::graph::EdgeKind::After
                | berth_modules::graph::EdgeKind::Requires => "solid",
                _ => "dashed",
            };
            s.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{}\", style={style}];\n",
                id(e.from),
                id(e.to),
                e.kind.name()
            ));
        }
        s.push_str("}\n");
    } else {
        s.push_str(&format!("{} nodes, {} edges, {} start layers (each layer starts in parallel once the previous ones are up)\n", g.layers.iter().map(Vec::len).sum::<usize>(), g.edges.len(), g.layers.len()));
        for (l, layer) in g.layers.iter().enumerate() {
            s.push_str(&format!("layer {l}:\n"));
            for &i in layer {
                let deps: Vec<String> = g
                    .dependencies(i)
                    .map(|e| format!("{} ({})", id(e.to), e.kind.name()))
                    .collect();
                if deps.is_empty() {
                    s.push_str(&format!("  {}\n", id(i)));
                } else {
                    s.push_str(&format!("  {}  <- {}\n", id(i), deps.join(", ")));
                }
            }
        }
    }
    let _ = out.write_all(s.as_bytes());
    leak(ev);
    0
}

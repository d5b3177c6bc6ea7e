//! The dependency graph: explicit edges (`after`, `requires`) and implicit ones (a
//! container's networks and volumes), checked for dangling references and cycles, and
//! cut into start layers: everything in one layer can start in parallel once the
//! layers before it are up.

use berth_config::diag::did_you_mean;
use berth_config::kdl::Span;
use berth_config::{Diagnostic, FileId, Tree};

use berth_config::fasthash::FastMap;

use crate::eval::{Node, slot};
use crate::provenance::{item_places_into, value_place};
use crate::schema::Kind;
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    After,
    Requires,
    Network,
    Volume,
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::After => "after",
            EdgeKind::Requires => "requires",
            EdgeKind::Network => "network",
            EdgeKind::Volume => "volume",
        }
    }
}

/// `from` depends on `to`: it starts after `to` is up and stops before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    /// Where the reference is written.
    pub file: FileId,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct HostGraph {
    /// Indexes into `Evaluation::nodes`, sorted by (from, to, kind).
    pub edges: Vec<Edge>,
    /// Start order: each layer's nodes depend only on nodes of earlier layers. The host
    /// node is not in the graph: it is set up before everything.
    pub layers: Vec<Vec<usize>>,
}

impl HostGraph {
    /// What `node` depends on.
    pub fn dependencies(&self, node: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.from == node)
    }
    /// What depends on `node`.
    pub fn dependents(&self, node: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.to == node)
    }
}

pub(crate) fn build(tree: &Tree, nodes: &[Node], diags: &mut Vec<Diagnostic>) -> HostGraph {
    let mut edges = Vec::new();
    let names = |kind: Kind| {
        nodes
            .iter()
            .filter(move |n| n.id.kind == kind)
            .map(|n| n.id.name.as_str())
    };
    // Nodes by kind and name: most nodes are looked up several times.
    let index: FastMap<(Kind, &str), usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| ((n.id.kind, n.id.name.as_str()), i))
        .collect();
    let find = |kind: Kind, name: &str| index.get(&(kind, name)).copied();
    let (after, requires, network, mount) = (
        slot(Kind::Container, "after"),
        slot(Kind::Container, "requires"),
        slot(Kind::Container, "network"),
        slot(Kind::Container, "mount"),
    );
    let missing = |diags: &mut Vec<Diagnostic>,
                   from: &Node,
                   kind: Kind,
                   name: &str,
                   place: (FileId, Span),
                   help: Option<&str>| {
        let mut d = Diagnostic::error(format!("{} refers to unknown {kind} `{name}`", from.id))
            .label(place.0, place.1, format!("no {kind} `{name}`"));
        d = match (did_you_mean(name, names(kind)), help) {
            (Some(s), _) => d.help(format!("did you mean `{s}`?")),
            (None, Some(h)) => d.help(h.to_string()),
            (None, None) => d.help(format!("declare it with `{kind} \"{name}\" {{ … }}`")),
        };
        diags.push(d);
    };

    // Where each item of a list was written: one buffer for all nodes, filled only for
    // lists that have items.
    let mut places = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        // This node's edges, all `from: i`: sorted on their own below, so the whole list
        // comes out sorted by (from, to, kind) without sorting all of it at once.
        let first = edges.len();
        match n.id.kind {
            Kind::Container => {
                for (path, at, kind) in [
                    ("after", after, EdgeKind::After),
                    ("requires", requires, EdgeKind::Requires),
                ] {
                    let items = n.at(at).map(Value::as_list).unwrap_or_default();
                    if items.is_empty() {
                        continue;
                    }
                    item_places_into(tree, n, path, true, &mut places);
                    for (k, v) in items.iter().enumerate() {
                        let Some(name) = v.as_str() else { continue };
                        let place = places.get(k).copied().unwrap_or_default();
                        match find(Kind::Container, name) {
                            Some(j) if j == i => diags.push(
                                Diagnostic::error(format!("{} cannot depend on itself", n.id))
                                    .label(place.0, place.1, "itself"),
                            ),
                            Some(j) => edges.push(Edge {
                                from: i,
                                to: j,
                                kind,
                                file: place.0,
                                span: place.1,
                            }),
                            None => missing(diags, n, Kind::Container, name, place, None),
                        }
                    }
                }
                let nets = n.at(network).map(Value::as_list).unwrap_or_default();
                if !nets.is_empty() {
                    item_places_into(tree, n, "network", false, &mut places);
                }
                let special = nets
                    .iter()
                    .filter(|v| {
                        matches!(
                            v.field("name").and_then(Value::as_str),
                            Some("host" | "none")
                        )
                    })
                    .count();
                if special > 0 && nets.len() > 1 {
                    let place = places.first().copied().unwrap_or_default();
                    diags.push(
                        Diagnostic::error(format!("{} mixes `network \"host\"` or `\"none\"` with other networks", n.id))
                            .label(place.0, place.1, "here")
                            .help("\"host\" shares the host's network namespace and \"none\" gives loopback only; neither combines with other attachments"),
                    );
                }
                fn name_of(v: &Value) -> Option<&str> {
                    v.field("name").and_then(Value::as_str)
                }
                for (k, v) in nets.iter().enumerate() {
                    let Some(name) = name_of(v) else {
                        continue;
                    };
                    let place = places.get(k).copied().unwrap_or_default();
                    // Attached before: an earlier item with the same name (a handful of
                    // items; no set to allocate per container).
                    if nets[..k].iter().any(|w| name_of(w) == Some(name)) {
                        diags.push(
                            Diagnostic::error(format!(
                                "{} is attached to network `{name}` twice",
                                n.id
                            ))
                            .label(place.0, place.1, "again here"),
                        );
                        continue;
                    }
                    if name == "host" || name == "none" {
                        continue;
                    }
                    match find(Kind::Network, name) {
                        Some(j) => edges.push(Edge {
                            from: i,
                            to: j,
                            kind: EdgeKind::Network,
                            file: place.0,
                            span: place.1,
                        }),
                        None => missing(diags, n, Kind::Network, name, place, None),
                    }
                }
                let mounts = n.at(mount).map(Value::as_list).unwrap_or_default();
                if !mounts.is_empty() {
                    item_places_into(tree, n, "mount", false, &mut places);
                }
                for (k, v) in mounts.iter().enumerate() {
                    let Some(source) = v.field("source").and_then(Value::as_str) else {
                        continue;
                    };
                    if source.starts_with('/') {
                        continue;
                    }
                    let place = places.get(k).copied().unwrap_or_default();
                    match find(Kind::Volume, source) {
                        Some(j) => edges.push(Edge {
                            from: i,
                            to: j,
                            kind: EdgeKind::Volume,
                            file: place.0,
                            span: place.1,
                        }),
                        None => missing(
                            diags,
                            n,
                            Kind::Volume,
                            source,
                            place,
                            Some(
                                "declare it with `volume \"NAME\"`, or give an absolute path to bind a host directory",
                            ),
                        ),
                    }
                }
            }
            Kind::Network => {
                let allowed = n.get("allow").map(Value::as_list).unwrap_or_default();
                if !allowed.is_empty() {
                    item_places_into(tree, n, "allow", true, &mut places);
                }
                for (k, v) in allowed.iter().enumerate() {
                    let Some(name) = v.as_str() else { continue };
                    if find(Kind::Network, name).is_none() {
                        missing(
                            diags,
                            n,
                            Kind::Network,
                            name,
                            places.get(k).copied().unwrap_or_default(),
                            None,
                        );
                    }
                }
            }
            Kind::Host | Kind::Volume => {}
        }
        edges[first..].sort_by_key(|e| (e.to, e.kind));
    }
    debug_assert!(edges.is_sorted_by_key(|e| (e.from, e.to, e.kind)));
    edges.dedup_by_key(|e| (e.from, e.to, e.kind));
    let layers = layers(tree, nodes, &edges, diags);
    HostGraph { edges, layers }
}

/// Kahn's algorithm by rounds; what is left over sits on a cycle, which is reported.
fn layers(
    tree: &Tree,
    nodes: &[Node],
    edges: &[Edge],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Vec<usize>> {
    let n = nodes.len();
    let mut pending = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        pending[e.from] += 1;
        dependents[e.to].push(e.from);
    }
    let mut current: Vec<usize> = (0..n)
        .filter(|&i| nodes[i].id.kind != Kind::Host && pending[i] == 0)
        .collect();
    let mut placed = current.len();
    let mut layers = Vec::new();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &d in &dependents[i] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    next.push(d);
                }
            }
        }
        next.sort_unstable();
        placed += next.len();
        layers.push(std::mem::replace(&mut current, next));
    }
    let graph_nodes = nodes.iter().filter(|x| x.id.kind != Kind::Host).count();
    if placed < graph_nodes {
        report_cycles(tree, nodes, edges, &pending, diags);
    }
    layers
}

/// Finds one cycle through the nodes left with pending dependencies, reports it with
/// the place of every reference on it, and repeats for cycles not yet reported.
fn report_cycles(
    tree: &Tree,
    nodes: &[Node],
    edges: &[Edge],
    pending: &[usize],
    diags: &mut Vec<Diagnostic>,
) {
    let stuck: Vec<bool> = pending.iter().map(|&p| p > 0).collect();
    let mut reported = vec![false; nodes.len()];
    for start in 0..nodes.len() {
        if !stuck[start] || reported[start] {
            continue;
        }
        // Walk dependencies among stuck nodes until a node repeats: that closes a cycle.
        let mut path: Vec<usize> = vec![start];
        let mut via: Vec<&Edge> = Vec::new();
        let mut pos = vec![usize::MAX; nodes.len()];
        pos[start] = 0;
        let cycle_start = loop {
            let Some(&cur) = path.last() else { break None };
            let Some(e) = edges.iter().find(|e| e.from == cur && stuck[e.to]) else {
                break None;
            };
            via.push(e);
            if pos[e.to] != usize::MAX {
                break Some(pos[e.to]);
            }
            pos[e.to] = path.len();
            path.push(e.to);
        };
        let Some(cs) = cycle_start else { continue };
        let cycle: Vec<usize> = path[cs..].to_vec();
        if cycle.iter().any(|&c| reported[c]) {
            continue;
        }
        for &c in &cycle {
            reported[c] = true;
        }
        let mut names: Vec<String> = cycle.iter().map(|&c| nodes[c].id.to_string()).collect();
        names.push(nodes[cycle[0]].id.to_string());
        let mut d = Diagnostic::error(format!("dependency cycle: {}", names.join(" → ")));
        for e in &via[cs..] {
            d = d.label(
                e.file,
                e.span,
                format!("{} {} {}", nodes[e.from].id, e.kind.name(), nodes[e.to].id),
            );
        }
        if d.labels.is_empty()
            && let Some((f, s)) = value_place(tree, &nodes[cycle[0]], "after")
        {
            d = d.label(f, s, "on the cycle");
        }
        diags.push(
            d.help("remove one of these dependencies; containers on a cycle could never start"),
        );
    }
}

//! Evaluation: a loaded [`Tree`] becomes typed, merged, validated nodes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use berth_config::diag::did_you_mean;
use berth_config::fasthash::FastMap;
use berth_config::{Diagnostic, Entity, OptionDef, Priority, Source, Tree, load};

use crate::check::{Typed, check_def, default_value};
use crate::graph::{self, HostGraph};
use crate::par::{both, halves};
use crate::schema::{Dflt, KINDS, Kind, KindSchema, OptionSpec, Shape};
use crate::value::Value;
use crate::{canon, netcheck};

/// A node of the host: `container "web"`, `network "lan"`, … or the host itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub kind: Kind,
    /// Empty for the host.
    pub name: String,
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.name)
        }
    }
}

/// One evaluated node: every option of its kind, in schema order, `None` where unset and
/// without default.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    /// Index of the node's entity in the tree (for provenance); `None` for a host
    /// nobody wrote.
    pub entity: Option<usize>,
    pub values: Vec<Option<Value>>,
    pub hash: blake3::Hash,
}

impl Node {
    pub fn schema(&self) -> &'static KindSchema {
        self.id.kind.schema()
    }
    /// The value of an option by path, e.g. `limits.memory`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let (i, _) = self.schema().option(path)?;
        self.values[i].as_ref()
    }
    /// The value at an index from [`slot`]: for looking up one option in many nodes
    /// of a kind without searching the schema for its path each time.
    pub(crate) fn at(&self, slot: Option<usize>) -> Option<&Value> {
        slot.and_then(|i| self.values.get(i)?.as_ref())
    }
    pub fn options(&self) -> impl Iterator<Item = (&'static OptionSpec, &Value)> {
        self.schema()
            .options
            .iter()
            .zip(&self.values)
            .filter_map(|(o, v)| v.as_ref().map(|v| (o, v)))
    }
}

/// A valid, evaluated host.
#[derive(Debug)]
pub struct Evaluation {
    pub tree: Tree,
    /// The host first, then networks, volumes and containers, each sorted by name.
    pub nodes: Vec<Node>,
    pub graph: HostGraph,
    /// The generation hash: changes exactly when an evaluated value changes.
    pub hash: blake3::Hash,
    pub warnings: Vec<Diagnostic>,
}

impl Evaluation {
    pub fn node(&self, kind: Kind, name: &str) -> Option<&Node> {
        find_node(&self.nodes, kind, name).map(|i| &self.nodes[i])
    }
    pub fn host(&self) -> &Node {
        &self.nodes[0]
    }
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.id.kind == kind)
    }
}

/// The index of option `path` in the schema of `kind`, for [`Node::at`].
pub(crate) fn slot(kind: Kind, path: &str) -> Option<usize> {
    kind.schema().option(path).map(|(i, _)| i)
}

/// The index of a node in nodes sorted by id (as [`Evaluation::nodes`] are).
pub(crate) fn find_node(nodes: &[Node], kind: Kind, name: &str) -> Option<usize> {
    nodes
        .binary_search_by(|n| (n.id.kind, n.id.name.as_str()).cmp(&(kind, name)))
        .ok()
}

/// An evaluation that found errors: the tree (for rendering) and every diagnostic.
#[derive(Debug)]
pub struct Failure {
    pub tree: Tree,
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads and evaluates the host rooted at `root`.
#[allow(clippy::result_large_err)]
pub fn evaluate(source: &dyn Source, root: &Path) -> Result<Evaluation, Failure> {
    let (tree, diags) = load(source, root, &KINDS);
    evaluate_tree(tree, diags)
}

/// Evaluates a loaded tree; `diags` are the loader's.
#[allow(clippy::result_large_err)]
pub fn evaluate_tree(tree: Tree, mut diags: Vec<Diagnostic>) -> Result<Evaluation, Failure> {
    let lookups: Vec<FastMap<&'static str, usize>> = Kind::ALL
        .iter()
        .map(|k| {
            k.schema()
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| (o.path, i))
                .collect()
        })
        .collect();
    let defaults: Vec<Vec<Option<Value>>> = Kind::ALL
        .iter()
        .map(|k| {
            k.schema()
                .options
                .iter()
                .map(|o| o.default.and_then(|d| scalar_default(o, d)))
                .collect()
        })
        .collect();

    // Entities resolve independently: a large host is cut in two halves, the second
    // resolved on another thread. Nodes and diagnostics are joined in entity order, so
    // the result is the same as one pass.
    let resolve_range = |range: std::ops::Range<usize>| {
        let mut nodes: Vec<Node> = Vec::with_capacity(range.len() + 1);
        let mut diags = Vec::new();
        let mut host_seen = false;
        for ei in range {
            let entity = &tree.entities[ei];
            let Some(kind) = Kind::from_name(&entity.kind) else {
                continue;
            };
            if kind == Kind::Host {
                host_seen = true;
            } else {
                check_name(kind, entity, &mut diags);
            }
            let ki = kind as usize;
            let values =
                resolve_entity(&tree, kind, entity, &lookups[ki], &defaults[ki], &mut diags);
            nodes.push(Node {
                id: NodeId {
                    kind,
                    name: entity.name.clone(),
                },
                entity: Some(ei),
                values,
                hash: blake3::Hash::from_bytes([0; 32]),
            });
        }
        (nodes, diags, host_seen)
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(tree.entities.len() + 1);
    let mut host_seen = false;
    for (part, part_diags, seen) in halves(tree.entities.len(), resolve_range) {
        nodes.extend(part);
        diags.extend(part_diags);
        host_seen |= seen;
    }
    if !host_seen {
        nodes.push(Node {
            id: NodeId {
                kind: Kind::Host,
                name: String::new(),
            },
            entity: None,
            values: defaults[Kind::Host as usize].clone(),
            hash: blake3::Hash::from_bytes([0; 32]),
        });
    }
    // Ids are unique (one entity per kind and name), so unstable is the same order.
    nodes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    derive_defaults(&mut nodes);

    // The network checks and the graph read the nodes independently: on a large host
    // the checks run on another thread. Their diagnostics keep the one-pass order.
    let (graph, net_diags) = both(
        nodes.len(),
        || {
            let mut d = Vec::new();
            let g = graph::build(&tree, &nodes, &mut d);
            (g, d)
        },
        || {
            let mut d = Vec::new();
            netcheck::check(&tree, &nodes, &mut d);
            d
        },
    );
    let (graph, graph_diags) = graph;
    diags.extend(net_diags);
    diags.extend(graph_diags);

    if diags.iter().any(Diagnostic::is_error) {
        berth_config::diag::sort_dedup(&mut diags);
        return Err(Failure {
            tree,
            diagnostics: diags,
        });
    }
    let hashes = halves(nodes.len(), |range| {
        let mut buf = Vec::with_capacity(4096);
        nodes[range]
            .iter()
            .map(|n| canon::node_hash_with(n, &mut buf))
            .collect::<Vec<_>>()
    });
    for (n, h) in nodes.iter_mut().zip(hashes.into_iter().flatten()) {
        n.hash = h;
    }
    let hash = canon::host_hash(&nodes);
    Ok(Evaluation {
        tree,
        nodes,
        graph,
        hash,
        warnings: diags,
    })
}

fn scalar_default(o: &OptionSpec, d: Dflt) -> Option<Value> {
    match o.shape {
        Shape::Scalar(ty) => default_value(ty, d),
        _ => None,
    }
}

/// Names become cgroup directories, log file names, hostnames and interface names, so
/// they are restricted to what is safe in all of those.
fn check_name(kind: Kind, e: &Entity, diags: &mut Vec<Diagnostic>) {
    let ok = e.name.len() <= 63
        && e.name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && e.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let reserved = kind == Kind::Network && (e.name == "host" || e.name == "none");
    if ok && !reserved {
        return;
    }
    let Some(decl) = e.decls.first() else { return };
    let d = if reserved {
        Diagnostic::error(format!("a network cannot be named `{}`", e.name))
            .label(decl.file, decl.span, "reserved")
            .help("`network \"host\"` and `network \"none\"` in a container mean the host's network and no network")
    } else {
        Diagnostic::error(format!("invalid {kind} name `{}`", e.name))
            .label(decl.file, decl.span, "invalid name")
            .help("names are 1 to 63 letters, digits, `-` and `_`, starting with a letter or digit")
    };
    diags.push(d);
}

/// Type-checks every definition of an entity and merges them by priority.
fn resolve_entity(
    tree: &Tree,
    kind: Kind,
    entity: &Entity,
    lookup: &FastMap<&'static str, usize>,
    defaults: &[Option<Value>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Option<Value>> {
    let schema = kind.schema();
    // Typed definitions with their option's index, in load order.
    let mut typed: Vec<(usize, &OptionDef, Typed)> = Vec::with_capacity(entity.options.len());
    // Defined at all, valid or not: an invalid value is not also reported as missing.
    let mut defined = vec![false; schema.options.len()];
    for def in &entity.options {
        let Some(&i) = lookup.get(&*def.path) else {
            diags.push(unknown_option(kind, &entity.name, def));
            continue;
        };
        defined[i] = true;
        if def.poisoned {
            continue;
        }
        let spec = &schema.options[i];
        // The last path segment (paths are ASCII: split at the last `.` byte).
        let name = match spec.path.bytes().rposition(|b| b == b'.') {
            Some(dot) => &spec.path[dot + 1..],
            None => spec.path,
        };
        match check_def(spec.shape, name, def) {
            Ok(t) => typed.push((i, def, t)),
            Err(problems) => {
                for p in problems {
                    let (file, span) = p
                        .arg
                        .map_or((def.origin.file, def.name_span), |a| (a.file, a.span));
                    let what = if entity.name.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind} `{}`", entity.name)
                    };
                    let mut d = Diagnostic::error(format!("invalid `{}` in {what}", def.path))
                        .label(file, span, p.invalid.label)
                        .help(p.invalid.help);
                    // Point at the module instance too, unless the bad value is written there.
                    if let Some(inst) = tree.via_chain(def.origin.via).first() {
                        let inside = inst.file == file
                            && inst.span.start <= span.start
                            && span.end <= inst.span.end;
                        if !inside {
                            d = d.label(
                                inst.file,
                                inst.span,
                                format!("through module `{}`", inst.module),
                            );
                        }
                    }
                    diags.push(d);
                }
            }
        }
    }
    // By option, each option's definitions still in load order: (option, position)
    // keys sorted, the definitions themselves left in place.
    let mut order: Vec<u64> = typed
        .iter()
        .enumerate()
        .map(|(k, t)| ((t.0 as u64) << 32) | k as u64)
        .collect();
    order.sort_unstable();
    let mut order = order.into_iter().peekable();
    let mut defs = Vec::new();
    let mut values: Vec<Option<Value>> = defaults.to_vec();
    for (i, spec) in schema.options.iter().enumerate() {
        defs.clear();
        while let Some(key) = order.next_if(|key| (key >> 32) as usize == i) {
            let (_, def, t) = &mut typed[key as u32 as usize];
            defs.push((*def, std::mem::replace(t, Typed::Many(Vec::new()))));
        }
        if defs.is_empty() {
            if spec.required && !defined[i] && !entity.decls.is_empty() {
                let decl = entity.decls[0];
                diags.push(
                    Diagnostic::error(format!("{kind} `{}` has no `{}`", entity.name, spec.path))
                        .label(decl.file, decl.span, format!("`{}` is required", spec.path))
                        .help(format!("{} e.g. {}", spec.doc, schema.usage)),
                );
            }
            continue;
        }
        if let Some(v) = merge(tree, kind, entity, spec, &mut defs, diags) {
            values[i] = Some(v);
        }
    }
    values
}

fn unknown_option(kind: Kind, name: &str, def: &OptionDef) -> Diagnostic {
    let schema = kind.schema();
    let what = if name.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} `{name}`")
    };
    let is_block = schema.options.iter().any(|o| {
        o.path
            .strip_prefix(&*def.path)
            .is_some_and(|r| r.starts_with('.'))
    });
    let mut d = Diagnostic::error(format!("unknown option `{}` in {what}", def.path)).label(
        def.origin.file,
        def.name_span,
        "unknown option",
    );
    if let Some(top) = ["import", "module", "container", "network", "volume", "host"]
        .iter()
        .find(|t| *def.path == ***t)
    {
        return d.help(format!(
            "`{top}` goes at the top level of a file, not inside a node"
        ));
    }
    if is_block {
        let inner: Vec<&str> = schema
            .options
            .iter()
            .filter_map(|o| {
                o.path
                    .strip_prefix(&*def.path)
                    .and_then(|r| r.strip_prefix('.'))
            })
            .collect();
        return d.help(format!(
            "`{}` is a block: write `{} {{ {} … }}` (it has {})",
            def.path,
            def.path,
            inner.first().unwrap_or(&""),
            inner.join(", ")
        ));
    }
    let candidates = schema.options.iter().map(|o| o.path);
    let leaf = def.path.rsplit('.').next().unwrap_or(&def.path);
    let by_leaf = schema
        .options
        .iter()
        .map(|o| o.path)
        .find(|p| p.rsplit('.').next() == Some(leaf) && p.contains('.'));
    d = match (did_you_mean(&def.path, candidates), by_leaf) {
        (Some(s), _) => d.help(format!("did you mean `{s}`?")),
        (None, Some(p)) => d.help(format!(
            "did you mean `{p}`? (`{leaf}` goes inside `{}`)",
            p.rsplit_once('.').map_or("", |x| x.0)
        )),
        (None, None) => d.help(format!(
            "see `berth options {kind}` for the options of a {kind}"
        )),
    };
    d
}

/// Merges the typed definitions of one option: only the highest priority counts;
/// scalars there must agree, lists and records concatenate, maps merge by key.
fn merge(
    tree: &Tree,
    kind: Kind,
    entity: &Entity,
    spec: &OptionSpec,
    defs: &mut Vec<(&OptionDef, Typed)>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let top = defs.iter().map(|(d, _)| d.priority).max()?;
    let what = || {
        if entity.name.is_empty() {
            kind.to_string()
        } else {
            format!("{kind} `{}`", entity.name)
        }
    };
    match spec.shape {
        Shape::Map(_) => {
            let mut keys: BTreeMap<String, (Priority, Value, &OptionDef)> = BTreeMap::new();
            for (def, typed) in defs.drain(..) {
                let Typed::Keys(kv) = typed else { continue };
                for (k, v, p) in kv {
                    match keys.get(&k) {
                        Some((q, _, _)) if *q > p => {}
                        Some((q, w, first)) if *q == p && *w != v => {
                            diags.push(conflict(
                                tree,
                                &format!("{}.{k}", spec.path),
                                &what(),
                                first,
                                def,
                                w,
                                &v,
                            ));
                        }
                        Some((q, _, _)) if *q == p => {}
                        _ => {
                            keys.insert(k, (p, v, def));
                        }
                    }
                }
            }
            Some(Value::Map(
                keys.into_iter().map(|(k, (_, v, _))| (k, v)).collect(),
            ))
        }
        Shape::List(_) | Shape::Records(_) => {
            let mut items = Vec::new();
            for (def, typed) in defs.drain(..) {
                if def.priority != top {
                    continue;
                }
                match typed {
                    Typed::Many(v) => items.extend(v),
                    Typed::One(v) => items.push(v),
                    Typed::Keys(_) => {}
                }
            }
            Some(Value::List(items))
        }
        Shape::Scalar(_) | Shape::Argv | Shape::Ready => {
            let mut winner: Option<(&OptionDef, Value)> = None;
            for (def, typed) in defs.drain(..) {
                if def.priority != top {
                    continue;
                }
                let Typed::One(v) = typed else { continue };
                match &winner {
                    None => winner = Some((def, v)),
                    Some((first, w)) if *w != v => {
                        diags.push(conflict(tree, spec.path, &what(), first, def, w, &v));
                    }
                    Some(_) => {}
                }
            }
            winner.map(|w| w.1)
        }
    }
}

fn conflict(
    tree: &Tree,
    path: &str,
    what: &str,
    first: &OptionDef,
    second: &OptionDef,
    a: &Value,
    b: &Value,
) -> Diagnostic {
    let p = second.priority;
    let mut d = Diagnostic::error(format!(
        "`{path}` of {what} is defined twice with different values at priority {p}"
    ))
    .label(second.origin.file, second.origin.span, format!("{b} here"))
    .label(first.origin.file, first.origin.span, format!("{a} here"));
    let via: Vec<String> = tree
        .via_chain(second.origin.via)
        .iter()
        .chain(tree.via_chain(first.origin.via).iter())
        .map(|i| {
            format!(
                "module `{}` at {}",
                i.module,
                tree.sources.location(i.file, i.span.start)
            )
        })
        .collect();
    let mut help = "mark the one that should win with (force), e.g. `memory (force)\"1G\"`, or the fallback with (default)".to_string();
    if !via.is_empty() {
        help.push_str(&format!("; through {}", via.join(", ")));
    }
    d = d.help(help);
    d
}

/// Defaults computed from other values: a container's hostname is its name, a
/// network's bridge is `br-NAME` and its gateway the subnet's first address.
fn derive_defaults(nodes: &mut [Node]) {
    let hostname = slot(Kind::Container, "hostname");
    for n in nodes {
        match n.id.kind {
            Kind::Container => {
                if let Some(i) = hostname
                    && n.values[i].is_none()
                {
                    n.values[i] = Some(Value::Str(n_hostname(&n.id.name)));
                }
            }
            Kind::Network => {
                let name = n.id.name.clone();
                set_if_unset(n, "bridge", || Some(Value::Str(bridge_name(&name))));
                let subnet = n.get("subnet").cloned();
                set_if_unset(n, "gateway", || match subnet {
                    Some(Value::Cidr(IpAddr::V4(a), len)) if len < 31 => {
                        Some(Value::Ip(IpAddr::V4((u32::from(a) + 1).into())))
                    }
                    _ => None,
                });
            }
            _ => {}
        }
    }
}

fn set_if_unset(n: &mut Node, path: &str, f: impl FnOnce() -> Option<Value>) {
    if let Some((i, _)) = n.schema().option(path)
        && n.values[i].is_none()
    {
        n.values[i] = f();
    }
}

/// A hostname from a container name: `_` and `.` are not allowed in a label.
fn n_hostname(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `br-` and the network name, cut to the 15 bytes Linux allows.
pub fn bridge_name(network: &str) -> String {
    let mut s = format!("br-{network}");
    // Valid names are ASCII; an invalid one (already reported) must not panic here.
    let mut end = s.len().min(15);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

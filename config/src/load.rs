//! Loading a host: read the root file and its imports, collect module definitions,
//! expand module instances, and flatten every entity's options into definitions.
//!
//! Every problem becomes a diagnostic and loading goes on, so one run reports them all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostic, did_you_mean};
use crate::fasthash::FastSet;
use crate::kdl::{self, Document, Entry, Node, Span, Spanned, Value};
use crate::source::{FileId, Source, SourceFile, SourceMap, normalize};
use crate::subst::{Piece, pieces};
use crate::tree::{Arg, Instance, InstanceId, OptionDef, Origin, Priority, Tree};

/// How the top-level nodes of a kind are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `container "web" { … }`: the name is required and identifies the entity.
    Named,
    /// `host "edge-1" { … }`: one per host; the optional argument is the option `name`.
    Singleton,
}

/// A kind of top-level node the schema knows (`container`, `network`, …).
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub name: &'static str,
    pub naming: Naming,
}

/// Nesting of module instances beyond this is reported as runaway recursion.
const MAX_MODULE_DEPTH: usize = 32;

/// Loads `root` and everything it imports. The tree is as complete as the errors allow;
/// the caller decides what to do with it when there are errors.
pub fn load(source: &dyn Source, root: &Path, kinds: &[KindSpec]) -> (Tree, Vec<Diagnostic>) {
    load_split(source, root, kinds, PARALLEL_MIN)
}

/// [`load`], expanding on two threads from `parallel_min` top-level nodes on.
fn load_split(
    source: &dyn Source,
    root: &Path,
    kinds: &[KindSpec],
    parallel_min: usize,
) -> (Tree, Vec<Diagnostic>) {
    let mut files = Files {
        source,
        sources: SourceMap::default(),
        docs: Vec::new(),
        diags: Vec::new(),
        seen: HashMap::new(),
        stack: Vec::new(),
        order: Vec::new(),
    };
    files.load_root(root);
    let Files {
        sources,
        docs,
        diags,
        order,
        ..
    } = files;
    let mut tree = Tree::default();
    tree.sources = sources;
    // Module definitions live through the whole expansion (instances refer to their
    // bodies); every other top-level node is taken out of its document, expanded and
    // dropped at once, so a large host never holds its whole syntax tree and its whole
    // definition tree in memory together.
    let mut slots: Vec<Vec<Option<Node>>> = docs
        .into_iter()
        .map(|d| d.nodes.into_iter().map(Some).collect())
        .collect();
    let mut module_nodes: Vec<(FileId, Node)> = Vec::new();
    let mut rest: Vec<(FileId, usize)> = Vec::with_capacity(order.len());
    for &(file, i) in &order {
        let slot = &mut slots[file.0 as usize][i];
        if slot.as_ref().is_some_and(|n| n.name.value == "module") {
            if let Some(node) = slot.take() {
                module_nodes.push((file, node));
            }
        } else {
            rest.push((file, i));
        }
    }
    let mut ex = Expander {
        tree: &mut tree,
        diags,
        kinds,
        modules: HashMap::new(),
        paths: FastSet::default(),
        scratch: String::new(),
        pending: None,
    };
    ex.collect_modules(&module_nodes);
    let mut nodes: Vec<(FileId, Node)> = rest
        .into_iter()
        .filter_map(|(file, i)| slots[file.0 as usize][i].take().map(|n| (file, n)))
        .collect();
    if nodes.len() >= parallel_min {
        let second = nodes.split_off(nodes.len() / 2);
        let (a, b) = ex.expand_halves(nodes, second);
        // About one entity per top-level node: room for all at once.
        ex.tree.entities.reserve(a.len() + b.len());
        ex.apply(a);
        ex.apply(b);
    } else {
        for (file, mut node) in nodes {
            ex.top_node(file, &mut node, &Ctx::host());
        }
    }
    let diags = ex.diags;
    (tree, diags)
}

/// From this many top-level nodes on, they are expanded in two halves on two threads.
const PARALLEL_MIN: usize = 2048;

/// What expanding one top-level node on a helper thread produced, applied to the tree
/// in node order afterwards ([`Expander::apply`]), so the tree and the diagnostics come
/// out as from one pass.
enum Expanded {
    Entity {
        kind: &'static str,
        name: String,
        decl: Origin,
        defs: Vec<OptionDef>,
    },
    Diagnostics(Vec<Diagnostic>),
    /// A module instance: expanded on the calling thread, which owns the instances.
    Instance(FileId, Node),
}

/// A file being loaded: its identity, id, and the import node that led to it (none for
/// the root).
type Loading = (PathBuf, FileId, Option<(FileId, Span)>);

/// Phase one: files, parsed, in import order.
struct Files<'s> {
    source: &'s dyn Source,
    sources: SourceMap,
    /// Indexed by `FileId`.
    docs: Vec<Document>,
    diags: Vec<Diagnostic>,
    seen: HashMap<PathBuf, FileId>,
    /// Files being loaded, with the import node that led to each (none for the root).
    stack: Vec<Loading>,
    /// Top-level nodes other than `import`, imports expanded in place.
    order: Vec<(FileId, usize)>,
}

impl Files<'_> {
    fn load_root(&mut self, root: &Path) {
        let name = root.display().to_string();
        let canonical = match self.source.canonical(root) {
            Ok(c) => c,
            Err(e) => {
                self.diags
                    .push(Diagnostic::error(format!("cannot read {name}: {e}")));
                return;
            }
        };
        if let Some(id) = self.read(name, canonical.clone(), None) {
            self.stack.push((canonical, id, None));
            self.visit(id);
            self.stack.pop();
        }
    }

    /// Reads and parses one file; parse errors become diagnostics.
    fn read(
        &mut self,
        name: String,
        canonical: PathBuf,
        site: Option<(FileId, Span)>,
    ) -> Option<FileId> {
        let text = match self.source.read(&canonical) {
            Ok(t) => t,
            Err(e) => {
                let mut d = Diagnostic::error(format!("cannot read {name}: {e}"));
                if let Some((f, s)) = site {
                    d = d.label(f, s, "imported here");
                }
                self.diags.push(d);
                return None;
            }
        };
        if text.len() > u32::MAX as usize / 2 {
            self.diags.push(Diagnostic::error(format!(
                "{name} is too large ({} bytes)",
                text.len()
            )));
            return None;
        }
        let (doc, errors) = kdl::parse(&text);
        let id = self
            .sources
            .add(SourceFile::new(name, canonical.clone(), text));
        self.seen.insert(canonical, id);
        for e in errors {
            let mut d = Diagnostic::error(e.message).label(id, e.span, e.label);
            if let Some(h) = e.help {
                d = d.help(h);
            }
            self.diags.push(d);
        }
        self.docs.push(doc);
        Some(id)
    }

    fn visit(&mut self, file: FileId) {
        let count = self.docs[file.0 as usize].nodes.len();
        for i in 0..count {
            let node = &self.docs[file.0 as usize].nodes[i];
            if node.name.value != "import" {
                self.order.push((file, i));
                continue;
            }
            match import_target(file, node) {
                Ok((path, span)) => self.import(file, &path, span),
                Err(d) => self.diags.push(d),
            }
        }
    }

    fn import(&mut self, file: FileId, path: &str, span: Span) {
        let importer = Path::new(&self.sources.get(file).name);
        let joined = normalize(&importer.parent().unwrap_or(Path::new("")).join(path));
        let name = joined.display().to_string();
        let canonical =
            match self.source.canonical(&joined) {
                Ok(c) => c,
                Err(e) => {
                    let d = Diagnostic::error(format!("cannot import `{path}`: {name}: {e}"))
                        .label(file, span, "imported here");
                    self.diags.push(self.with_chain(d));
                    return;
                }
            };
        if let Some(pos) = self.stack.iter().position(|(c, _, _)| *c == canonical) {
            let mut cycle: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(_, id, _)| self.sources.get(*id).name.clone())
                .collect();
            cycle.push(self.sources.get(self.stack[pos].1).name.clone());
            let d = Diagnostic::error(format!("import cycle: {}", cycle.join(" → ")))
                .label(file, span, "this import closes the cycle")
                .help("a file cannot import itself, directly or through other files; move what both need into a third file");
            self.diags.push(d);
            return;
        }
        if self.seen.contains_key(&canonical) {
            // Imported before (a diamond): its nodes are already in place once.
            return;
        }
        if let Some(id) = self.read(name, canonical.clone(), Some((file, span))) {
            self.stack.push((canonical, id, Some((file, span))));
            self.visit(id);
            self.stack.pop();
        }
    }

    /// Adds "imported from a.kdl:3:1 ← host.kdl:1:1" to a diagnostic about an import.
    fn with_chain(&self, d: Diagnostic) -> Diagnostic {
        let chain: Vec<String> = self
            .stack
            .iter()
            .rev()
            .filter_map(|(_, _, site)| site.map(|(f, s)| self.sources.location(f, s.start)))
            .collect();
        if chain.is_empty() {
            d
        } else {
            d.help(format!("import chain: {}", chain.join(" ← ")))
        }
    }
}

fn import_target(file: FileId, node: &Node) -> Result<(String, Span), Diagnostic> {
    let usage = "write `import \"other.kdl\"`; the path is relative to this file";
    if node.children.is_some()
        || node.ty.is_some()
        || node.entries.len() != 1
        || node.entries[0].name.is_some()
    {
        return Err(Diagnostic::error("`import` takes exactly one path")
            .label(file, node.span, "here")
            .help(usage));
    }
    match &node.entries[0].value {
        Value::String(s) if !s.is_empty() => Ok((s.clone(), node.entries[0].value_span)),
        _ => Err(Diagnostic::error("`import` takes a path string")
            .label(file, node.entries[0].span, "not a path")
            .help(usage)),
    }
}

/// How many definitions [`Expander::flatten`] makes at most from these nodes: one per
/// node with entries or without a block.
fn def_count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| {
            usize::from(!n.entries.is_empty() || n.children.is_none())
                + n.children.as_deref().map_or(0, def_count)
        })
        .sum()
}

/// A `module "name" { param …; body }` definition.
#[derive(Clone)]
struct ModuleDef<'a> {
    file: FileId,
    name_span: Span,
    params: Vec<ParamDef<'a>>,
    body: Vec<&'a Node>,
}

#[derive(Clone)]
struct ParamDef<'a> {
    name: &'a str,
    default: Option<&'a Entry>,
}

/// The values a module instance binds its parameters to.
type Env = HashMap<String, (Value, FileId, Span)>;

/// Where definitions come from while expanding.
struct Ctx<'e> {
    priority: Priority,
    via: Option<InstanceId>,
    env: Option<&'e Env>,
    /// Modules being expanded, outermost first (for recursion errors).
    stack: Vec<String>,
}

impl Ctx<'_> {
    fn host() -> Self {
        Ctx {
            priority: Priority::Host,
            via: None,
            env: None,
            stack: Vec::new(),
        }
    }
}

struct Expander<'a, 't> {
    tree: &'t mut Tree,
    diags: Vec<Diagnostic>,
    kinds: &'a [KindSpec],
    modules: HashMap<&'a str, ModuleDef<'a>>,
    /// Every option path seen, shared by all definitions of it.
    paths: FastSet<Arc<str>>,
    /// For building paths before interning them.
    scratch: String,
    /// On a helper thread: entities go here instead of into the tree.
    pending: Option<Vec<Expanded>>,
}

impl<'a> Expander<'a, '_> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Expands two lists of top-level host nodes at once, on this thread and another,
    /// each into a list of [`Expanded`] in node order.
    fn expand_halves(
        &self,
        first: Vec<(FileId, Node)>,
        second: Vec<(FileId, Node)>,
    ) -> (Vec<Expanded>, Vec<Expanded>) {
        let run = |nodes: Vec<(FileId, Node)>| {
            let mut tree = Tree::default();
            let mut ex = Expander {
                tree: &mut tree,
                diags: Vec::new(),
                kinds: self.kinds,
                modules: self.modules.clone(),
                paths: self.paths.clone(),
                scratch: String::new(),
                pending: Some(Vec::with_capacity(nodes.len())),
            };
            for (file, mut node) in nodes {
                let name = node.name.value.as_str();
                if !self.kinds.iter().any(|k| k.name == name) && self.modules.contains_key(name) {
                    if let Some(p) = &mut ex.pending {
                        p.push(Expanded::Instance(file, node));
                    }
                    continue;
                }
                ex.top_node(file, &mut node, &Ctx::host());
                if !ex.diags.is_empty()
                    && let Some(p) = &mut ex.pending
                {
                    p.push(Expanded::Diagnostics(std::mem::take(&mut ex.diags)));
                }
            }
            ex.pending.take().unwrap_or_default()
        };
        // Taken by the thread, or by this one if no thread can be started.
        let second = std::sync::Mutex::new(Some(second));
        let take = || {
            second
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .unwrap_or_default()
        };
        std::thread::scope(|s| {
            let other = std::thread::Builder::new().spawn_scoped(s, || run(take()));
            let a = run(first);
            let b = match other {
                Ok(handle) => match handle.join() {
                    Ok(b) => b,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => run(take()),
            };
            (a, b)
        })
    }

    /// Puts what a helper thread expanded into the tree, in order.
    fn apply(&mut self, expanded: Vec<Expanded>) {
        for e in expanded {
            match e {
                Expanded::Entity {
                    kind,
                    name,
                    decl,
                    defs,
                } => {
                    let ent = self.tree.entity_mut(kind, name);
                    ent.decls.push(decl);
                    ent.add_options(defs);
                }
                Expanded::Diagnostics(d) => self.diags.extend(d),
                Expanded::Instance(file, mut node) => self.top_node(file, &mut node, &Ctx::host()),
            }
        }
    }

    /// The shared copy of an option path: a large host has a few dozen distinct paths
    /// and hundreds of thousands of definitions.
    fn intern(&mut self, prefix: &str, name: &str) -> Arc<str> {
        if prefix.is_empty()
            && let Some(p) = self.paths.get(name)
        {
            return p.clone();
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        if !prefix.is_empty() {
            s.push_str(prefix);
            s.push('.');
        }
        s.push_str(name);
        let path = match self.paths.get(s.as_str()) {
            Some(p) => p.clone(),
            None => {
                let p: Arc<str> = Arc::from(s.as_str());
                self.paths.insert(p.clone());
                p
            }
        };
        self.scratch = s;
        path
    }

    fn collect_modules(&mut self, module_nodes: &'a [(FileId, Node)]) {
        for (file, node) in module_nodes {
            self.module_def(*file, node);
        }
    }

    fn module_def(&mut self, file: FileId, node: &'a Node) {
        let usage = "write `module \"NAME\" { param \"x\"; … }` and use it as `NAME x=…`";
        let name = match node.entries.as_slice() {
            [
                Entry {
                    name: None,
                    value: Value::String(s),
                    value_span,
                    ..
                },
            ] if node.ty.is_none() => Spanned {
                value: s.as_str(),
                span: *value_span,
            },
            _ => {
                return self.err(
                    Diagnostic::error("`module` takes exactly one name")
                        .label(file, node.span, "here")
                        .help(usage),
                );
            }
        };
        if self.kinds.iter().any(|k| k.name == name.value)
            || ["import", "module", "param"].contains(&name.value)
        {
            return self.err(
                Diagnostic::error(format!(
                    "a module cannot be named `{}`: that is a built-in node",
                    name.value
                ))
                .label(file, name.span, "reserved name")
                .help("pick another name, e.g. `my-container`"),
            );
        }
        let Some(children) = &node.children else {
            return self.err(
                Diagnostic::error(format!("module `{}` has no body", name.value))
                    .label(file, node.span, "expected `{ … }`")
                    .help(usage),
            );
        };
        let mut params: Vec<ParamDef<'a>> = Vec::new();
        let mut param_spans: Vec<Span> = Vec::new();
        let mut body = Vec::new();
        for child in children {
            if child.name.value != "param" {
                body.push(child);
                continue;
            }
            let Some(p) = self.param_def(file, child) else {
                continue;
            };
            if let Some(j) = params.iter().position(|q| q.name == p.name) {
                self.err(
                    Diagnostic::error(format!("parameter `{}` is declared twice", p.name))
                        .label(file, child.span, "declared again here")
                        .label(file, param_spans[j], "first declared here"),
                );
                continue;
            }
            params.push(p);
            param_spans.push(child.span);
        }
        if let Some(prev) = self.modules.get(name.value) {
            let (pf, ps) = (prev.file, prev.name_span);
            return self.err(
                Diagnostic::error(format!("module `{}` is defined twice", name.value))
                    .label(file, name.span, "defined again here")
                    .label(pf, ps, "first defined here"),
            );
        }
        self.modules.insert(
            name.value,
            ModuleDef {
                file,
                name_span: name.span,
                params,
                body,
            },
        );
    }

    fn param_def(&mut self, file: FileId, node: &'a Node) -> Option<ParamDef<'a>> {
        let usage = "write `param \"NAME\"` or `param \"NAME\" default=VALUE`";
        let mut name = None;
        let mut default = None;
        let mut ok = node.children.is_none() && node.ty.is_none();
        for e in &node.entries {
            match (&e.name, &e.value) {
                (None, Value::String(s)) if name.is_none() && !s.is_empty() => {
                    name = Some(s.as_str())
                }
                (Some(k), _) if k.value == "default" && default.is_none() => default = Some(e),
                _ => ok = false,
            }
        }
        match name {
            Some(name) if ok => Some(ParamDef { name, default }),
            _ => {
                self.err(
                    Diagnostic::error("malformed `param`")
                        .label(file, node.span, "here")
                        .help(usage),
                );
                None
            }
        }
    }

    /// Expands one node. Its values are moved out (the node is dropped afterwards;
    /// module bodies are expanded from copies).
    fn top_node(&mut self, file: FileId, node: &mut Node, ctx: &Ctx<'_>) {
        match node.name.value.as_str() {
            "module" if ctx.env.is_none() => {} // collected before expansion
            "module" => self.err(
                Diagnostic::error("modules cannot be defined inside modules")
                    .label(file, node.name.span, "nested definition")
                    .help("define it at the top level of a file; modules can use each other"),
            ),
            "import" => self.err(
                Diagnostic::error("`import` inside a module")
                    .label(file, node.name.span, "not allowed here")
                    .help("import files at the top level of a file"),
            ),
            "param" => self.err(
                Diagnostic::error("`param` outside a module")
                    .label(file, node.name.span, "not inside `module { }`")
                    .help("parameters are declared inside `module \"NAME\" { … }`"),
            ),
            _ => {
                let kind = self.kinds.iter().find(|k| k.name == node.name.value);
                if let Some(kind) = kind {
                    self.entity(file, node, *kind, ctx);
                } else if self.modules.contains_key(node.name.value.as_str()) {
                    self.instantiate(file, node, ctx);
                } else {
                    let name = node.name.value.as_str();
                    let candidates: Vec<&str> = self
                        .kinds
                        .iter()
                        .map(|k| k.name)
                        .chain(self.modules.keys().copied())
                        .chain(["import", "module"])
                        .collect();
                    let mut d = Diagnostic::error(format!("unknown node `{name}`")).label(
                        file,
                        node.name.span,
                        "not a node kind or a module",
                    );
                    d = match did_you_mean(name, candidates.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!("top-level nodes are {}, `import`, `module`, and the modules this host defines", self.kinds.iter().map(|k| format!("`{}`", k.name)).collect::<Vec<_>>().join(", "))),
                    };
                    self.err(d);
                }
            }
        }
    }

    /// Substitutes module parameters in one value.
    /// The value is moved out of the node (a `Null` is left behind).
    fn value(
        &mut self,
        file: FileId,
        value: &mut Value,
        span: Span,
        ctx: &Ctx<'_>,
    ) -> Option<(Value, FileId, Span)> {
        let (Some(env), Value::String(s)) = (ctx.env, &*value) else {
            return Some((std::mem::replace(value, Value::Null), file, span));
        };
        let Some(pieces) = pieces(s) else {
            return Some((std::mem::replace(value, Value::Null), file, span));
        };
        let lookup = |this: &mut Self, p: &str| -> Option<(Value, FileId, Span)> {
            match env.get(p) {
                Some(v) => Some(v.clone()),
                None => {
                    let module = ctx.stack.last().cloned().unwrap_or_default();
                    let mut d = Diagnostic::error(format!(
                        "unknown parameter `{{{p}}}` in module `{module}`"
                    ))
                    .label(file, span, "used here");
                    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    d = match did_you_mean(p, names.iter().copied()) {
                        Some(s) => d.help(format!(
                            "did you mean `{{{s}}}`? (write `{{{{` for a literal `{{`)"
                        )),
                        None => d.help(format!(
                            "the module's parameters are: {} (write `{{{{` for a literal `{{`)",
                            names.join(", ")
                        )),
                    };
                    this.err(d);
                    None
                }
            }
        };
        if let [Piece::Param(p)] = pieces.as_slice() {
            return lookup(self, p);
        }
        let mut out = String::new();
        for piece in &pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Param(p) => match lookup(self, p)?.0 {
                    Value::String(v) => out.push_str(&v),
                    Value::Integer(i) => out.push_str(&i.to_string()),
                    Value::Float(f) => out.push_str(&f.to_string()),
                    Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Value::Null => out.push_str("null"),
                },
            }
        }
        Some((Value::String(out), file, span))
    }

    fn entity(&mut self, file: FileId, node: &mut Node, kind: KindSpec, ctx: &Ctx<'_>) {
        if let Some(ty) = &node.ty {
            self.err(
                Diagnostic::error(format!(
                    "annotation `({})` on a `{}` node",
                    ty.value, kind.name
                ))
                .label(file, ty.span, "has no meaning here")
                .help("(default) and (force) go on option values, e.g. `memory (force)\"1G\"`"),
            );
        }
        let mut entries = node.entries.iter_mut();
        let first = match entries.next() {
            Some(e) if e.name.is_none() => Some(e),
            Some(e) => {
                self.err(
                    Diagnostic::error(format!("unexpected property on `{}`", kind.name))
                        .label(file, e.span, "unexpected")
                        .help(format!(
                            "options go inside the block: `{} \"NAME\" {{ … }}`",
                            kind.name
                        )),
                );
                None
            }
            None => None,
        };
        for e in entries {
            self.err(
                Diagnostic::error(format!("`{}` takes one name", kind.name))
                    .label(file, e.span, "unexpected")
                    .help(format!(
                        "options go inside the block: `{} \"NAME\" {{ … }}`",
                        kind.name
                    )),
            );
        }
        // Exactly sized (at most one definition per node inside, plus the singleton's
        // name): grown by doubling instead, a large host's definitions were copied on
        // every growth and left a quarter of their room unused on average.
        let inside = node.children.as_deref().map_or(0, def_count);
        let mut defs = Vec::with_capacity(inside + usize::from(kind.naming == Naming::Singleton));
        let name = match (kind.naming, first) {
            (Naming::Named, None) => {
                return self.err(
                    Diagnostic::error(format!("`{}` needs a name", kind.name))
                        .label(file, node.name.span, "no name")
                        .help(format!("write `{} \"NAME\" {{ … }}`", kind.name)),
                );
            }
            (Naming::Named, Some(e)) => {
                let Some((v, vf, vs)) = self.value(file, &mut e.value, e.value_span, ctx) else {
                    return;
                };
                match v {
                    Value::String(s) if !s.is_empty() => (
                        s,
                        Origin {
                            file: vf,
                            span: vs,
                            via: ctx.via,
                        },
                    ),
                    _ => {
                        return self.err(
                            Diagnostic::error(format!(
                                "the name of a `{}` must be a non-empty string",
                                kind.name
                            ))
                            .label(vf, vs, "not a name"),
                        );
                    }
                }
            }
            (Naming::Singleton, first) => {
                if let Some(def) = first.and_then(|e| {
                    let path = self.intern("", "name");
                    self.def(
                        file,
                        path,
                        node.name.span,
                        None,
                        std::slice::from_mut(e),
                        ctx,
                    )
                }) {
                    defs.push(def);
                }
                (
                    String::new(),
                    Origin {
                        file,
                        span: node.name.span,
                        via: ctx.via,
                    },
                )
            }
        };
        if let Some(children) = &mut node.children {
            self.flatten(file, children, "", ctx, &mut defs);
        }
        if let Some(p) = &mut self.pending {
            if !self.diags.is_empty() {
                p.push(Expanded::Diagnostics(std::mem::take(&mut self.diags)));
            }
            p.push(Expanded::Entity {
                kind: kind.name,
                name: name.0,
                decl: name.1,
                defs,
            });
            return;
        }
        let ent = self.tree.entity_mut(kind.name, name.0);
        ent.decls.push(name.1);
        ent.add_options(defs);
    }

    fn flatten(
        &mut self,
        file: FileId,
        nodes: &mut [Node],
        prefix: &str,
        ctx: &Ctx<'_>,
        out: &mut Vec<OptionDef>,
    ) {
        for child in nodes {
            let path = self.intern(prefix, &child.name.value);
            let has_def = !child.entries.is_empty() || child.children.is_none();
            if has_def
                && let Some(def) = self.def(
                    file,
                    path.clone(),
                    child.name.span,
                    child.ty.as_deref(),
                    &mut child.entries,
                    ctx,
                )
            {
                out.push(OptionDef {
                    origin: Origin {
                        file,
                        span: child.span,
                        via: ctx.via,
                    },
                    ..def
                });
            }
            let Some(grand) = &mut child.children else {
                continue;
            };
            // `(force)limits { … }` gives its priority to everything inside the block.
            let block_priority = match &child.ty {
                Some(t) if has_def => self.known_priority(t),
                Some(t) => self.priority(file, t),
                None => None,
            };
            match block_priority {
                Some(priority) => {
                    let inner = Ctx {
                        priority,
                        via: ctx.via,
                        env: ctx.env,
                        stack: ctx.stack.clone(),
                    };
                    self.flatten(file, grand, &path, &inner, out);
                }
                None => self.flatten(file, grand, &path, ctx, out),
            }
        }
    }

    /// Like [`Self::priority`], for an annotation already reported if unknown.
    fn known_priority(&self, ty: &Spanned<String>) -> Option<Priority> {
        match ty.value.as_str() {
            "default" => Some(Priority::Default),
            "force" => Some(Priority::Force),
            _ => None,
        }
    }

    /// One definition from one node's entries.
    fn def(
        &mut self,
        file: FileId,
        path: Arc<str>,
        name_span: Span,
        ty: Option<&Spanned<String>>,
        entries: &mut [Entry],
        ctx: &Ctx<'_>,
    ) -> Option<OptionDef> {
        let node_priority = ty.and_then(|t| self.priority(file, t));
        // The arguments' own annotations must agree: they set the priority of the whole
        // definition (`exec (force)"/bin/sh" "-c" "…"`).
        let mut arg_priority: Option<(Priority, Span)> = None;
        for e in entries.iter().filter(|e| e.name.is_none()) {
            let Some(p) = e.ty.as_ref().and_then(|t| self.priority(file, t)) else {
                continue;
            };
            match arg_priority {
                Some((q, qs)) if q != p => {
                    self.err(
                        Diagnostic::error(format!(
                            "conflicting priorities in one definition of `{path}`"
                        ))
                        .label(file, e.span, format!("({p})"))
                        .label(file, qs, format!("({q})"))
                        .help("annotate the option instead, e.g. `(force)exec \"…\"`"),
                    );
                }
                Some(_) => {}
                None => arg_priority = Some((p, e.span)),
            }
        }
        let priority = node_priority
            .or(arg_priority.map(|a| a.0))
            .unwrap_or(ctx.priority);
        // Exactly sized: a large host keeps hundreds of thousands of these.
        let positional = entries.iter().filter(|e| e.name.is_none()).count();
        let mut args = Vec::with_capacity(positional);
        let mut props: Vec<(String, Span, Arg)> = Vec::with_capacity(entries.len() - positional);
        let mut ok = true;
        for e in entries {
            let own = e.ty.as_ref().and_then(|t| self.priority(file, t));
            let Some((value, vf, vs)) = self.value(file, &mut e.value, e.value_span, ctx) else {
                ok = false;
                continue;
            };
            let arg = Arg {
                value,
                file: vf,
                span: vs,
                priority: own.unwrap_or(priority),
            };
            match &mut e.name {
                None => args.push(arg),
                Some(key) => {
                    if let Some((_, first, _)) = props.iter().find(|(k, _, _)| *k == key.value) {
                        let first = *first;
                        self.err(
                            Diagnostic::error(format!(
                                "`{}` is given twice in one `{path}`",
                                key.value
                            ))
                            .label(file, key.span, "given again here")
                            .label(file, first, "first given here"),
                        );
                        ok = false;
                        continue;
                    }
                    props.push((std::mem::take(&mut key.value), key.span, arg));
                }
            }
        }
        Some(OptionDef {
            path,
            name_span,
            args,
            props,
            priority,
            origin: Origin {
                file,
                span: name_span,
                via: ctx.via,
            },
            poisoned: !ok,
        })
    }

    fn priority(&mut self, file: FileId, ty: &Spanned<String>) -> Option<Priority> {
        let p = self.known_priority(ty);
        if p.is_none() {
            self.err(
                Diagnostic::error(format!("unknown annotation `({})`", ty.value))
                    .label(file, ty.span, "unknown")
                    .help("berth reads two annotations: (default) for the lowest priority, (force) for the highest"),
            );
        }
        p
    }

    fn instantiate(&mut self, file: FileId, node: &mut Node, ctx: &Ctx<'_>) {
        let name = node.name.value.as_str();
        if ctx.stack.iter().any(|m| m == name) || ctx.stack.len() >= MAX_MODULE_DEPTH {
            let mut chain = ctx.stack.clone();
            chain.push(name.to_string());
            return self.err(
                Diagnostic::error(format!(
                    "module `{name}` instantiates itself: {}",
                    chain.join(" → ")
                ))
                .label(file, node.name.span, "recursive use")
                .help("a module cannot use itself, directly or through other modules"),
            );
        }
        let Some(module) = self.modules.get(name) else {
            return;
        };
        let (mfile, mspan) = (module.file, module.name_span);
        let params: Vec<(&'a str, Option<&'a Entry>)> =
            module.params.iter().map(|p| (p.name, p.default)).collect();
        let body = module.body.clone();
        let module_help = format!(
            "module `{name}` is defined at {}",
            self.tree.sources.location(mfile, mspan.start)
        );
        if let Some(ty) = &node.ty {
            self.err(
                Diagnostic::error(format!("annotation `({})` on a module instance", ty.value))
                    .label(file, ty.span, "has no meaning here"),
            );
        }
        if let Some(children) = &node.children {
            let span = children.first().map_or(node.span, |c| c.span);
            self.err(
                Diagnostic::error(format!("module instance `{name}` has a block"))
                    .label(file, span, "unexpected")
                    .help(format!("pass parameters as properties (`{name} port=8080`); to change what the module defines, set it on that node directly, e.g. `container \"NAME\" {{ … }}`: values written in a host file override a module's")),
            );
        }
        let mut env = Env::new();
        let mut given: HashMap<&str, Span> = HashMap::new();
        let mut positional = 0;
        for e in &mut node.entries {
            if e.ty.is_some() {
                self.err(
                    Diagnostic::error("annotation on a module argument")
                        .label(file, e.span, "not allowed")
                        .help("annotate the option inside the module instead"),
                );
            }
            let param = match &e.name {
                None => {
                    let p = params.get(positional).map(|p| p.0);
                    positional += 1;
                    match p {
                        Some(p) => p,
                        None => {
                            self.err(
                                Diagnostic::error(format!(
                                    "module `{name}` takes {} positional argument{}",
                                    params.len(),
                                    if params.len() == 1 { "" } else { "s" }
                                ))
                                .label(file, e.span, "extra argument")
                                .help(format!(
                                    "its parameters, in order: {}; {module_help}",
                                    params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                                )),
                            );
                            continue;
                        }
                    }
                }
                Some(key) => match params.iter().find(|p| p.0 == key.value) {
                    Some(p) => p.0,
                    None => {
                        let mut d = Diagnostic::error(format!(
                            "module `{name}` has no parameter `{}`",
                            key.value
                        ))
                        .label(file, key.span, "unknown parameter");
                        d = match did_you_mean(&key.value, params.iter().map(|p| p.0)) {
                            Some(s) => d.help(format!("did you mean `{s}`? {module_help}")),
                            None => d.help(format!(
                                "its parameters: {}; {module_help}",
                                params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                            )),
                        };
                        self.err(d);
                        continue;
                    }
                },
            };
            if let Some(&first) = given.get(param) {
                self.err(
                    Diagnostic::error(format!("parameter `{param}` is given twice"))
                        .label(file, e.span, "given again")
                        .label(file, first, "first given here"),
                );
                continue;
            }
            given.insert(param, e.span);
            if let Some(v) = self.value(file, &mut e.value, e.value_span, ctx) {
                env.insert(param.to_string(), v);
            }
        }
        let mut missing = Vec::new();
        for (p, default) in &params {
            if given.contains_key(p) {
                continue;
            }
            match default {
                Some(d) => {
                    env.insert(p.to_string(), (d.value.clone(), mfile, d.value_span));
                }
                None => missing.push(*p),
            }
        }
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return self.err(
                Diagnostic::error(format!("module `{name}` needs {list}"))
                    .label(file, node.name.span, "missing parameter")
                    .help(format!(
                        "e.g. `{name} {}`; {module_help}",
                        missing
                            .iter()
                            .map(|m| format!("{m}=…"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )),
            );
        }
        self.tree.instances.push(Instance {
            module: name.to_string(),
            file,
            span: node.span,
            parent: ctx.via,
        });
        let id = InstanceId(self.tree.instances.len() as u32 - 1);
        let mut stack = ctx.stack.clone();
        stack.push(name.to_string());
        let inner = Ctx {
            priority: Priority::Module,
            via: Some(id),
            env: Some(&env),
            stack,
        };
        for n in body {
            // The body is the module's, shared by its instances: expanded from a copy.
            self.top_node(mfile, &mut n.clone(), &inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemSource;

    const KINDS: [KindSpec; 3] = [
        KindSpec {
            name: "host",
            naming: Naming::Singleton,
        },
        KindSpec {
            name: "container",
            naming: Naming::Named,
        },
        KindSpec {
            name: "network",
            naming: Naming::Named,
        },
    ];

    /// Expanding on two threads gives the tree and diagnostics of one pass: entities in
    /// the same order with the same definitions, module instances numbered alike, the
    /// same errors in the same order.
    #[test]
    fn expansion_in_two_halves_equals_one_pass() {
        let mut host = String::from(
            "module \"svc\" {\n    param \"n\"\n    container \"{n}\" { exec \"/bin/{n}\"; x (bad)1 }\n}\n",
        );
        for i in 0..300 {
            host.push_str(&format!(
                "container \"c{i}\" {{ exec \"a\" \"{i}\"; limits {{ memory \"{i}M\" }} }}\n"
            ));
            match i % 7 {
                0 => host.push_str(&format!("svc n=\"m{i}\"\n")),
                1 => host.push_str(&format!("contianer \"typo{i}\"\n")),
                2 => host.push_str(&format!(
                    "container \"c{}\" {{ (force)exec \"b\" }}\n",
                    i / 2
                )),
                3 => host.push_str("network { }\nhost \"h\" { (what)x 1 }\n"),
                4 => host.push_str(&format!("svc n=\"c{i}\" extra=1\n")),
                _ => {}
            }
        }
        let source = MemSource::new().with("host.kdl", host);
        let one = load_split(&source, Path::new("host.kdl"), &KINDS, usize::MAX);
        let two = load_split(&source, Path::new("host.kdl"), &KINDS, 2);
        assert!(one.0.instances.len() > 10);
        assert!(one.1.len() > 100);
        assert_eq!(
            format!("{:?}", one.0.entities),
            format!("{:?}", two.0.entities)
        );
        assert_eq!(
            format!("{:?}", one.0.instances),
            format!("{:?}", two.0.instances)
        );
        assert_eq!(format!("{:?}", one.1), format!("{:?}", two.1));
    }
}

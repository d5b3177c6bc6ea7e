//! The loaded tree: every entity with every definition of its options, before any
//! merging. Merging needs the schema (which options are lists, maps or scalars), so it
//! happens in `berth-modules`; this keeps every definition with its priority and
//! provenance so that `berth why` can show all of them.

use std::fmt;
use std::sync::Arc;

use crate::fasthash::FastMap;

use crate::kdl::{Span, Value};
use crate::source::{FileId, SourceMap};

/// Which definition wins when several set the same value, lowest first. Written as
/// KDL type annotations, `(default)"256M"` and `(force)"512M"`; values inside a module
/// have `Module` priority, values written directly in host files `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Default,
    Module,
    Host,
    Force,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Default => "default",
            Priority::Module => "module",
            Priority::Host => "host",
            Priority::Force => "force",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u32);

/// One use of a parametrised module, e.g. `web-service "shop" port=8081`.
#[derive(Debug, Clone)]
pub struct Instance {
    pub module: String,
    pub file: FileId,
    pub span: Span,
    /// The instance whose module body contains this one.
    pub parent: Option<InstanceId>,
}

/// Where a definition was written, and through which module instance it came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Origin {
    pub file: FileId,
    pub span: Span,
    pub via: Option<InstanceId>,
}

/// One value as written, after module parameter substitution.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub value: Value,
    /// Where the value's text is: the module argument's place when the value was a
    /// whole `"{param}"`, so type errors point at what the user wrote.
    pub file: FileId,
    pub span: Span,
    pub priority: Priority,
}

/// One definition of one option: a node inside an entity, e.g. `memory "512M"` inside
/// `limits { }` inside `container "web"` has path `limits.memory`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionDef {
    /// Shared between all definitions of the same path (interned by the loader).
    pub path: Arc<str>,
    pub name_span: Span,
    pub args: Vec<Arg>,
    /// Properties in source order; keys are unique within one definition.
    pub props: Vec<(String, Span, Arg)>,
    pub priority: Priority,
    pub origin: Origin,
    /// A value could not be substituted (already reported): the option counts as
    /// defined, but its values must not be checked again.
    pub poisoned: bool,
}

impl OptionDef {
    pub fn prop(&self, key: &str) -> Option<&Arg> {
        self.props
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, a)| a)
    }
}

/// A top-level node kind and name (`container "web"`) with the options of every
/// place that defines it, in load order.
#[derive(Debug, Clone)]
pub struct Entity {
    pub kind: String,
    /// Empty for singleton kinds (`host`).
    pub name: String,
    /// Every place that declares the entity (the name's span).
    pub decls: Vec<Origin>,
    pub options: Vec<OptionDef>,
}

impl Entity {
    /// Appends definitions in load order; the first ones are taken over without a copy.
    pub(crate) fn add_options(&mut self, defs: Vec<OptionDef>) {
        if self.options.is_empty() {
            self.options = defs;
        } else {
            self.options.extend(defs);
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub sources: SourceMap,
    pub entities: Vec<Entity>,
    pub instances: Vec<Instance>,
    /// Per kind (a handful), name to the entity's index: looked up without allocating.
    index: Vec<(String, FastMap<String, usize>)>,
}

impl Tree {
    pub fn entity(&self, kind: &str, name: &str) -> Option<&Entity> {
        self.index
            .iter()
            .find(|(k, _)| k == kind)
            .and_then(|(_, names)| names.get(name))
            .map(|&i| &self.entities[i])
    }

    /// The entity for `kind`/`name`, created (with no options) on first use.
    pub(crate) fn entity_mut(&mut self, kind: &str, name: String) -> &mut Entity {
        let k = match self.index.iter().position(|(k, _)| k == kind) {
            Some(k) => k,
            None => {
                self.index.push((kind.to_string(), FastMap::default()));
                self.index.len() - 1
            }
        };
        let names = &mut self.index[k].1;
        let i = match names.get(name.as_str()) {
            Some(&i) => i,
            None => {
                let i = self.entities.len();
                names.insert(name.clone(), i);
                self.entities.push(Entity {
                    kind: kind.to_string(),
                    name,
                    decls: Vec::with_capacity(1),
                    options: Vec::new(),
                });
                i
            }
        };
        &mut self.entities[i]
    }

    pub fn instance(&self, id: InstanceId) -> &Instance {
        &self.instances[id.0 as usize]
    }

    /// The module instances a definition came through, innermost first.
    pub fn via_chain(&self, mut via: Option<InstanceId>) -> Vec<&Instance> {
        let mut chain = Vec::new();
        while let Some(id) = via {
            let inst = self.instance(id);
            chain.push(inst);
            via = inst.parent;
        }
        chain
    }

    /// `file:line:col` of an origin, followed by ` (via module NAME at file:line:col)`
    /// for each instance it came through.
    pub fn describe(&self, origin: &Origin) -> String {
        let mut s = self.sources.location(origin.file, origin.span.start);
        for inst in self.via_chain(origin.via) {
            s.push_str(&format!(
                " (via module `{}` at {})",
                inst.module,
                self.sources.location(inst.file, inst.span.start)
            ));
        }
        s
    }
}

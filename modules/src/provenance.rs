//! Finding the definitions behind an evaluated value, for diagnostics and `berth why`.

use berth_config::kdl::Span;
use berth_config::{Entity, FileId, OptionDef, Priority, Tree};

use crate::eval::Node;

/// The definitions of `path` in a node's entity, in load order.
pub fn defs<'t>(tree: &'t Tree, node: &Node, path: &str) -> Vec<&'t OptionDef> {
    entity(tree, node).map_or_else(Vec::new, |e| {
        e.options.iter().filter(|d| *d.path == *path).collect()
    })
}

pub fn entity<'t>(tree: &'t Tree, node: &Node) -> Option<&'t Entity> {
    node.entity.map(|i| &tree.entities[i])
}

/// The definitions that count: those at the highest priority.
pub fn winning<'t>(tree: &'t Tree, node: &Node, path: &str) -> Vec<&'t OptionDef> {
    let all = defs(tree, node, path);
    let top = all
        .iter()
        .map(|d| d.priority)
        .max()
        .unwrap_or(Priority::Default);
    all.into_iter().filter(|d| d.priority == top).collect()
}

/// Where each item of a merged list came from, in the list's order: one place per
/// argument for `List` options (`after "a" "b"`), one per definition for records.
pub fn item_places(tree: &Tree, node: &Node, path: &str, per_arg: bool) -> Vec<(FileId, Span)> {
    let mut out = Vec::new();
    item_places_into(tree, node, path, per_arg, &mut out);
    out
}

/// [`item_places`] into a buffer the caller reuses (cleared first).
pub(crate) fn item_places_into(
    tree: &Tree,
    node: &Node,
    path: &str,
    per_arg: bool,
    out: &mut Vec<(FileId, Span)>,
) {
    out.clear();
    let Some(e) = entity(tree, node) else {
        return;
    };
    let of_path = || e.options.iter().filter(|d| *d.path == *path);
    let Some(top) = of_path().map(|d| d.priority).max() else {
        return;
    };
    for d in of_path().filter(|d| d.priority == top) {
        if per_arg {
            out.extend(d.args.iter().map(|a| (a.file, a.span)));
        } else {
            out.push((d.origin.file, d.origin.span));
        }
    }
}

/// The place of the winning definition of a scalar, or the node's declaration.
pub fn value_place(tree: &Tree, node: &Node, path: &str) -> Option<(FileId, Span)> {
    if let Some(d) = winning(tree, node, path).first() {
        return Some(
            d.args
                .first()
                .map_or((d.origin.file, d.origin.span), |a| (a.file, a.span)),
        );
    }
    decl_place(tree, node)
}

pub fn decl_place(tree: &Tree, node: &Node) -> Option<(FileId, Span)> {
    entity(tree, node)
        .and_then(|e| e.decls.first())
        .map(|o| (o.file, o.span))
}

//! Plans: what it takes to go from one evaluated host to another.
//!
//! [`plan`] diffs two evaluations node by node (unchanged nodes are skipped by their
//! hash, so a no-op plan of a big host costs one comparison per node) and turns every
//! changed option into the action its apply class asks for. A node's action is the
//! costliest of its changes; what depends on a node that is recreated or restarted
//! follows it: the members of a recreated network or volume are recreated, a container
//! that `requires` a restarted one restarts. Steps come in the order they can be
//! applied: removals first, dependents before what they depend on; then everything
//! else in start order (the new graph's layers), so independent steps of one layer can
//! run in parallel.
//!
//! The JSON form ([`Plan::to_json`]) is stable: `{"v": 1, "from": HASH|null, "to":
//! HASH, "steps": [{"kind", "name", "action", "layer", "reasons": [..], "changes":
//! [{"path", "old", "new", "class"}]}]}`, where `action` is one of `create`, `remove`,
//! `live`, `reload`, `restart`, `recreate`, `reboot`, and `old`/`new` are canonical
//! JSON values or null (unset).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use berth_modules::graph::EdgeKind;
use berth_modules::{ApplyClass, Evaluation, Kind, Node, Value};
use serde_json::{Value as Json, json};

/// What a step does to its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Written in place; nothing restarts.
    Live,
    /// The reload signal is sent.
    Reload,
    /// The process is stopped and started again in the same namespaces.
    Restart,
    /// Destroyed and created again.
    Recreate,
    /// Applied at the next boot.
    Reboot,
    /// New in the target.
    Create,
    /// Gone from the target.
    Remove,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Live => "live",
            Action::Reload => "reload",
            Action::Restart => "restart",
            Action::Recreate => "recreate",
            Action::Reboot => "reboot",
            Action::Create => "create",
            Action::Remove => "remove",
        }
    }

    fn of(class: ApplyClass) -> Action {
        match class {
            ApplyClass::Live => Action::Live,
            ApplyClass::Reload => Action::Reload,
            ApplyClass::Restart => Action::Restart,
            ApplyClass::Recreate => Action::Recreate,
            ApplyClass::Reboot => Action::Reboot,
        }
    }

    /// Whether the node's process (or the node itself) goes away for a moment, which
    /// its dependents must follow.
    fn disrupts(self) -> bool {
        matches!(self, Action::Restart | Action::Recreate | Action::Remove)
    }
}

/// One option that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: &'static str,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub class: ApplyClass,
}

/// What happens to one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// Position in the order of application; steps with the same layer are independent.
    pub layer: usize,
    /// The changed options (empty for a node that only follows a dependency).
    pub changes: Vec<Change>,
    /// Why a node with no (or cheaper) changes of its own is restarted or recreated.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub from: Option<blake3::Hash>,
    pub to: blake3::Hash,
    pub steps: Vec<Step>,
}

type Key<'a> = (Kind, &'a str);

fn key(n: &Node) -> Key<'_> {
    (n.id.kind, n.id.name.as_str())
}

/// The plan from `old` (what runs; `None` for nothing) to `new`.
pub fn plan(old: Option<&Evaluation>, new: &Evaluation) -> Plan {
    let old_nodes: HashMap<Key, &Node> = old
        .map(|o| o.nodes.iter().map(|n| (key(n), n)).collect())
        .unwrap_or_default();
    let new_index: HashMap<Key, usize> = new
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (key(n), i))
        .collect();

    // Own changes of every node of the target.
    let mut actions: Vec<Option<(Action, Vec<Change>)>> = vec![None; new.nodes.len()];
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); new.nodes.len()];
    for (i, n) in new.nodes.iter().enumerate() {
        match old_nodes.get(&key(n)) {
            None if n.id.kind == Kind::Host && old.is_some() => {}
            None => actions[i] = Some((Action::Create, Vec::new())),
            Some(o) if o.hash == n.hash => {}
            Some(o) => {
                let changes = diff_node(o, n);
                if let Some(class) = changes.iter().map(|c| c.class).max() {
                    actions[i] = Some((Action::of(class), changes));
                }
            }
        }
    }

    // What follows a disrupted dependency, in start order so that chains propagate.
    for layer in &new.graph.layers {
        for &i in layer {
            for e in new.graph.dependencies(i) {
                let Some((dep_action, _)) = &actions[e.to] else {
                    continue;
                };
                let dep_action = *dep_action;
                let follow = match e.kind {
                    EdgeKind::Network | EdgeKind::Volume
                        if matches!(dep_action, Action::Recreate | Action::Create) =>
                    {
                        Action::Recreate
                    }
                    EdgeKind::Requires if dep_action.disrupts() || dep_action == Action::Create => {
                        Action::Restart
                    }
                    _ => continue,
                };
                let dep = &new.nodes[e.to].id;
                let current = actions[i].as_ref().map(|(a, _)| *a);
                if matches!(current, Some(Action::Create)) {
                    continue;
                }
                reasons[i].push(format!(
                    "{} `{}` is {}",
                    dep.kind.name(),
                    dep.name,
                    match dep_action {
                        Action::Create => "created",
                        Action::Recreate => "recreated",
                        _ => "restarted",
                    }
                ));
                match &mut actions[i] {
                    Some((a, _)) => *a = (*a).max(follow),
                    slot @ None => *slot = Some((follow, Vec::new())),
                }
            }
        }
    }

    let mut steps = Vec::new();
    // Removals: what is gone, dependents first (the old graph's layers backwards).
    if let Some(old) = old {
        let mut layer = 0;
        for l in old.graph.layers.iter().rev() {
            let mut any = false;
            for &i in l {
                let n = &old.nodes[i];
                if !new_index.contains_key(&key(n)) {
                    steps.push(Step {
                        kind: n.id.kind,
                        name: n.id.name.clone(),
                        action: Action::Remove,
                        layer,
                        changes: Vec::new(),
                        reasons: Vec::new(),
                    });
                    any = true;
                }
            }
            layer += usize::from(any);
        }
    }
    let base = steps.last().map_or(0, |s| s.layer + 1);
    // The host first, then the graph's layers.
    let host_layer = std::iter::once(vec![0usize]);
    let mut layer = base;
    for l in host_layer.chain(new.graph.layers.iter().cloned()) {
        let mut any = false;
        for i in l {
            let Some((action, changes)) = actions[i].take() else {
                continue;
            };
            let n = &new.nodes[i];
            steps.push(Step {
                kind: n.id.kind,
                name: n.id.name.clone(),
                action,
                layer,
                changes,
                reasons: std::mem::take(&mut reasons[i]),
            });
            any = true;
        }
        layer += usize::from(any);
    }
    Plan {
        from: old.map(|o| o.hash),
        to: new.hash,
        steps,
    }
}

/// The options of two versions of one node that differ, in schema order.
fn diff_node(old: &Node, new: &Node) -> Vec<Change> {
    let schema = new.schema();
    schema
        .options
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let (o, n) = (old.values.get(i)?.as_ref(), new.values.get(i)?.as_ref());
            (o != n).then(|| Change {
                path: spec.path,
                old: o.cloned(),
                new: n.cloned(),
                class: spec.apply,
            })
        })
        .collect()
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Steps per action, for the summary line.
    pub fn counts(&self) -> BTreeMap<Action, usize> {
        let mut m = BTreeMap::new();
        for s in &self.steps {
            *m.entry(s.action).or_insert(0) += 1;
        }
        m
    }

    pub fn to_json(&self) -> Json {
        json!({
            "v": 1,
            "from": self.from.map(|h| h.to_hex().to_string()),
            "to": self.to.to_hex().to_string(),
            "steps": self.steps.iter().map(|s| json!({
                "kind": s.kind.name(),
                "name": s.name,
                "action": s.action.name(),
                "layer": s.layer,
                "reasons": s.reasons,
                "changes": s.changes.iter().map(|c| json!({
                    "path": c.path,
                    "old": c.old.as_ref().map(Value::to_json),
                    "new": c.new.as_ref().map(Value::to_json),
                    "class": c.class.name(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The human form, like `terraform plan`: one block per step, `~` changed, `+`
    /// created, `-` removed, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            out.push_str("No changes: the host already runs this configuration.\n");
            return out;
        }
        for s in &self.steps {
            let sign = match s.action {
                Action::Create => '+',
                Action::Remove => '-',
                _ => '~',
            };
            let what = if s.kind == Kind::Host {
                "host".to_string()
            } else {
                format!("{} {}", s.kind.name(), s.name)
            };
            let _ = writeln!(out, "{sign} {what}: {}", s.action.name());
            for c in &s.changes {
                let show =
                    |v: &Option<Value>| v.as_ref().map_or("(unset)".to_string(), |v| v.to_string());
                let _ = writeln!(
                    out,
                    "    {}: {} -> {}  ({})",
                    c.path,
                    show(&c.old),
                    show(&c.new),
                    c.class
                );
            }
            for r in &s.reasons {
                let _ = writeln!(out, "    because {r}");
            }
        }
        let counts = self.counts();
        let summary: Vec<String> = counts
            .iter()
            .map(|(a, n)| format!("{n} {}", a.name()))
            .collect();
        let _ = writeln!(out, "\nPlan: {}.", summary.join(", "));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use berth_config::MemSource;

    fn eval(text: &str) -> Evaluation {
        let mut src = MemSource::default();
        src.insert("/h.kdl", text);
        match berth_modules::evaluate(&src, std::path::Path::new("/h.kdl")) {
            Ok(ev) => ev,
            Err(f) => panic!("{:?}", f.diagnostics),
        }
    }

    fn host(db_mem: &str, web_env: &str, subnet: &str) -> String {
        format!(
            r#"host h
network lan {{
    subnet "{subnet}"
}}
container db {{
    rootfs host
    exec "/bin/db"
    network lan
    limits {{
        memory "{db_mem}"
    }}
}}
container web {{
    rootfs host
    exec "/bin/web"
    env MODE="{web_env}"
    requires db
}}
container other {{
    rootfs host
    exec "/bin/other"
}}
"#
        )
    }

    fn brief(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} @{}",
                    s.kind.name(),
                    s.name,
                    s.action.name(),
                    s.layer
                )
            })
            .collect()
    }

    #[test]
    fn no_change_is_an_empty_plan() {
        let a = eval(&host("64M", "a", "10.0.0.0/24"));
        let b = eval(&host("64M", "a", "10.0.0.0/24"));
        assert!(plan(Some(&a), &b).is_empty());
    }

    #[test]
    fn a_memory_limit_is_one_live_step() {
        let a = eval(&host("64M", "a", "10.0.0.0/24"));
        let b = eval(&host("128M", "a", "10.0.0.0/24"));
        let p = plan(Some(&a), &b);
        assert_eq!(brief(&p), ["container db live @0"]);
        let c = &p.steps[0].changes[0];
        assert_eq!(c.path, "limits.memory");
        assert_eq!(c.class, ApplyClass::Live);
        assert!(
            p.render()
                .contains("limits.memory: \"64M\" -> \"128M\"  (live)"),
            "{}",
            p.render()
        );
    }

    #[test]
    fn an_env_change_restarts_only_that_container() {
        let a = eval(&host("64M", "a", "10.0.0.0/24"));
        let b = eval(&host("64M", "b", "10.0.0.0/24"));
        assert_eq!(brief(&plan(Some(&a), &b)), ["container web restart @0"]);
    }

    #[test]
    fn a_network_change_recreates_its_members_and_their_dependents_restart() {
        let a = eval(&host("64M", "a", "10.0.0.0/24"));
        let b = eval(&host("64M", "a", "10.0.1.0/24"));
        let p = plan(Some(&a), &b);
        assert_eq!(
            brief(&p),
            [
                "network lan recreate @0",
                "container db recreate @1",
                "container web restart @2"
            ]
        );
        assert_eq!(p.steps[1].reasons, ["network `lan` is recreated"]);
        assert_eq!(p.steps[2].reasons, ["container `db` is recreated"]);
    }

    #[test]
    fn removals_come_first_dependents_before_dependencies() {
        let a = eval(&host("64M", "a", "10.0.0.0/24"));
        let b = eval("host h\n");
        let p = plan(Some(&a), &b);
        let names: Vec<String> = brief(&p);
        let pos = |s: &str| names.iter().position(|n| n.starts_with(s)).unwrap();
        assert!(pos("container web") < pos("container db"), "{names:?}");
        assert!(pos("container db") < pos("network lan"), "{names:?}");
        assert!(p.steps.iter().all(|s| s.action == Action::Remove));
    }

    #[test]
    fn from_nothing_everything_is_created_in_start_order() {
        let b = eval(&host("64M", "a", "10.0.0.0/24"));
        let p = plan(None, &b);
        let names = brief(&p);
        assert_eq!(names[0], "host  create @0");
        let pos = |s: &str| names.iter().position(|n| n.starts_with(s)).unwrap();
        assert!(pos("network lan") < pos("container db"));
        assert!(pos("container db") < pos("container web"));
        let json = p.to_json();
        assert_eq!(json["v"], 1);
        assert_eq!(json["from"], Json::Null);
    }
}

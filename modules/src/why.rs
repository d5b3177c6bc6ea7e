//! `berth why`: a value, and every definition that contributed to it.

use berth_config::diag::did_you_mean;
use berth_config::{OptionDef, Priority};

use crate::check::{Typed, check_def};
use crate::docs::shape_text;
use crate::eval::{Evaluation, Node};
use crate::provenance::defs;
use crate::schema::{Kind, OptionSpec, Shape};

/// Explains `path` (`container.web.limits.memory`, `container.web.env.PGDATA`,
/// `host.timezone`, or a prefix such as `container.web` for every option under it).
/// The error is a one-line message for the user.
pub fn why(eval: &Evaluation, path: &str) -> Result<String, String> {
    let mut segs = path.splitn(2, '.');
    let kind_name = segs.next().unwrap_or_default();
    let Some(kind) = Kind::from_name(kind_name) else {
        let hint = did_you_mean(kind_name, Kind::ALL.iter().map(|k| k.name()))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "`{kind_name}` is not a node kind{hint}; paths look like container.NAME.OPTION or host.OPTION"
        ));
    };
    let rest = segs.next().unwrap_or_default();
    let (name, option) = if kind == Kind::Host {
        ("", rest)
    } else {
        rest.split_once('.').unwrap_or((rest, ""))
    };
    if kind != Kind::Host && name.is_empty() {
        return Err(format!(
            "which {kind}? write {kind}.NAME or {kind}.NAME.OPTION"
        ));
    }
    let Some(node) = eval.node(kind, name) else {
        let hint = did_you_mean(name, eval.of_kind(kind).map(|n| n.id.name.as_str()))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(format!("this host has no {kind} `{name}`{hint}"));
    };
    let schema = kind.schema();
    if let Some((_, spec)) = schema.option(option) {
        return Ok(explain(eval, node, spec, None));
    }
    if let Some((opt, key)) = option.rsplit_once('.')
        && let Some((_, spec)) = schema.option(opt)
        && matches!(spec.shape, Shape::Map(_))
    {
        return Ok(explain(eval, node, spec, Some(key)));
    }
    let under: Vec<&OptionSpec> = schema
        .options
        .iter()
        .filter(|o| {
            option.is_empty()
                || o.path
                    .strip_prefix(option)
                    .is_some_and(|r| r.starts_with('.'))
        })
        .collect();
    if under.is_empty() {
        let hint = did_you_mean(option, schema.options.iter().map(|o| o.path))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "{kind} has no option `{option}`{hint}; see `berth options {kind}`"
        ));
    }
    let mut out = String::new();
    for spec in under {
        let value = node
            .get(spec.path)
            .map_or_else(|| "(not set)".to_string(), ToString::to_string);
        let ds = defs(&eval.tree, node, spec.path);
        let top = ds.iter().map(|d| d.priority).max();
        let places: Vec<String> = ds
            .iter()
            .filter(|d| Some(d.priority) == top)
            .map(|d| eval.tree.describe(&d.origin))
            .collect();
        let place = match (places.is_empty(), top) {
            (false, Some(p)) => format!("{} ({p})", places.join(", ")),
            _ if spec.default.is_some() => "default".to_string(),
            _ => String::new(),
        };
        out.push_str(
            &format!("{}.{} = {value}    {place}\n", node.id, spec.path).replace("    \n", "\n"),
        );
    }
    Ok(out)
}

fn explain(eval: &Evaluation, node: &Node, spec: &OptionSpec, key: Option<&str>) -> String {
    let tree = &eval.tree;
    let full = match key {
        Some(k) => format!("{}.{}.{k}", node.id, spec.path),
        None => format!("{}.{}", node.id, spec.path),
    };
    let value = node.get(spec.path).map(|v| match key {
        Some(k) => v
            .field(k)
            .map_or_else(|| "(not set)".to_string(), ToString::to_string),
        None => v.to_string(),
    });
    let mut out = format!("{full} = {}\n", value.unwrap_or_else(|| "(not set)".into()));
    out.push_str(&format!("  {}\n", spec.doc));
    let mut facts = vec![
        format!("type: {}", shape_text(spec)),
        format!("apply: {}", spec.apply),
    ];
    if let Some(d) = spec.default {
        facts.push(format!("default: {d}"));
    }
    out.push_str(&format!("  {}\n\n", facts.join("; ")));

    // Each definition with the value it gives (for a map key: that key's value).
    let name = spec.path.rsplit('.').next().unwrap_or(spec.path);
    let mut rows: Vec<(&OptionDef, Priority, String)> = Vec::new();
    for d in defs(tree, node, spec.path) {
        match (check_def(spec.shape, name, d), key) {
            (Ok(Typed::Keys(kv)), Some(k)) => {
                for (kk, v, p) in kv {
                    if kk == k {
                        rows.push((d, p, v.to_string()));
                    }
                }
            }
            (Ok(Typed::One(v)), None) => rows.push((d, d.priority, v.to_string())),
            (Ok(Typed::Many(vs)), None) => rows.push((
                d,
                d.priority,
                vs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
            (Ok(Typed::Keys(kv)), None) => rows.push((
                d,
                d.priority,
                kv.iter()
                    .map(|(k, v, _)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
            _ => {}
        }
    }
    if rows.is_empty() {
        out.push_str(match spec.default {
            Some(_) => "  not defined in any file: the default applies\n",
            None => "  not defined in any file, and it has no default\n",
        });
        return out;
    }
    let top = rows.iter().map(|r| r.1).max().unwrap_or(Priority::Default);
    let combines = key.is_none()
        && matches!(
            spec.shape,
            Shape::List(_) | Shape::Records(_) | Shape::Map(_)
        );
    let how = if matches!(spec.shape, Shape::Map(_)) {
        "merged by key"
    } else {
        "merged: lists at the highest priority concatenate"
    };
    let winners = rows.iter().filter(|r| r.1 == top).count();
    out.push_str("  definitions, in load order:\n");
    let width = rows
        .iter()
        .map(|r| tree.describe(&r.0.origin).len())
        .max()
        .unwrap_or(0);
    let mut first_winner = true;
    for (d, p, v) in &rows {
        let verdict = if *p < top {
            format!("overridden: {p} < {top}")
        } else if combines && winners > 1 {
            how.to_string()
        } else if first_winner {
            first_winner = false;
            if rows.len() == 1 {
                "the only definition".to_string()
            } else {
                format!("wins: highest priority ({top})")
            }
        } else {
            "agrees with the winner".to_string()
        };
        let mark = if *p == top { "*" } else { " " };
        out.push_str(&format!(
            "  {mark} {:<width$}  {:<8} {v}\n      {verdict}\n",
            tree.describe(&d.origin),
            p.name()
        ));
    }
    out
}

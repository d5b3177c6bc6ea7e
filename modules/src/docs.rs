//! `berth options` and the language reference, generated from the schema.

use serde_json::{Value as Json, json};

use crate::schema::{Field, Kind, OptionSpec, READY_PROPS, Shape};

/// The written form of an option's value(s).
pub fn shape_text(spec: &OptionSpec) -> String {
    let fields = |fs: &[Field]| {
        fs.iter()
            .map(|f| match (f.positional, f.required) {
                (true, true) => f.name.to_uppercase(),
                (true, false) => format!("[{}]", f.name.to_uppercase()),
                (false, _) => format!("[{}=…]", f.name),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match spec.shape {
        Shape::Scalar(ty) => ty.describe(),
        Shape::Argv => "\"PROGRAM\" \"ARG\"…".into(),
        Shape::List(ty) => format!("{}…", ty.describe()),
        Shape::Map(ty) => format!("KEY=({})…", ty.describe()),
        Shape::Records(fs) => fields(fs),
        Shape::Ready => format!(
            "\"notify\" | \"tcp\" PORT | \"exec\" CMD… {}",
            fields(READY_PROPS)
        ),
    }
}

fn merge_text(spec: &OptionSpec) -> &'static str {
    match spec.shape {
        Shape::Scalar(_) | Shape::Argv | Shape::Ready => "single value",
        Shape::List(_) => "list, repeatable",
        Shape::Map(_) => "map, merged by key",
        Shape::Records(_) => "repeatable",
    }
}

/// Options whose full path (`container.limits.memory`) starts with `prefix`.
fn matching(prefix: &str) -> Vec<(Kind, &'static OptionSpec)> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for o in kind.schema().options {
            let full = format!("{}.{}", kind.name(), o.path);
            if prefix.is_empty()
                || full == prefix
                || full.starts_with(&format!("{prefix}."))
                || (kind.name() == prefix)
            {
                out.push((kind, o));
            }
        }
    }
    out
}

/// Human form, like a man page's OPTIONS section. `None` when nothing matches.
pub fn options_text(prefix: &str) -> Option<String> {
    let opts = matching(prefix);
    if opts.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut last_kind = None;
    for (kind, o) in opts {
        if last_kind != Some(kind) {
            if last_kind.is_some() {
                out.push('\n');
            }
            let s = kind.schema();
            out.push_str(&format!(
                "{}  —  {}\n    {}\n\n",
                kind.name().to_uppercase(),
                s.doc,
                s.usage
            ));
            last_kind = Some(kind);
        }
        out.push_str(&format!("  {}.{} {}\n", kind.name(), o.path, shape_text(o)));
        out.push_str(&format!("      {}\n", o.doc));
        let mut facts = vec![format!("apply: {}", o.apply), merge_text(o).to_string()];
        if o.required {
            facts.push("required".into());
        }
        if let Some(d) = o.default {
            facts.push(format!("default: {d}"));
        }
        out.push_str(&format!("      [{}]\n", facts.join("; ")));
        if let Shape::Records(fields) = o.shape {
            for f in fields {
                let d = f
                    .default
                    .map(|d| format!(" (default {d})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "        {:<10} {}: {}{d}\n",
                    f.name,
                    f.ty.describe(),
                    f.doc
                ));
            }
        }
    }
    Some(out)
}

pub fn options_json(prefix: &str) -> Json {
    let items: Vec<Json> = matching(prefix)
        .into_iter()
        .map(|(kind, o)| {
            json!({
                "path": format!("{}.{}", kind.name(), o.path),
                "kind": kind.name(),
                "option": o.path,
                "type": shape_text(o),
                "merge": merge_text(o),
                "required": o.required,
                "default": o.default.map(|d| d.to_string()),
                "apply": o.apply.name(),
                "doc": o.doc,
            })
        })
        .collect();
    Json::Array(items)
}

/// The language reference as Markdown tables, for the README (a test keeps the README
/// in step with this).
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for kind in Kind::ALL {
        let s = kind.schema();
        out.push_str(&format!(
            "#### `{}`\n\n{} `{}`\n\n",
            kind.name(),
            s.doc,
            s.usage
        ));
        out.push_str("| option | value | default | apply | |\n|---|---|---|---|---|\n");
        for o in s.options {
            let d = match (o.required, o.default) {
                (true, _) => "required".to_string(),
                (false, Some(d)) => d.to_string(),
                (false, None) => "—".to_string(),
            };
            let esc = |t: String| t.replace('|', "\\|");
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                o.path,
                esc(shape_text(o)),
                esc(d),
                o.apply,
                esc(o.doc.to_string())
            ));
            let fields: &[Field] = match o.shape {
                Shape::Records(fs) => fs,
                Shape::Ready => READY_PROPS,
                _ => &[],
            };
            for f in fields {
                let name = if f.positional {
                    f.name.to_uppercase()
                } else {
                    format!("{}=", f.name)
                };
                let d = f.default.map_or_else(
                    || {
                        if f.required {
                            "required".to_string()
                        } else {
                            "—".to_string()
                        }
                    },
                    |d| d.to_string(),
                );
                out.push_str(&format!(
                    "| &nbsp;&nbsp;`{name}` | {} | {} | | {} |\n",
                    esc(f.ty.describe()),
                    esc(d),
                    esc(f.doc.to_string())
                ));
            }
        }
        out.push('\n');
    }
    out
}

//! Editing one host file in place, for `berth set` and `berth unset`: the change is
//! spliced into the text at the spans the parser reports, so every comment, blank line
//! and the formatting of everything else stay as they were.
//!
//! A path names an entity and an option inside it: `kind`, `name` (empty for the host)
//! and the option's segments (`limits`, `memory`). Values are given as KDL text for
//! the entries (`"256M"`, `8080 80`, `MODE="prod"`); [`value_text`] turns a word from a
//! command line into such text.

use crate::kdl::{self, Node, Span, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the file does not parse; fix it first (`berth check` shows where)")]
    Syntax,
    #[error("{0} is not defined in this file")]
    NotDefined(String),
}

/// The entity `kind "name"` (or the singleton `kind`).
fn is_entity(n: &Node, kind: &str, name: &str) -> bool {
    if n.name.value != kind {
        return false;
    }
    let first = n.entries.iter().find(|e| e.name.is_none());
    match first.map(|e| &e.value) {
        Some(Value::String(s)) => name.is_empty() || s == name,
        _ => name.is_empty(),
    }
}

/// The indentation of the line `pos` is on.
fn indent_at(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let rest = &text[line_start..];
    &rest[..rest.len() - rest.trim_start_matches([' ', '\t']).len()]
}

/// The nested text of `segments` (the last one with `values`), one level per block.
fn nested(segments: &[&str], values: &str, indent: &str, step: &str) -> String {
    match segments {
        [last] => format!("{last} {values}"),
        [first, rest @ ..] => format!(
            "{first} {{\n{indent}{step}{}\n{indent}}}",
            nested(rest, values, &format!("{indent}{step}"), step)
        ),
        [] => String::new(),
    }
}

struct Splice {
    at: Span,
    with: String,
}

fn apply(text: &str, s: Splice) -> String {
    let mut out = String::with_capacity(text.len() + s.with.len());
    out.push_str(&text[..s.at.start as usize]);
    out.push_str(&s.with);
    out.push_str(&text[s.at.end as usize..]);
    out
}

fn point(at: u32) -> Span {
    Span { start: at, end: at }
}

/// Inserts `segments values` as the last child of `parent` (whose block is `children`,
/// possibly absent).
fn insert_into(text: &str, parent: &Node, segments: &[&str], values: &str) -> Splice {
    let step = "    ";
    let parent_indent = indent_at(text, parent.span.start as usize);
    match &parent.children {
        Some(children) if !children.is_empty() => {
            let last = &children[children.len() - 1];
            let indent = indent_at(text, last.span.start as usize);
            // A one-line block (`limits { memory "1G" }`) gets a `;`, not a new line.
            let one_line =
                !text[parent.span.start as usize..parent.span.end as usize].contains('\n');
            let with = if one_line {
                format!("; {}", nested(segments, values, "", ""))
            } else {
                format!("\n{indent}{}", nested(segments, values, indent, step))
            };
            // After a comment that ends the last child's line, not before it.
            let end = last.span.end as usize;
            let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
            let rest = text[end..line_end].trim();
            let at = if !one_line && (rest.is_empty() || rest.starts_with("//")) {
                line_end
            } else {
                end
            };
            Splice {
                at: point(at as u32),
                with,
            }
        }
        Some(_) => {
            // An empty block: `{` … `}`; insert right after the brace.
            let body = &text[parent.span.start as usize..parent.span.end as usize];
            let brace = parent.span.start + body.rfind('{').unwrap_or(0) as u32 + 1;
            let indent = format!("{parent_indent}{step}");
            Splice {
                at: Span {
                    start: brace,
                    end: parent.span.end - 1,
                },
                with: format!(
                    "\n{indent}{}\n{parent_indent}",
                    nested(segments, values, &indent, step)
                ),
            }
        }
        None => {
            let indent = format!("{parent_indent}{step}");
            Splice {
                at: point(parent.span.end),
                with: format!(
                    " {{\n{indent}{}\n{parent_indent}}}",
                    nested(segments, values, &indent, step)
                ),
            }
        }
    }
}

/// Sets the option to `values` (KDL entry text). An existing definition keeps its
/// place and only its entries change (the last one, when several blocks of this file
/// declare the entity); otherwise the option is added to the last block declaring the
/// entity, or the entity is appended to the file.
pub fn set(
    text: &str,
    kind: &str,
    name: &str,
    segments: &[&str],
    values: &str,
) -> Result<String, EditError> {
    let (doc, errors) = kdl::parse(text);
    if !errors.is_empty() {
        return Err(EditError::Syntax);
    }
    let Some(entity) = doc.nodes.iter().rev().find(|n| is_entity(n, kind, name)) else {
        let head = if name.is_empty() {
            kind.to_string()
        } else {
            let bare = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !matches!(name, "true" | "false" | "null" | "inf" | "nan");
            if bare {
                format!("{kind} {name}")
            } else {
                format!("{kind} {}", value_text(name))
            }
        };
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        return Ok(format!(
            "{text}{sep}{head} {{\n    {}\n}}\n",
            nested(segments, values, "    ", "    ")
        ));
    };
    // Walk down the blocks; the deepest existing one receives what is missing.
    let mut parent = entity;
    for (depth, seg) in segments.iter().enumerate() {
        let found = parent
            .children
            .iter()
            .flatten()
            .rev()
            .find(|c| c.name.value == *seg);
        let last = depth + 1 == segments.len();
        match found {
            Some(node) if last => {
                let with = format!(" {values}");
                let at = match node.entries.last() {
                    Some(last) => Span {
                        start: node.name.span.end,
                        end: last.span.end,
                    },
                    None => point(node.name.span.end),
                };
                return Ok(apply(text, Splice { at, with }));
            }
            Some(node) if node.children.is_some() => parent = node,
            _ => {
                return Ok(apply(
                    text,
                    insert_into(text, parent, &segments[depth..], values),
                ));
            }
        }
    }
    Ok(text.to_string())
}

/// Removes every definition of the option in this file (whole lines where the
/// definition is alone on its lines).
pub fn unset(text: &str, kind: &str, name: &str, segments: &[&str]) -> Result<String, EditError> {
    let (doc, errors) = kdl::parse(text);
    if !errors.is_empty() {
        return Err(EditError::Syntax);
    }
    let mut spans = Vec::new();
    for entity in doc.nodes.iter().filter(|n| is_entity(n, kind, name)) {
        collect(entity, segments, &mut spans);
    }
    if spans.is_empty() {
        return Err(EditError::NotDefined(segments.join(".")));
    }
    let mut out = text.to_string();
    spans.sort_by_key(|s| std::cmp::Reverse(s.start));
    for s in spans {
        let (mut start, mut end) = (s.start as usize, s.end as usize);
        let line_start = out[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = out[end..].find('\n').map_or(out.len(), |i| end + i);
        let after = out[end..line_end].trim_start();
        if out[line_start..start].trim().is_empty() && (after.is_empty() || after.starts_with("//"))
        {
            // The whole line, with its newline (and the comment that explained it).
            start = line_start;
            end = (line_end + 1).min(out.len());
        } else if out[end..].trim_start().starts_with(';') {
            end += out[end..].find(';').map_or(0, |i| i + 1);
            end += out[end..].len() - out[end..].trim_start_matches([' ', '\t']).len();
        }
        out.replace_range(start..end, "");
    }
    Ok(out)
}

fn collect(parent: &Node, segments: &[&str], out: &mut Vec<Span>) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    for c in parent
        .children
        .iter()
        .flatten()
        .filter(|c| c.name.value == *first)
    {
        if rest.is_empty() {
            out.push(c.span);
        } else {
            collect(c, rest, out);
        }
    }
}

/// KDL text for one command-line word: kept when it already is a KDL value (a number,
/// `#true`, a quoted string) or a property (`KEY=value`, the value quoted as needed),
/// otherwise written as a quoted string.
pub fn value_text(word: &str) -> String {
    if let Some((key, value)) = word.split_once('=')
        && !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !key.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        return format!("{key}={}", value_text(value));
    }
    let (doc, errors) = kdl::parse(&format!("n {word}"));
    let single = errors.is_empty()
        && doc.nodes.len() == 1
        && doc.nodes[0].entries.len() == 1
        && doc.nodes[0].entries[0].name.is_none()
        && doc.nodes[0].entries[0].ty.is_none()
        && doc.nodes[0].children.is_none()
        && !matches!(doc.nodes[0].entries[0].value, Value::String(_) if !word.starts_with('"') && !word.starts_with('#'));
    if single {
        return word.to_string();
    }
    let mut s = String::with_capacity(word.len() + 2);
    s.push('"');
    for c in word.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOST: &str = r#"// the web tier
container web {
    rootfs host // shared root
    exec "/bin/web"   // keep this comment
    limits {
        memory "64M" // a comment after the value
    }
}
container db { rootfs host; exec "/bin/db"; limits { cpu 1 } }
volume data
"#;

    #[test]
    fn set_replaces_only_the_value() {
        let out = set(HOST, "container", "web", &["limits", "memory"], "\"256M\"").unwrap();
        assert_eq!(out, HOST.replace("memory \"64M\"", "memory \"256M\""));
        let out = set(
            HOST,
            "container",
            "web",
            &["exec"],
            "\"/bin/sh\" \"-c\" \"x\"",
        )
        .unwrap();
        assert_eq!(
            out,
            HOST.replace("exec \"/bin/web\"", "exec \"/bin/sh\" \"-c\" \"x\"")
        );
    }

    #[test]
    fn set_adds_what_is_missing_at_the_blocks_indentation() {
        let out = set(HOST, "container", "web", &["limits", "pids"], "64").unwrap();
        assert!(
            out.contains(
                "        memory \"64M\" // a comment after the value\n        pids 64\n    }"
            ),
            "{out}"
        );
        let out = set(HOST, "container", "web", &["backoff", "initial"], "\"1s\"").unwrap();
        assert!(
            out.contains("    }\n    backoff {\n        initial \"1s\"\n    }\n}"),
            "{out}"
        );
        // One-line blocks stay on one line.
        let out = set(HOST, "container", "db", &["limits", "pids"], "8").unwrap();
        assert!(out.contains("limits { cpu 1; pids 8 } }"), "{out}");
        // A node without a block gets one.
        let out = set(HOST, "volume", "data", &["path"], "\"/srv\"").unwrap();
        assert!(
            out.ends_with("volume data {\n    path \"/srv\"\n}\n"),
            "{out}"
        );
        // A new entity is appended.
        let out = set(HOST, "network", "lan", &["subnet"], "\"10.0.0.0/24\"").unwrap();
        assert!(
            out.ends_with("volume data\nnetwork lan {\n    subnet \"10.0.0.0/24\"\n}\n"),
            "{out}"
        );
    }

    #[test]
    fn unset_removes_whole_lines_and_keeps_the_rest() {
        let out = unset(HOST, "container", "web", &["limits", "memory"]).unwrap();
        assert!(!out.contains("64M"));
        assert!(out.contains("    limits {\n    }\n"), "{out}");
        let out = unset(HOST, "container", "db", &["exec"]).unwrap();
        assert!(
            out.contains("container db { rootfs host; limits { cpu 1 } }"),
            "{out}"
        );
        assert_eq!(
            unset(HOST, "container", "web", &["limits", "pids"]),
            Err(EditError::NotDefined("limits.pids".into()))
        );
        assert_eq!(
            set("container {", "container", "x", &["a"], "1"),
            Err(EditError::Syntax)
        );
    }

    #[test]
    fn words_become_kdl_values() {
        assert_eq!(value_text("256M"), "\"256M\"");
        assert_eq!(value_text("8080"), "8080");
        assert_eq!(value_text("1.5"), "1.5");
        assert_eq!(value_text("#true"), "#true");
        assert_eq!(value_text("\"quoted\""), "\"quoted\"");
        assert_eq!(value_text("host"), "\"host\"");
        assert_eq!(value_text("MODE=prod"), "MODE=\"prod\"");
        assert_eq!(value_text("a \"b\""), "\"a \\\"b\\\"\"");
    }
}

//! The documentation is tested like code: every example host under `examples/` and
//! every KDL block of the README must evaluate, every example must be `berth fmt`-clean,
//! and the README's reference tables must be the ones the schema generates.
//!
//! Which example files are evaluated: every `.kdl` file under `examples/` (recursively)
//! that no other example imports is a root and is evaluated with its imports; every
//! imported file must be reached by some root, so it is evaluated through it. Every file,
//! root or not, must be formatted.
//!
//! README blocks, by the info string of their fence:
//! - ```` ```kdl ````: a complete host; it must evaluate without errors or warnings.
//! - ```` ```kdl fragment ````: part of a host (a block of options, say); it must parse.
//! - ```` ```kdl invalid ````: a mistake shown on purpose; it must fail to evaluate.
//!
//! A block whose first line is `// file: NAME.kdl` is written under that name, so other
//! blocks can `import` it; all blocks share one directory. `kdl` and `kdl fragment`
//! blocks must also be `berth fmt`-clean.
//!
//! When the schema changes, regenerate the README's reference with
//! `BERTH_BLESS=1 cargo test -p berth-init --test docs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_config::FsSource;
use berth_config::diag::render_all;
use berth_config::kdl::Value;
use berth_modules::evaluate;

const REFERENCE_START: &str = "<!-- reference:start -->";
const REFERENCE_END: &str = "<!-- reference:end -->";
const MIN_EXAMPLES: usize = 6;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("init/ has a parent")
        .to_path_buf()
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md is readable")
}

/// Every `.kdl` file under `dir`, sorted.
fn kdl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "kdl") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files `file` imports (top-level `import "PATH"`), canonical.
fn imports_of(file: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let (doc, _) = berth_config::kdl::parse(&text);
    let dir = file.parent().unwrap();
    doc.nodes
        .iter()
        .filter(|n| n.name.value == "import")
        .filter_map(|n| match n.entries.first().map(|e| &e.value) {
            Some(Value::String(p)) => dir.join(p).canonicalize().ok(),
            _ => None,
        })
        .collect()
}

/// Evaluates a host file; `Err` holds the rendered diagnostics (errors, or warnings).
fn evaluate_clean(file: &Path) -> Result<Vec<PathBuf>, String> {
    match evaluate(&FsSource, file) {
        Ok(ev) if ev.warnings.is_empty() => Ok(ev
            .tree
            .sources
            .files()
            .map(|(_, f)| f.canonical.clone())
            .collect()),
        Ok(ev) => Err(render_all(&ev.warnings, &ev.tree.sources, false)),
        Err(f) => Err(render_all(&f.diagnostics, &f.tree.sources, false)),
    }
}

/// `berth fmt --check` on one file: `None` when it is formatted.
fn fmt_problem(file: &Path) -> Option<String> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = berth_init::cmd::fmt(&[file.to_path_buf()], true, &mut out, &mut err, false);
    (code != 0).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    })
}

/// The `berth fmt` form of a file, from a formatted copy.
fn formatted(file: &Path) -> String {
    let copy = file.with_extension("fmt.kdl");
    std::fs::copy(file, &copy).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    berth_init::cmd::fmt(
        std::slice::from_ref(&copy),
        false,
        &mut out,
        &mut err,
        false,
    );
    let text = std::fs::read_to_string(&copy).unwrap();
    let _ = std::fs::remove_file(&copy);
    text
}

#[test]
fn examples_evaluate() {
    let files = kdl_files(&root().join("examples"));
    assert!(
        files.len() >= MIN_EXAMPLES,
        "examples/ has {} .kdl files, expected at least {MIN_EXAMPLES}",
        files.len()
    );
    let imported: BTreeSet<PathBuf> = files.iter().flat_map(|f| imports_of(f)).collect();
    let mut reached = BTreeSet::new();
    let mut failures = Vec::new();
    let mut roots = 0;
    for file in &files {
        let canonical = file.canonicalize().unwrap();
        if imported.contains(&canonical) {
            continue;
        }
        roots += 1;
        match evaluate_clean(file) {
            Ok(loaded) => reached.extend(loaded),
            Err(diags) => failures.push(format!("{}:\n{diags}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not evaluate cleanly:\n\n{}",
        failures.join("\n")
    );
    assert!(
        roots > 0,
        "every example is imported by another: an import cycle?"
    );
    let unreached: Vec<String> = files
        .iter()
        .filter(|f| !reached.contains(&f.canonicalize().unwrap()))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        unreached.is_empty(),
        "example files imported by an example but not reached when evaluating: {unreached:?}"
    );
}

#[test]
fn examples_are_formatted() {
    let files = kdl_files(&root().join("examples"));
    assert!(
        files.len() >= MIN_EXAMPLES,
        "examples/ has {} .kdl files, expected at least {MIN_EXAMPLES}",
        files.len()
    );
    let problems: Vec<String> = files.iter().filter_map(|f| fmt_problem(f)).collect();
    assert!(
        problems.is_empty(),
        "run `berth fmt` on these examples:\n{}",
        problems.join("")
    );
}

/// A fenced ```kdl block of the README.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The words after `kdl` in the info string.
    tags: Vec<String>,
    text: String,
}

impl Block {
    fn is(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
    /// The name given by a first line `// file: NAME.kdl`.
    fn file_name(&self) -> Option<&str> {
        let first = self.text.lines().next()?;
        let name = first.strip_prefix("// file:")?.trim();
        (!name.is_empty()).then_some(name)
    }
}

/// The ```kdl blocks of a Markdown text; other fenced blocks are skipped whole.
fn kdl_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Option<Block>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let Some(info) = trimmed.strip_prefix("```") else {
                    continue;
                };
                let fence = "`".repeat(3 + info.chars().take_while(|&c| c == '`').count());
                let info = info.trim_start_matches('`');
                let mut words = info.split_whitespace();
                let block = (words.next() == Some("kdl")).then(|| Block {
                    line: i + 1,
                    tags: words.map(String::from).collect(),
                    text: String::new(),
                });
                open = Some((fence, block));
            }
            Some((fence, block)) => {
                if trimmed.starts_with(fence.as_str())
                    && trimmed.trim_start_matches('`').trim().is_empty()
                {
                    if let Some(b) = block.take() {
                        blocks.push(b);
                    }
                    open = None;
                } else if let Some(b) = block {
                    b.text.push_str(line);
                    b.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "README.md has an unclosed code block");
    blocks
}

/// A fresh directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("berth-docs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn readme_kdl_blocks() {
    let blocks = kdl_blocks(&readme());
    assert!(!blocks.is_empty(), "README.md has no ```kdl block");
    for b in &blocks {
        let unknown: Vec<&String> = b
            .tags
            .iter()
            .filter(|t| !["fragment", "invalid"].contains(&t.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "README.md:{}: unknown tag(s) {unknown:?}; use ```kdl, ```kdl fragment or ```kdl invalid",
            b.line
        );
    }
    let dir = TempDir::new("readme");
    // Write every block first, so blocks can import named ones.
    let mut paths = Vec::new();
    for b in &blocks {
        let name = b
            .file_name()
            .map_or_else(|| format!("readme-line-{}.kdl", b.line), String::from);
        let path = dir.0.join(&name);
        assert!(
            !path.exists(),
            "README.md:{}: a second block named {name}",
            b.line
        );
        std::fs::write(&path, &b.text).unwrap();
        paths.push(path);
    }
    let mut failures = Vec::new();
    for (b, path) in blocks.iter().zip(&paths) {
        let at = format!(
            "README.md:{} (```kdl{})",
            b.line,
            b.tags.iter().map(|t| format!(" {t}")).collect::<String>()
        );
        if b.is("invalid") {
            if evaluate(&FsSource, path).is_ok() {
                failures.push(format!(
                    "{at}: marked invalid, but it evaluates without errors"
                ));
            }
            continue;
        }
        if b.is("fragment") {
            let (_, errors) = berth_config::kdl::parse(&b.text);
            if !errors.is_empty() {
                failures.push(format!(
                    "{at}: syntax errors: {:?}",
                    errors.iter().map(|e| &e.message).collect::<Vec<_>>()
                ));
            }
        } else if let Err(diags) = evaluate_clean(path) {
            failures.push(format!("{at}: does not evaluate cleanly (tag it `fragment` if it is part of a host):\n{diags}"));
        }
        if fmt_problem(path).is_some() {
            failures.push(format!(
                "{at}: not in `berth fmt` form; it should read:\n{}",
                formatted(path)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn readme_reference_is_generated() {
    let text = readme();
    let expected = berth_modules::docs::reference_markdown();
    let (Some(start), Some(end)) = (text.find(REFERENCE_START), text.find(REFERENCE_END)) else {
        panic!(
            "README.md needs the lines {REFERENCE_START} and {REFERENCE_END} around the reference tables"
        );
    };
    assert!(
        start < end,
        "{REFERENCE_START} must come before {REFERENCE_END}"
    );
    let body_start = start + REFERENCE_START.len();
    if text[body_start..end].trim() == expected.trim() {
        return;
    }
    if std::env::var_os("BERTH_BLESS").is_some_and(|v| v == "1") {
        let updated = format!(
            "{}\n\n{}\n\n{}",
            &text[..body_start],
            expected.trim(),
            &text[end..]
        );
        let path = root().join("README.md");
        let tmp = path.with_extension("md.bless");
        std::fs::write(&tmp, updated).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("rewrote the reference in {}", path.display());
        return;
    }
    panic!(
        "the README's reference (between {REFERENCE_START} and {REFERENCE_END}) differs from the schema's \
         `berth_modules::docs::reference_markdown()`; regenerate it with\n\n    \
         BERTH_BLESS=1 cargo test -p berth-init --test docs\n"
    );
}

#[test]
fn block_extraction() {
    let md = "text\n```kdl\nhost \"a\"\n```\n````markdown\n```kdl\nnot a block\n```\n````\n  ```kdl fragment\n  limits { }\n  ```\n```text\nx\n```\n";
    let blocks = kdl_blocks(md);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(
        (blocks[0].line, blocks[0].text.as_str()),
        (2, "host \"a\"\n")
    );
    assert!(blocks[1].is("fragment"));
    assert_eq!(blocks[1].text, "  limits { }\n");
}

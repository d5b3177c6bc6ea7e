//! `berth_config::fmt::format`: the layout rules one by one, comments kept, and over
//! the examples and generated documents: formatting keeps the meaning and is idempotent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use berth_config::fmt::{MEANING_CHANGED, format, same_meaning};
use berth_config::kdl::parse;
use proptest::prelude::*;

/// Formats `input`, checks the result is `expected`, that formatting it again changes
/// nothing and that both parse to the same document.
#[track_caller]
fn check(input: &str, expected: &str) {
    let out = match format(input) {
        Ok(out) => out,
        Err(e) => panic!("format failed on {input:?}: {e:?}"),
    };
    assert_eq!(out, expected, "formatting {input:?}");
    assert_eq!(
        format(&out).unwrap(),
        out,
        "formatting again changes {out:?}"
    );
    assert!(same_meaning(&parse(input).0, &parse(&out).0));
    assert_eq!(comments(input), comments(&out), "comments of {input:?}");
}

// ------------------------------------------------------------------- the rules

#[test]
fn one_node_per_line_indented_by_four() {
    check("a\n  b\n\t\tc", "a\nb\nc\n");
    check("a { b { c; }; }", "a {\n    b {\n        c\n    }\n}\n");
    check("  a {\nb\n      }", "a {\n    b\n}\n");
}

#[test]
fn semicolons_become_line_breaks() {
    check("a; b;c;", "a\nb\nc\n");
    check("a 1; b 2 // c", "a 1\nb 2 // c\n");
    check("a { b; c }; d", "a {\n    b\n    c\n}\nd\n");
    check("a; // after", "a // after\n");
}

#[test]
fn single_spaces_between_name_and_entries() {
    check("node   1\t\"two\"    three=3", "node 1 \"two\" three=3\n");
    check("n key = value k2= (t) v", "n key=value k2=(t)v\n");
    check("n ( ty ) 1 (u8)2", "n (ty)1 (u8)2\n");
    check("( ty )n", "(ty)n\n");
    check("( ty ) n", "(ty)n\n");
    check("n\u{3000}1\u{a0}2", "n 1 2\n");
}

#[test]
fn tokens_are_kept_as_written() {
    check(
        "n \"bare\" #\"raw\"# ##\"r\"#\"## 0x1F 1_000 1.50e+3 -0o17 +5 #true #null #-inf #nan",
        "n \"bare\" #\"raw\"# ##\"r\"#\"## 0x1F 1_000 1.50e+3 -0o17 +5 #true #null #-inf #nan\n",
    );
    check(
        "\"quoted node\" \"a\\tb\\u{1F600}\"",
        "\"quoted node\" \"a\\tb\\u{1F600}\"\n",
    );
    check("n \"x\\\n      y\"", "n \"x\\\n      y\"\n");
}

#[test]
fn children_blocks() {
    check("a{b}", "a {\n    b\n}\n");
    check(
        "limits { memory \"1G\"; cpu 2 }",
        "limits {\n    memory \"1G\"\n    cpu 2\n}\n",
    );
    check("a 1 {\n\n\n    b\n\n\n}", "a 1 {\n    b\n}\n");
    check("a {\n    b { c }\n}", "a {\n    b {\n        c\n    }\n}\n");
}

#[test]
fn empty_blocks() {
    check("a { }", "a {}\n");
    check("a {\n\n}", "a {}\n");
    check("a {}", "a {}\n");
    check("a { \\\n }", "a {}\n");
    check("a {} // c", "a {} // c\n");
    check("a { /* c */ }", "a {\n    /* c */\n}\n");
    check("a { // c\n}", "a { // c\n}\n");
}

#[test]
fn end_of_line_comments_stay() {
    check("nat #true    // why", "nat #true // why\n");
    check(
        "a {  // open\n b // x\n}  // close",
        "a { // open\n    b // x\n} // close\n",
    );
    check("a {\n  b\n  // last\n}", "a {\n    b\n    // last\n}\n");
    check(
        "a {\n  b {\n c\n // inner end\n  }\n// outer end\n}",
        "a {\n    b {\n        c\n        // inner end\n    }\n    // outer end\n}\n",
    );
}

#[test]
fn own_line_comments_stay_on_their_line() {
    check("// top\na\n   // between\nb", "// top\na\n// between\nb\n");
    check("a {\n// first\nb\n}", "a {\n    // first\n    b\n}\n");
    check("// only a comment", "// only a comment\n");
}

#[test]
fn block_comments_keep_their_place() {
    check("a /* x */ 1   /*y*/ 2", "a /* x */ 1 /*y*/ 2\n");
    check("/* lead */ a", "/* lead */ a\n");
    check("a/* x */1", "a /* x */ 1\n");
    check("a /* x */\nb", "a /* x */\nb\n");
    check("/* own\n   line */\na", "/* own\n   line */\na\n");
    check("a { /* open */\n b }", "a { /* open */\n    b\n}\n");
    check("a; /* after */\nb", "a /* after */\nb\n");
    check("a; /* before */ b", "a\n/* before */ b\n");
    check("n (/*c*/t)1 k/**/=/**/v", "n ( /*c*/ t)1 k /**/ = /**/ v\n");
    check("/* a /* nested */ b */ n", "/* a /* nested */ b */ n\n");
}

#[test]
fn blank_lines() {
    check("\n\n\na\n\n\n\nb\nc\n\n", "a\n\nb\nc\n");
    check("a {\n\n  b\n\n\n  c\n\n}\n", "a {\n    b\n\n    c\n}\n");
    check("// x\n\n\n// y\na", "// x\n\n// y\na\n");
    check("a { // c\n\n  b\n}", "a { // c\n    b\n}\n");
    check("a;\n\nb", "a\n\nb\n");
    check("a\r\n\r\nb\r\n", "a\n\nb\n");
    check("", "");
    check("\n\n \n", "");
}

#[test]
fn all_newlines_are_newlines() {
    check(
        "a\rb\u{85}c\u{2028}d\u{2029}e\u{b}f\u{c}g",
        "a\nb\nc\nd\ne\nf\ng\n",
    );
}

#[test]
fn slashdash_stays_attached() {
    check("/-   a 1 { b }", "/-a 1 {\n    b\n}\n");
    check("n /- \"arg\" 2 /-  k=v", "n /-\"arg\" 2 /-k=v\n");
    check("n 1 /-{ b }", "n 1 /-{\n    b\n}\n");
    check("n 1 /- { }", "n 1 /-{}\n");
    check("n { a } /-{ b }", "n {\n    a\n} /-{\n    b\n}\n");
    check("n /-(t)1", "n /-(t)1\n");
    check("/-\n\n  a", "/-a\n");
    check("n /-\n  1 2", "n /-1 2\n");
    check("a {\n  /-b\n}", "a {\n    /-b\n}\n");
    check("/- // why\na", "/- // why\na\n");
}

#[test]
fn line_continuations() {
    check("a 1 \\\n      2 \\\n 3", "a 1 \\\n    2 \\\n    3\n");
    check(
        "x {\n  a \\ // more\n  b\n}",
        "x {\n    a \\ // more\n        b\n}\n",
    );
    check("a \\ /* c */\n  b", "a \\ /* c */\n    b\n");
    // Continuing into nothing: the node ends, the comment stays.
    check("a \\\n\nb", "a\nb\n");
    check("a \\ // c\n\nb", "a // c\nb\n");
    check("a { b \\\n}", "a {\n    b\n}\n");
    check("a \\\n; b", "a\nb\n");
    check("a 1 \\", "a 1\n");
    // Two in a row continue one line.
    check("a \\\n \\\n b", "a \\\n    b\n");
    // Between nodes, a continuation is a newline.
    check("a\n\\\nb", "a\nb\n");
    check("a\n\\\n\nb", "a\n\nb\n");
}

#[test]
fn multiline_strings_are_verbatim() {
    let input = "a {\n b \"\"\"\n      text\n\n        more\n      \"\"\" 2\n}\n";
    check(
        input,
        "a {\n    b \"\"\"\n      text\n\n        more\n      \"\"\" 2\n}\n",
    );
    check(
        "x #\"\"\"\n  raw \"\"\" \\n\n  \"\"\"#",
        "x #\"\"\"\n  raw \"\"\" \\n\n  \"\"\"#\n",
    );
    check(
        "  x \"\"\"\r\n  crlf\r\n  \"\"\"",
        "x \"\"\"\r\n  crlf\r\n  \"\"\"\n",
    );
}

#[test]
fn bom_is_kept() {
    check("\u{feff}a   1", "\u{feff}a 1\n");
    check("\u{feff}", "\u{feff}");
}

#[test]
fn syntax_errors_are_returned() {
    let errors = format("container \"web\" { exec \"unterminated }\n").unwrap_err();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e.message != MEANING_CHANGED));
    assert_eq!(
        errors,
        parse("container \"web\" { exec \"unterminated }\n").1
    );
    assert!(format("a }").is_err());
    assert!(format("a true").is_err());
}

#[test]
fn the_cli_test_input() {
    check(
        "// the lan\nnetwork   \"lan\"{subnet \"10.88.0.0/24\" // inline\n}\ncontainer \"web\" { rootfs \"host\"; exec \"/bin/true\"\n  network \"lan\" }\n",
        "// the lan\nnetwork \"lan\" {\n    subnet \"10.88.0.0/24\" // inline\n}\ncontainer \"web\" {\n    rootfs \"host\"\n    exec \"/bin/true\"\n    network \"lan\"\n}\n",
    );
}

// -------------------------------------------------------------- comments survive

/// The comments of a KDL text in order, found independently of the formatter: a scan
/// that skips strings (quoted, raw, multi-line) and knows nested block comments.
fn comments(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = text[i..]
                .find([
                    '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
                ])
                .map_or(b.len(), |n| i + n);
            out.push(text[i..end].to_string());
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut j, mut depth) = (i + 2, 1);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            out.push(text[i..j].to_string());
            i = j;
        } else if b[i] == b'"' || (b[i] == b'#' && matches!(b.get(i + 1), Some(b'#' | b'"'))) {
            let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
            let q = i + hashes;
            let quotes = if b[q..].starts_with(b"\"\"\"\n") || b[q..].starts_with(b"\"\"\"\r") {
                3
            } else {
                1
            };
            let closer = format!("{}{}", "\"".repeat(quotes), "#".repeat(hashes));
            let mut j = q + quotes;
            while j < b.len() && !b[j..].starts_with(closer.as_bytes()) {
                j += if hashes == 0 && b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + closer.len();
        } else {
            i += 1;
        }
    }
    out
}

const CORPUS: &[&str] = &[
    "// head\n\n/* block */ a 1 /* mid */ 2 // tail\nb { // open\n  /* own */\n  c // c\n  // before close\n} // after close\n",
    "a \"// not a comment\" #\"/* nor this */\"# // but this\n",
    "/-a // slashdashed\nb /* x */ ; c // y\n",
    "x \\ // cont\n  1 \\ /* b */\n  2\n",
    "a \"\"\"\n  // inside a string\n  \"\"\" // outside\n",
    "/* a /* nested */ b */\n",
    "n { } // empty\nm {\n// only comment\n}\n",
];

#[test]
fn every_comment_survives_in_order() {
    for input in CORPUS {
        let out = format(input).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        let want = comments(input);
        assert!(!want.is_empty());
        assert_eq!(want, comments(&out), "formatting {input:?} gave {out:?}");
        assert_eq!(
            berth_config::fmt::comments(input),
            want.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(format(&out).unwrap(), out);
    }
}

// ---------------------------------------------------------------------- examples

fn kdl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            kdl_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "kdl") {
            out.push(path);
        }
    }
}

#[test]
fn examples_keep_their_meaning_and_are_stable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = Vec::new();
    kdl_files(&dir, &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let out = format(&text).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        assert!(
            same_meaning(&parse(&text).0, &parse(&out).0),
            "{}",
            file.display()
        );
        assert_eq!(comments(&text), comments(&out), "{}", file.display());
        assert_eq!(format(&out).unwrap(), out, "{}", file.display());
    }
}

// ------------------------------------------------------------ generated documents

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("node".to_string()),
        Just("x-y.z".to_string()),
        Just("-".to_string()),
        Just("é".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        ident(),
        Just("\"q s\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"e\\\"\\n\\u{41}\"".to_string()),
        Just("\"ws\\\n    escape\"".to_string()),
        Just("#\"raw \"quote\"\"#".to_string()),
        Just("##\"r\"#\"##".to_string()),
        Just("\"// no comment\"".to_string()),
        Just("\"\"\"\n    multi\n  line\n  \"\"\"".to_string()),
        Just("#\"\"\"\n\"\"\"\n\"\"\"#".to_string()),
        Just("12".to_string()),
        Just("-3.5e+2".to_string()),
        Just("0xff_ff".to_string()),
        Just("#true".to_string()),
        Just("#null".to_string()),
        Just("#nan".to_string()),
        Just("#-inf".to_string()),
    ]
}

fn comment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/* c */".to_string()),
        Just("/*/* nested */*/".to_string()),
        Just("/* multi\n  line */".to_string()),
    ]
}

/// Whitespace between tokens of a node: spaces, tabs, block comments, continuations.
fn gap() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(" ".to_string()),
        1 => Just("  \t".to_string()),
        1 => comment().prop_map(|c| format!(" {c} ")),
        1 => Just(" \\\n   ".to_string()),
        1 => Just(" \\ // cont\n ".to_string()),
        1 => Just(" \\ /* c */\n\t".to_string()),
        1 => Just("\u{3000}\u{a0}".to_string()),
    ]
}

/// Optional tight or spaced annotation.
fn annotation() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => ident().prop_map(|t| format!("({t})")),
        1 => ident().prop_map(|t| format!("( {t} ) ")),
    ]
}

fn entry() -> impl Strategy<Value = String> {
    let plain = (annotation(), value()).prop_map(|(a, v)| format!("{a}{v}"));
    let prop = (ident(), prop::bool::ANY, annotation(), value()).prop_map(|(k, spaced, a, v)| {
        if spaced {
            format!("{k} = {a}{v}")
        } else {
            format!("{k}={a}{v}")
        }
    });
    let entry = prop_oneof![3 => plain, 1 => prop];
    (prop::bool::weighted(0.15), entry).prop_map(|(sd, e)| if sd { format!("/-{e}") } else { e })
}

/// A node terminator.
fn end() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("\n".to_string()),
        1 => Just(";".to_string()),
        1 => Just("; ".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just(" // end\n".to_string()),
        1 => Just("; // semi\n".to_string()),
        1 => Just("\n\n\n".to_string()),
        1 => comment().prop_map(|c| format!(" {c}\n")),
        // No terminator: fine before a `}` or the end of the text; otherwise the next
        // node's name becomes an entry, or the text does not parse.
        1 => Just(String::new()),
    ]
}

/// Between nodes: nothing, blank lines, own-line comments.
fn between() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("\n\n".to_string()),
        1 => Just("  // own line\n".to_string()),
        1 => comment().prop_map(|c| format!("{c}\n")),
        1 => comment().prop_map(|c| format!("{c} ")),
        1 => Just("\\\n".to_string()),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let leaf = Just(String::new());
    let block = leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(node(inner), 0..4).prop_map(|nodes| nodes.concat())
    });
    (
        prop::bool::weighted(0.05),
        prop::collection::vec(node(block), 0..5),
    )
        .prop_map(|(bom, nodes)| format!("{}{}", if bom { "\u{feff}" } else { "" }, nodes.concat()))
}

/// A node (with what comes before it), its children block drawn from `children`.
fn node(children: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = String> {
    (
        between(),
        prop::bool::weighted(0.1),
        annotation(),
        prop_oneof![ident(), Just("\"quoted name\"".to_string())],
        prop::collection::vec((gap(), entry()), 0..4),
        prop::option::weighted(0.4, (prop::bool::ANY, children.clone(), prop::bool::ANY)),
        prop::option::weighted(0.1, children),
        end(),
    )
        .prop_map(|(before, sd, ann, name, entries, block, sd_block, end)| {
            let mut s = before;
            if sd {
                s.push_str("/- ");
            }
            s.push_str(&ann);
            s.push_str(&name);
            for (gap, entry) in entries {
                s.push_str(&gap);
                s.push_str(&entry);
            }
            if let Some((tight, body, multiline)) = block {
                s.push_str(if tight { "{" } else { " { " });
                s.push_str(if multiline { "\n" } else { "" });
                s.push_str(&body);
                s.push('}');
            }
            if let Some(body) = sd_block {
                s.push_str(" /-{");
                s.push_str(&body);
                s.push('}');
            }
            s.push_str(&end);
            s
        })
}

/// Tokens and separators thrown together: most sequences do not parse, those that do
/// put tokens next to each other in ways a structured generator does not.
fn soup_token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        "1",
        "\"s\"",
        "#\"r\"#",
        "#true",
        "(t)",
        "(",
        "t",
        ")",
        "=",
        "k=",
        "{",
        "}",
        ";",
        "/-",
        "// c\n",
        "/* c */",
        "/* x\ny */",
        "\\\n",
        "\\ // e\n",
        "\n",
        "\n\n",
        "\"\"\"\n  m\n  \"\"\"",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_documents_keep_meaning_and_comments(text in document()) {
        let (doc, errors) = parse(&text);
        match format(&text) {
            Ok(out) => {
                prop_assert!(errors.is_empty());
                let (again, errors) = parse(&out);
                prop_assert!(errors.is_empty(), "{:?} gave unparsable {:?}", text, out);
                prop_assert!(same_meaning(&doc, &again));
                prop_assert_eq!(comments(&text), comments(&out), "comments of {:?} in {:?}", text, out);
                prop_assert_eq!(format(&out).unwrap(), out.clone(), "not idempotent on {:?}", text);
                let body = out.strip_prefix('\u{feff}').unwrap_or(&out);
                prop_assert!(body.is_empty() || (body.ends_with('\n') && !body.ends_with("\n\n")));
                prop_assert!(!body.starts_with('\n'));
            }
            Err(e) => {
                prop_assert!(!errors.is_empty(), "formatter refused valid {:?}: {:?}", text, e);
                prop_assert_eq!(e, errors);
            }
        }
    }

    #[test]
    fn token_soup_keeps_meaning_and_comments(
        parts in prop::collection::vec((soup_token(), prop_oneof![Just(""), Just(" "), Just("\n")]), 0..24)
    ) {
        let text: String = parts.iter().flat_map(|(t, s)| [*t, *s]).collect();
        let (doc, errors) = parse(&text);
        match format(&text) {
            Ok(out) => {
                prop_assert!(errors.is_empty());
                prop_assert!(same_meaning(&doc, &parse(&out).0));
                prop_assert_eq!(comments(&text), comments(&out));
                prop_assert_eq!(format(&out).unwrap(), out.clone(), "not idempotent on {:?}", text);
            }
            Err(e) => prop_assert_eq!(e, errors, "formatter refused {:?}", text),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z0-9 {};=()#\"/*\\\\\n\r-]{0,60}") {
        if let Ok(out) = format(&text) {
            prop_assert_eq!(format(&out).unwrap(), out);
        }
    }
}

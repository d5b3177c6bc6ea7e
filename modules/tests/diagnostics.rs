//! Snapshots of the diagnostics for each kind of mistake, rendered as the user sees
//! them (without colour). Every test also checks that all errors come in one pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use berth_config::MemSource;
use berth_config::diag::render_all;
use berth_modules::evaluate;

/// Evaluates in-memory files (the first is the root) and renders the diagnostics.
fn diagnose(files: &[(&str, &str)]) -> (usize, String) {
    let mut src = MemSource::new();
    for (p, t) in files {
        src.insert(p, *t);
    }
    match evaluate(&src, Path::new(files[0].0)) {
        Ok(_) => panic!("expected errors"),
        Err(f) => (
            f.diagnostics.len(),
            render_all(&f.diagnostics, &f.tree.sources, false),
        ),
    }
}

const OK_CONTAINER: &str = "rootfs \"host\"; exec \"/bin/true\"";

#[test]
fn kdl_syntax_errors_all_reported() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        "container \"a\" { rootfs \"host\"; exec \"/bin/true\" }\ncontainer \"b\" { nat true }\nnetwork \"n\" { subnet \"10.0.0.0/24 }\ncontainer \"c\" { rootfs \"host\"; exec (\"/bin/true\" }\n",
    )]);
    assert!(n >= 2, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn unknown_node_and_option_with_suggestions() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        &format!(
            "contianer \"a\" {{ {OK_CONTAINER} }}\ncontainer \"b\" {{ {OK_CONTAINER}; restrat \"always\"; limits {{ memroy \"1G\" }}; memory \"1G\" }}\n"
        ),
    )]);
    assert_eq!(n, 4, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn wrong_types_and_units() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        &format!(
            "container \"a\" {{ {OK_CONTAINER}; limits {{ memory \"12X\"; cpu \"fast\"; pids -1 }}; stop-timeout 30; stop-signal \"SIGFOO\"; restart \"allways\"; checkpoint \"true\"; port 70000 80 }}\nnetwork \"n\" {{ subnet \"10.0.0.1/24\" }}\n"
        ),
    )]);
    assert_eq!(n, 9, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn conflicting_definitions_name_both_places() {
    let (n, out) = diagnose(&[
        (
            "host.kdl",
            &format!(
                "import \"base.kdl\"\ncontainer \"a\" {{ {OK_CONTAINER}; limits {{ memory \"1G\" }}; env A=\"1\" }}\n"
            ),
        ),
        (
            "base.kdl",
            "container \"a\" {\n    limits { memory \"2G\" }\n    env A=\"2\"\n}\n",
        ),
    ]);
    assert_eq!(n, 2, "{out}");
    assert!(
        out.contains("base.kdl:2") && out.contains("host.kdl:2"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn unknown_references() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        &format!(
            "network \"lan\" {{ subnet \"10.0.0.0/24\" }}\nvolume \"data\"\ncontainer \"db\" {{ {OK_CONTAINER} }}\ncontainer \"web\" {{ {OK_CONTAINER}; after \"dbb\"; requires \"cache\"; network \"lna\"; mount \"dta\" \"/data\" }}\n"
        ),
    )]);
    assert_eq!(n, 4, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn dependency_cycle_is_printed() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        &format!(
            "container \"a\" {{ {OK_CONTAINER}; after \"c\" }}\ncontainer \"b\" {{ {OK_CONTAINER}; after \"a\" }}\ncontainer \"c\" {{ {OK_CONTAINER}; requires \"b\" }}\ncontainer \"d\" {{ {OK_CONTAINER}; after \"a\" }}\n"
        ),
    )]);
    assert_eq!(n, 1, "{out}");
    assert!(
        out.contains("container.a → container.c → container.b → container.a"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn import_errors_with_chain() {
    let (n, out) = diagnose(&[
        ("host.kdl", "import \"a.kdl\"\nimport \"missing.kdl\"\n"),
        ("a.kdl", "import \"sub/b.kdl\"\n"),
        ("sub/b.kdl", "import \"../a.kdl\"\nimport \"gone.kdl\"\n"),
    ]);
    assert_eq!(n, 3, "{out}");
    assert!(
        out.contains("import cycle: a.kdl → sub/b.kdl → a.kdl"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn module_errors() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        "module \"svc\" {\n    param \"name\"\n    param \"port\"\n    container \"{name}\" {\n        rootfs \"host\"\n        exec \"/bin/httpd\" \"-p\" \"{prot}\"\n        port \"{port}\" 80\n    }\n}\nsvc \"a\" port=8080\nsvc \"b\"\nsvc \"c\" port=\"http\"\nsvc \"d\" port=8081 colour=\"red\"\nmodule \"container\" { }\n",
    )]);
    assert!(n >= 5, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn network_conflicts() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        &format!(
            "network \"a\" {{ subnet \"10.0.0.0/16\" }}\nnetwork \"b\" {{ subnet \"10.0.1.0/24\" }}\ncontainer \"x\" {{ {OK_CONTAINER}; network \"a\" address=\"10.1.0.5\"; port 8080 80 }}\ncontainer \"y\" {{ {OK_CONTAINER}; network \"b\" address=\"10.0.1.0\"; port 8080 80 }}\n"
        ),
    )]);
    assert_eq!(n, 4, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn missing_required_and_bad_names() {
    let (n, out) = diagnose(&[(
        "host.kdl",
        "container \"web\" { }\ncontainer \"bad/name\" { rootfs \"host\"; exec \"x\" }\nnetwork \"host\" { subnet \"10.0.0.0/24\" }\ncontainer { }\n",
    )]);
    assert_eq!(n, 5, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn missing_root_file_is_an_error() {
    let err = evaluate(&MemSource::new(), Path::new("missing.kdl")).unwrap_err();
    let rendered = render_all(&err.diagnostics, &err.tree.sources, false);
    assert!(rendered.contains("cannot read missing.kdl"), "{rendered}");
}

#[test]
fn empty_file_is_an_empty_host() {
    let ev = evaluate(
        &MemSource::new().with("host.kdl", ""),
        Path::new("host.kdl"),
    )
    .unwrap();
    assert_eq!(ev.nodes.len(), 1);
}

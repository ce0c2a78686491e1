//! The house has no import cycles: every non-test `crate::` and `super::` path in `src/`,
//! inline ones too (`crate::x::y()`), is mapped to the top-level module it names, and the
//! graph of those edges must be acyclic and free of the edges the design forbids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (from, to) edges the design forbids: decide() knows nothing of delivery, storage, the
/// runner, HTTP or config; delivery knows nothing of collectors or signal builders; the model
/// imports nothing of the pipeline.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "engine",
        &[
            "notify", "deliver", "store", "runner", "endpoint", "config", "event", "text",
        ],
    ),
    (
        "notify",
        &["collectors", "signals", "collect", "config", "runner"],
    ),
    (
        "deliver",
        &["collectors", "signals", "collect", "config", "runner"],
    ),
    ("event", &["collectors", "signals", "config"]),
    ("text", &["collectors", "signals", "config"]),
    (
        "model",
        &[
            "signals", "engine", "collect", "config", "notify", "deliver", "runner", "report",
            "endpoint", "store", "text", "event",
        ],
    ),
    ("signals", &["config", "engine", "runner", "notify"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/engine/state.rs` -> `engine`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without its `#[cfg(test)]` module and without comments.
fn non_test_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named by a `crate::` path, and by `super::` paths in a nested file.
fn edges_of(src: &Path, file: &Path, code: &str) -> BTreeSet<String> {
    let mut to = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `watchdog_crate::` or the like
        }
        let name = ident(&code[at + "crate::".len()..]);
        if !name.is_empty() {
            to.insert(name);
        }
    }
    // `use crate::{a, b::c}`: each item of the group.
    for (at, _) in code.match_indices("crate::{") {
        let rest = &code[at + "crate::{".len()..];
        let mut depth = 1;
        let mut item_start = true;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => item_start = true,
                c if item_start && (c.is_alphanumeric() || c == '_') => {
                    to.insert(ident(&rest[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    let rel = file.strip_prefix(src).unwrap();
    let nested = rel.components().count() > 1;
    let is_mod = rel.file_name().is_some_and(|n| n == "mod.rs");
    if nested && !is_mod {
        // `super::` in `src/a/b.rs` is `a` itself; in `src/a/mod.rs` it would be the crate.
    } else if !nested {
        for (at, _) in code.match_indices("super::") {
            let name = ident(&code[at + "super::".len()..]);
            if !name.is_empty() {
                to.insert(name);
            }
        }
    }
    to.insert("watchdog_collectors".into()); // placeholder, removed below if unused
    if code.contains("watchdog_collectors::") {
        to.insert("collectors".into());
    }
    to.remove("watchdog_collectors");
    to
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "main" || from == "lib" {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(file).unwrap());
        let entry = graph.entry(from.clone()).or_default();
        for to in edges_of(&src, file, &code) {
            if to != from && (modules.contains(&to) || to == "collectors") {
                entry.insert(to);
            }
        }
    }
    graph
}

/// A cycle through `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_modules_of_src_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(
        graph.len() > 10,
        "the scan found too few modules: {graph:?}"
    );
    assert!(
        graph["runner"].contains("engine") && graph["engine"].contains("model"),
        "the scan misses edges it must see: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_module_imports_what_the_design_forbids() {
    let graph = graph();
    let mut broken = Vec::new();
    for (from, forbidden) in FORBIDDEN {
        for to in graph.get(*from).into_iter().flatten() {
            if forbidden.contains(&to.as_str()) {
                broken.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(broken.is_empty(), "forbidden edges: {broken:?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle_it_is_shown() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn the_edge_scan_sees_inline_and_grouped_paths() {
    let src = Path::new("/s");
    let edges = edges_of(
        src,
        Path::new("/s/x.rs"),
        "use crate::{a, b::{c, d}};\nfn f() { crate::e::g(); super::h::i(); }",
    );
    let want: BTreeSet<String> = ["a", "b", "e", "h"].map(String::from).into();
    assert_eq!(edges, want);
}

#[test]
fn no_file_has_more_than_600_lines_of_non_test_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("collectors/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => &text[..at],
                None => &text,
            };
            let lines = code.lines().count();
            (lines > 600).then(|| format!("{} ({lines})", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over 600 lines of non-test code: {long:?}");
}

#[test]
fn the_normal_dependency_tree_has_exactly_one_tls_crypto_backend() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-e",
            "normal",
            "--locked",
            "--offline",
            "--prefix",
            "none",
        ])
        .args(["-p", "watchdog"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(crates.contains("aws-lc-rs"), "no aws-lc-rs: {crates:?}");
    assert!(!crates.contains("ring"), "ring beside aws-lc-rs: {tree}");
}

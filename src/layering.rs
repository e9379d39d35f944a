//! The layering check: no import circles between hydrant's modules.
//!
//! A small tool of the project's own, run with the unit tests: it reads every file under
//! `src/`, takes the modules each one's non-test code names (`crate::a::b`, and `super::x`
//! inside a directory module), and fails on any cycle, printing it. Nodes are top-level
//! modules, and the files of directory modules (`hydration::store`, `sim::routes`) on their
//! own, so "hydration walks hydrator → store → entry" is checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `hydration/store.rs` → `hydration::store`; `hydration/mod.rs` → `hydration`.
fn node_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

/// The code a file compiles outside tests: everything before its `#[cfg(test)]` module
/// (hydrant keeps tests last), and nothing of test-only files.
fn non_test_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

fn identifiers_after<'a>(code: &'a str, prefix: &'a str) -> impl Iterator<Item = Vec<&'a str>> {
    code.match_indices(prefix).map(move |(at, _)| {
        code[at + prefix.len()..]
            .split("::")
            .take(2)
            .map(|seg| {
                let end = seg
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(seg.len());
                &seg[..end]
            })
            .take_while(|s| !s.is_empty())
            .collect()
    })
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let nodes: BTreeSet<String> = files.iter().map(|f| node_of(&src, f)).collect();
    let resolve = |segs: &[&str]| -> Option<String> {
        let two = segs.join("::");
        if nodes.contains(&two) {
            return Some(two);
        }
        let one = segs.first()?.to_string();
        nodes.contains(&one).then_some(one)
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let node = node_of(&src, file);
        if node == "lib" || node == "main" || node.ends_with("_tests") || node == "layering" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code = non_test_code(&text);
        let mut targets = BTreeSet::new();
        for segs in identifiers_after(code, "crate::") {
            targets.extend(resolve(&segs));
        }
        // `super::x` in `a/b.rs` names `a::x`.
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        if let (false, Some((parent, _))) = (is_mod_file, node.rsplit_once("::")) {
            for segs in identifiers_after(code, "super::") {
                if let Some(first) = segs.first() {
                    targets.extend(resolve(&[parent, first]));
                }
            }
        }
        targets.remove(&node);
        edges.entry(node).or_default().extend(targets);
    }
    edges
}

/// A cycle reachable from `at`, as the path that closes it.
fn find_cycle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|n| n == at) {
        let mut cycle = path[i..].to_vec();
        cycle.push(at.to_string());
        return Some(cycle);
    }
    if done.contains(at) {
        return None;
    }
    path.push(at.to_string());
    for next in edges.get(at).into_iter().flatten() {
        if let Some(c) = find_cycle(edges, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(at.to_string());
    None
}

#[test]
fn modules_import_one_way() {
    let edges = graph();
    assert!(
        edges.len() > 20,
        "the scan found too few modules: {edges:?}"
    );
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = find_cycle(&edges, node, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_check_sees_a_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    edges.entry("c".into()).or_default().insert("a".into());
    let cycle = find_cycle(&edges, "a", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle.unwrap().join(" → "), "a → b → c → a");
}

#[test]
fn lower_layers_never_name_the_http_error_mapping() {
    // hydration and upstream report their own error types; only handlers map them.
    let edges = graph();
    for (node, targets) in &edges {
        if node.starts_with("hydration") || node.starts_with("upstream") {
            for forbidden in ["error", "routes", "app", "gateway", "redirect", "webhooks"] {
                assert!(
                    !targets.contains(forbidden),
                    "{node} reaches up to {forbidden}"
                );
            }
        }
    }
}

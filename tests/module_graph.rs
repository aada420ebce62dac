//! The module graph between the top-level modules of `src/` has no cycles
//! (docs/architecture.md, "Module map"): a module that imports another,
//! directly or round a loop, cannot be changed or tested without it. CI
//! runs this with the rest of the suite; it fails naming each pair of
//! modules that reach each other, with the files that make the edges.
//!
//! An edge is a `crate::NAME` path (or a `crate::{NAME, ...}` group) in a
//! module's code outside its `#[cfg(test)] mod tests` and comments.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

/// Module → the modules it imports, with a file that does it.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; `None` for the
/// crate roots, which may name everything.
fn top_level(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "main" | "lib")).then(|| name.to_owned())
}

/// The code that counts: no unit tests, no comments.
fn code_of(text: &str) -> String {
    let tests = Regex::new(r"(?s)#\[cfg\(test\)\]\s*mod tests\s*\{.*").expect("regex");
    let comments = Regex::new(r"//[^\n]*").expect("regex");
    comments
        .replace_all(&tests.replace(text, ""), "")
        .into_owned()
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_level(src, f)).collect();
    let path = Regex::new(r"\bcrate::(\w+)").expect("regex");
    let group = Regex::new(r"\bcrate::\{([^}]*)\}").expect("regex");
    let member = Regex::new(r"(?:^|,)\s*(\w+)").expect("regex");
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for file in &files {
        let Some(from) = top_level(src, file) else {
            continue;
        };
        let code = code_of(&fs::read_to_string(file).expect("source file"));
        let mut used: BTreeSet<String> =
            path.captures_iter(&code).map(|c| c[1].to_owned()).collect();
        for g in group.captures_iter(&code) {
            used.extend(member.captures_iter(&g[1]).map(|c| c[1].to_owned()));
        }
        for to in used {
            if to != from && modules.contains(&to) {
                graph
                    .get_mut(&from)
                    .expect("every module has a node")
                    .entry(to)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if seen.insert(at) {
            stack.extend(
                graph
                    .get(at)
                    .into_iter()
                    .flat_map(|next| next.keys().map(String::as_str)),
            );
        }
    }
    false
}

/// Every edge that closes a loop: `a → b` where `b` reaches back to `a`.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, edges) in graph {
        for (to, file) in edges {
            if reaches(graph, to, from) {
                found.push(format!(
                    "{from} → {to} ({}), and {to} reaches {from}",
                    file.display()
                ));
            }
        }
    }
    found
}

#[test]
fn no_cycles_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph.len() >= 8,
        "the walk found too few modules to mean anything: {:?}",
        graph.keys()
    );
    // The layering docs/architecture.md draws: the domain and the protocol
    // at the bottom, the server on top.
    assert!(graph["server"].contains_key("routing"), "{graph:?}");
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "top-level modules of src/ import each other (docs/architecture.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn a_cycle_is_found() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let src = dir.path();
    fs::create_dir(src.join("b")).expect("mkdir");
    fs::write(src.join("lib.rs"), "pub mod a; pub mod b;").expect("write");
    fs::write(src.join("a.rs"), "use crate::b::thing;\n").expect("write");
    fs::write(
        src.join("b/mod.rs"),
        "// crate::a in a comment is no edge\nuse crate::{a::x};\n#[cfg(test)]\nmod tests { use crate::c; }\n",
    )
    .expect("write");
    fs::write(src.join("c.rs"), "").expect("write");
    let graph = graph(src);
    let found = cycles(&graph);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("a → b"), "{found:?}");
    assert!(
        !graph["b"].contains_key("c"),
        "a unit test's import is no edge: {graph:?}"
    );
}

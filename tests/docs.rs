//! The repository stands on its own: docs/ is the contract, the README is
//! its front door. Checked on the files as committed: every relative link
//! of the README and docs/ names a file that exists, every docs file is
//! linked from the README, the README stays a front door (about 12 KB),
//! and nothing cites a design file outside the repository.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::project_path;

/// The README and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut documents = vec![project_path("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(project_path("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 6, "docs/ holds {docs:?}");
    documents.extend(docs);
    documents
}

/// The targets of the Markdown links `[text](target)` in `text`, outside
/// code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find("](") {
            let after = &rest[open + 2..];
            let Some(close) = after.find(')') else {
                break;
            };
            targets.push(after[..close].to_owned());
            rest = &after[close..];
        }
    }
    targets
}

fn is_relative(target: &str) -> bool {
    !(target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
        || target.starts_with('#'))
}

#[test]
fn every_relative_link_names_a_file_that_exists() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = fs::read_to_string(&document).expect("readable");
        let dir = document.parent().unwrap_or(Path::new("."));
        for target in link_targets(&text) {
            if !is_relative(&target) {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if !dir.join(file).exists() {
                broken.push(format!("{}: {target}", document.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door_that_links_every_document() {
    let readme = fs::read_to_string(project_path("README.md")).expect("README.md");
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes: move detail into docs/",
        readme.len()
    );
    let linked = link_targets(&readme);
    for document in documents().iter().skip(1) {
        let name = document
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name");
        let target = format!("docs/{name}");
        assert!(
            linked.iter().any(|l| l.split('#').next() == Some(&target)),
            "README.md does not link {target}"
        );
    }
    // The two commands, exactly.
    assert!(readme.contains(
        "cargo run --release -- serve --routing config/routing.yaml --listen 127.0.0.1:5060\n"
    ));
    assert!(readme.contains("\nscripts/test\n"));
}

/// Walks `dir` for text files, skipping what is generated.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "results") {
                continue; // earlier benchmark output, kept as it was
            }
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn nothing_cites_a_design_file_outside_the_repository() {
    let mut files = vec![project_path("README.md")];
    for dir in [
        "src", "tests", "bench", "docs", "config", "deploy", "scripts",
    ] {
        walk(&project_path(dir), &mut files);
    }
    // Spelled in pieces, so that this file, scanned with the rest, does not
    // cite them itself.
    let design = concat!("DES", "IGN");
    let shared = concat!("../", "sha", "red");
    let mut citing = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            if line.contains(design) || line.contains(shared) {
                citing.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    assert!(citing.is_empty(), "{}", citing.join("\n"));
}

//! `switchboard diff`, run as the real binary: golden text and JSON for each
//! kind of change (tests/fixtures/diff/expected/), and the exit statuses
//! 0 (no routing change), 1 (changes) and 2 (invalid data).
//!
//! `UPDATE_GOLDEN=1 cargo test --test diff` rewrites the expected files.

use std::path::Path;
use std::process::{Command, Output};

const FIXTURES: &str = "tests/fixtures/diff";

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Runs `diff OLD NEW [--json]` and compares stdout with
/// `expected/GOLDEN`, and the exit status with `code`.
fn golden(old: &str, new: &str, json: bool, golden: &str, code: i32) {
    let (old, new) = (fixture(old), fixture(new));
    let mut args = vec!["diff", old.as_str(), new.as_str()];
    if json {
        args.push("--json");
    }
    let out = switchboard(&args);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join("expected")
        .join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &stdout).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(
        stdout, expected,
        "{args:?} differs from {golden}; stderr:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr:\n{stderr}");
    assert!(stderr.is_empty(), "{args:?}: stderr:\n{stderr}");
}

#[test]
fn names_comments_order_and_spelling_are_no_routing_change() {
    golden("old.yaml", "same.yaml", false, "same.txt", 0);
    golden("old.yaml", "same.yaml", true, "same.json", 0);
}

#[test]
fn the_same_path_twice_is_no_routing_change() {
    golden("old.yaml", "old.yaml", false, "same.txt", 0);
}

#[test]
fn every_kind_of_change_in_text() {
    golden("old.yaml", "new.yaml", false, "new.txt", 1);
}

#[test]
fn every_kind_of_change_in_json() {
    golden("old.yaml", "new.yaml", true, "new.json", 1);
    // One JSON object whose counts agree with the text's last line.
    let out = switchboard(&["diff", &fixture("old.yaml"), &fixture("new.yaml"), "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(value["accounts_added"], serde_json::json!(["gamma"]));
    assert_eq!(value["accounts"][0]["counts"]["contacts_reassigned"], 4);
}

#[test]
fn reversed_the_changes_read_backwards() {
    golden("new.yaml", "old.yaml", false, "new-to-old.txt", 1);
}

#[test]
fn a_directory_against_a_directory() {
    golden("old-dir", "new-dir", false, "dirs.txt", 1);
    golden("old-dir", "new-dir", true, "dirs.json", 1);
}

#[test]
fn a_file_against_a_directory_of_the_same_data() {
    golden("old.yaml", "old-dir", false, "same.txt", 0);
}

#[test]
fn invalid_data_exits_2_with_the_report_on_stderr() {
    for (old, new) in [
        (fixture("old.yaml"), "tests/fixtures/bad.yaml".to_owned()),
        ("tests/fixtures/bad-dir".to_owned(), fixture("old.yaml")),
        (fixture("old.yaml"), fixture("missing")),
    ] {
        let out = switchboard(&["diff", &old, &new]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{old} {new}: {stderr}");
        assert!(out.stdout.is_empty(), "{old} {new}");
        assert!(stderr.contains(": error: "), "{stderr}");
        assert!(
            stderr.contains(
                "the routing data has errors; run `switchboard check` for the full report"
            ),
            "{stderr}"
        );
    }
    let out = switchboard(&["diff", &fixture("old.yaml"), "tests/fixtures/bad.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The same report as `check`, naming the bad file and line.
    assert!(
        stderr.contains(
            "bad.yaml:11: error: user id alice is used twice in account acme (lines 5 and 11)"
        ),
        "{stderr}"
    );
    let out = switchboard(&[
        "diff",
        &fixture("old.yaml"),
        &fixture("old.yaml"),
        "--default-region",
        "XX",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn timing_goes_to_stderr() {
    let out = switchboard(&[
        "diff",
        &fixture("old.yaml"),
        &fixture("new.yaml"),
        "--timing",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.starts_with("timing: load both "), "{stderr}");
    assert!(stderr.contains(", compare "), "{stderr}");
}

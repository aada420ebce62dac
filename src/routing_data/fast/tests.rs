//! The fast path held to the full parser: on the committed samples of
//! every export library's style (`tests/fixtures/styles/`, written by
//! `bench/styles/`), on generated files across the styles, and on errors,
//! whose file and line must not depend on the style.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::read_routing_file;
use crate::routing::Region;
use crate::routing_data::compile::compile_file;
use crate::routing_data::diff::diff_tables;
use crate::routing_data::yaml::{YamlLimits, parse_routing_file, parse_yaml};
use crate::routing_data::{Loader, Severity};

fn styles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/styles")
}

/// Every style's directory, by name.
fn styles() -> Vec<(String, PathBuf)> {
    let mut dirs: Vec<(String, PathBuf)> = fs::read_dir(styles_dir())
        .expect("tests/fixtures/styles")
        .map(|e| {
            let e = e.expect("a directory entry");
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 11, "{dirs:?}");
    dirs
}

fn files(dir: &Path) -> Vec<PathBuf> {
    crate::routing_data::loader::list_files(dir).expect("a style's files")
}

#[test]
fn every_style_is_read_by_the_fast_path_as_the_parser_reads_it() {
    let limits = YamlLimits::default();
    for (style, dir) in styles() {
        for file in files(&dir) {
            let text = fs::read_to_string(&file).expect("a fixture");
            let fast = read_routing_file(&text, &limits)
                .unwrap_or_else(|e| panic!("{style}: {} not taken: {e}", file.display()));
            let full = parse_yaml(&text, &limits).expect("the fixture parses");
            assert_eq!(fast, full, "{style}: {}", file.display());
        }
    }
}

/// An export written on Windows (CRLF line ends) is taken by the fast
/// path too, and read as the full parser reads it.
#[test]
fn every_style_with_crlf_line_ends_is_read_by_the_fast_path() {
    let limits = YamlLimits::default();
    for (style, dir) in styles() {
        for file in files(&dir) {
            let text = fs::read_to_string(&file).expect("a fixture");
            let crlf = text.replace('\n', "\r\n");
            let fast = read_routing_file(&crlf, &limits)
                .unwrap_or_else(|e| panic!("{style} with CRLF: {} not taken: {e}", file.display()));
            let full = parse_yaml(&crlf, &limits).expect("the fixture parses with CRLF");
            assert_eq!(fast, full, "{style} with CRLF: {}", file.display());
        }
    }
    // A lone CR is not a line end the fast path reads: the parser decides.
    let lone = "accounts:\r- id: a\n";
    assert!(read_routing_file(lone, &limits).is_err());
}

#[test]
fn every_style_compiles_to_the_same_table() {
    let load = |dir: &Path| {
        Loader::new(dir, Region::us())
            .load()
            .unwrap_or_else(|e| panic!("{}: {}", dir.display(), e.report))
    };
    let reference = load(&styles_dir().join("gen"));
    assert!(reference.stats.counts.contacts > 0);
    for (style, dir) in styles() {
        let loaded = load(&dir);
        assert_eq!(loaded.stats.counts, reference.stats.counts, "{style}");
        let diff = diff_tables(&reference.table, &loaded.table);
        assert!(diff.is_empty(), "{style}: {}", diff.to_text(10));
        assert_eq!(
            loaded.report.diagnostics().len(),
            reference.report.diagnostics().len(),
            "{style}"
        );
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    let at = text.find(needle).expect("the needle");
    u32::try_from(text[..at].matches('\n').count() + 1).expect("a line")
}

#[test]
fn errors_keep_their_file_and_line_in_every_style() {
    let limits = YamlLimits::default();
    for (style, dir) in styles() {
        let path = files(&dir).remove(0);
        let text = fs::read_to_string(&path).expect("a fixture");
        let file: Arc<Path> = Arc::from(path.as_path());
        // A value the schema takes but the compiler refuses (an impossible
        // phone number), a key the schema refuses, a broken document.
        let phone = text
            .find("+1415")
            .or_else(|| text.find("+1408"))
            .or_else(|| text.find("+1650"))
            .expect("a user's phone");
        // Too short to be a number anywhere.
        let bad_phone = format!("{}+1234{}", &text[..phone], &text[phone + 12..]);
        let bad_key = text.replacen("region", "regoin", 1);
        let broken = text.replacen("when_user_has_no_phone", "when_user_has_no_phone: [", 1);
        for (what, bad, needle) in [
            ("a bad phone", &bad_phone, "+1999"),
            ("an unknown key", &bad_key, "regoin"),
            ("broken YAML", &broken, "when_user_has_no_phone"),
        ] {
            let compiled = compile_file(&file, bad, &Region::us(), &limits);
            let error = compiled
                .diagnostics
                .iter()
                .find(|d| d.severity == Severity::Error)
                .unwrap_or_else(|| panic!("{style}: {what}: no error"));
            assert_eq!(error.file, file, "{style}: {what}");
            let expected = if what == "a bad phone" {
                line_of(&text, &text[phone..phone + 5])
            } else {
                line_of(bad, needle)
            };
            // A broken flow collection is noticed where it fails to close,
            // at or after the line it opens on.
            if what == "broken YAML" {
                assert!(error.line >= expected, "{style}: {what}: {error}");
            } else {
                assert_eq!(error.line, expected, "{style}: {what}: {error}");
            }
        }
    }
}

/// Scalars as written, plain and quoted, of every kind a string field may
/// meet: the fast path must read each as the parser does, or leave it.
const SCALARS: &[&str] = &[
    "\"+16505550123\"",
    "'+16505550123'",
    "+16505550123",
    "650-555-0124",
    "(650) 555 0125",
    "42",
    "0x1F",
    "0o17",
    "1e3",
    "+.inf",
    ".nan",
    "1_000",
    "007",
    "1:20",
    "null",
    "Null",
    "~",
    "true",
    "True",
    "yes",
    "No",
    "off",
    "\"\"",
    "''",
    "\"a,b\"",
    "'it''s'",
    "\"x\\ty\"",
    "\"\\u00e9\"",
    "\"\\ud83d\"",
    "\"\\x41\"",
    "\"M\\xFCller\"",
    "\"\\U0001F600\"",
    "\"a\\_b\\N\\L\\e\\0\"",
    "\"a\\ b\"",
    "\"José\"",
    "José",
    "a #b",
    "a#b",
    "sip:alice@example.com",
    "&x a",
    "*x",
    "!tag a",
    "!!str 1",
    "u-000-0042",
    "Dana Lee",
    "'q'",
    "a,b",
    "-",
    "-1",
    "2001-12-14",
    "@x",
    "%x",
    "|",
    "? a",
    "a: b",
    "reject",
    "forward",
    "none",
    "header",
    "history-info",
];

/// A value to render in some style.
#[derive(Debug, Clone)]
enum V {
    /// A scalar exactly as written.
    S(&'static str),
    L(Vec<V>),
    M(Vec<(&'static str, V)>),
}

/// How a library lays its output out.
#[derive(Debug, Clone, Copy)]
struct Style {
    /// Spaces a nested block collection is indented by.
    indent: usize,
    /// Whether a sequence under a key is indented (js-yaml) or not (PyYAML).
    indent_seqs: bool,
    /// Sequences of scalars in flow style (`[a, b]`).
    flow_scalars: bool,
    /// The whole document in flow style, over lines (JSON's layout).
    json: bool,
    comments: bool,
    markers: bool,
    trailing_spaces: bool,
}

fn arb_style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(2usize), Just(4)],
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(indent, indent_seqs, flow_scalars, json, comments, markers, trailing_spaces)| Style {
                indent,
                indent_seqs,
                flow_scalars,
                json,
                comments,
                markers,
                trailing_spaces,
            },
        )
}

fn render(v: &V, style: &Style) -> String {
    let mut out = String::new();
    if style.markers {
        out.push_str("---\n");
    }
    if style.comments {
        out.push_str("# an export\n");
    }
    if style.json {
        flow(v, 0, style, &mut out);
        out.push('\n');
    } else {
        block_value(v, 0, style, &mut out);
    }
    if style.markers {
        out.push_str("...\n");
    }
    out
}

/// A value in flow style; nested mappings and sequences over lines.
fn flow(v: &V, depth: usize, style: &Style, out: &mut String) {
    let pad = |d: usize| " ".repeat(d * style.indent);
    match v {
        V::S(s) => out.push_str(s),
        V::L(items) if items.iter().all(|i| matches!(i, V::S(_))) => {
            let items: Vec<&str> = items
                .iter()
                .map(|i| match i {
                    V::S(s) => *s,
                    _ => "",
                })
                .collect();
            out.push_str(&format!("[{}]", items.join(", ")));
        }
        V::L(items) => {
            out.push_str("[\n");
            for (n, item) in items.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                flow(item, depth + 1, style, out);
                out.push_str(if n + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        V::M(entries) => {
            out.push_str("{\n");
            for (n, (key, value)) in entries.iter().enumerate() {
                out.push_str(&format!("{}\"{key}\": ", pad(depth + 1)));
                flow(value, depth + 1, style, out);
                out.push_str(if n + 1 < entries.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
    }
}

/// A mapping's entries in block style at column `col`; the first one's
/// key is already placed when `first_placed`.
fn block_map(
    entries: &[(&str, V)],
    col: usize,
    first_placed: bool,
    style: &Style,
    out: &mut String,
) {
    for (n, (key, value)) in entries.iter().enumerate() {
        if n > 0 || !first_placed {
            out.push_str(&" ".repeat(col));
        }
        out.push_str(key);
        out.push(':');
        match value {
            V::S(s) => {
                out.push(' ');
                out.push_str(s);
                if style.comments && n == 0 {
                    out.push_str("  # first");
                }
                if style.trailing_spaces {
                    out.push_str("  ");
                }
                out.push('\n');
            }
            V::L(items) if style.flow_scalars && items.iter().all(|i| matches!(i, V::S(_))) => {
                out.push(' ');
                flow(value, 0, style, out);
                out.push('\n');
            }
            V::L(_) => {
                out.push('\n');
                if style.comments {
                    out.push_str(&format!("{}# {key}\n", " ".repeat(col)));
                }
                let seq_col = if style.indent_seqs {
                    col + style.indent
                } else {
                    col
                };
                block_value(value, seq_col, style, out);
            }
            V::M(_) => {
                out.push('\n');
                block_value(value, col + style.indent, style, out);
            }
        }
    }
}

/// A collection in block style at column `col`, from a line's start.
fn block_value(v: &V, col: usize, style: &Style, out: &mut String) {
    match v {
        V::S(s) => {
            out.push_str(&" ".repeat(col));
            out.push_str(s);
            out.push('\n');
        }
        V::M(entries) => block_map(entries, col, false, style, out),
        V::L(items) => {
            for item in items {
                out.push_str(&" ".repeat(col));
                out.push_str("- ");
                match item {
                    V::S(s) => {
                        out.push_str(s);
                        out.push('\n');
                    }
                    V::M(entries) => block_map(entries, col + 2, true, style, out),
                    V::L(_) => {
                        out.push('\n');
                        block_value(item, col + 2, style, out);
                    }
                }
            }
        }
    }
}

fn arb_scalar() -> impl Strategy<Value = V> {
    prop::sample::select(SCALARS).prop_map(V::S)
}

fn arb_contact() -> impl Strategy<Value = V> {
    (
        prop::collection::vec(arb_scalar(), 0..3),
        prop::option::of(arb_scalar()),
        prop::option::of(arb_scalar()),
    )
        .prop_map(|(phones, user, name)| {
            let mut entries = vec![("phones", V::L(phones))];
            if let Some(user) = user {
                entries.push(("user", user));
            }
            if let Some(name) = name {
                entries.push(("name", name));
            }
            V::M(entries)
        })
}

fn arb_account() -> impl Strategy<Value = V> {
    (
        arb_scalar(),
        prop::option::of(arb_scalar()),
        prop::option::of(prop_oneof![
            Just("true"),
            Just("false"),
            Just("yes"),
            Just("'true'")
        ]),
        prop::option::of(arb_scalar()),
        prop::collection::vec(
            (arb_scalar(), prop::collection::vec(arb_scalar(), 0..2)),
            0..3,
        ),
        prop::collection::vec((arb_scalar(), prop::option::of(arb_scalar())), 0..3),
        prop::collection::vec(arb_contact(), 0..4),
    )
        .prop_map(
            |(id, forward_to, ring_first, no_phone, users, numbers, contacts)| {
                let mut entries = vec![("id", id)];
                if let Some(f) = forward_to {
                    entries.push(("forward_to", f));
                }
                if let Some(r) = ring_first {
                    entries.push(("ring_number_user_first", V::S(r)));
                }
                if let Some(p) = no_phone {
                    entries.push(("when_user_has_no_phone", p));
                }
                let users = users
                    .into_iter()
                    .map(|(id, numbers)| V::M(vec![("id", id), ("numbers", V::L(numbers))]))
                    .collect();
                entries.push(("users", V::L(users)));
                let numbers = numbers
                    .into_iter()
                    .map(|(number, user)| {
                        let mut e = vec![("number", number)];
                        if let Some(user) = user {
                            e.push(("user", user));
                        }
                        V::M(e)
                    })
                    .collect();
                entries.push(("numbers", V::L(numbers)));
                entries.push(("contacts", V::L(contacts)));
                V::M(entries)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever the style and the scalars, the fast path and the full
    /// parser give the same file or the same error.
    #[test]
    fn the_fast_path_reads_every_style_as_the_parser_does(
        accounts in prop::collection::vec(arb_account(), 1..3),
        style in arb_style(),
    ) {
        let text = render(&V::M(vec![("accounts", V::L(accounts))]), &style);
        let limits = YamlLimits::default();
        prop_assert_eq!(parse_routing_file(&text, &limits), parse_yaml(&text, &limits), "{}", text);
        if let Ok(fast) = read_routing_file(&text, &limits) {
            prop_assert_eq!(Ok(fast), parse_yaml(&text, &limits), "{}", text);
        }
        // The same with CRLF line ends.
        let crlf = text.replace('\n', "\r\n");
        if let Ok(fast) = read_routing_file(&crlf, &limits) {
            prop_assert_eq!(Ok(fast), parse_yaml(&crlf, &limits), "{}", crlf);
        }
    }
}

/// The generated styles with plain, ordinary scalars are taken by the fast
/// path (else the property above proves little).
#[test]
fn the_fast_path_takes_ordinary_files_in_every_generated_style() {
    let contact = V::M(vec![
        (
            "phones",
            V::L(vec![V::S("\"+16505550123\""), V::S("'+16505550124'")]),
        ),
        ("user", V::S("u-1")),
        ("name", V::S("Dana Lee")),
    ]);
    let account = V::M(vec![
        ("id", V::S("acme")),
        ("ring_number_user_first", V::S("false")),
        (
            "users",
            V::L(vec![V::M(vec![
                ("id", V::S("u-1")),
                ("numbers", V::L(vec![V::S("+18005550100")])),
            ])]),
        ),
        ("contacts", V::L(vec![contact.clone(), contact])),
    ]);
    let doc = V::M(vec![("accounts", V::L(vec![account]))]);
    let limits = YamlLimits::default();
    for bits in 0..128u32 {
        let bit = |n: u32| bits & (1 << n) != 0;
        let style = Style {
            indent: if bit(0) { 4 } else { 2 },
            indent_seqs: bit(1),
            flow_scalars: bit(2),
            json: bit(3),
            comments: bit(4),
            markers: bit(5),
            trailing_spaces: bit(6),
        };
        let text = render(&doc, &style);
        let fast = read_routing_file(&text, &limits)
            .unwrap_or_else(|e| panic!("{style:?} not taken: {e}\n{text}"));
        assert_eq!(Ok(fast), parse_yaml(&text, &limits), "{text}");
    }
}

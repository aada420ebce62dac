//! The fast path for routing files: the subset of YAML that export
//! libraries write (PyYAML, ruamel.yaml, js-yaml, Psych, yaml.v3, Jackson,
//! serde_yaml, JSON), read straight into the schema's types.
//!
//! `reader` knows YAML structure, `scalar` the scalars' characters and
//! which plain ones are surely text, `doc` the schema. A file is read here
//! whole or not at all: on anything outside the subset, anything the
//! schema refuses and every error, the reader gives up with [`Unsure`] and
//! `yaml::parse_routing_file_noting` hands the file to the full parser, which
//! reads it exactly or reports the error with its line. So the fast path
//! never decides a value the full parser would read differently, and never
//! writes an error message of its own.

mod doc;
mod reader;
mod scalar;

use super::schema::RoutingFile;
use super::yaml::YamlLimits;

/// Why the fast path gave a file up (for tests and tracing; the full
/// parser has the last word on the file either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct Unsure {
    pub line: u32,
    pub why: &'static str,
}

/// Reads a routing file if it is in the subset and valid for the schema.
/// A file written with CRLF line ends (an export made on Windows) is read
/// as its LF twin: YAML normalises every line break to LF (YAML 1.2
/// §5.4), so the two mean the same.
pub fn read_routing_file(text: &str, limits: &YamlLimits) -> Result<RoutingFile, Unsure> {
    match crlf_to_lf(text) {
        Some(lf) => doc::routing_file(&lf, limits.max_nodes, limits.max_depth),
        None => doc::routing_file(text, limits.max_nodes, limits.max_depth),
    }
}

/// `text` with each CRLF made LF; `None` when it has no CR at all (the
/// common case, at the cost of one vectorised scan). A CR not followed by
/// LF stays, and the reader gives the file up to the full parser.
fn crlf_to_lf(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let first = memchr::memchr(b'\r', bytes)?;
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in memchr::memchr_iter(b'\r', &bytes[first..]).map(|i| first + i) {
        if bytes.get(at + 1) == Some(&b'\n') {
            // CR and LF are ASCII: `at` is a char boundary.
            out.push_str(&text[from..at]);
            from = at + 1;
        }
    }
    out.push_str(&text[from..]);
    Some(out)
}

#[cfg(test)]
mod tests;

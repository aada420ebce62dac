//! The calls file: SIPp's injection-file format (`-inf`), as `sipp-scenarios/calls.csv`
//! and the Kamailio anchor's `calls.csv` use it.
//!
//! An optional first line `SEQUENTIAL`, `RANDOM` or `USER` (SIPp's order keywords;
//! rows are used in file order here whatever it says), `#` comment lines and empty
//! lines skipped, fields separated by `;`: field 0 is the dialed number
//! (Request-URI user), field 1 the caller (From user), the rest is kept for
//! `verify` (expected answer). Each row remembers its line number so that
//! messages can point at it.

use std::fmt;

/// Caller used when a row has no field 1 (and for the built-in pair).
pub const DEFAULT_CALLER: &str = "sipload";
/// Dialed number of the built-in pair used without `-f`.
pub const DEFAULT_DIALED: &str = "+18005550100";
/// Longest field accepted: keeps every request well inside one datagram.
pub const MAX_FIELD: usize = 128;

/// One call: who is dialed, who calls, and the fields after those two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file (0 for the built-in pair).
    pub line: usize,
    pub dialed: String,
    pub caller: String,
    pub rest: Vec<String>,
}

/// A line that cannot be sent as given.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CsvError {}

/// The pair sent when no calls file is given.
pub fn default_rows() -> Vec<Row> {
    vec![Row {
        line: 0,
        dialed: DEFAULT_DIALED.to_string(),
        caller: DEFAULT_CALLER.to_string(),
        rest: Vec::new(),
    }]
}

/// A user part goes into a URI verbatim, so it must not be able to end the URI,
/// the header line or the message: no white space, controls, `<>@"`, `,` or `;`.
fn check_user(field: &str, what: &str, line: usize) -> Result<(), CsvError> {
    let bad = |c: char| c.is_control() || c.is_whitespace() || "<>@\",;".contains(c);
    if field.is_empty() {
        Err(CsvError {
            line,
            reason: format!("empty {what}"),
        })
    } else if field.len() > MAX_FIELD {
        Err(CsvError {
            line,
            reason: format!("{what} longer than {MAX_FIELD} bytes"),
        })
    } else if let Some(c) = field.chars().find(|&c| bad(c)) {
        Err(CsvError {
            line,
            reason: format!("{what} {field:?} contains {c:?}"),
        })
    } else {
        Ok(())
    }
}

/// Parses a whole calls file. An empty result (only comments) is an error: there
/// would be nothing to send.
pub fn parse(text: &str) -> Result<Vec<Row>, CsvError> {
    let mut rows = Vec::new();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_end_matches('\r').trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if std::mem::take(&mut first) && matches!(l, "SEQUENTIAL" | "RANDOM" | "USER") {
            continue;
        }
        let mut fields = l.split(';').map(str::trim);
        let dialed = fields.next().unwrap_or_default();
        let caller = match fields.next() {
            Some("") | None => DEFAULT_CALLER,
            Some(c) => c,
        };
        check_user(dialed, "dialed number", line)?;
        check_user(caller, "caller", line)?;
        rows.push(Row {
            line,
            dialed: dialed.to_string(),
            caller: caller.to_string(),
            rest: fields.map(str::to_string).collect(),
        });
    }
    if rows.is_empty() {
        return Err(CsvError {
            line: 0,
            reason: "no call rows in the file".into(),
        });
    }
    Ok(rows)
}

/// Reads and parses a calls file; the error names the file.
pub fn load(path: &std::path::Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_header_comments_and_fields() {
        let text = "SEQUENTIAL\r\n# a comment\r\n+18005550100;+16505550123;302;+14155550101;127.0.0.1;\r\n\r\n4930;4989\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].dialed, "+18005550100");
        assert_eq!(rows[0].caller, "+16505550123");
        assert_eq!(rows[0].rest, ["302", "+14155550101", "127.0.0.1", ""]);
        assert_eq!(rows[1].line, 5);
        assert_eq!(
            (rows[1].dialed.as_str(), rows[1].caller.as_str()),
            ("4930", "4989")
        );
        assert!(rows[1].rest.is_empty());
    }

    #[test]
    fn keyword_only_on_the_first_line_and_missing_caller() {
        let rows = parse("RANDOM\n123\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].caller, DEFAULT_CALLER);
        // A later "RANDOM" line is a dialed number like any other.
        let rows = parse("123;4\nRANDOM;5\n").unwrap();
        assert_eq!(rows[1].dialed, "RANDOM");
    }

    #[test]
    fn anchor_format() {
        let rows = parse("SEQUENTIAL\n4930000001;4989000002;302:+4915112345678\n").unwrap();
        assert_eq!(rows[0].rest, ["302:+4915112345678"]);
    }

    #[test]
    fn refuses_what_would_break_a_message() {
        assert_eq!(parse("a b;c\n").unwrap_err().line, 1);
        assert_eq!(parse("# x\n1;<2>\n").unwrap_err().line, 2);
        assert!(parse(";2\n").is_err());
        assert!(parse(&format!("{};1\n", "9".repeat(MAX_FIELD + 1))).is_err());
        assert!(parse("SEQUENTIAL\n# only comments\n").is_err());
        assert!(parse("").is_err());
    }
}

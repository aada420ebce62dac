//! `sipload verify`: is every call answered the way the calls file says?
//!
//! The expected answer is read from field 2 (and 3) of each row, in either of the
//! two formats in use: the Kamailio anchor's `302:+NUMBER`, `404`, `480`, or this
//! repository's `sipp-scenarios/calls.csv`, `302;+NUMBER` (the Contact user in
//! field 3; a whole `sip:` URI there is compared as a URI). A 302 with nothing
//! expected in field 3 only checks the status. The Contact's user part is
//! compared exactly as text: both sides are what the router put there.

use crate::csv::Row;
use crate::response::{Response, contact_uri, uri_user};
use crate::worker::Sink;

/// What a row expects.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Expect {
    /// This status, whatever the Contact.
    Status(u16),
    /// A 302 whose Contact URI has this user part.
    ContactUser(String),
    /// A 302 with this Contact URI (its URI parameters aside).
    ContactUri(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s}"),
            Expect::ContactUser(u) => write!(f, "302 to {u}"),
            Expect::ContactUri(u) => write!(f, "302 to <{u}>"),
        }
    }
}

/// The expectation of `row`; the error names its line.
pub fn expectation(row: &Row) -> Result<Expect, String> {
    let field = |i: usize| row.rest.get(i).map(|s| s.trim()).unwrap_or("");
    let status_text = field(0);
    if let Some(user) = status_text.strip_prefix("302:") {
        return Ok(Expect::ContactUser(user.trim().to_string()));
    }
    let status: u16 = match status_text.parse() {
        Ok(s) if (100..700).contains(&s) => s,
        _ => {
            return Err(format!(
                "line {}: expected answer {status_text:?} is not a status (302:+NUMBER, 404, or 302 with the Contact user in the next field)",
                row.line
            ));
        }
    };
    let target = field(1);
    if status != 302 || target.is_empty() {
        return Ok(Expect::Status(status));
    }
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
        Ok(Expect::ContactUri(target.to_string()))
    } else {
        Ok(Expect::ContactUser(target.to_string()))
    }
}

/// What came back for one row (status and Contact URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub status: u16,
    pub contact: Option<String>,
}

impl std::fmt::Display for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.contact {
            Some(c) => write!(f, "{} <{c}>", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

/// Whether `got` (None: no answer) is what `expect` wants.
pub fn matches(expect: &Expect, got: Option<&Got>) -> bool {
    let Some(got) = got else { return false };
    let uri = got.contact.as_deref().unwrap_or("");
    match expect {
        Expect::Status(s) => got.status == *s,
        Expect::ContactUser(u) => {
            got.status == 302 && uri_user(uri.as_bytes()) == Some(u.as_bytes())
        }
        Expect::ContactUri(u) => {
            let bare = uri.split(';').next().unwrap_or("");
            got.status == 302 && (uri.eq_ignore_ascii_case(u) || bare.eq_ignore_ascii_case(u))
        }
    }
}

/// Collects each row's answer during the run.
pub struct Collector {
    pub got: Vec<Option<Got>>,
}

impl Collector {
    pub fn new(rows: usize) -> Self {
        Self {
            got: vec![None; rows],
        }
    }
}

impl Sink for Collector {
    fn answered(&mut self, row: u32, r: &Response<'_>) {
        if let Some(slot) = self.got.get_mut(row as usize) {
            *slot = Some(Got {
                status: r.status,
                contact: r
                    .contact
                    .map(|c| String::from_utf8_lossy(contact_uri(c)).into_owned()),
            });
        }
    }

    fn timed_out(&mut self, _: u32) {}
}

/// Compares every row with its answer; prints the summary line and the first 20
/// mismatches on stdout. True when all match.
pub fn report(rows: &[Row], expects: &[Expect], got: &[Option<Got>]) -> bool {
    let mut bad = Vec::new();
    for ((row, e), g) in rows.iter().zip(expects).zip(got) {
        if !matches(e, g.as_ref()) {
            bad.push((row, e, g));
        }
    }
    println!(
        "verified {} rows: {} match, {} mismatch",
        rows.len(),
        rows.len() - bad.len(),
        bad.len()
    );
    for (row, e, g) in bad.iter().take(20) {
        let got = g
            .as_ref()
            .map_or_else(|| "no answer (timeout)".to_string(), |g| g.to_string());
        println!(
            "  line {}: dialed {} caller {}: expected {e}, got {got}",
            row.line, row.dialed, row.caller
        );
    }
    if bad.len() > 20 {
        println!("  ... and {} more", bad.len() - 20);
    }
    bad.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rest: &[&str]) -> Row {
        Row {
            line: 9,
            dialed: "1".into(),
            caller: "2".into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn got(status: u16, contact: Option<&str>) -> Got {
        Got {
            status,
            contact: contact.map(str::to_string),
        }
    }

    #[test]
    fn both_file_formats() {
        assert_eq!(
            expectation(&row(&["302:+4915112345678"])),
            Ok(Expect::ContactUser("+4915112345678".into()))
        );
        assert_eq!(expectation(&row(&["404"])), Ok(Expect::Status(404)));
        assert_eq!(
            expectation(&row(&["302", "+14155550101", "127.0.0.1", ""])),
            Ok(Expect::ContactUser("+14155550101".into()))
        );
        assert_eq!(
            expectation(&row(&["302", "sip:carol@pbx.acme.example", ""])),
            Ok(Expect::ContactUri("sip:carol@pbx.acme.example".into()))
        );
        assert_eq!(expectation(&row(&["480", "", ""])), Ok(Expect::Status(480)));
        assert_eq!(expectation(&row(&["302"])), Ok(Expect::Status(302)));
        assert!(expectation(&row(&[])).unwrap_err().contains("line 9"));
        assert!(expectation(&row(&["ok"])).is_err());
        assert!(expectation(&row(&["999"])).is_err());
    }

    #[test]
    fn comparisons() {
        let user = Expect::ContactUser("+14155550101".into());
        assert!(matches(
            &user,
            Some(&got(302, Some("sip:+14155550101@127.0.0.1;user=phone")))
        ));
        assert!(!matches(
            &user,
            Some(&got(302, Some("sip:+14155550102@127.0.0.1")))
        ));
        assert!(!matches(
            &user,
            Some(&got(301, Some("sip:+14155550101@127.0.0.1")))
        ));
        assert!(!matches(&user, Some(&got(302, None))));
        assert!(!matches(&user, None), "a timeout is a mismatch");
        let uri = Expect::ContactUri("sip:carol@pbx.acme.example".into());
        assert!(matches(
            &uri,
            Some(&got(302, Some("sip:carol@pbx.acme.example")))
        ));
        assert!(matches(
            &uri,
            Some(&got(302, Some("sip:carol@pbx.acme.example;transport=tcp")))
        ));
        assert!(!matches(
            &uri,
            Some(&got(302, Some("sip:carol@other.example")))
        ));
        assert!(matches(&Expect::Status(404), Some(&got(404, None))));
        assert!(!matches(&Expect::Status(404), Some(&got(480, None))));
    }
}

//! A failover chain of Contacts and the diversion headers (docs/sip.md,
//! docs/routing.md), over the wire: the real binary on port 0, raw SIP
//! bytes in, the exact Contact, `Diversion` and `History-Info` lines out,
//! for every combination of `on_no_answer`, `diversion` and
//! `contact_headers`, and each rule that can decide a 302.

mod common;

use std::fs;

use common::{Server, UdpClient, invite, status};

/// One account where each rule can end in a chain:
/// - +18005550100 is alice's (rule 1), on_no_answer inherited (forward),
///   no forward_to of its own: the account's +14155550000 is the fallback;
/// - +18005550111 is nobody's (rule 2 for bob's contact, else rule 3),
///   forward_to +14155550199;
/// - +18005550122 is alice's with on_no_answer: none: one Contact;
/// - +18005550133 is alice's and forwards to alice's own phone: one Contact.
const DATA: &str = r#"
accounts:
  - id: t
    forward_to: "+14155550000"
    on_no_answer: forward
    users:
      - id: alice
        phone: "+14155550101"
        numbers: ["+18005550100", "+18005550122", "+18005550133"]
      - id: bob
        phone: "+14155550102"
    numbers:
      - number: "+18005550100"
      - number: "+18005550111"
        forward_to: "+14155550199"
      - number: "+18005550122"
        on_no_answer: none
      - number: "+18005550133"
        forward_to: "+14155550101"
    contacts:
      - phones: ["+16505550123"]
        user: bob
"#;

/// `yaml` as a routing data file in a temporary directory (kept while the
/// directory lives), and its path.
fn routing_file(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("routing.yaml");
    fs::write(&path, yaml).expect("data written");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    (dir, path)
}

/// A number's URI through the default Contact template, for a request
/// from 127.0.0.1.
fn uri(number: &str) -> String {
    format!("sip:{number}@127.0.0.1;user=phone")
}

/// RFC 3261 §25.1 `hvalue` escaping, written out independently of the
/// server's.
fn esc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn diversion(dialed: &str, reason: &str) -> String {
    format!("<{}>;reason={reason};counter=1", uri(dialed))
}

fn history(dialed: &str, targets: &[(&str, usize)]) -> String {
    let mut value = format!("<{}?Reason=SIP%3Bcause%3D302>;index=1", uri(dialed));
    for (target, nth) in targets {
        value.push_str(&format!(",<{}>;index=1.{nth};mp=1", uri(target)));
    }
    value
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Header,
    HistoryInfo,
    Off,
}

impl Style {
    fn flag(self) -> &'static str {
        match self {
            Style::Header => "header",
            Style::HistoryInfo => "history-info",
            Style::Off => "off",
        }
    }
}

/// A call and the Contacts it must get: (target, reason if diverted).
struct Case {
    dialed: &'static str,
    caller: &'static str,
    /// (target, RFC 5806 reason) in order.
    contacts: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    // Rule 1 with the account's on_no_answer: forward.
    Case {
        dialed: "+18005550100",
        caller: "+19995550000",
        contacts: &[("+14155550101", "follow-me"), ("+14155550000", "no-answer")],
    },
    // Rule 2: bob's contact calls the nobody's number.
    Case {
        dialed: "+18005550111",
        caller: "+16505550123",
        contacts: &[
            ("+14155550102", "unconditional"),
            ("+14155550199", "no-answer"),
        ],
    },
    // Rule 3: one Contact whatever on_no_answer says.
    Case {
        dialed: "+18005550111",
        caller: "+19995550000",
        contacts: &[("+14155550199", "unconditional")],
    },
    // on_no_answer: none on the number overrides the account.
    Case {
        dialed: "+18005550122",
        caller: "+19995550000",
        contacts: &[("+14155550101", "follow-me")],
    },
    // The forwarding target is the phone itself: one Contact.
    Case {
        dialed: "+18005550133",
        caller: "+19995550000",
        contacts: &[("+14155550101", "follow-me")],
    },
];

/// The Contact, Diversion and History-Info lines `case` must get.
fn expected(case: &Case, style: Style, contact_headers: bool) -> Vec<String> {
    let chain = case.contacts.len() > 1;
    let mut lines = Vec::new();
    for (nth, (target, reason)) in case.contacts.iter().enumerate() {
        let mut line = format!("Contact: <{}", uri(target));
        if contact_headers {
            match style {
                Style::Header => {
                    line.push_str(&format!(
                        "?Diversion={}",
                        esc(&diversion(case.dialed, reason))
                    ));
                }
                Style::HistoryInfo => {
                    line.push_str(&format!(
                        "?History-Info={}",
                        esc(&history(case.dialed, &[(target, nth + 1)]))
                    ));
                }
                Style::Off => {}
            }
        }
        line.push('>');
        if chain {
            line.push_str(if nth == 0 { ";q=1.0" } else { ";q=0.5" });
        }
        lines.push(line);
    }
    match style {
        Style::Header => lines.push(format!(
            "Diversion: {}",
            diversion(case.dialed, case.contacts[0].1)
        )),
        Style::HistoryInfo => {
            let targets: Vec<(&str, usize)> = case
                .contacts
                .iter()
                .enumerate()
                .map(|(i, (t, _))| (*t, i + 1))
                .collect();
            lines.push(format!("History-Info: {}", history(case.dialed, &targets)));
        }
        Style::Off => {}
    }
    lines
}

/// The lines of `answer` that name targets or the diversion.
fn routing_lines(answer: &str) -> Vec<String> {
    answer
        .split("\r\n")
        .filter(|l| {
            l.starts_with("Contact:")
                || l.starts_with("Diversion:")
                || l.starts_with("History-Info:")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_combination_of_chain_diversion_and_contact_headers() {
    let (_dir, data) = routing_file(DATA);
    let data = data.as_str();
    for style in [Style::Header, Style::HistoryInfo, Style::Off] {
        for contact_headers in [false, true] {
            let server = Server::start_with(&[
                "--routing",
                data,
                "--diversion",
                style.flag(),
                "--contact-headers",
                if contact_headers { "true" } else { "false" },
            ]);
            let client = UdpClient::new();
            for (i, case) in CASES.iter().enumerate() {
                let call_id = format!("chain-{}-{contact_headers}-{i}", style.flag());
                let answer = client.exchange(
                    server.udp,
                    &invite(case.dialed, case.caller, &call_id, client.port()),
                );
                assert_eq!(status(&answer), 302, "{answer}");
                assert_eq!(
                    routing_lines(&answer),
                    expected(case, style, contact_headers),
                    "diversion {}, contact_headers {contact_headers}, {} from {}:\n{answer}",
                    style.flag(),
                    case.dialed,
                    case.caller
                );
            }
        }
    }
}

/// 480 and 404 carry no Contact and no diversion, whatever the settings.
#[test]
fn only_302s_carry_a_diversion() {
    let data = r#"
accounts:
  - id: t
    on_no_answer: forward
    diversion: header
    users:
      - id: nophone
        numbers: ["+18005550144"]
    numbers:
      - number: "+18005550144"
"#;
    let (_dir, path) = routing_file(data);
    let server = Server::start_with(&["--routing", &path, "--contact-headers", "true"]);
    let client = UdpClient::new();
    for (dialed, code) in [("+18005550144", 480), ("+19995550000", 404)] {
        let answer = client.exchange(
            server.udp,
            &invite(
                dialed,
                "+16505550123",
                &format!("none-{code}"),
                client.port(),
            ),
        );
        assert_eq!(status(&answer), code, "{answer}");
        assert!(routing_lines(&answer).is_empty(), "{answer}");
    }
}

/// An account's `diversion` overrides the server's; the server's applies
/// to accounts that set none.
#[test]
fn an_account_overrides_the_servers_diversion() {
    let data = r#"
accounts:
  - id: teams
    diversion: history-info
    forward_to: "+14155550000"
    numbers:
      - number: "+18005550100"
  - id: plain
    forward_to: "+14155550000"
    numbers:
      - number: "+18005550200"
"#;
    let (_dir, path) = routing_file(data);
    let server = Server::start_with(&["--routing", &path, "--diversion", "header"]);
    let client = UdpClient::new();
    let teams = client.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "teams", client.port()),
    );
    assert_eq!(
        routing_lines(&teams),
        [
            format!("Contact: <{}>", uri("+14155550000")),
            format!(
                "History-Info: {}",
                history("+18005550100", &[("+14155550000", 1)])
            ),
        ],
        "{teams}"
    );
    let plain = client.exchange(
        server.udp,
        &invite("+18005550200", "+16505550123", "plain", client.port()),
    );
    assert_eq!(
        routing_lines(&plain),
        [
            format!("Contact: <{}>", uri("+14155550000")),
            format!("Diversion: {}", diversion("+18005550200", "unconditional")),
        ],
        "{plain}"
    );
}

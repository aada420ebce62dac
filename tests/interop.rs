//! Real SIP software nobody on this project wrote, acting on switchboard's
//! answers (issue #7), all on loopback and bounded in time:
//!
//! - Kamailio as a stateful proxy following the 302s with `uac_redirect`
//!   (`tests/interop/kamailio-follow-redirect.cfg`), a SIPp UAS as the phone
//!   network at the Contact template's address, a SIPp UAC placing calls;
//! - a carrier-style SIPp scenario (P-Asserted-Identity, Privacy: id, tel:
//!   and user=phone URIs, SDP) straight at switchboard;
//! - sipsak pinging switchboard with OPTIONS.
//!
//! SIPp, Kamailio and sipsak are required (`apt-get install -y sip-tester
//! kamailio sipsak`): without them these tests fail and say so.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use common::kamailio::Kamailio;
use common::sipp::{proxy_rows, report};
use common::{Server, UdpClient, example_data, free_udp_port, project_path, request, require};

/// A process is killed if still running after this.
const HARD_LIMIT: Duration = Duration::from_secs(90);

/// Waits for `child`, killing it after [`HARD_LIMIT`].
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    common::sipp::wait_bounded(child, what, HARD_LIMIT)
}

/// Starts SIPp with these arguments, bounded by its own `-timeout`.
fn sipp(dir: &Path, name: &str, args: &[String]) -> Child {
    common::sipp::start(dir, name, args, "60s")
}

/// A SIPp caller placing `calls` calls from a row-per-call injection file.
struct Caller<'a> {
    /// A scenario file, from the project root.
    scenario: &'a str,
    injection: &'a Path,
    calls: usize,
    rate: u32,
    recv_timeout_ms: u32,
    target: SocketAddr,
}

impl Caller<'_> {
    fn args(&self) -> Vec<String> {
        vec![
            "-sf".into(),
            project_path(self.scenario).display().to_string(),
            "-inf".into(),
            self.injection.display().to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            free_udp_port().to_string(),
            "-m".into(),
            self.calls.to_string(),
            "-r".into(),
            self.rate.to_string(),
            "-recv_timeout".into(),
            self.recv_timeout_ms.to_string(),
            self.target.to_string(),
        ]
    }
}

#[test]
fn kamailio_follows_the_redirects_to_the_phone_network() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let uas_port = free_udp_port();
    let switchboard = Server::start_with(&[
        "--routing",
        &example_data(),
        "--contact-template",
        &format!("sip:{{number}}@127.0.0.1:{uas_port};user=phone"),
    ]);
    let rows = proxy_rows();
    let followed = rows.iter().filter(|r| r.contains(";486;")).count();
    assert!(followed >= 5 && rows.len() > followed, "{rows:?}");
    let rounds = 3;
    let csv = dir.path().join("calls.csv");
    fs::write(&csv, format!("SEQUENTIAL\n{}\n", rows.join("\n"))).expect("write the calls");

    // The phone network: answers every call that reaches it.
    let mut uas = sipp(
        dir.path(),
        "uas",
        &[
            "-sf".into(),
            project_path("tests/interop/uas_phone_network.xml")
                .display()
                .to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            uas_port.to_string(),
            "-m".into(),
            (followed * rounds).to_string(),
        ],
    );

    // The proxy in front, asking switchboard.
    let kamailio = Kamailio::start(
        &project_path("tests/interop/kamailio-follow-redirect.cfg"),
        &[format!("REDIRECT_SERVER=\"sip:{}\"", switchboard.udp)],
    );

    // The caller: every row, three times, each answer checked by SIPp.
    let calls = rows.len() * rounds;
    let mut uac = sipp(
        dir.path(),
        "uac",
        &Caller {
            scenario: "tests/interop/uac_via_proxy.xml",
            injection: &csv,
            calls,
            rate: 20,
            recv_timeout_ms: 10_000,
            target: kamailio.addr,
        }
        .args(),
    );
    let uac_status = wait(&mut uac, "the SIPp caller");
    let uas_status = wait(&mut uas, "the SIPp phone network");
    let kamailio_log = kamailio.log();
    drop(kamailio);
    assert!(
        uac_status.success(),
        "the caller saw a wrong answer (exit {uac_status})\n{}\n--- kamailio\n{kamailio_log}",
        report(dir.path(), "uac")
    );
    assert!(
        uas_status.success(),
        "the phone network did not get every followed call (exit {uas_status})\n{}",
        report(dir.path(), "uas")
    );
    eprintln!(
        "{calls} calls through Kamailio: {} followed to the phone network at the chosen number, \
         {} answered 480/404 by switchboard",
        followed * rounds,
        calls - followed * rounds
    );
}

/// Every expectation in trunk_calls.csv is what the routing rules decide
/// for the example data (taken in process, as `switchboard route` does),
/// so the trunk scenario checks the server against the rules.
///
/// `table.decide()` is the very code the server runs, so this cannot catch
/// a routing bug (it would be on both sides). The independent expectations
/// are the CSV's own literal fields, which the wire is checked against for
/// every row: by SIPp (`uac_trunk.xml`, in
/// `a_carrier_style_trunk_gets_the_right_contacts`) and without it in
/// `every_trunk_row_gets_its_own_expectation_on_the_wire`. Settle a
/// disagreement from the rules, never by pasting `route`'s output in.
#[test]
fn trunk_calls_csv_agrees_with_route() {
    use switchboard::routing::{Region, Target};
    use switchboard::routing_data::Loader;
    let table = Loader::new(example_data(), Region::us())
        .load()
        .unwrap_or_else(|rejected| panic!("example data rejected:\n{}", rejected.report))
        .table;
    let csv = fs::read_to_string(project_path("sipp-scenarios/trunk_calls.csv")).expect("csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && *l != "SEQUENTIAL")
        .map(|l| l.split(';').collect())
        .collect();
    assert!(rows.len() >= 5);
    for row in rows {
        let (uri, caller, status, contact) = (row[0], row[2], row[3], row[4]);
        let decision = table.decide(uri.as_bytes(), Some(caller.as_bytes()));
        assert_eq!(
            switchboard::server::redirect::status_for(decision.disposition)
                .code
                .to_string(),
            status,
            "{row:?}"
        );
        let target = match decision.target {
            Some(Target::Number(n)) => format!("+{}", n.value()),
            Some(Target::Uri(uri)) => uri.to_string(),
            None => String::new(),
        };
        // The Contact names the target: its number as the user part, or a
        // sip: phone as is.
        let expected_user = contact
            .strip_prefix("sip:")
            .and_then(|rest| rest.split('@').next())
            .unwrap_or("");
        if target.starts_with('+') {
            assert_eq!(expected_user, target, "{row:?}");
        } else {
            assert_eq!(contact, target, "{row:?}");
        }
    }
}

/// Every row of trunk_calls.csv, sent once over UDP as `uac_trunk.xml`
/// sends it (the caller only in P-Asserted-Identity, an anonymous From,
/// Privacy: id), gets the row's own expected status and, for a 302, the
/// Contact URI up to its first parameter: the scenario's comparison,
/// without SIPp and without `decide()`.
#[test]
fn every_trunk_row_gets_its_own_expectation_on_the_wire() {
    let switchboard = Server::start();
    let client = UdpClient::new();
    let csv = fs::read_to_string(project_path("sipp-scenarios/trunk_calls.csv")).expect("csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && *l != "SEQUENTIAL")
        .map(|l| l.split(';').collect())
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        let (uri, dialed, caller, expected, contact) = (row[0], row[1], row[2], row[3], row[4]);
        let message = request(
            &[
                &format!("INVITE {uri} SIP/2.0"),
                "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-trunk-row;rport",
                "Max-Forwards: 69",
                "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=trunk",
                &format!("To: <sip:{dialed}@127.0.0.1;user=phone>"),
                &format!("Call-ID: trunk-row-{i}"),
                "CSeq: 1 INVITE",
                &format!(
                    "P-Asserted-Identity: <sip:{caller}@carrier.example;user=phone>, <tel:{caller}>"
                ),
                "Privacy: id",
                "Content-Length: 0",
                "",
            ],
            client.port(),
        );
        let answer = client.exchange(switchboard.udp, &message);
        assert_eq!(
            common::status(&answer).to_string(),
            expected,
            "row {row:?}: {answer}"
        );
        let got = common::header(&answer, "Contact").map(|c| {
            c.trim_start_matches('<')
                .split([';', '>'])
                .next()
                .unwrap_or_default()
        });
        if expected == "302" {
            assert_eq!(got, Some(contact), "row {row:?}: {answer}");
        } else {
            assert_eq!(got, None, "row {row:?}: {answer}");
        }
    }
}

#[test]
fn a_carrier_style_trunk_gets_the_right_contacts() {
    let switchboard = Server::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let calls = fs::read_to_string(project_path("sipp-scenarios/trunk_calls.csv"))
        .expect("trunk_calls.csv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && *l != "SEQUENTIAL")
        .count();
    let mut uac = sipp(
        dir.path(),
        "trunk",
        &Caller {
            scenario: "sipp-scenarios/uac_trunk.xml",
            injection: &project_path("sipp-scenarios/trunk_calls.csv"),
            calls: calls * 2,
            rate: 50,
            recv_timeout_ms: 5_000,
            target: switchboard.udp,
        }
        .args(),
    );
    let status = wait(&mut uac, "the SIPp trunk");
    assert!(
        status.success(),
        "a trunk call got a wrong answer (exit {status})\n{}",
        report(dir.path(), "trunk")
    );
}

#[test]
fn sipsak_pings_it() {
    require("sipsak", "sipsak");
    let switchboard = Server::start();
    let output = Command::new("sipsak")
        .args(["-v", "-s"])
        .arg(format!("sip:ping@{}", switchboard.udp))
        .args(["-l", &free_udp_port().to_string()])
        .output()
        .expect("sipsak runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sipsak exit {}: {stdout}",
        output.status
    );
    assert!(stdout.contains("200 OK"), "{stdout}");
    // And switchboard still answers the next peer.
    let client = UdpClient::new();
    let ping = request(
        &[
            "OPTIONS sip:ping@127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-after;rport",
            "From: <sip:t@127.0.0.1>;tag=a",
            "To: <sip:ping@127.0.0.1>",
            "Call-ID: after-sipsak",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
            "",
        ],
        client.port(),
    );
    assert!(
        client
            .exchange(switchboard.udp, &ping)
            .starts_with("SIP/2.0 200 OK")
    );
}

//! The real server under SIPp (Debian package `sip-tester`), the tool trunk
//! vendors and operators test SIP servers with: the scenarios of
//! `sipp-scenarios/` over UDP and TCP, each call checked by SIPp itself
//! (`uac_redirect.xml` fails a call whose status or Contact differs from its
//! row of `calls.csv`), then SIPp's exit status and statistics file read here.
//!
//! SIPp is required: without it these tests fail and say how to install it.
//! Every sipp process talks to 127.0.0.1 only and is bounded twice: by its own
//! `-timeout` with `-timeout_error`, and by a hard kill from the test.

mod common;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{
    Server, UdpClient, example_data, free_udp_port, header, invite, project_path, status,
};
use switchboard::routing::Region;
use switchboard::routing_data::Loader;

/// SIPp's own global timeout (`-timeout`, seconds; `-timeout_error` makes
/// reaching it a failure).
const SIPP_TIMEOUT_SECONDS: u64 = 60;
/// The test kills a sipp process still running after this.
const HARD_KILL_AFTER: Duration = Duration::from_secs(90);
/// How long SIPp waits for any one answer (`-recv_timeout`, ms).
const RECV_TIMEOUT_MS: u64 = 5_000;
/// The functional runs go through `calls.csv` this many times.
const ROUNDS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// SIPp's `-t`: one socket (UDP) or one connection (TCP) for all calls.
    fn flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }

    fn server_addr(self, server: &Server) -> SocketAddr {
        match self {
            Transport::Udp => server.udp,
            Transport::Tcp => server.tcp,
        }
    }
}

/// One sipp run.
struct Run<'a> {
    /// A file of `sipp-scenarios/`.
    scenario: &'a str,
    /// The injection file's path.
    injection: Option<&'a str>,
    calls: usize,
    rate: u32,
    transport: Transport,
    extra: &'a [&'a str],
}

/// What a sipp run left behind.
struct Outcome {
    status: ExitStatus,
    /// The last row of the `-stf` statistics file, by column name.
    stats: HashMap<String, String>,
    /// The command, SIPp's final screens and its error log, for failures.
    report: String,
}

impl Outcome {
    fn count(&self, column: &str) -> u64 {
        let value = self
            .stats
            .get(column)
            .unwrap_or_else(|| panic!("no column {column} in SIPp's statistics\n{}", self.report));
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{column} = {value:?} is not a count\n{}", self.report))
    }

    /// Exit status 0 (SIPp: every call succeeded), `calls` successful calls
    /// and no failed one.
    fn assert_all_succeeded(&self, calls: usize) {
        assert!(
            self.status.success(),
            "sipp exited with {} (0: all calls succeeded, 1: some failed, \
             other: SIPp error)\n{}",
            self.status,
            self.report
        );
        assert_eq!(
            self.count("SuccessfulCall(C)"),
            calls as u64,
            "successful calls\n{}",
            self.report
        );
        assert_eq!(
            self.count("FailedCall(C)"),
            0,
            "failed calls\n{}",
            self.report
        );
    }
}

fn sipp_program() -> String {
    std::env::var("SIPP").unwrap_or_else(|_| "sipp".to_owned())
}

/// Fails (does not skip) when SIPp is missing.
fn require_sipp() {
    let program = sipp_program();
    match Command::new(&program)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{program}` is not installed: these tests drive the server with SIPp 3.6; \
             `scripts/test` installs it (or `apt-get install -y sip-tester`), \
             or point SIPP at the binary"
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

fn scenario_path(file: &str) -> String {
    project_path("sipp-scenarios")
        .join(file)
        .display()
        .to_string()
}

/// Runs sipp against `server` and waits for it (hard-killed after
/// [`HARD_KILL_AFTER`]). Everything SIPp writes goes to a temporary directory.
fn run_sipp(server: &Server, run: &Run) -> Outcome {
    require_sipp();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stat_file = dir.path().join("stat.csv");
    let error_file = dir.path().join("errors.log");
    let screen_file = dir.path().join("screen.log");
    let remote = run.transport.server_addr(server);
    assert!(remote.ip().is_loopback(), "sipp targets loopback only");

    let mut args: Vec<String> = vec!["-sf".into(), scenario_path(run.scenario)];
    if let Some(csv) = run.injection {
        args.extend(["-inf".into(), csv.to_owned()]);
    }
    args.extend(
        [
            "-t",
            run.transport.flag(),
            "-i",
            "127.0.0.1",
            "-p",
            &free_udp_port().to_string(),
            "-m",
            &run.calls.to_string(),
            "-r",
            &run.rate.to_string(),
            "-timeout",
            &format!("{SIPP_TIMEOUT_SECONDS}s"),
            "-timeout_error",
            "-recv_timeout",
            &RECV_TIMEOUT_MS.to_string(),
            "-nostdin",
            "-trace_stat",
            "-stf",
            &stat_file.display().to_string(),
            "-trace_err",
            "-error_file",
            &error_file.display().to_string(),
            "-trace_screen",
            "-screen_file",
            &screen_file.display().to_string(),
        ]
        .map(str::to_owned),
    );
    args.extend(run.extra.iter().map(|s| s.to_string()));
    args.push(format!("127.0.0.1:{}", remote.port()));

    let stdout_file = dir.path().join("stdout.txt");
    let program = sipp_program();
    let mut child = Command::new(&program)
        .args(&args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_file).expect("stdout file"))
        .stderr(Stdio::from(
            File::create(dir.path().join("stderr.txt")).expect("stderr file"),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{program}`: {e}"));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sipp") {
            break status;
        }
        if started.elapsed() > HARD_KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sipp still running after {HARD_KILL_AFTER:?}, killed: {program} {}\n{}",
                args.join(" "),
                tail(&read_lossy(&stdout_file), 3_000)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    let report = format!(
        "command: {program} {}\n--- stderr\n{}\n--- final screens\n{}\n--- error log (start)\n{}",
        args.join(" "),
        tail(&read_lossy(&dir.path().join("stderr.txt")), 2_000),
        final_screens(&read_lossy(&screen_file)),
        head(&read_lossy(&error_file), 4_000),
    );
    let stats = last_stats(&stat_file)
        .unwrap_or_else(|| panic!("SIPp wrote no statistics (exit {status})\n{report}"));
    Outcome {
        status,
        stats,
        report,
    }
}

/// SIPp's last scenario and statistics screens (message counts, calls
/// successful and failed), without the response time tables.
fn final_screens(screens: &str) -> &str {
    let start = screens.rfind("Scenario Screen").unwrap_or(0);
    let start = screens[..start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &screens[start..];
    let end = rest.find("Repartition Screen").unwrap_or(rest.len());
    let end = rest[..end].rfind('\n').unwrap_or(end);
    head(&rest[..end], 6_000)
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The header and the last row of SIPp's `;`-separated statistics file.
fn last_stats(path: &Path) -> Option<HashMap<String, String>> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    Some(
        header
            .iter()
            .zip(last)
            .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
            .collect(),
    )
}

fn calls_csv_path() -> String {
    scenario_path("calls.csv")
}

/// One data row of `calls.csv`.
#[derive(Debug, Clone)]
struct Row {
    dialed: String,
    caller: String,
    status: u16,
    contact: String,
    host: String,
}

/// The data rows of `sipp-scenarios/calls.csv` (after the SEQUENTIAL line,
/// without `#` comments), as SIPp reads them.
fn calls_csv() -> Vec<Row> {
    let text = fs::read_to_string(calls_csv_path()).expect("sipp-scenarios/calls.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("SEQUENTIAL"), "calls.csv's first line");
    let mut rows = Vec::new();
    for line in lines {
        // SIPp stops reading at the first empty line.
        assert!(!line.is_empty(), "calls.csv has an empty line");
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(';').collect();
        assert!(fields.len() >= 5, "calls.csv: five fields in {line:?}");
        rows.push(Row {
            dialed: fields[0].to_owned(),
            caller: fields[1].to_owned(),
            status: fields[2]
                .parse()
                .unwrap_or_else(|_| panic!("calls.csv: status in {line:?}")),
            contact: fields[3].to_owned(),
            host: fields[4].to_owned(),
        });
    }
    assert!(!rows.is_empty(), "calls.csv has no calls");
    rows
}

/// Every expectation in calls.csv is what `switchboard route --json` says
/// for the example data (the same decision, taken in process: the debug
/// binary spends a second per start loading phone metadata), so the
/// scenario checks the server against the routing rules, not against
/// numbers typed by hand, and a change to config/routing.yaml that moves a
/// call shows up here first.
///
/// Note what this cannot catch: `table.decide()` is the very code the
/// server runs, so a routing bug would be in both and they would agree. The
/// independent expectations are calls.csv's own literal fields (status,
/// Contact user or URI, Contact host, each row commented with why), which
/// the wire is checked against for every row: by SIPp in
/// `redirect_scenario_udp` and `redirect_scenario_tcp` (its checks shown to
/// fail in `redirect_scenario_fails_on_wrong_expectations`), and without
/// SIPp in `every_calls_csv_row_gets_its_own_expectation_on_the_wire`. When
/// this test and the CSV disagree, settle it from the rules in
/// docs/routing.md, never by pasting `route`'s output into the CSV.
#[test]
fn calls_csv_agrees_with_route() {
    let region = Region::from_code("US").expect("US");
    let loaded = Loader::new(example_data(), region)
        .load()
        .unwrap_or_else(|rejected| panic!("example data rejected:\n{}", rejected.report));
    let rows = calls_csv();
    let mut seen_status = Vec::new();
    for row in &rows {
        let summary = switchboard::server::redirect::summary(
            &loaded
                .table
                .decide(row.dialed.as_bytes(), Some(row.caller.as_bytes())),
        );
        let json = serde_json::to_value(&summary).expect("summary as JSON");
        let target = json["target"].as_str().unwrap_or("");
        assert_eq!(
            (json["status"].as_u64(), target),
            (Some(u64::from(row.status)), row.contact.as_str()),
            "calls.csv row {row:?} disagrees with `switchboard route --to {} --from {} --json`: {json}",
            row.dialed,
            row.caller
        );
        // The host is checked only for 302s to a number (a sip: phone is
        // used as is).
        let to_number = row.status == 302 && target.starts_with('+');
        assert_eq!(
            !row.host.is_empty(),
            to_number,
            "calls.csv row {row:?}: a Contact host belongs to 302s to a number only"
        );
        seen_status.push(row.status);
    }
    for status in [302, 480, 404] {
        assert!(
            seen_status.contains(&status),
            "calls.csv has no call answered {status}"
        );
    }
}

/// Every row of calls.csv, sent once over UDP from a plain socket, gets
/// the answer the row itself expects (not what `decide()` says): its
/// status, and for a 302 the first Contact's user and host, or its whole
/// sip: URI. The same comparison `uac_redirect.xml` makes, made here
/// without SIPp so that the check does not rest on the scenario alone.
#[test]
fn every_calls_csv_row_gets_its_own_expectation_on_the_wire() {
    let server = Server::start();
    let client = UdpClient::new();
    let rows = calls_csv();
    for (i, row) in rows.iter().enumerate() {
        let answer = client.exchange(
            server.udp,
            &invite(
                &row.dialed,
                &row.caller,
                &format!("csv-row-{i}"),
                client.port(),
            ),
        );
        assert_eq!(status(&answer), row.status, "row {row:?}: {answer}");
        let contact = header(&answer, "Contact");
        if row.status != 302 {
            assert_eq!(contact, None, "row {row:?}: {answer}");
            continue;
        }
        let contact = contact.unwrap_or_else(|| panic!("row {row:?}: no Contact: {answer}"));
        let uri = contact
            .strip_prefix('<')
            .and_then(|c| c.split('>').next())
            .unwrap_or_else(|| panic!("row {row:?}: Contact {contact:?} not in <>"));
        if row.contact.starts_with('+') {
            // sip:USER@HOST;params: the user is the number, the host the
            // template's.
            let (user, rest) = uri
                .strip_prefix("sip:")
                .and_then(|u| u.split_once('@'))
                .unwrap_or_else(|| panic!("row {row:?}: Contact {contact:?}"));
            let host = rest.split(';').next().unwrap_or(rest);
            assert_eq!(
                (user, host),
                (row.contact.as_str(), row.host.as_str()),
                "row {row:?}: {answer}"
            );
        } else {
            assert_eq!(uri, row.contact, "row {row:?}: {answer}");
        }
    }
}

fn redirect_run(transport: Transport) {
    let rows = calls_csv().len();
    let server = Server::start();
    let calls = rows * ROUNDS;
    let outcome = run_sipp(
        &server,
        &Run {
            scenario: "uac_redirect.xml",
            injection: Some(&calls_csv_path()),
            calls,
            rate: 200,
            transport,
            extra: &[],
        },
    );
    outcome.assert_all_succeeded(calls);
}

/// Every row of calls.csv, three times, over UDP: status, Contact and ACK
/// as SIPp checks them.
#[test]
fn redirect_scenario_udp() {
    redirect_run(Transport::Udp);
}

/// The same over one TCP connection: answers come back on it.
#[test]
fn redirect_scenario_tcp() {
    redirect_run(Transport::Tcp);
}

impl Row {
    fn csv_line(&self) -> String {
        format!(
            "{};{};{};{};{};",
            self.dialed, self.caller, self.status, self.contact, self.host
        )
    }
}

/// The check works: rows of calls.csv with one expectation made wrong each
/// (the Contact user, the Contact host, a sip: Contact, the status both
/// ways) fail their calls in SIPp's statistics and its exit status; the one
/// row left right still succeeds.
#[test]
fn redirect_scenario_fails_on_wrong_expectations() {
    let rows = calls_csv();
    let find = |what: &str, pick: &dyn Fn(&Row) -> bool| -> Row {
        rows.iter()
            .find(|r| pick(r))
            .unwrap_or_else(|| panic!("calls.csv has no {what}"))
            .clone()
    };
    let to_number = find("302 to a number", &|r| {
        r.status == 302 && r.contact.starts_with('+')
    });
    let to_uri = find("302 to a sip: URI", &|r| {
        r.status == 302 && r.contact.starts_with("sip:")
    });
    let unavailable = find("480", &|r| r.status == 480);
    let not_found = find("404", &|r| r.status == 404);

    let mut wrong = Vec::new();
    let mut row = to_number.clone();
    row.contact.push('9');
    wrong.push(row);
    let mut row = to_number.clone();
    row.host = "wrong.example".into();
    wrong.push(row);
    let mut row = to_uri.clone();
    row.contact = row.contact.replace('@', "x@");
    wrong.push(row);
    let mut row = unavailable.clone();
    row.status = 302;
    row.contact = to_number.contact.clone();
    row.host = to_number.host.clone();
    wrong.push(row);
    let mut row = to_number.clone();
    row.status = 480;
    row.contact.clear();
    row.host.clear();
    wrong.push(row);
    let mut row = not_found.clone();
    row.status = 480;
    wrong.push(row);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let csv = dir.path().join("wrong.csv");
    let mut text = String::from("SEQUENTIAL\n");
    text.push_str(&to_number.csv_line());
    text.push('\n');
    for row in &wrong {
        text.push_str(&row.csv_line());
        text.push('\n');
    }
    fs::write(&csv, text).expect("write wrong.csv");

    let server = Server::start();
    let calls = wrong.len() + 1;
    let outcome = run_sipp(
        &server,
        &Run {
            scenario: "uac_redirect.xml",
            injection: Some(&csv.display().to_string()),
            calls,
            rate: 200,
            transport: Transport::Udp,
            extra: &[],
        },
    );
    assert_eq!(
        outcome.status.code(),
        Some(1),
        "SIPp exits 1 when calls failed\n{}",
        outcome.report
    );
    assert_eq!(outcome.count("SuccessfulCall(C)"), 1, "{}", outcome.report);
    assert_eq!(
        outcome.count("FailedCall(C)"),
        wrong.len() as u64,
        "{}",
        outcome.report
    );
    assert_eq!(
        outcome.count("FailedStrcmpDoesntMatch(C)"),
        wrong.len() as u64,
        "every wrong row fails on its comparison\n{}",
        outcome.report
    );
}

fn options_run(transport: Transport) {
    let server = Server::start();
    let calls = 20;
    let outcome = run_sipp(
        &server,
        &Run {
            scenario: "options_ping.xml",
            injection: None,
            calls,
            rate: 100,
            transport,
            extra: &[],
        },
    );
    outcome.assert_all_succeeded(calls);
}

/// Trunk keep-alive: OPTIONS gets 200 with Allow and Accept, over UDP.
#[test]
fn options_ping_udp() {
    options_run(Transport::Udp);
}

/// The same over TCP.
#[test]
fn options_ping_tcp() {
    options_run(Transport::Tcp);
}

/// A short load run: 2,000 calls at 500 per second over UDP, every one
/// answered 302, 480 or 404 and ACKed. (UDP retransmissions are allowed: the
/// debug build shares the machine with the rest of the suite.)
#[test]
fn load_run_udp() {
    let server = Server::start();
    let calls = 2_000;
    let outcome = run_sipp(
        &server,
        &Run {
            scenario: "uac_load.xml",
            injection: Some(&calls_csv_path()),
            calls,
            rate: 500,
            transport: Transport::Udp,
            extra: &["-buff_size", "4194304"],
        },
    );
    outcome.assert_all_succeeded(calls);
}

/// One version of the example data: the same answers for every row of
/// calls.csv, plus a number whose forwarding target names the version.
fn versioned_data(base: &str, version: u32) -> String {
    const BOB: &str = "      - number: \"+18005550144\"        # bob (no phone: 480)\n";
    assert!(
        base.contains(BOB),
        "the example data changed: update this test"
    );
    base.replace(
        BOB,
        &format!(
            "{BOB}      - number: \"+18005550999\"\n        forward_to: \"+1415555{version:04}\"\n"
        ),
    )
}

/// 50 reloads while SIPp makes calls at a steady rate: not one call fails
/// (SIPp checks every status and Contact), and every reload is seen
/// serving before the next is written.
#[test]
fn reloads_under_load_lose_no_call() {
    const RELOADS: u32 = 50;
    let rows = calls_csv().len();
    let calls = rows * 140;
    let base = fs::read_to_string(example_data()).expect("example data");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("routing.yaml");
    fs::write(&data, versioned_data(&base, 0)).expect("write data");
    let settings = dir.path().join("switchboard.yaml");
    fs::write(&settings, "reload:\n  debounce_ms: 20\n").expect("write settings");
    let server = Server::start_with(&[
        "--routing",
        &data.display().to_string(),
        "--config",
        &settings.display().to_string(),
    ]);
    let (outcome, sipp_done, reloads_done) = std::thread::scope(|scope| {
        let reloader = scope.spawn(|| {
            let probe = UdpClient::new();
            // Let SIPp get going first.
            std::thread::sleep(Duration::from_millis(500));
            for version in 1..=RELOADS {
                let next = dir.path().join(".routing.yaml.next");
                fs::write(&next, versioned_data(&base, version)).expect("write data");
                fs::rename(&next, &data).expect("replace the data");
                let expected = format!("+1415555{version:04}");
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let message = invite("+18005550999", "+12125550100", "probe", probe.port());
                    let answer = probe.exchange(server.udp, &message);
                    if status(&answer) == 302
                        && header(&answer, "Contact").is_some_and(|c| c.contains(&expected))
                    {
                        break;
                    }
                    assert!(Instant::now() < deadline, "reload {version} not serving");
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(60));
            }
            Instant::now()
        });
        let outcome = run_sipp(
            &server,
            &Run {
                scenario: "uac_redirect.xml",
                injection: Some(&calls_csv_path()),
                calls,
                rate: 250,
                transport: Transport::Udp,
                extra: &["-buff_size", "4194304"],
            },
        );
        let sipp_done = Instant::now();
        (outcome, sipp_done, reloader.join().expect("the reloads"))
    });
    outcome.assert_all_succeeded(calls);
    assert!(
        reloads_done < sipp_done,
        "the {RELOADS} reloads outlasted the SIPp run: make the run longer"
    );
    eprintln!(
        "{RELOADS} reloads during {calls} SIPp calls at 250/s: {} successful, {} failed",
        outcome.count("SuccessfulCall(C)"),
        outcome.count("FailedCall(C)")
    );
}

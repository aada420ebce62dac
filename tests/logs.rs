//! The operator's log, read from the real binary with `--log-format json`:
//! one info line at start, one per reload (ok with counts and duration, or
//! failed with every error), one at shutdown, and nothing per request at
//! info; `RUST_LOG=debug` adds one line per decision.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{UdpClient, example_data, invite, status};
use serde_json::Value;

/// Runs the server with JSON logs and `RUST_LOG=filter`, calls it `calls`
/// times, replaces its routing data with `next` (if any), stops it; its
/// log lines.
fn run(filter: &str, calls: usize, next: Option<&str>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("routing.yaml");
    fs::copy(example_data(), &data).unwrap();
    let settings = dir.path().join("switchboard.yaml");
    fs::write(&settings, "reload:\n  debounce_ms: 20\n").unwrap();
    // Not beside the data: the reload thread watches that directory.
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("log.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--routing"])
        .arg(&data)
        .arg("--config")
        .arg(&settings)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("switchboard starts");
    // Kept open (and read to the end) while the server runs.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let udp = stdout
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on udp ").map(str::to_owned))
        .expect("the UDP address")
        .parse()
        .unwrap();
    let stdout = std::thread::spawn(move || stdout.count());
    let client = UdpClient::new();
    for i in 0..calls {
        let answer = client.exchange(
            udp,
            &invite(
                "+18005550100",
                "+16505550123",
                &format!("log-{i}"),
                client.port(),
            ),
        );
        assert_eq!(status(&answer), 302);
    }
    let lines = |log: &std::path::Path| -> Vec<Value> {
        fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    if let Some(next) = next {
        let tmp = dir.path().join(".next");
        fs::write(&tmp, next).unwrap();
        fs::rename(&tmp, &data).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !lines(&log).iter().any(|l| message(l).contains("reload")) {
            assert!(Instant::now() < deadline, "no reload logged");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    stdout.join().unwrap();
    lines(&log)
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

fn at<'a>(lines: &'a [Value], level: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["level"] == level).collect()
}

#[test]
fn start_reload_and_shutdown_are_logged_once_each_and_requests_are_not() {
    let base = fs::read_to_string(example_data()).unwrap();
    let lines = run(
        "info",
        20,
        Some(&format!(
            "{base}\n  - id: extra\n    numbers:\n      - number: \"+18005550177\"\n        forward_to: \"+14155550177\"\n"
        )),
    );
    let info = at(&lines, "INFO");
    let messages: Vec<&str> = info.iter().map(|l| message(l)).collect();
    assert_eq!(
        messages,
        [
            "switchboard started",
            "routing data reloaded",
            "shutting down",
            "stopped"
        ],
        "{lines:#?}"
    );
    let started = &info[0]["fields"];
    assert_eq!(started["accounts"], 2, "{started}");
    assert!(
        started["listening"]
            .as_str()
            .unwrap()
            .contains("udp 127.0.0.1:")
    );
    let reloaded = &info[1]["fields"];
    assert_eq!(reloaded["accounts"], 3, "{reloaded}");
    assert!(reloaded["ms"].as_f64().is_some(), "{reloaded}");
}

/// Data with eleven errors (tests/fixtures/bad.yaml) replaces good data:
/// one ERROR line, and in it every one of the eleven, each at its line.
#[test]
fn a_failed_reload_logs_every_error() {
    let bad = fs::read_to_string(common::project_path("tests/fixtures/bad.yaml")).unwrap();
    let expected: [(u32, &str); 11] = [
        (10, "number +18005550100 is assigned to both alice"),
        (10, "user carol has number +18005550177, which is not"),
        (11, "user id alice is used twice in account acme"),
        (14, "user dave's phone \"call me maybe\" cannot be"),
        (18, "number +18005550111 is assigned to user nobody"),
        (19, "number \"+1800555\" cannot be a phone number"),
        (20, "number \"+12345678901234567\" cannot be"),
        (23, "a contact is assigned to user zed"),
        (24, "contact phone \"not-a-number\" cannot be"),
        (26, "account beta: unknown region \"XX\""),
        (28, "number +18005550111 belongs to both account acme"),
    ];
    let lines = run("info", 0, Some(&bad));
    let errors = at(&lines, "ERROR");
    assert_eq!(errors.len(), 1, "{lines:#?}");
    let text = message(errors[0]);
    assert!(text.contains("the last good data keeps serving"), "{text}");
    for (line, error) in expected {
        let wanted = format!("routing.yaml:{line}: error: {error}");
        assert!(text.contains(&wanted), "{wanted:?} not logged:\n{text}");
    }
    assert_eq!(
        text.matches(": error: ").count(),
        expected.len(),
        "errors logged besides the expected ones:\n{text}"
    );
    assert_eq!(errors[0]["fields"]["errors"], 11, "{}", errors[0]);
}

#[test]
fn debug_logs_one_line_per_decision() {
    let lines = run("switchboard=debug", 5, None);
    let decisions = lines
        .iter()
        .filter(|l| message(l) == "decision")
        .collect::<Vec<_>>();
    assert_eq!(decisions.len(), 5, "{lines:#?}");
    assert_eq!(decisions[0]["fields"]["rule"], "number_user");
    assert_eq!(decisions[0]["fields"]["status"], 302);
}

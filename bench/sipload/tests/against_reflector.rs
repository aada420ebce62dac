//! End to end, loopback only: the real `sipreflect` binary on port 0, driven by
//! the real `sipload` binary (run over UDP and TCP, closed and open loop; verify
//! with matching and mismatching rows; timeouts; usage errors). Every run is
//! bounded by its own `-d`/`-n` and `--timeout-ms`, and every child is killed
//! after `common::LIMIT` at the latest.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{n, sipload, summary};

const SIPREFLECT: &str = env!("CARGO_BIN_EXE_sipreflect");

/// A running reflector, killed when dropped.
struct Reflector {
    child: Child,
    addr: String,
}

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reflector(transport: &str) -> Reflector {
    let mut child = Command::new(SIPREFLECT)
        .args(["127.0.0.1:0", "-t", transport, "--duration", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sipreflect");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let prefix = format!("listening on {transport} ");
    let addr = line
        .trim()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("got {line:?}"));
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
    Reflector {
        addr: addr.to_string(),
        child,
    }
}

/// Checks what holds for every clean run against the reflector.
fn all_answered(v: &Value) {
    let sent = n(v, "sent");
    assert!(sent > 0, "{v}");
    assert_eq!(n(v, "answered"), sent, "{v}");
    assert_eq!(n(v, "timeouts"), 0, "{v}");
    assert_eq!(n(v, "errors"), 0, "{v}");
    assert_eq!(v["codes"]["302"].as_u64(), Some(sent), "{v}");
    assert_eq!(n(v, "acks"), sent, "every 302 ACKed: {v}");
    for k in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(
            v["latency_us"][k].as_f64().is_some_and(|x| x > 0.0),
            "{k}: {v}"
        );
    }
    assert!(v["latency_us"]["p50"].as_f64() <= v["latency_us"]["max"].as_f64());
    for k in [
        "elapsed_s",
        "rate_sent",
        "rate_answered",
        "cpu_user_s",
        "cpu_sys_s",
    ] {
        assert!(v[k].as_f64().is_some(), "{k}: {v}");
    }
}

#[test]
fn udp_closed_loop() {
    let r = reflector("udp");
    let out = sipload(&["run", &r.addr, "-d", "1", "-w", "50"]);
    assert_eq!(out.status.code(), Some(0));
    let v = summary(&out);
    all_answered(&v);
    assert_eq!(v["mode"], "closed");
    assert_eq!(v["transport"], "udp");
    assert_eq!(n(&v, "window"), 50);
    assert!(v["rate"].is_null());
}

#[test]
fn udp_open_loop_keeps_its_rate() {
    let r = reflector("udp");
    let out = sipload(&["run", &r.addr, "-d", "1", "-r", "2000"]);
    assert_eq!(out.status.code(), Some(0));
    let v = summary(&out);
    all_answered(&v);
    assert_eq!(v["mode"], "open");
    assert_eq!(n(&v, "window"), 10_000);
    let sent = n(&v, "sent");
    assert!(
        (1_800..=2_200).contains(&sent),
        "2000/s for 1 s, sent {sent}"
    );
}

#[test]
fn udp_threads_sockets_and_request_count() {
    let r = reflector("udp");
    let out = sipload(&[
        "run", &r.addr, "-T", "2", "-s", "3", "-w", "40", "-n", "5000", "-d", "20",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = summary(&out);
    all_answered(&v);
    assert_eq!(n(&v, "sent"), 5_000);
    assert_eq!((n(&v, "threads"), n(&v, "sockets")), (2, 3));
}

#[test]
fn tcp_closed_loop_pipelined() {
    let r = reflector("tcp");
    let out = sipload(&[
        "run", &r.addr, "-t", "tcp", "-s", "3", "-w", "60", "-d", "1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = summary(&out);
    all_answered(&v);
    assert_eq!(v["transport"], "tcp");
}

#[test]
fn tcp_open_loop() {
    let r = reflector("tcp");
    let out = sipload(&[
        "run", &r.addr, "-t", "tcp", "-r", "1000", "-d", "1", "-T", "2", "-s", "2",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = summary(&out);
    all_answered(&v);
    let sent = n(&v, "sent");
    assert!((900..=1_100).contains(&sent), "1000/s for 1 s, sent {sent}");
}

#[test]
fn calls_file_rows_are_sent() {
    let r = reflector("udp");
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(
        f,
        "SEQUENTIAL\n# comment\n+4930111;+4989222\n+4930333;+4989444;302"
    )
    .expect("write");
    let path = f.path().to_str().expect("utf-8 path");
    let out = sipload(&["run", &r.addr, "-f", path, "-n", "100", "-w", "10"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(n(&summary(&out), "answered"), 100);
}

fn calls(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn verify_matches_the_reflectors_contact() {
    for transport in ["udp", "tcp"] {
        let r = reflector(transport);
        // Both formats: the anchor's 302:+NUMBER and the repository's 302;NUMBER.
        let f = calls(&format!(
            "SEQUENTIAL\n# rows the reflector answers as expected\n\
             1;2;302:{c}\n3;4;302;{c};127.0.0.1;\n5;6;302\n",
            c = sipload::canned::CONTACT_USER
        ));
        let out = sipload(&[
            "verify",
            &r.addr,
            "-t",
            transport,
            "-f",
            f.path().to_str().expect("path"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("verified 3 rows: 3 match, 0 mismatch"),
            "{text}"
        );
    }
}

#[test]
fn verify_reports_mismatches() {
    let r = reflector("udp");
    let f = calls("1;2;302:+15550000000\n3;4;404\n5;6;302;+4911111\n7;8;480\n");
    let path = f.path().to_str().expect("path");
    let out = sipload(&["verify", &r.addr, "-f", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verified 4 rows: 1 match, 3 mismatch"),
        "{text}"
    );
    assert!(
        text.contains(
            "line 2: dialed 3 caller 4: expected 404, got 302 <sip:+15550000000@127.0.0.1>"
        ),
        "{text}"
    );
    // --limit checks only the first rows.
    let out = sipload(&["verify", &r.addr, "-f", path, "--limit", "1"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified 1 rows: 1 match, 0 mismatch"));
}

#[test]
fn silence_is_timeouts_and_exit_3() {
    // A bound socket nobody reads: the datagrams are accepted and never answered.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = sink.local_addr().expect("addr").to_string();
    let out = sipload(&["run", &addr, "-n", "20", "--timeout-ms", "200"]);
    assert_eq!(out.status.code(), Some(3));
    let v = summary(&out);
    assert_eq!(
        (n(&v, "sent"), n(&v, "answered"), n(&v, "timeouts")),
        (20, 0, 20)
    );
    // verify counts an unanswered row as a mismatch.
    let f = calls("1;2;404\n");
    let out = sipload(&[
        "verify",
        &addr,
        "-f",
        f.path().to_str().expect("path"),
        "--timeout-ms",
        "200",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("got no answer (timeout)"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run", "192.0.2.1:5060"][..],
        &["run", "127.0.0.1:5060", "-t", "sctp"],
        &["run", "127.0.0.1:5060", "-w", "0"],
        &["run", "127.0.0.1:5060", "-r", "-5"],
        &["run", "127.0.0.1:5060", "-T", "4", "-w", "2"],
        &["verify", "127.0.0.1:5060"],
    ] {
        let out = sipload(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    let out = sipload(&["run", "127.0.0.1:5060", "-f", "/nonexistent/calls.csv"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sipreflect_stops_on_sigterm() {
    let mut r = reflector("udp");
    let pid = r.child.id() as libc::pid_t;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = r.child.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

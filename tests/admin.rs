//! The admin endpoint over real HTTP on a running server: `/healthz`,
//! `/readyz`, and `/metrics` counters that move with SIP traffic and with
//! reloads of the routing data.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Server, TcpClient, UdpClient, example_data, invite, request, status};

/// One HTTP/1.1 request; the status code and body.
fn http(admin: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let response = common::http(admin, method, path, "");
    let length: usize = response
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    if method != "HEAD" {
        assert_eq!(response.body.len(), length, "{}", response.head);
    }
    (response.code, response.body)
}

fn metrics(admin: SocketAddr) -> String {
    let (code, body) = http(admin, "GET", "/metrics");
    assert_eq!(code, 200);
    body
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// Waits (bounded) for a metric to reach `at_least`.
fn wait_for(admin: SocketAddr, series: &str, at_least: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(admin);
        if value(&text, series) >= at_least {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} did not reach {at_least}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_and_readiness_answer_and_other_requests_are_refused() {
    let server = Server::start_with(&["--routing", &example_data(), "--admin", "127.0.0.1:0"]);
    let admin = server.admin.expect("the admin address");
    assert_eq!(http(admin, "GET", "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(http(admin, "GET", "/readyz"), (200, "ready\n".to_owned()));
    assert_eq!(http(admin, "HEAD", "/healthz").0, 200);
    assert_eq!(http(admin, "GET", "/metrics?format=text").0, 200);
    assert_eq!(http(admin, "GET", "/admin").0, 404);
    assert_eq!(http(admin, "POST", "/metrics").0, 405);
    // Not HTTP at all: a 400, and the endpoint keeps working.
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(http(admin, "GET", "/healthz").0, 200);
}

#[test]
fn counters_move_with_sip_traffic() {
    let server = Server::start_with(&[
        "--routing",
        &example_data(),
        "--admin",
        "127.0.0.1:0",
        "--trust",
        "127.0.0.1/32",
    ]);
    let admin = server.admin.expect("the admin address");
    let before = metrics(admin);
    assert_eq!(
        value(
            &before,
            r#"switchboard_requests_total{method="INVITE",code="302"}"#
        ),
        0.0
    );
    assert!(
        before.contains(r#"switchboard_build_info{version=""#),
        "{before}"
    );
    assert_eq!(
        value(&before, r#"switchboard_routing_entries{kind="accounts"}"#),
        2.0
    );

    let client = UdpClient::new();
    let port = client.port();
    for i in 0..3 {
        let answer = client.exchange(
            server.udp,
            &invite("+18005550100", "+16505550123", &format!("m{i}"), port),
        );
        assert_eq!(status(&answer), 302);
    }
    // Bob has no phone: a 480 decided by rule 1.
    let answer = client.exchange(
        server.udp,
        &invite("+18005550144", "+12125550100", "m-bob", port),
    );
    assert_eq!(status(&answer), 480);
    let options = request(
        &[
            "OPTIONS sip:switchboard@127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-o;rport",
            "From: <sip:ping@127.0.0.1>;tag=p",
            "To: <sip:switchboard@127.0.0.1>",
            "Call-ID: m-options",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
            "",
        ],
        port,
    );
    assert_eq!(status(&client.exchange(server.udp, &options)), 200);
    client.send(server.udp, b"not SIP at all\r\n\r\n");
    // An untrusted peer (only 127.0.0.1 is trusted): dropped.
    let outsider = UdpClient::bind("127.0.0.2:0");
    outsider.send(
        server.udp,
        &invite("+18005550100", "+16505550123", "m-out", outsider.port()),
    );
    // A TCP connection held open shows in the gauge.
    let _tcp = TcpClient::connect(server.tcp);

    let text = wait_for(
        admin,
        r#"switchboard_dropped_total{reason="untrusted"}"#,
        1.0,
    );
    let text = if value(&text, r#"switchboard_dropped_total{reason="malformed"}"#) >= 1.0 {
        text
    } else {
        wait_for(
            admin,
            r#"switchboard_dropped_total{reason="malformed"}"#,
            1.0,
        )
    };
    // A worker records a latency after its answer is sent, so perhaps
    // after the client read it: wait for those too (counters only grow).
    let text = if value(&text, "switchboard_response_seconds_count") >= 5.0 {
        text
    } else {
        wait_for(admin, "switchboard_response_seconds_count", 5.0)
    };
    for (series, expected) in [
        (
            r#"switchboard_requests_total{method="INVITE",code="302"}"#,
            3.0,
        ),
        (
            r#"switchboard_requests_total{method="INVITE",code="480"}"#,
            1.0,
        ),
        (
            r#"switchboard_requests_total{method="OPTIONS",code="200"}"#,
            1.0,
        ),
        (
            r#"switchboard_decisions_total{rule="number_user",code="302"}"#,
            3.0,
        ),
        (
            r#"switchboard_decisions_total{rule="number_user",code="480"}"#,
            1.0,
        ),
        (r#"switchboard_dropped_total{reason="untrusted"}"#, 1.0),
        (r#"switchboard_dropped_total{reason="malformed"}"#, 1.0),
        ("switchboard_response_seconds_count", 5.0),
    ] {
        assert_eq!(value(&text, series), expected, "{series}\n{text}");
    }
    assert!(value(&text, "switchboard_response_seconds_sum") > 0.0);
    let text = wait_for(admin, "switchboard_tcp_connections", 1.0);
    assert_eq!(value(&text, "switchboard_tcp_connections"), 1.0);
}

#[test]
fn reloads_show_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("routing.yaml");
    let base = std::fs::read_to_string(example_data()).unwrap();
    std::fs::write(&data, &base).unwrap();
    let settings = dir.path().join("switchboard.yaml");
    std::fs::write(&settings, "reload:\n  debounce_ms: 20\n").unwrap();
    let server = Server::start_with(&[
        "--routing",
        &data.display().to_string(),
        "--config",
        &settings.display().to_string(),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = server.admin.expect("the admin address");
    let hash = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(r#"switchboard_routing_data_info{hash=""#))
            .map(|rest| rest[..16].to_owned())
            .expect("the data hash")
    };
    let first = metrics(admin);

    // One more account: a good reload, a new hash, new counts.
    let more = format!(
        "{base}\n  - id: extra\n    numbers:\n      - number: \"+18005550177\"\n        forward_to: \"+14155550177\"\n"
    );
    let next = dir.path().join(".next");
    std::fs::write(&next, &more).unwrap();
    let good_written = Instant::now();
    std::fs::rename(&next, &data).unwrap();
    let text = wait_for(admin, r#"switchboard_reloads_total{result="ok"}"#, 1.0);
    let good_served = Instant::now();
    assert_ne!(hash(&first), hash(&text));
    assert_eq!(
        value(&text, r#"switchboard_routing_entries{kind="accounts"}"#),
        3.0
    );

    // Broken data: counted as failed, the last good data still counted.
    // (After a pause, so that the age below tells the good reload's time
    // from the failed one's.)
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&next, "accounts: [\n").unwrap();
    std::fs::rename(&next, &data).unwrap();
    let text = wait_for(admin, r#"switchboard_reloads_total{result="failed"}"#, 1.0);
    assert_eq!(
        value(&text, r#"switchboard_routing_entries{kind="accounts"}"#),
        3.0
    );
    // The data's age is that of the last good data: loaded between the
    // write and the scrape that saw it, not reset by the failed reload.
    let at_least = good_served.elapsed().as_secs_f64();
    let text = metrics(admin);
    let at_most = good_written.elapsed().as_secs_f64();
    let age = common::metric_value(&text, "switchboard_routing_data_age_seconds")
        .unwrap_or_else(|| panic!("no switchboard_routing_data_age_seconds\n{text}"));
    // 50 ms for the wall clock (the server's) against the monotonic one.
    assert!(
        age.is_finite() && at_least - 0.05 <= age && age <= at_most + 0.05,
        "data age {age} s, expected between {at_least} and {at_most} s\n{text}"
    );
}

#[test]
fn tcp_requests_are_counted_like_udp_ones() {
    let server = Server::start_with(&["--routing", &example_data(), "--admin", "127.0.0.1:0"]);
    let admin = server.admin.expect("the admin address");
    let mut tcp = TcpClient::connect(server.tcp);
    for i in 0..2 {
        let message = String::from_utf8(invite(
            "+18005550100",
            "+16505550123",
            &format!("tcp-{i}"),
            tcp.port(),
        ))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        tcp.send(message.as_bytes());
        assert_eq!(status(&tcp.read_responses(1)[0]), 302);
    }
    // The latency is recorded once an answer is written, so possibly after
    // the client has read it: wait for it; the counters come before.
    let text = wait_for(admin, "switchboard_response_seconds_count", 2.0);
    assert_eq!(
        value(
            &text,
            r#"switchboard_requests_total{method="INVITE",code="302"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"switchboard_decisions_total{rule="number_user",code="302"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "switchboard_response_seconds_count"), 2.0);
}

/// Datagrams the kernel drops because the server is not reading (stopped
/// with SIGSTOP here, as a host that does not run it would) show in
/// `/metrics` and in a warning: requests no other counter can see.
#[test]
fn kernel_receive_drops_show_in_the_metrics_and_the_log() {
    let log_dir = tempfile::tempdir().expect("a temporary directory");
    let log = log_dir.path().join("server.log");
    let data = example_data();
    let server = Server::start_logging(
        &[
            "--routing",
            &data,
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "1",
        ],
        &log,
    );
    let admin = server.admin.expect("admin address");
    let before = metrics(admin);
    assert!(
        before.contains("switchboard_udp_receive_drops_total 0"),
        "{before}"
    );
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &server.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    // Far more than a 4 MiB buffer holds: each takes a kernel buffer of
    // about 1 KiB whatever its size. Bounded: 20,000 sends on loopback.
    let client = UdpClient::new();
    let message = invite("+18005550100", "+16505550123", "drops", client.port());
    for _ in 0..20_000 {
        client.send(server.udp, &message);
    }
    signal("-CONT");
    let text = wait_for(admin, "switchboard_udp_receive_drops_total", 1.0);
    let dropped = value(&text, "switchboard_udp_receive_drops_total");
    assert!(dropped < 20_000.0, "{dropped}");
    // The warning comes within the 5 s between looks.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let written = std::fs::read_to_string(&log).unwrap_or_default();
        if written.contains("the kernel dropped") {
            assert!(written.contains("SIP datagrams"), "{written}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no warning in the log:\n{written}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

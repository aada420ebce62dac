//! Proxy mode without a next hop locates each target's server over DNS
//! (RFC 3263 §4; docs/sip.md, "Where legs go"): a real DNS server
//! (dnsmasq, on a loopback port named by `proxy.dns_servers`) serves the
//! NAPTR, SRV and A records of `carrier.test`, and the real binary follows
//! them to the phone, a socket in the test. When the first server an SRV
//! lookup gives refuses the connection, the leg goes to the next one
//! (§4.3). dnsmasq is required (`apt-get install -y dnsmasq-base`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, example_data, free_udp_port, http_get, metric_value, require};

const WAIT: Duration = Duration::from_secs(10);

/// dnsmasq on a loopback port with these records; killed when dropped.
struct Dns {
    child: Child,
    port: u16,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dns {
    fn start(records: &[String]) -> Dns {
        require("dnsmasq", "dnsmasq-base");
        let port = free_udp_port();
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
            ])
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        let dns = Dns { child, port };
        // Listening once a query gets an answer.
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01";
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 512];
        loop {
            let _ = probe.send_to(query, ("127.0.0.1", port));
            if probe.recv(&mut buf).is_ok() {
                return dns;
            }
            assert!(Instant::now() < deadline, "dnsmasq does not answer");
        }
    }
}

fn start(dir: &Path, dns: &Dns, contact_template: &str) -> Server {
    start_with(dir, dns, contact_template, "")
}

/// As `start`, with more `proxy:` settings (indented lines).
fn start_with(dir: &Path, dns: &Dns, contact_template: &str, proxy: &str) -> Server {
    let settings = dir.join("switchboard.yaml");
    std::fs::write(
        &settings,
        format!(
            "proxy:\n  dns_servers: [\"127.0.0.1:{}\"]\n{proxy}",
            dns.port
        ),
    )
    .expect("settings");
    Server::start_with(&[
        "--admin",
        "127.0.0.1:0",
        "--routing",
        &example_data(),
        "--config",
        settings.to_str().expect("UTF-8"),
        "--mode",
        "proxy",
        "--contact-template",
        contact_template,
    ])
}

fn invite(caller: &UdpSocket, call_id: &str) -> String {
    let port = caller.local_addr().expect("address").port();
    format!(
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller\r\n\
         To: <sip:+18005550100@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn answer(request: &str) -> String {
    common::response_to(
        request,
        "200 OK",
        Some("phone"),
        "Contact: <sip:phone@127.0.0.1>\r\n",
    )
}

fn socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    socket
}

/// The next datagram at `socket` starting with `start`, and its sender.
fn expect(socket: &UdpSocket, start: &str) -> (String, SocketAddr) {
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65_535];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(start) {
                return (text, from);
            }
            seen.push(text.lines().next().unwrap_or_default().to_owned());
        }
    }
    panic!("no {start:?}; saw {seen:?}");
}

/// `carrier.test` has a NAPTR for SIP over UDP, its SRV names
/// `sbc1.carrier.test` at the phone's port, and that name's A record is
/// loopback: the target `sip:...@carrier.test` reaches the phone.
#[test]
fn a_target_named_by_host_is_located_through_naptr_srv_and_a() {
    let phone = socket();
    let port = phone.local_addr().expect("address").port();
    let dns = Dns::start(&[
        "--host-record=sbc1.carrier.test,127.0.0.1".to_owned(),
        format!("--srv-host=_sip._udp.carrier.test,sbc1.carrier.test,{port},10,50"),
        "--naptr-record=carrier.test,10,10,S,SIP+D2U,,_sip._udp.carrier.test".to_owned(),
    ]);
    let dir = tempfile::tempdir().expect("a directory");
    let server = start(dir.path(), &dns, "sip:{number}@carrier.test;user=phone");
    let caller = socket();
    for call in ["dns-1", "dns-2"] {
        caller
            .send_to(invite(&caller, call).as_bytes(), server.udp)
            .expect("send");
        // 100 Trying at once, while DNS is asked.
        expect(&caller, "SIP/2.0 100");
        let (relayed, from) = expect(&phone, "INVITE ");
        assert_eq!(from, server.udp);
        assert!(
            relayed.starts_with("INVITE sip:+14155550101@carrier.test;user=phone SIP/2.0\r\n"),
            "{relayed}"
        );
        phone
            .send_to(answer(&relayed).as_bytes(), server.udp)
            .expect("send");
        let (ok, _) = expect(&caller, "SIP/2.0 200");
        assert!(ok.contains(&format!("Call-ID: {call}")), "{ok}");
    }
}

/// Over TCP, the SRV records give two servers: the first (lower
/// priority value) refuses connections, so the leg goes to the second
/// (§4.3), which answers.
#[test]
fn a_refusing_server_fails_over_to_the_next_srv_target() {
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("address").port();
    drop(dead);
    let live = TcpListener::bind("127.0.0.1:0").expect("bind");
    let live_port = live.local_addr().expect("address").port();
    let dns = Dns::start(&[
        "--host-record=dead.carrier.test,127.0.0.1".to_owned(),
        "--host-record=live.carrier.test,127.0.0.1".to_owned(),
        format!("--srv-host=_sip._tcp.carrier.test,dead.carrier.test,{dead_port},10,50"),
        format!("--srv-host=_sip._tcp.carrier.test,live.carrier.test,{live_port},20,50"),
    ]);
    let phone = thread::spawn(move || -> Option<String> {
        let (mut stream, _) = live.accept().ok()?;
        stream.set_read_timeout(Some(WAIT)).ok()?;
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            received.extend_from_slice(&chunk[..n]);
        }
        let invite = String::from_utf8_lossy(&received).into_owned();
        stream.write_all(answer(&invite).as_bytes()).ok()?;
        // Held open until the caller has the answer.
        thread::sleep(Duration::from_secs(1));
        Some(invite)
    });
    let dir = tempfile::tempdir().expect("a directory");
    let server = start(dir.path(), &dns, "sip:{number}@carrier.test;transport=tcp");
    let caller = socket();
    caller
        .send_to(invite(&caller, "dns-failover").as_bytes(), server.udp)
        .expect("send");
    let (ok, _) = expect(&caller, "SIP/2.0 200");
    assert!(ok.contains("tag=phone"), "{ok}");
    let invite = phone
        .join()
        .expect("the phone")
        .expect("an INVITE over TCP");
    assert!(invite.contains("Via: SIP/2.0/TCP "), "{invite}");
}

/// Over UDP a dead server does not refuse: it is silent. After
/// `proxy.server_silence_ms` without a word (not even 100 Trying), the
/// same INVITE goes to the target's next SRV server, which answers (RFC
/// 3263 §4.3); the silent one got only the first try's retransmissions.
#[test]
fn a_silent_server_gives_way_to_the_next_srv_target() {
    let silent = socket();
    let silent_port = silent.local_addr().expect("address").port();
    let live = socket();
    let live_port = live.local_addr().expect("address").port();
    let dns = Dns::start(&[
        "--host-record=silent.carrier.test,127.0.0.1".to_owned(),
        "--host-record=live.carrier.test,127.0.0.1".to_owned(),
        format!("--srv-host=_sip._udp.carrier.test,silent.carrier.test,{silent_port},10,50"),
        format!("--srv-host=_sip._udp.carrier.test,live.carrier.test,{live_port},20,50"),
    ]);
    let dir = tempfile::tempdir().expect("a directory");
    let server = start_with(
        dir.path(),
        &dns,
        "sip:{number}@carrier.test;transport=udp",
        "  server_silence_ms: 800\n  t1_ms: 100\n",
    );
    let caller = socket();
    let started = Instant::now();
    caller
        .send_to(invite(&caller, "dns-silent").as_bytes(), server.udp)
        .expect("send");
    let (first, _) = expect(&silent, "INVITE ");
    let (invite, proxy) = expect(&live, "INVITE ");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "the next server was tried after {waited:?}, before the silence was over"
    );
    // The same request, the same branch: only the server changed.
    assert_eq!(first, invite);
    live.send_to(answer(&invite).as_bytes(), proxy)
        .expect("send");
    let (ok, _) = expect(&caller, "SIP/2.0 200");
    assert!(ok.contains("tag=phone"), "{ok}");
    // The silent server heard nothing more once the next one took over.
    let mut buf = [0u8; 4096];
    let mut retransmissions = 0;
    while silent.recv(&mut buf).is_ok() {
        retransmissions += 1;
        assert!(
            retransmissions < 10,
            "the silent server is still being sent to"
        );
    }
    let (_, metrics) = http_get(server.admin.expect("admin"), "/metrics");
    assert_eq!(
        metric_value(&metrics, "switchboard_proxy_server_failovers_total"),
        Some(1.0),
        "{metrics}"
    );
}

/// A DNS server that never answers: the INVITE waits (100 Trying at
/// once), the lookups time out, and the target fails as a transport error
/// (RFC 3261 §16.9): the caller gets 500 instead of silence.
#[test]
fn a_silent_dns_server_ends_the_call_with_500() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dns = Dns {
        child: Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("a stand-in process"),
        port: silent.local_addr().expect("address").port(),
    };
    let dir = tempfile::tempdir().expect("a directory");
    let server = start(dir.path(), &dns, "sip:{number}@carrier.test;user=phone");
    let caller = socket();
    caller
        .send_to(invite(&caller, "dns-silent").as_bytes(), server.udp)
        .expect("send");
    expect(&caller, "SIP/2.0 100");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 65_535];
    loop {
        assert!(Instant::now() < deadline, "no final answer");
        if let Ok(n) = caller.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 100") {
                continue;
            }
            assert!(text.starts_with("SIP/2.0 500 "), "{text}");
            break;
        }
    }
    drop(silent);
}

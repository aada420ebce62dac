//! Proxy mode against the real binary on loopback (docs/sip.md, "Proxy
//! mode"): a caller and a next hop played by UDP sockets in the test,
//! byte by byte, so that each rule of RFC 3261 §16 can be driven into its
//! corner. tests/proxy_sipp.rs does the same calls with SIPp.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Server, UdpClient, example_data, header, status};

/// A SIP peer on a UDP socket of its own: the caller or the next hop.
struct Peer {
    socket: UdpSocket,
}

impl Peer {
    fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Peer { socket }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("address")
    }

    fn send(&self, to: SocketAddr, text: &str) {
        self.socket.send_to(text.as_bytes(), to).expect("send");
    }

    /// The next message within `wait` whose first line starts with `start`,
    /// skipping others (retransmissions, 100 Trying); with its sender.
    fn expect(&self, start: &str, wait: Duration) -> (String, SocketAddr) {
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 65_535];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.starts_with(start) {
                    return (text, from);
                }
                seen.push(text.lines().next().unwrap_or_default().to_owned());
            }
        }
        panic!("no {start:?} within {wait:?}; saw {seen:?}");
    }

    /// Nothing starting with `start` arrives within `wait`.
    fn expect_none(&self, start: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65_535];
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(!text.starts_with(start), "unexpected:\n{text}");
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// A server in proxy mode relaying to `next_hop`, each leg ringing `ring`
/// seconds.
fn proxy(next_hop: SocketAddr, ring: u32) -> Server {
    Server::start_with(&[
        "--routing",
        &example_data(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:{next_hop};transport=udp"),
        "--ring-seconds",
        &ring.to_string(),
        "--contact-template",
        "sip:{number}@carrier.example;user=phone",
        "--diversion",
        "header",
    ])
}

fn invite(dialed: &str, caller: &Peer, call_id: &str) -> String {
    invite_over("UDP", caller.addr().port(), dialed, call_id)
}

/// The INVITE of a caller on `transport` (`UDP`, `TCP`) at `port` of
/// 127.0.0.1, naming that in its Via and Contact.
fn invite_over(transport: &str, port: u16, dialed: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:{dialed}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller-{call_id}\r\n\
         To: <sip:{dialed}@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+12125550199@127.0.0.1:{port}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 4\r\n\r\nv=0\n"
    )
}

/// A response to `request` (as the next hop received it): its Via lines,
/// From, To (with `to_tag`), Call-ID and CSeq copied.
fn answer(request: &str, code: u16, reason: &str, to_tag: Option<&str>) -> String {
    let contact = if code == 200 {
        "Contact: <sip:phone@127.0.0.1:5999>\r\n"
    } else {
        ""
    };
    common::response_to(request, &format!("{code} {reason}"), to_tag, contact)
}

fn request_uri(request: &str) -> &str {
    request.split(' ').nth(1).unwrap_or_default()
}

#[test]
fn an_answered_call_is_relayed_both_ways() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let caller = Peer::new();
    caller.send(server.udp, &invite("+18005550100", &caller, "answered"));
    let (trying, _) = caller.expect("SIP/2.0 100", WAIT);
    assert!(trying.contains("Call-ID: answered"), "{trying}");
    let (relayed, from) = phone.expect("INVITE ", WAIT);
    assert_eq!(from, server.udp, "relayed from the listening socket");
    assert_eq!(
        request_uri(&relayed),
        "sip:+14155550101@carrier.example;user=phone"
    );
    assert_eq!(header(&relayed, "Max-Forwards"), Some("69"));
    let vias: Vec<&str> = relayed.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2, "{relayed}");
    assert!(
        vias[0].contains(&format!("SIP/2.0/UDP {}", server.udp)),
        "{relayed}"
    );
    assert!(vias[0].contains(";branch=z9hG4bK"), "{relayed}");
    assert!(relayed.ends_with("v=0\n"), "the body is relayed: {relayed}");
    assert!(
        header(&relayed, "Diversion").is_some_and(|d| d.contains("reason=follow-me")),
        "{relayed}"
    );
    phone.send(server.udp, &answer(&relayed, 180, "Ringing", Some("phone")));
    let (ringing, _) = caller.expect("SIP/2.0 180", WAIT);
    assert_eq!(
        ringing.lines().filter(|l| l.starts_with("Via:")).count(),
        1,
        "our Via is removed: {ringing}"
    );
    phone.send(server.udp, &answer(&relayed, 200, "OK", Some("phone")));
    let (ok, _) = caller.expect("SIP/2.0 200", WAIT);
    assert!(ok.contains("tag=phone"), "{ok}");
    // The phone retransmits its 200 until the ACK: every copy goes on.
    phone.send(server.udp, &answer(&relayed, 200, "OK", Some("phone")));
    caller.expect("SIP/2.0 200", WAIT);
    // The caller's ACK for the 2xx reaches the phone (no Record-Route: it
    // is sent here only because this caller knows no other way).
    let ack = format!(
        "ACK sip:phone@127.0.0.1:5999 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK-ack-answered;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller-answered\r\n\
         To: <sip:+18005550100@127.0.0.1>;tag=phone\r\n\
         Call-ID: answered\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        caller.addr().port()
    );
    caller.send(server.udp, &ack);
    let (acked, _) = phone.expect("ACK ", WAIT);
    assert!(acked.contains("Call-ID: answered"), "{acked}");
}

#[test]
fn no_answer_cancels_after_the_ring_time_and_forwards_with_diversion() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 1);
    let caller = Peer::new();
    let started = Instant::now();
    // The support line: Alice's phone, then +14155550188 when she does not answer.
    caller.send(server.udp, &invite("+18005550188", &caller, "no-answer"));
    let (first, _) = phone.expect("INVITE ", WAIT);
    assert_eq!(
        request_uri(&first),
        "sip:+14155550101@carrier.example;user=phone"
    );
    phone.send(server.udp, &answer(&first, 180, "Ringing", Some("alice")));
    caller.expect("SIP/2.0 180", WAIT);
    let (cancel, _) = phone.expect("CANCEL ", WAIT);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the ring time"
    );
    let branch = |m: &str| header(m, "Via").map(str::to_owned);
    assert_eq!(
        branch(&cancel),
        branch(&first),
        "the CANCEL matches its INVITE (§9.1)"
    );
    assert_eq!(request_uri(&cancel), request_uri(&first));
    phone.send(server.udp, &answer(&cancel, 200, "OK", Some("alice")));
    phone.send(
        server.udp,
        &answer(&first, 487, "Request Terminated", Some("alice")),
    );
    // The next leg, on a new branch, naming why.
    let (second, _) = phone.expect("INVITE ", WAIT);
    assert_eq!(
        request_uri(&second),
        "sip:+14155550188@carrier.example;user=phone"
    );
    assert_ne!(branch(&second), branch(&first));
    let diversion = header(&second, "Diversion").unwrap_or_default();
    assert!(diversion.contains("+18005550188"), "{second}");
    assert!(diversion.contains("reason=no-answer"), "{second}");
    // The 487 was acknowledged hop by hop (§17.1.1.3).
    phone.send(server.udp, &answer(&second, 200, "OK", Some("queue")));
    let (ok, _) = caller.expect("SIP/2.0 200", WAIT);
    assert!(ok.contains("tag=queue"), "{ok}");
}

#[test]
fn busy_fails_over_at_once_and_the_caller_cancel_stops_everything() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let caller = Peer::new();
    caller.send(server.udp, &invite("+18005550188", &caller, "busy"));
    let (first, _) = phone.expect("INVITE ", WAIT);
    phone.send(server.udp, &answer(&first, 486, "Busy Here", Some("alice")));
    let (ack, _) = phone.expect("ACK ", WAIT);
    assert!(ack.contains("CSeq: 1 ACK"), "{ack}");
    let (second, _) = phone.expect("INVITE ", WAIT);
    assert!(
        header(&second, "Diversion").is_some_and(|d| d.contains("reason=user-busy")),
        "{second}"
    );
    phone.send(server.udp, &answer(&second, 180, "Ringing", Some("queue")));
    caller.expect("SIP/2.0 180", WAIT);
    // The caller hangs up.
    let cancel = invite("+18005550188", &caller, "busy")
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace("Content-Type: application/sdp\r\n", "")
        .replace(
            "Content-Length: 4\r\n\r\nv=0\n",
            "Content-Length: 0\r\n\r\n",
        );
    caller.send(server.udp, &cancel);
    let (cancel_ok, _) = caller.expect("SIP/2.0 200", WAIT);
    assert!(cancel_ok.contains("CSeq: 1 CANCEL"), "{cancel_ok}");
    let (leg_cancel, _) = phone.expect("CANCEL ", WAIT);
    phone.send(server.udp, &answer(&leg_cancel, 200, "OK", Some("queue")));
    phone.send(
        server.udp,
        &answer(&second, 487, "Request Terminated", Some("queue")),
    );
    let (terminated, _) = caller.expect("SIP/2.0 487", WAIT);
    assert!(terminated.contains("CSeq: 1 INVITE"), "{terminated}");
    // No third leg.
    phone.expect_none("INVITE ", Duration::from_millis(500));
}

#[test]
fn a_cancel_for_no_call_gets_481_and_unknown_numbers_are_not_relayed() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let client = UdpClient::new();
    let port = client.port();
    let response = client.exchange(
        server.udp,
        &common::invite("+19995550100", "+12125550199", "unknown", port),
    );
    assert_eq!(status(&response), 404, "{response}");
    let cancel = common::request(
        &[
            "CANCEL sip:+18005550100@127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-nothing;rport",
            "Max-Forwards: 70",
            "From: <sip:+12125550199@127.0.0.1>;tag=x",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: nothing",
            "CSeq: 1 CANCEL",
            "Content-Length: 0",
            "",
        ],
        port,
    );
    let response = client.exchange(server.udp, &cancel);
    assert_eq!(status(&response), 481, "{response}");
    phone.expect_none("INVITE ", Duration::from_millis(300));
}

#[test]
fn a_caller_on_tcp_gets_every_answer_on_its_connection() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let mut caller = common::TcpClient::connect(server.tcp);
    let port = caller.port();
    let invite = invite_over("TCP", port, "+18005550100", "over-tcp");
    caller.send(invite.as_bytes());
    let (relayed, _) = phone.expect("INVITE ", WAIT);
    let vias: Vec<&str> = relayed.lines().filter(|l| l.starts_with("Via:")).collect();
    assert!(
        vias[0].starts_with("Via: SIP/2.0/UDP "),
        "the leg is UDP: {relayed}"
    );
    assert!(vias[1].starts_with("Via: SIP/2.0/TCP "), "{relayed}");
    phone.send(server.udp, &answer(&relayed, 180, "Ringing", Some("phone")));
    phone.send(server.udp, &answer(&relayed, 200, "OK", Some("phone")));
    let answers = caller.read_responses(3);
    let codes: Vec<u16> = answers.iter().map(|a| status(a)).collect();
    assert_eq!(codes, [100, 180, 200], "{answers:?}");
    assert!(answers[2].contains("tag=phone"), "{}", answers[2]);
}

#[test]
fn the_in_flight_gauge_returns_to_zero() {
    let phone = Peer::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = dir.path().join("switchboard.yaml");
    // A short T1: the call ends 64×T1 after its final answer (Timer L).
    std::fs::write(&settings, "proxy:\n  t1_ms: 20\n").expect("settings");
    let server = Server::start_with(&[
        "--config",
        &settings.display().to_string(),
        "--routing",
        &example_data(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:{}", phone.addr()),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = server.admin.expect("admin address");
    let caller = Peer::new();
    for n in 0..5 {
        let call_id = format!("gauge-{n}");
        caller.send(server.udp, &invite("+18005550100", &caller, &call_id));
        let (relayed, _) = phone.expect("INVITE ", WAIT);
        let code = if n % 2 == 0 { 200 } else { 486 };
        phone.send(server.udp, &answer(&relayed, code, "Done", Some("phone")));
        caller.expect(&format!("SIP/2.0 {code}"), WAIT);
    }
    let scrape = || common::http_get(admin, "/metrics").1;
    // A leg that failed keeps its client transaction for Timer D, 32 s
    // over UDP whatever T1 is (RFC 3261 §17.1.1.2), to absorb the next
    // hop's retransmitted final answers.
    let deadline = Instant::now() + Duration::from_secs(45);
    let in_flight = loop {
        let value = common::metric_value(&scrape(), "switchboard_proxy_calls_in_flight");
        if value == Some(0.0) || Instant::now() > deadline {
            break value;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(in_flight, Some(0.0), "{}", scrape());
    let metrics = scrape();
    assert_eq!(
        common::metric_value(
            &metrics,
            "switchboard_proxy_legs_total{outcome=\"answered\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        common::metric_value(&metrics, "switchboard_proxy_legs_total{outcome=\"busy\"}"),
        Some(2.0),
        "{metrics}"
    );
}

#[test]
fn require_is_relayed_and_proxy_require_refused() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let caller = Peer::new();
    // Require is the phone's business (RFC 3261 §16.3): relayed as is.
    let with_require = invite("+18005550100", &caller, "require").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRequire: 100rel\r\n",
    );
    caller.send(server.udp, &with_require);
    let (relayed, _) = phone.expect("INVITE ", WAIT);
    assert_eq!(header(&relayed, "Require"), Some("100rel"), "{relayed}");
    // Proxy-Require names what the proxy must support: nothing here.
    let with_proxy_require = invite("+18005550100", &caller, "proxy-require").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nProxy-Require: sec-agree, foo\r\n",
    );
    caller.send(server.udp, &with_proxy_require);
    let (refused, _) = caller.expect("SIP/2.0 420", WAIT);
    assert_eq!(
        header(&refused, "Unsupported"),
        Some("sec-agree, foo"),
        "{refused}"
    );
    phone.expect_none("INVITE ", Duration::from_millis(300));
}

#[test]
fn hops_are_counted_and_a_loop_back_here_is_refused() {
    let phone = Peer::new();
    let server = proxy(phone.addr(), 20);
    let caller = Peer::new();
    let last_hop =
        invite("+18005550100", &caller, "hops").replace("Max-Forwards: 70", "Max-Forwards: 0");
    caller.send(server.udp, &last_hop);
    caller.expect("SIP/2.0 483", WAIT);
    // A carrier that sends the relayed INVITE back to the number dialed,
    // as a misconfigured route would: our own Via is in it, and it asks
    // for the same call again (§16.3 step 4; RFC 5393). A request that
    // comes back for another Request-URI is a spiral, routed afresh.
    caller.send(server.udp, &invite("+18005550100", &caller, "loop"));
    let (relayed, _) = phone.expect("INVITE ", WAIT);
    let back = relayed
        .replacen(
            "INVITE sip:+14155550101@carrier.example;user=phone",
            "INVITE sip:+18005550100@127.0.0.1",
            1,
        )
        .replacen(
            "Via: ",
            &format!(
                "Via: SIP/2.0/UDP {};branch=z9hG4bK-back;rport\r\nVia: ",
                phone.addr()
            ),
            1,
        );
    phone.send(server.udp, &back);
    let (looped, _) = phone.expect("SIP/2.0 482", WAIT);
    assert!(looped.contains("Call-ID: loop"), "{looped}");
}

#[test]
fn a_number_rings_for_its_own_ring_seconds() {
    let phone = Peer::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let routing = dir.path().join("routing.yaml");
    std::fs::write(
        &routing,
        "accounts:
  - id: quick
    ring_seconds: 30
    on_no_answer: forward
    users:
      - id: alice
        phone: \"+14155550101\"
        numbers: [\"+18005550188\"]
    numbers:
      - number: \"+18005550188\"
        forward_to: \"+14155550188\"
        ring_seconds: 1
",
    )
    .expect("routing data");
    let server = Server::start_with(&[
        "--routing",
        &routing.display().to_string(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:{}", phone.addr()),
        "--ring-seconds",
        "60",
    ]);
    let caller = Peer::new();
    let started = Instant::now();
    caller.send(server.udp, &invite("+18005550188", &caller, "own-ring"));
    let (first, _) = phone.expect("INVITE ", WAIT);
    phone.send(server.udp, &answer(&first, 180, "Ringing", Some("alice")));
    // The number's 1 s, not the account's 30 nor the server's 60.
    let (cancel, _) = phone.expect("CANCEL ", WAIT);
    assert!(started.elapsed() < Duration::from_secs(5), "{cancel}");
    phone.send(server.udp, &answer(&cancel, 200, "OK", Some("alice")));
    phone.send(
        server.udp,
        &answer(&first, 487, "Request Terminated", Some("alice")),
    );
    let (second, _) = phone.expect("INVITE ", WAIT);
    assert!(
        request_uri(&second).starts_with("sip:+14155550188@"),
        "{second}"
    );
}

/// A server in proxy mode with `--record-route`, relaying to `next_hop`.
fn record_routing(next_hop: SocketAddr) -> Server {
    Server::start_with(&[
        "--routing",
        &example_data(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:{next_hop};transport=udp"),
        "--record-route",
        "--contact-template",
        "sip:{number}@carrier.example;user=phone",
    ])
}

/// An in-dialog request of the call `call_id` from `invite` (the caller's
/// side, `from_caller`) or from the phone's side, with `route` as its
/// Route header (none when empty).
fn in_dialog(
    method: &str,
    uri: &str,
    from: &Peer,
    call_id: &str,
    from_caller: bool,
    route: &str,
    cseq: u32,
) -> String {
    let port = from.addr().port();
    let (from_tag, to_tag) = if from_caller {
        (format!("caller-{call_id}"), "phone".to_owned())
    } else {
        ("phone".to_owned(), format!("caller-{call_id}"))
    };
    let route = if route.is_empty() {
        String::new()
    } else {
        format!("Route: {route}\r\n")
    };
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{method}-{call_id}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         {route}\
         From: <sip:a@127.0.0.1>;tag={from_tag}\r\n\
         To: <sip:b@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sets up an answered call through `server`; the Record-Route the phone
/// saw (and copied into its 200).
fn answered_call(server: &Server, caller: &Peer, phone: &Peer, call_id: &str) -> String {
    caller.send(server.udp, &invite("+18005550100", caller, call_id));
    let (relayed, _) = phone.expect("INVITE ", WAIT);
    let record_route = header(&relayed, "Record-Route")
        .expect("a Record-Route on the relayed INVITE")
        .to_owned();
    phone.send(server.udp, &answer(&relayed, 200, "OK", Some("phone")));
    let (ok, _) = caller.expect("SIP/2.0 200", WAIT);
    assert_eq!(
        header(&ok, "Record-Route"),
        Some(record_route.as_str()),
        "the caller learns the route set: {ok}"
    );
    record_route
}

/// With `record_route`, the dialog's ACK and BYE pass through switchboard
/// both ways (§16.6 step 4, §16.12): our Route value is removed, our Via
/// goes on top, and the answers come back by Via.
#[test]
fn record_route_puts_ack_and_bye_through_switchboard_both_ways() {
    let phone = Peer::new();
    let server = record_routing(phone.addr());
    let caller = Peer::new();
    let route = answered_call(&server, &caller, &phone, "rr-1");
    assert!(
        route.starts_with(&format!("<sip:{};sbd=", server.udp)) && route.ends_with(";lr>"),
        "{route}"
    );
    let via_ours = format!("Via: SIP/2.0/UDP {};branch=z9hG4bK", server.udp);

    // The caller's ACK and BYE: downstream, through the next hop.
    let phone_uri = "sip:phone@127.0.0.1:5999";
    caller.send(
        server.udp,
        &in_dialog("ACK", phone_uri, &caller, "rr-1", true, &route, 1),
    );
    let (ack, from) = phone.expect("ACK ", WAIT);
    assert_eq!(from, server.udp);
    assert!(ack.contains(&via_ours), "{ack}");
    assert!(!ack.contains("Route:"), "our Route value is removed: {ack}");
    assert_eq!(header(&ack, "Max-Forwards"), Some("69"));
    caller.send(
        server.udp,
        &in_dialog("BYE", phone_uri, &caller, "rr-1", true, &route, 2),
    );
    let (bye, _) = phone.expect("BYE ", WAIT);
    assert!(
        bye.starts_with("BYE sip:phone@127.0.0.1:5999 SIP/2.0\r\n"),
        "{bye}"
    );
    assert!(bye.contains(&via_ours), "{bye}");
    phone.send(server.udp, &answer(&bye, 200, "OK", None));
    let (bye_ok, _) = caller.expect("SIP/2.0 200", WAIT);
    assert!(bye_ok.contains("CSeq: 2 BYE"), "{bye_ok}");
    assert_eq!(
        bye_ok.lines().filter(|l| l.starts_with("Via:")).count(),
        1,
        "our Via is removed: {bye_ok}"
    );

    // Another call, hung up by the phone: upstream, to the caller's
    // Contact (the Request-URI), and its 481 comes back to the phone.
    let route = answered_call(&server, &caller, &phone, "rr-2");
    let caller_uri = format!("sip:+12125550199@127.0.0.1:{}", caller.addr().port());
    phone.send(
        server.udp,
        &in_dialog("BYE", &caller_uri, &phone, "rr-2", false, &route, 1),
    );
    let (bye, _) = caller.expect("BYE ", WAIT);
    assert!(bye.contains(&via_ours), "{bye}");
    assert!(bye.contains("Call-ID: rr-2"), "{bye}");
    caller.send(
        server.udp,
        &answer(&bye, 481, "Call/Transaction Does Not Exist", None),
    );
    let (gone, _) = phone.expect("SIP/2.0 481", WAIT);
    assert!(gone.contains("CSeq: 1 BYE"), "{gone}");
}

/// A caller on TCP whose BYE comes through our Record-Route gets its
/// answer on its own connection (§18.2.2), though nothing about the BYE is
/// kept: the connection is named in our Via's branch.
#[test]
fn record_route_answers_a_tcp_callers_bye_on_its_connection() {
    let phone = Peer::new();
    let server = record_routing(phone.addr());
    let mut caller = common::TcpClient::connect(server.tcp);
    let port = caller.port();
    let invite = invite_over("TCP", port, "+18005550100", "rr-tcp");
    caller.send(invite.as_bytes());
    let (relayed, _) = phone.expect("INVITE ", WAIT);
    let route = header(&relayed, "Record-Route")
        .expect("a Record-Route on the relayed INVITE")
        .to_owned();
    phone.send(server.udp, &answer(&relayed, 200, "OK", Some("phone")));
    let answers = caller.read_responses(2);
    let codes: Vec<u16> = answers.iter().map(|a| status(a)).collect();
    assert_eq!(codes, [100, 200], "{answers:?}");
    let bye = format!(
        "BYE sip:phone@127.0.0.1:5999 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-bye-rr-tcp\r\n\
         Max-Forwards: 70\r\n\
         Route: {route}\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller-rr-tcp\r\n\
         To: <sip:+18005550100@127.0.0.1>;tag=phone\r\n\
         Call-ID: rr-tcp\r\n\
         CSeq: 2 BYE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    caller.send(bye.as_bytes());
    let (relayed_bye, _) = phone.expect("BYE ", WAIT);
    assert!(!relayed_bye.contains("Route:"), "{relayed_bye}");
    phone.send(server.udp, &answer(&relayed_bye, 200, "OK", None));
    let ok = caller.read_responses(1);
    assert_eq!(status(&ok[0]), 200, "{ok:?}");
    assert!(ok[0].contains("CSeq: 2 BYE"), "{ok:?}");
    assert_eq!(
        ok[0].lines().filter(|l| l.starts_with("Via:")).count(),
        1,
        "our Via is removed: {ok:?}"
    );
}

/// A Route that names switchboard with a MAC that fits neither end of the
/// dialog is refused: switchboard is no open relay.
#[test]
fn a_forged_record_route_is_refused() {
    let phone = Peer::new();
    let server = record_routing(phone.addr());
    let caller = Peer::new();
    let route = answered_call(&server, &caller, &phone, "rr-forged");
    // The right MAC on another dialog's tags, and a made-up MAC.
    let other_dialog = in_dialog(
        "BYE",
        "sip:phone@127.0.0.1:5999",
        &caller,
        "rr-other",
        true,
        &route,
        2,
    );
    let made_up = format!("<sip:{};sbd=0123456789abcdef;lr>", server.udp);
    let forged = in_dialog(
        "BYE",
        "sip:phone@127.0.0.1:5999",
        &caller,
        "rr-forged",
        true,
        &made_up,
        3,
    );
    for request in [other_dialog, forged] {
        caller.send(server.udp, &request);
        let (refused, _) = caller.expect("SIP/2.0 403", WAIT);
        assert!(refused.contains("BYE"), "{refused}");
    }
    phone.expect_none("BYE ", Duration::from_millis(500));
}

/// A next hop over TCP that refuses the connection: each leg fails at
/// once as a transport error (RFC 3261 §16.9: a 503 of our own), the
/// forwarding number is tried the same way, and the caller gets the best
/// answer without waiting for Timer B.
#[test]
fn a_tcp_next_hop_that_refuses_fails_every_leg_at_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let server = Server::start_with(&[
        "--routing",
        &example_data(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:127.0.0.1:{port};transport=tcp"),
        "--contact-template",
        "sip:{number}@carrier.example;user=phone",
    ]);
    let caller = Peer::new();
    let started = Instant::now();
    // The support line: two targets.
    caller.send(server.udp, &invite("+18005550188", &caller, "tcp-refused"));
    let (final_answer, _) = caller.expect("SIP/2.0 5", WAIT);
    // Every leg's local 503 (§16.9) goes up as 500 (§16.7 step 6).
    assert!(final_answer.starts_with("SIP/2.0 500 "), "{final_answer}");
    // Timer B would be 32 s.
    assert!(
        started.elapsed() < Duration::from_secs(16),
        "no Timer B wait"
    );
}

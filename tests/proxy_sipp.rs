//! Proxy mode (issue #21, docs/sip.md) with SIPp on both sides: a SIPp UAC
//! calls through switchboard (`--mode proxy`, no next hop: each leg goes
//! to its target's own address) to SIPp UASes playing the carrier, one at
//! the user's phone (`sip:phone@127.0.0.1:PORT`) and one at the number's
//! forwarding target (`on_no_answer: forward`). Each scenario is in
//! `sipp-scenarios/proxy_*.xml`; each SIPp run is bounded by its own
//! `-timeout` and by a hard limit here; everything is on loopback.
//!
//! What each test proves is in its comment. First the issue's cases with
//! SIPp on both sides, then the loss test (1,000 calls through two lossy
//! UDP relays), then corners SIPp cannot be made to hit on cue, played by
//! plain sockets against the same rig (tests/proxy.rs does more of those).
//!
//! A leg that got a non-2xx final keeps its call in flight for Timer D
//! (32 s over UDP, whatever T1 is), so tests that check the in-flight
//! gauge after such a call wait that long; `PROXY_TEST_KEEP=1` keeps each
//! test's directory (SIPp traces, switchboard's log) and names it.
//!
//! SIPp is required (`apt-get install -y sip-tester`): without it these
//! tests fail and say so.

mod common;
#[path = "common/proxy_rig.rs"]
mod proxy_rig;

use std::time::Duration;

use common::UdpClient;
use proxy_rig::{Rig, RigOptions, diversion, headers, received, scenario, sipp};

/// A SIPp process still running after this is killed and the test fails.
const HARD_LIMIT: Duration = Duration::from_secs(90);

/// The ring time of tests where it must not matter: a call that waited for
/// it took at least this long.
const NEVER_RINGS_OUT: u32 = 20;

/// How long a call may stay in flight after it ended: a leg that got a
/// non-2xx final keeps its client transaction for Timer D, at least 32 s
/// over UDP whatever T1 is (RFC 3261 §17.1.1.2); a 2xx keeps the call for
/// Timer L/M, 64×T1 (3.2 s here).
const IDLE_AFTER_TIMER_D: Duration = Duration::from_secs(45);
const IDLE_AFTER_2XX: Duration = Duration::from_secs(15);

/// The proxy's T1 in these tests (`proxy.t1_ms`): Timer B is 64×T1.
const T1_MS: u64 = 50;

fn rig(ring_seconds: u32) -> Rig {
    Rig::start(RigOptions {
        ring_seconds,
        t1_ms: T1_MS,
        ..RigOptions::default()
    })
}

/// Nothing at all reaches `socket` within `wait` (no INVITE, CANCEL or
/// retransmission): a port where a forwarding target that must never ring
/// would be.
fn assert_silent(socket: &UdpClient, wait: Duration, rig: &Rig, what: &str) {
    if let Some(datagram) = socket.receive_within(wait) {
        panic!(
            "{what} got a message:\n{}\n{}",
            String::from_utf8_lossy(&datagram),
            rig.report(&["caller", "phone"])
        );
    }
}

/// The one Diversion header of the INVITE `name` received.
fn only_diversion(rig: &Rig, name: &str) -> String {
    let invite = rig.invite_at(name);
    let found = headers(&invite, "Diversion");
    assert_eq!(found.len(), 1, "one Diversion at the {name}:\n{invite}");
    found[0].to_owned()
}

/// The status lines the caller received.
fn caller_statuses(rig: &Rig) -> Vec<String> {
    received(rig.path(), "caller")
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 "))
        .map(|m| m.lines().next().unwrap_or_default().trim().to_owned())
        .collect()
}

/// The phone answers: the caller gets 100, 180 and the phone's 200; the
/// caller's ACK (sent to switchboard, no Record-Route) is relayed to the
/// leg that answered and ends the phone's scenario; the forwarding target
/// is never rung. The phone's INVITE carries the first leg's Diversion.
#[test]
fn the_phone_answers() {
    let rig = rig(NEVER_RINGS_OUT);
    let forwarding = UdpClient::bind(&format!("127.0.0.1:{}", rig.forwarding_port));
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let (caller, took) = rig.call(200, "phone");
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "the phone did not get the ACK (exit {phone_status})\n{}",
        report()
    );
    let statuses = caller_statuses(&rig);
    for expected in [
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
    ] {
        assert!(
            statuses.iter().any(|s| s == expected),
            "{expected} not among {statuses:?}\n{}",
            report()
        );
    }
    assert_eq!(only_diversion(&rig, "phone"), diversion("follow-me"));
    assert!(
        received(rig.path(), "phone")
            .iter()
            .any(|m| m.starts_with("ACK ") && m.contains("CSeq: 1 ACK")),
        "{}",
        report()
    );
    assert_silent(
        &forwarding,
        Duration::from_millis(500),
        &rig,
        "the forwarding target",
    );
    let idle = rig.wait_idle(IDLE_AFTER_2XX);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="answered"}"#),
        1.0
    );
    assert_eq!(rig.metric("switchboard_proxy_failovers_total"), 0.0);
    eprintln!("answered by the phone in {took:?}; idle {idle:?} later");
}

/// The phone rings (180) and nobody picks up: after `ring_seconds`
/// switchboard CANCELs it (the phone answers 200 and 487 and gets the ACK)
/// and the forwarding target answers; its INVITE carries one Diversion
/// naming the dialed number with `reason=no-answer`.
#[test]
fn the_phone_rings_out_and_the_forwarding_number_answers() {
    let rig = rig(1);
    let mut phone = rig.uas("phone", "proxy_uas_ring.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call(200, "forwarding");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "the phone was not cancelled after ringing (exit {phone_status})\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "the forwarding target did not answer and get the ACK (exit {forwarding_status})\n{}",
        report()
    );
    assert!(
        took >= Duration::from_secs(1),
        "answered by the forwarding target after {took:?}: before the ring time"
    );
    assert_eq!(only_diversion(&rig, "phone"), diversion("follow-me"));
    assert_eq!(only_diversion(&rig, "forwarding"), diversion("no-answer"));
    rig.wait_idle(IDLE_AFTER_TIMER_D);
    assert_eq!(rig.metric("switchboard_proxy_failovers_total"), 1.0);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="no_answer"}"#),
        1.0
    );
    eprintln!("rang out, answered by the forwarding target in {took:?}");
}

/// The phone is busy (486): switchboard ACKs it and rings the forwarding
/// target at once (long before the ring time), with `reason=user-busy`.
#[test]
fn a_busy_phone_fails_over_at_once() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut phone = rig.uas("phone", "proxy_uas_busy.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call(200, "forwarding");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "the busy phone got no ACK (exit {phone_status})\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    assert!(
        took < Duration::from_secs(5),
        "the busy phone's call took {took:?}: switchboard waited for something"
    );
    assert_eq!(only_diversion(&rig, "forwarding"), diversion("user-busy"));
    rig.wait_idle(IDLE_AFTER_TIMER_D);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="busy"}"#),
        1.0
    );
    eprintln!("busy phone, answered by the forwarding target in {took:?}");
}

/// The caller hangs up while the phone rings: 200 to its CANCEL, 487 to
/// its INVITE (proxy_uac_cancel.xml checks both); the phone is cancelled
/// (200, 487, ACK) and the forwarding target never hears of the call.
#[test]
fn the_caller_cancels_while_the_phone_rings() {
    let rig = rig(NEVER_RINGS_OUT);
    let forwarding = UdpClient::bind(&format!("127.0.0.1:{}", rig.forwarding_port));
    let mut phone = rig.uas("phone", "proxy_uas_ring.xml", rig.phone_port, &[]);
    let mut caller = sipp(
        rig.path(),
        "caller",
        &[
            "-sf".into(),
            scenario("proxy_uac_cancel.xml"),
            "-s".into(),
            proxy_rig::DIALED.into(),
            "-d".into(),
            "300".into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            common::free_udp_port().to_string(),
            "-m".into(),
            "1".into(),
            rig.server.udp.to_string(),
        ],
        "60s",
        true,
    );
    let caller_status = caller.wait(HARD_LIMIT);
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone"]);
    assert!(
        caller_status.success(),
        "the caller did not get 200 and 487 (exit {caller_status})\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "the phone was not cancelled (exit {phone_status})\n{}",
        report()
    );
    assert_silent(
        &forwarding,
        Duration::from_secs(1),
        &rig,
        "the forwarding target (the caller had cancelled)",
    );
    rig.wait_idle(IDLE_AFTER_TIMER_D);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="cancelled"}"#),
        1.0
    );
    assert_eq!(rig.metric("switchboard_proxy_failovers_total"), 0.0);
}

/// The phone declines (603): a 6xx ends the search (RFC 3261 §16.7 step
/// 5): the caller gets the 603 and the forwarding target is never rung.
#[test]
fn a_6xx_reaches_the_caller_and_nothing_else_is_tried() {
    let rig = rig(NEVER_RINGS_OUT);
    let forwarding = UdpClient::bind(&format!("127.0.0.1:{}", rig.forwarding_port));
    let mut phone = rig.uas("phone", "proxy_uas_decline.xml", rig.phone_port, &[]);
    let (caller, _) = rig.call(603, "-");
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone"]);
    assert!(
        caller.success(),
        "the caller did not get the 603 (exit {caller})\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert_silent(
        &forwarding,
        Duration::from_secs(1),
        &rig,
        "the forwarding target (after a 603)",
    );
    rig.wait_idle(IDLE_AFTER_TIMER_D);
}

/// The first next hop refuses (503): switchboard fails over at once to the
/// forwarding target, which answers; its Diversion says `unavailable`.
#[test]
fn a_refusing_next_hop_fails_over() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut phone = rig.uas("phone", "proxy_uas_unavailable.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call(200, "forwarding");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(only_diversion(&rig, "forwarding"), diversion("unavailable"));
    rig.wait_idle(IDLE_AFTER_TIMER_D);
}

/// Every next hop refuses (503): the caller gets 500, not 503 (§16.7 step
/// 6: a 503 is never passed upstream as such).
#[test]
fn every_next_hop_refuses_and_the_caller_gets_500() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut phone = rig.uas("phone", "proxy_uas_unavailable.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_unavailable.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, _) = rig.call(500, "-");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone", "forwarding"]);
    assert!(
        caller.success(),
        "the caller did not get 500 (exit {caller})\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    rig.wait_idle(IDLE_AFTER_TIMER_D);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="failed"}"#),
        2.0
    );
}

/// Nothing listens at the phone's address: switchboard retransmits the
/// INVITE (Timer A) until Timer B (64×T1 = 3.2 s with T1 = 50 ms), then
/// the forwarding target gets the call and answers.
#[test]
fn a_dead_next_hop_times_out_and_fails_over() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call(200, "forwarding");
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    let timer_b = Duration::from_millis(64 * T1_MS);
    assert!(
        took >= timer_b && took < timer_b + Duration::from_secs(5),
        "failed over after {took:?}, Timer B is {timer_b:?}"
    );
    let diverted = only_diversion(&rig, "forwarding");
    assert!(
        diverted.starts_with(&format!(
            "<sip:{}@127.0.0.1;user=phone>;reason=",
            proxy_rig::DIALED
        )),
        "{diverted}"
    );
    rig.wait_idle(IDLE_AFTER_2XX);
    assert_eq!(rig.metric("switchboard_proxy_failovers_total"), 1.0);
    eprintln!("dead phone: failed over by Timer B, answered in {took:?} (Diversion {diverted})");
}

/// Nothing listens anywhere: after Timer B on each leg the caller gets a
/// 408 (nothing answered, §16.7 step 6).
#[test]
fn every_next_hop_is_down_and_the_caller_gets_408() {
    let rig = rig(NEVER_RINGS_OUT);
    let (caller, took) = rig.call(408, "-");
    assert!(
        caller.success(),
        "the caller did not get 408 (exit {caller})\n{}",
        rig.report(&["caller"])
    );
    let timer_b = Duration::from_millis(64 * T1_MS);
    assert!(took >= 2 * timer_b, "408 after {took:?}");
    rig.wait_idle(IDLE_AFTER_2XX);
    eprintln!("both legs dead: 408 after {took:?}");
}

/// The phone rings past `ring_seconds`; switchboard CANCELs it and rings
/// the forwarding target, but the phone answers the CANCEL with 200 and the
/// INVITE with 200 OK (picked up while the CANCEL was on its way). The
/// caller must get that 200, never a 408; its ACK must reach the phone;
/// and the forwarding target's leg is cancelled (proxy_uas_ring.xml: 180,
/// CANCEL, 200, 487, ACK).
#[test]
fn a_2xx_after_the_ring_timer_reaches_the_caller() {
    let rig = rig(1);
    let mut phone = rig.uas("phone", "proxy_uas_late_answer.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas("forwarding", "proxy_uas_ring.xml", rig.forwarding_port, &[]);
    let (caller, took) = rig.call(200, "phone");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone", "forwarding"]);
    assert!(
        caller.success(),
        "the caller did not get the phone's late 200 (exit {caller})\n{}",
        report()
    );
    let statuses = caller_statuses(&rig);
    assert!(
        !statuses.iter().any(|s| s.starts_with("SIP/2.0 408")),
        "{statuses:?}"
    );
    assert!(
        phone_status.success(),
        "the phone's late 200 got no ACK (exit {phone_status})\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "the forwarding target's leg was not cancelled (exit {forwarding_status})\n{}",
        report()
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    rig.wait_idle(IDLE_AFTER_TIMER_D);
    eprintln!("late 200 after the ring timer relayed in {took:?}; caller saw {statuses:?}");
}

/// BUG (found by these tests; the lead fixes it): a final non-2xx answer
/// that has no Via left once switchboard removes its own (a broken UAS
/// that copied only the top Via) is relayed to the caller as the best
/// answer, without any Via. RFC 3261 §16.7 step 3: such a response was
/// meant for this element and MUST NOT be forwarded; the 1xx and 2xx paths
/// check it (`head.more_vias` in `Call::leg_response`, `forward_2xx`), the
/// path of a final non-2xx through `best.offer_response` does not. Whatever
/// final the caller gets, it must carry the caller's own Via (§8.2.6.2);
/// the caller here is a plain socket, so that it sees the bytes as sent.
#[test]
fn a_final_answer_with_no_via_left_is_never_relayed() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut phone = rig.uas(
        "phone",
        "proxy_uas_busy_top_via_only.xml",
        rig.phone_port,
        &[],
    );
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_busy_top_via_only.xml",
        rig.forwarding_port,
        &[],
    );
    let caller = UdpClient::new();
    let port = caller.port();
    caller.send(
        rig.server.udp,
        &common::invite(proxy_rig::DIALED, "+12125550199", "no-via-left", port),
    );
    let mut finals = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while finals.is_empty() && std::time::Instant::now() < deadline {
        let Some(datagram) = caller.receive_within(Duration::from_millis(200)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&datagram).into_owned();
        if text.starts_with("SIP/2.0 ") && common::status(&text) >= 200 {
            finals.push(text);
        }
    }
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    assert!(phone_status.success(), "{}", rig.report(&["phone"]));
    assert!(
        forwarding_status.success(),
        "{}",
        rig.report(&["forwarding"])
    );
    for answer in &finals {
        let vias = headers(answer, "Via");
        assert!(
            vias.len() == 1 && vias[0].contains(&format!("127.0.0.1:{port}")),
            "the caller got a final answer without its Via:\n{answer}"
        );
    }
}

/// `proxy.max_calls` caps the calls in flight: with a cap of 1 and one
/// call ringing (the phone rings until the caller gives up 3 s later), a
/// second call gets `503 Service Unavailable` with `Retry-After` at once
/// and reaches no phone (§21.5.4); the first call goes on untouched.
#[test]
fn past_max_calls_a_new_call_gets_503_with_retry_after() {
    let rig = Rig::start(RigOptions {
        ring_seconds: NEVER_RINGS_OUT,
        t1_ms: T1_MS,
        max_calls: Some(1),
        ..RigOptions::default()
    });
    let mut phone = rig.uas("phone", "proxy_uas_ring.xml", rig.phone_port, &[]);
    let mut ringing = sipp(
        rig.path(),
        "ringing",
        &[
            "-sf".into(),
            scenario("proxy_uac_cancel.xml"),
            "-s".into(),
            proxy_rig::DIALED.into(),
            "-d".into(),
            "3000".into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            common::free_udp_port().to_string(),
            "-m".into(),
            "1".into(),
            rig.server.udp.to_string(),
        ],
        "60s",
        true,
    );
    // The first call rings (its 180 is in the trace) before the second starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !received(rig.path(), "ringing")
        .iter()
        .any(|m| m.starts_with("SIP/2.0 180"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first call does not ring\n{}",
            rig.report(&["ringing", "phone"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (refused, took) = rig.call(503, "-");
    let ringing_status = ringing.wait(HARD_LIMIT);
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "ringing", "phone"]);
    assert!(
        refused.success(),
        "the second call did not get 503 (exit {refused})\n{}",
        report()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let answer = received(rig.path(), "caller")
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 503"))
        .expect("the 503");
    assert!(headers(&answer, "Retry-After").len() == 1, "{answer}");
    assert!(
        ringing_status.success(),
        "the first call: {ringing_status}\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "the phone (one call): {phone_status}\n{}",
        report()
    );
}

// ---- Corners SIPp cannot be made to hit on cue: the caller and the
// ---- carrier played by plain sockets, byte by byte, against the same rig.

/// A SIP peer on a plain UDP socket.
struct Peer {
    socket: std::net::UdpSocket,
}

impl Peer {
    fn bind(port: u16) -> Peer {
        let socket = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Peer { socket }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().expect("address").port()
    }

    fn send(&self, to: std::net::SocketAddr, text: &str) {
        self.socket.send_to(text.as_bytes(), to).expect("send");
    }

    /// The next message within `wait` whose first line starts with
    /// `start` (others skipped), with its sender; `None` after `wait`.
    fn next(&self, start: &str, wait: Duration) -> Option<(String, std::net::SocketAddr)> {
        let deadline = std::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65_535];
        while std::time::Instant::now() < deadline {
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.starts_with(start) {
                    return Some((text, from));
                }
            }
        }
        None
    }

    fn expect(&self, start: &str, wait: Duration) -> (String, std::net::SocketAddr) {
        self.next(start, wait)
            .unwrap_or_else(|| panic!("no {start:?} within {wait:?} at port {}", self.port()))
    }
}

/// A response to `request` as a UAS writes it: every Via, From, To (with
/// `tag`), Call-ID and CSeq of the request, and a Contact at `contact`.
fn respond(request: &str, status: &str, tag: &str, contact: u16) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" if line.contains(";tag=") => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" => {
                out.push_str(line);
                out.push_str(&format!(";tag={tag}\r\n"));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "Contact: <sip:{tag}@127.0.0.1:{contact}>\r\nContent-Length: 0\r\n\r\n"
    ));
    out
}

/// The caller's INVITE for `DIALED` from `caller`, as `common::invite`
/// writes it, with a Contact.
fn caller_invite(caller: &Peer, call_id: &str) -> String {
    String::from_utf8(common::invite(
        proxy_rig::DIALED,
        "+12125550199",
        call_id,
        caller.port(),
    ))
    .expect("UTF-8")
}

/// The ACK of a 2xx (a new transaction, §13.2.2.4) for `ok`, to the
/// Contact it names, sent (as SIPp does) to switchboard.
fn ack_for(ok: &str, caller: &Peer, call_id: &str, branch: &str) -> String {
    let to = headers(ok, "To")[0];
    let contact = headers(ok, "Contact")[0]
        .trim_start_matches('<')
        .trim_end_matches('>');
    format!(
        "ACK {contact} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK-{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=from-1\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        caller.port()
    )
}

/// Both legs answer: the phone picks up just as its ring time ends (200
/// after switchboard's CANCEL) and the forwarding target answers its new
/// INVITE at once. A proxy forwards every 2xx (§16.7 step 5, RFC 6026):
/// the caller gets both, one dialog each, and ACKs each. Each ACK must
/// reach the UAS whose 2xx it acknowledges (its To tag says which); the
/// forwarding target's must not go to the phone.
///
/// BUG (found by this test; the lead fixes it): `Driver::on_ack` finds a
/// 2xx's ACK by Call-ID alone and sends it to `summary.answered_by`, the
/// first leg that answered; the ACK for the second leg's 2xx (another To
/// tag) goes to the phone too, and the forwarding target retransmits its
/// 200 until it gives up (src/server/relay/driver.rs).
#[test]
fn when_both_legs_answer_each_ack_reaches_its_own_answerer() {
    let rig = rig(1);
    let phone = Peer::bind(rig.phone_port);
    let forwarding = Peer::bind(rig.forwarding_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    caller.send(rig.server.udp, &caller_invite(&caller, "both-answer"));
    let (invite, sb) = phone.expect("INVITE ", wait);
    phone.send(
        sb,
        &respond(&invite, "180 Ringing", "phone", rig.phone_port),
    );
    let (cancel, _) = phone.expect("CANCEL ", wait);
    let (second, _) = forwarding.expect("INVITE ", wait);
    phone.send(sb, &respond(&cancel, "200 OK", "phone", rig.phone_port));
    phone.send(sb, &respond(&invite, "200 OK", "phone", rig.phone_port));
    forwarding.send(
        sb,
        &respond(&second, "200 OK", "forwarding", rig.forwarding_port),
    );
    let mut oks = Vec::new();
    while oks.len() < 2 {
        let Some((ok, _)) = caller.next("SIP/2.0 200", wait) else {
            break;
        };
        if !oks
            .iter()
            .any(|o: &String| headers(o, "To") == headers(&ok, "To"))
        {
            oks.push(ok);
        }
    }
    assert_eq!(
        oks.len(),
        2,
        "the caller got {} distinct 2xx, not both: {oks:#?}",
        oks.len()
    );
    for (n, ok) in oks.iter().enumerate() {
        caller.send(
            rig.server.udp,
            &ack_for(ok, &caller, "both-answer", &format!("ack-{n}")),
        );
    }
    let forwarding_ack = forwarding.next("ACK ", wait);
    let mut phone_acks = Vec::new();
    while let Some((ack, _)) = phone.next("ACK ", Duration::from_secs(1)) {
        phone_acks.push(headers(&ack, "To")[0].to_owned());
    }
    assert!(
        phone_acks.iter().any(|to| to.contains("tag=phone")),
        "the phone's ACK never came: {phone_acks:?}"
    );
    assert!(
        forwarding_ack
            .as_ref()
            .is_some_and(|(a, _)| a.contains("tag=forwarding")),
        "the forwarding target's 2xx was never acknowledged (ACK: {forwarding_ack:?}); \
         the phone got the ACKs for {phone_acks:?}"
    );
}

/// The CANCEL of a caller who hangs up before the phone sent anything but
/// switchboard's own 100: switchboard answers it 200 at once, but may not
/// CANCEL the leg before a provisional comes from it (§9.1). When the
/// phone's 180 comes, the CANCEL follows it; the phone answers 487; the
/// caller gets 487, and the forwarding target is never rung.
#[test]
fn a_cancel_before_the_phone_rings_waits_for_its_provisional() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let forwarding = Peer::bind(rig.forwarding_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "early-cancel");
    caller.send(rig.server.udp, &invite);
    caller.expect("SIP/2.0 100", wait);
    let (leg, sb) = phone.expect("INVITE ", wait);
    let cancel = invite
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    caller.send(rig.server.udp, &cancel);
    let (cancel_ok, _) = caller.expect("SIP/2.0 200", wait);
    assert!(cancel_ok.contains("CSeq: 1 CANCEL"), "{cancel_ok}");
    // No CANCEL on the leg before its provisional.
    assert!(
        phone.next("CANCEL ", Duration::from_millis(500)).is_none(),
        "a CANCEL before any provisional (§9.1)"
    );
    phone.send(sb, &respond(&leg, "180 Ringing", "phone", rig.phone_port));
    let (leg_cancel, _) = phone.expect("CANCEL ", wait);
    phone.send(sb, &respond(&leg_cancel, "200 OK", "phone", rig.phone_port));
    phone.send(
        sb,
        &respond(&leg, "487 Request Terminated", "phone", rig.phone_port),
    );
    phone.expect("ACK ", wait);
    let (terminated, _) = caller.expect("SIP/2.0 487", wait);
    assert!(terminated.contains("CSeq: 1 INVITE"), "{terminated}");
    assert_eq!(headers(&terminated, "Via").len(), 1, "{terminated}");
    assert!(
        forwarding.next("", Duration::from_secs(1)).is_none(),
        "the forwarding target was rung after the caller cancelled"
    );
}

/// The caller hangs up while the phone says nothing at all (nothing
/// listens there): no CANCEL can go to it (§9.1), so the leg ends by Timer
/// B; the caller then gets 487 for its cancelled INVITE, not 408, and the
/// forwarding target is never rung.
#[test]
fn a_cancel_while_the_phone_is_silent_gets_487_after_timer_b() {
    let rig = rig(NEVER_RINGS_OUT);
    let forwarding = Peer::bind(rig.forwarding_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "silent-cancel");
    caller.send(rig.server.udp, &invite);
    caller.expect("SIP/2.0 100", wait);
    let cancel = invite
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let started = std::time::Instant::now();
    caller.send(rig.server.udp, &cancel);
    caller.expect("SIP/2.0 200", wait);
    let (final_answer, _) = caller
        .next("SIP/2.0 4", Duration::from_millis(64 * T1_MS) + wait)
        .expect("a final answer after Timer B");
    assert!(
        final_answer.starts_with("SIP/2.0 487"),
        "after {:?}: {final_answer}",
        started.elapsed()
    );
    assert!(
        forwarding.next("", Duration::from_millis(500)).is_none(),
        "the forwarding target was rung after the caller cancelled"
    );
}

/// The caller retransmits its INVITE (as over UDP it must until a
/// response): switchboard absorbs every copy, answers each with the latest
/// response it sent (§17.2.1), and the phone sees one INVITE transaction.
#[test]
fn retransmitted_invites_are_absorbed() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "retransmitted");
    caller.send(rig.server.udp, &invite);
    let (leg, sb) = phone.expect("INVITE ", wait);
    phone.send(sb, &respond(&leg, "180 Ringing", "phone", rig.phone_port));
    caller.expect("SIP/2.0 180", wait);
    for _ in 0..3 {
        caller.send(rig.server.udp, &invite);
        let (again, _) = caller.expect("SIP/2.0 ", wait);
        assert!(again.starts_with("SIP/2.0 180"), "{again}");
    }
    // Timer A may have resent switchboard's INVITE before the 180 reached
    // it (same branch); a new transaction would have a new branch.
    let branch = |m: &str| headers(m, "Via")[0].to_owned();
    while let Some((extra, _)) = phone.next("INVITE ", Duration::from_millis(500)) {
        assert_eq!(
            branch(&extra),
            branch(&leg),
            "the phone got another INVITE transaction:\n{extra}"
        );
    }
}

/// §16.3 step 3: an INVITE with `Max-Forwards: 0` is answered 483 and
/// relayed nowhere; with 1 it is relayed with 0.
#[test]
fn max_forwards_zero_gets_483_and_one_is_relayed_with_zero() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite =
        caller_invite(&caller, "max-forwards-0").replace("Max-Forwards: 70", "Max-Forwards: 0");
    caller.send(rig.server.udp, &invite);
    let (answer, _) = caller.expect("SIP/2.0 ", wait);
    assert!(answer.starts_with("SIP/2.0 483"), "{answer}");
    assert!(phone.next("", Duration::from_millis(300)).is_none());
    let invite =
        caller_invite(&caller, "max-forwards-1").replace("Max-Forwards: 70", "Max-Forwards: 1");
    caller.send(rig.server.udp, &invite);
    let (leg, _) = phone.expect("INVITE ", wait);
    assert_eq!(headers(&leg, "Max-Forwards"), ["0"], "{leg}");
}

/// The caller does not ACK the final 486 (every leg busy): switchboard
/// retransmits it (Timer G from T1, §17.2.1) until the ACK comes, which
/// stops it.
#[test]
fn a_final_non_2xx_is_retransmitted_until_the_ack() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let forwarding = Peer::bind(rig.forwarding_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "unacked-486");
    caller.send(rig.server.udp, &invite);
    for (uas, port, tag) in [
        (&phone, rig.phone_port, "phone"),
        (&forwarding, rig.forwarding_port, "forwarding"),
    ] {
        let (leg, sb) = uas.expect("INVITE ", wait);
        uas.send(sb, &respond(&leg, "486 Busy Here", tag, port));
        uas.expect("ACK ", wait);
    }
    let (busy, _) = caller.expect("SIP/2.0 486", wait);
    let (again, _) = caller.expect("SIP/2.0 486", Duration::from_millis(20 * T1_MS));
    assert_eq!(busy, again, "the same bytes again");
    let ack = format!(
        "ACK sip:{}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK-test-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=from-1\r\n\
         To: {}\r\n\
         Call-ID: unacked-486\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        proxy_rig::DIALED,
        caller.port(),
        headers(&busy, "To")[0]
    );
    caller.send(rig.server.udp, &ack);
    // Whatever was already on its way, then nothing.
    std::thread::sleep(Duration::from_millis(4 * T1_MS));
    while caller.next("", Duration::from_millis(10)).is_some() {}
    assert!(
        caller
            .next("SIP/2.0 486", Duration::from_millis(40 * T1_MS))
            .is_none(),
        "retransmitted after the ACK"
    );
}

/// The caller's CANCEL crosses the phone's 200 (it arrives once the call
/// is answered): the CANCEL changes nothing (§9.2, §16.10): no CANCEL goes
/// to the phone, whose leg is answered, and no 487 reaches the caller.
#[test]
fn a_cancel_after_the_answer_changes_nothing() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "cancel-after-200");
    caller.send(rig.server.udp, &invite);
    let (leg, sb) = phone.expect("INVITE ", wait);
    phone.send(sb, &respond(&leg, "200 OK", "phone", rig.phone_port));
    caller.expect("SIP/2.0 200", wait);
    let cancel = invite
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    caller.send(rig.server.udp, &cancel);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if let Some((answer, _)) = caller.next("SIP/2.0 ", Duration::from_millis(100)) {
            assert!(
                !answer.starts_with("SIP/2.0 487"),
                "a 487 after the 200:\n{answer}"
            );
        }
    }
    assert!(
        phone.next("CANCEL ", Duration::from_millis(300)).is_none(),
        "the answered leg was cancelled"
    );
}

/// A next hop that is switchboard itself, and a phone URI whose user is the
/// dialed number (a routing loop): each relayed INVITE comes back to
/// switchboard, is routed again to the same target and relayed again, with
/// switchboard's own Via on it. It must be stopped (482 Loop Detected,
/// §16.3 step 4 and RFC 5393, or at worst 483 once Max-Forwards runs out),
/// the caller must get a final answer within seconds, and no call may stay
/// in flight.
#[test]
fn a_next_hop_that_is_switchboard_itself_is_a_loop_not_a_storm() {
    let port = common::free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let rig = Rig::start(RigOptions {
        ring_seconds: NEVER_RINGS_OUT,
        t1_ms: T1_MS,
        next_hop: Some(format!("sip:{listen};transport=udp")),
        phone_user: proxy_rig::DIALED,
        extra: &["--listen", &listen],
        ..RigOptions::default()
    });
    let caller = Peer::bind(0);
    caller.send(rig.server.udp, &caller_invite(&caller, "loop"));
    let mut finals = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while finals.is_empty() && std::time::Instant::now() < deadline {
        if let Some((answer, _)) = caller.next("SIP/2.0 ", Duration::from_millis(100))
            && !answer.starts_with("SIP/2.0 1")
        {
            finals.push(answer);
        }
    }
    let requests = rig.metrics();
    assert!(
        !finals.is_empty(),
        "no final answer within 10 s\n{requests}"
    );
    let status = common::status(&finals[0]);
    eprintln!(
        "loop through itself: the caller got {}",
        finals[0].lines().next().unwrap_or_default()
    );
    assert!(matches!(status, 482 | 483), "{}", finals[0]);
    rig.wait_idle(IDLE_AFTER_TIMER_D);
}

/// A caller over TCP (inbound TCP is served in proxy mode as in redirect
/// mode): switchboard relays its INVITE to the phone over UDP, and every
/// response must come back to the caller on its TCP connection.
///
/// BUG (found by this test; the lead fixes it): the driver owns only the
/// UDP socket and sends everything for the caller with `send_to` to the
/// caller's address (`Driver::flush`, `Destination::Upstream`, in
/// src/server/relay/driver.rs), so a TCP caller's responses go out as UDP
/// datagrams to its TCP port: it never gets its 100, 180 or 200, the phone
/// rings and answers for nobody. `Handler::relay_for` hands TCP and TLS
/// peers' INVITEs over all the same.
#[test]
fn a_caller_over_tcp_gets_its_answers_on_its_connection() {
    let rig = rig(NEVER_RINGS_OUT);
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let mut caller = sipp(
        rig.path(),
        "caller",
        &[
            "-sf".into(),
            scenario("proxy_uac.xml"),
            "-t".into(),
            "t1".into(),
            "-s".into(),
            proxy_rig::DIALED.into(),
            "-set".into(),
            "expected_status".into(),
            "200".into(),
            "-set".into(),
            "expected_answerer".into(),
            "phone".into(),
            "-d".into(),
            "300".into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            common::free_udp_port().to_string(),
            "-m".into(),
            "1".into(),
            "-recv_timeout".into(),
            "10000".into(),
            rig.server.tcp.to_string(),
        ],
        "30s",
        true,
    );
    let caller_status = caller.wait(HARD_LIMIT);
    phone.kill();
    assert!(
        caller_status.success(),
        "the TCP caller did not get the phone's 200 (exit {caller_status})\n{}",
        rig.report(&["caller", "phone"])
    );
}

/// A 2xx retransmitted by the phone after switchboard forgot the call
/// (Timer L, 64×T1 after the first 2xx) is still relayed to the caller,
/// statelessly by the Via under switchboard's (RFC 6026 §7, §16.7: a 2xx
/// is never swallowed); the caller's ACK for it, with the call gone, is
/// dropped and counted.
#[test]
fn a_2xx_after_the_call_is_forgotten_is_still_relayed() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    caller.send(rig.server.udp, &caller_invite(&caller, "stray-2xx"));
    let (leg, sb) = phone.expect("INVITE ", wait);
    let ok = respond(&leg, "200 OK", "phone", rig.phone_port);
    phone.send(sb, &ok);
    let (first, _) = caller.expect("SIP/2.0 200", wait);
    rig.wait_idle(IDLE_AFTER_2XX);
    phone.send(sb, &ok);
    let (again, _) = caller.expect("SIP/2.0 200", wait);
    assert_eq!(first, again, "the same 200, our Via removed");
    assert_eq!(
        rig.metric_settles("switchboard_proxy_late_2xx_total", 1.0),
        1.0
    );
}

/// The caller retransmits its CANCEL: each copy gets its 200, the phone
/// sees one CANCEL transaction (§17.2.2, §16.10).
#[test]
fn retransmitted_cancels_are_absorbed() {
    let rig = rig(NEVER_RINGS_OUT);
    let phone = Peer::bind(rig.phone_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    let invite = caller_invite(&caller, "cancel-twice");
    caller.send(rig.server.udp, &invite);
    let (leg, sb) = phone.expect("INVITE ", wait);
    phone.send(sb, &respond(&leg, "180 Ringing", "phone", rig.phone_port));
    caller.expect("SIP/2.0 180", wait);
    let cancel = invite
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    caller.send(rig.server.udp, &cancel);
    caller.expect("SIP/2.0 200", wait);
    let (leg_cancel, _) = phone.expect("CANCEL ", wait);
    caller.send(rig.server.udp, &cancel);
    let (second_ok, _) = caller.expect("SIP/2.0 200", wait);
    assert!(second_ok.contains("CSeq: 1 CANCEL"), "{second_ok}");
    // The leg's CANCEL is retransmitted by its own Timer E until answered;
    // answer it, then no new CANCEL transaction may start.
    phone.send(sb, &respond(&leg_cancel, "200 OK", "phone", rig.phone_port));
    let branch = |m: &str| headers(m, "Via")[0].to_owned();
    while let Some((more, _)) = phone.next("CANCEL ", Duration::from_millis(300)) {
        assert_eq!(
            branch(&more),
            branch(&leg_cancel),
            "a second CANCEL:\n{more}"
        );
    }
    phone.send(
        sb,
        &respond(&leg, "487 Request Terminated", "phone", rig.phone_port),
    );
    caller.expect("SIP/2.0 487", wait);
}

/// With `--diversion history-info`, a leg started because the one before
/// rang out must say so, as its Diversion does with `reason=no-answer`
/// (issue #21: "each forwarded leg carries Diversion or History-Info with
/// that leg's reason"): RFC 7044 records the retargeting in the entry of
/// the target left behind (index 1.1, the phone), with a Reason naming why
/// (§9.1, §10: `cause=408` for no answer, `486` for busy). The call
/// writes each leg's History-Info when it starts the leg (`write_history`
/// in src/proxy/call.rs), when it knows why the earlier ones were left.
#[test]
fn history_info_on_the_forwarding_leg_records_why_the_phone_was_left() {
    let rig = Rig::start(RigOptions {
        ring_seconds: 1,
        t1_ms: T1_MS,
        diversion: "history-info",
        ..RigOptions::default()
    });
    let phone = Peer::bind(rig.phone_port);
    let forwarding = Peer::bind(rig.forwarding_port);
    let caller = Peer::bind(0);
    let wait = Duration::from_secs(5);
    caller.send(rig.server.udp, &caller_invite(&caller, "history-info"));
    let (leg, sb) = phone.expect("INVITE ", wait);
    phone.send(sb, &respond(&leg, "180 Ringing", "phone", rig.phone_port));
    let (cancel, _) = phone.expect("CANCEL ", wait);
    phone.send(sb, &respond(&cancel, "200 OK", "phone", rig.phone_port));
    phone.send(
        sb,
        &respond(&leg, "487 Request Terminated", "phone", rig.phone_port),
    );
    let (second, _) = forwarding.expect("INVITE ", wait);
    let history = headers(&second, "History-Info").join(",");
    eprintln!("the forwarding leg's History-Info: {history}");
    let phone_entry = history
        .split(',')
        .find(|entry| entry.contains(&format!("sip:phone@127.0.0.1:{}", rig.phone_port)));
    assert!(
        phone_entry.is_some_and(|e| e.contains("index=1.1") && e.contains("cause%3D408")),
        "no entry for the phone saying it did not answer:\n{second}"
    );
}

/// With `--record-route`, switchboard stays on the dialog's path: the
/// phone's INVITE carries its Record-Route, SIPp's caller learns the route
/// set from the 200 (rrs) and sends its ACK and BYE with it, and both
/// reach the phone through switchboard without our Route value (RFC 3261
/// §16.6 step 4, §16.12); the BYE's 200 comes back by Via.
#[test]
fn with_record_route_the_ack_and_the_bye_pass_through_switchboard() {
    let rig = Rig::start(RigOptions {
        ring_seconds: NEVER_RINGS_OUT,
        t1_ms: T1_MS,
        extra: &["--record-route"],
        ..RigOptions::default()
    });
    let mut phone = rig.uas("phone", "proxy_uas_answer_bye.xml", rig.phone_port, &[]);
    let mut caller = sipp(
        rig.path(),
        "caller",
        &[
            "-sf".into(),
            scenario("proxy_uac_bye.xml"),
            "-s".into(),
            proxy_rig::DIALED.into(),
            "-d".into(),
            "300".into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            common::free_udp_port().to_string(),
            "-m".into(),
            "1".into(),
            "-recv_timeout".into(),
            "30000".into(),
            rig.server.udp.to_string(),
        ],
        "60s",
        true,
    );
    let caller_status = caller.wait(HARD_LIMIT);
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || rig.report(&["caller", "phone"]);
    assert!(
        caller_status.success(),
        "caller: {caller_status}\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );

    let invite = rig.invite_at("phone");
    let record_route = headers(&invite, "Record-Route");
    assert_eq!(record_route.len(), 1, "{invite}");
    assert!(
        record_route[0].starts_with(&format!("<sip:{};sbd=", rig.server.udp)),
        "{invite}"
    );
    let ours = format!("SIP/2.0/UDP {};branch=z9hG4bK", rig.server.udp);
    let at_phone = received(rig.path(), "phone");
    for method in ["ACK ", "BYE "] {
        let request = at_phone
            .iter()
            .find(|m| m.starts_with(method))
            .unwrap_or_else(|| panic!("no {method}at the phone\n{}", report()));
        assert!(headers(request, "Route").is_empty(), "{request}");
        let vias = headers(request, "Via");
        assert_eq!(vias.len(), 2, "{request}");
        assert!(vias[0].starts_with(&ours), "{request}");
    }
    assert_eq!(
        rig.metric(r#"switchboard_proxy_in_dialog_total{result="relayed"}"#),
        2.0
    );
    assert_eq!(
        rig.metric(r#"switchboard_proxy_in_dialog_total{result="response"}"#),
        1.0
    );
}

/// A next hop over TCP (`transport=tcp`): every leg goes over one
/// connection switchboard opens and reuses (RFC 3261 §18.1.1), with a TCP
/// Via and no retransmissions; the answers come back on it, and the
/// caller's ACK goes the same way. Three calls, one connection.
#[test]
fn a_next_hop_over_tcp_carries_every_call_on_one_connection() {
    let port = common::free_udp_port();
    let hop = format!("sip:127.0.0.1:{port};transport=tcp");
    let rig = Rig::start(RigOptions {
        ring_seconds: NEVER_RINGS_OUT,
        t1_ms: T1_MS,
        next_hop: Some(hop),
        ..RigOptions::default()
    });
    let mut phone = rig.uas(
        "phone",
        "proxy_uas_answer.xml",
        port,
        &["-t", "t1", "-m", "3"],
    );
    // Switchboard's end of each connection to the phone's port, after
    // each call but the last (after it, the phone exits and closes).
    let ours = || -> Vec<u16> {
        proxy_rig::tcp_sockets(port)
            .into_iter()
            .filter(|(local, remote, state)| *remote == port && *local != port && state == "01")
            .map(|(local, _, _)| local)
            .collect()
    };
    let mut seen = Vec::new();
    for call in 0..3 {
        let (caller, _) = rig.call(200, "phone");
        assert!(
            caller.success(),
            "call {call}: {caller}\n{}",
            rig.report(&["caller", "phone"])
        );
        if call < 2 {
            seen.push(ours());
            assert_eq!(rig.metric("switchboard_proxy_outbound_connections"), 1.0);
        }
    }
    let phone_status = phone.wait(HARD_LIMIT);
    assert!(
        phone_status.success(),
        "the phone did not get every call and ACK (exit {phone_status})\n{}",
        rig.report(&["caller", "phone"])
    );
    assert_eq!(seen[0].len(), 1, "one connection: {seen:?}");
    assert_eq!(seen[0], seen[1], "reused: {seen:?}");
    // Counted when each call ends, 64×T1 after its 2xx.
    rig.wait_idle(IDLE_AFTER_2XX);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="answered"}"#),
        3.0
    );
}

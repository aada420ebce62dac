//! `switchboard serve` over real sockets: every row of the SIP behaviour
//! table of docs/sip.md over UDP and TCP, golden raw-bytes-in exact-bytes-out
//! cases, where responses go, trust, settings and hot reload in the running
//! binary.

mod common;

use std::fs;
use std::io::Read;
use std::time::Duration;

use common::{Server, TcpClient, UdpClient, header, invite, request, status};

/// Silence is checked by waiting this long for an answer that must not come.
const QUIET: Duration = Duration::from_millis(300);

fn udp_exchange(server: &Server, lines: &[&str]) -> String {
    let client = UdpClient::new();
    client.exchange(server.udp, &request(lines, client.port()))
}

fn assert_silent(server: &Server, client: &UdpClient, message: &[u8]) {
    client.send(server.udp, message);
    let got = client.receive_within(QUIET);
    assert!(
        got.is_none(),
        "expected no answer, got {:?}",
        got.map(|g| String::from_utf8_lossy(&g).into_owned())
    );
}

/// A request of `method` with every mandatory header.
fn basic(method: &str, uri: &str, extra: &[&str]) -> Vec<String> {
    let mut lines = vec![
        format!("{method} {uri} SIP/2.0"),
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-basic;rport".to_owned(),
        "Max-Forwards: 70".to_owned(),
        "From: <sip:+16505550199@127.0.0.1>;tag=f1".to_owned(),
        "To: <sip:+18005550100@127.0.0.1>".to_owned(),
        "Call-ID: basic-1".to_owned(),
        format!("CSeq: 7 {method}"),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines.push("Content-Length: 0".to_owned());
    lines.push(String::new());
    lines
}

fn send_basic(server: &Server, method: &str, uri: &str, extra: &[&str]) -> String {
    let lines = basic(method, uri, extra);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    udp_exchange(server, &refs)
}

// ---- golden cases: exact bytes ----------------------------------------

/// What a To tag is derived from (src/sip/response.rs): the request's
/// Call-ID, From tag, top Via branch and CSeq, as they are written in it.
struct TagOf<'a> {
    call_id: &'a str,
    from_tag: &'a str,
    branch: &'a str,
    cseq: &'a str,
}

impl TagOf<'_> {
    /// The tag, computed here from the recipe rather than copied from a
    /// run: `sb` and the 16 lowercase hex digits of the FxHash of the four
    /// parts, each followed by a 0xff byte. A new hash function (a
    /// dependency update) changes this and the server alike, so no golden
    /// needs regenerating; what a golden then catches is a change of recipe.
    fn tag(&self) -> String {
        use std::hash::Hasher;
        let mut hasher = rustc_hash::FxHasher::default();
        for part in [self.call_id, self.from_tag, self.branch, self.cseq] {
            hasher.write(part.as_bytes());
            hasher.write_u8(0xff);
        }
        format!("sb{:016x}", hasher.finish())
    }
}

/// Raw request in, exact response out. `{port}` is the client's port,
/// `{to_tag}` the tag derived from `tag_of`.
fn golden(server: &Server, request_text: &str, response_text: &str, tag_of: TagOf<'_>) {
    let client = UdpClient::new();
    let port = client.port().to_string();
    let answer = client.exchange(server.udp, request_text.replace("{port}", &port).as_bytes());
    assert_eq!(
        answer,
        response_text
            .replace("{port}", &port)
            .replace("{to_tag}", &tag_of.tag())
    );
}

#[test]
fn golden_302() {
    let server = Server::start();
    golden(
        &server,
        "INVITE sip:+18005550100@127.0.0.1:5060;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g302;rport\r\n\
         Via: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK-upstream\r\n\
         Max-Forwards: 69\r\n\
         From: \"Dana Lee\" <sip:+16505550123@127.0.0.1>;tag=g302\r\n\
         To: <sip:+18005550100@127.0.0.1>\r\n\
         Call-ID: golden-302@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:{port}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 4\r\n\
         \r\n\
         v=0\n",
        "SIP/2.0 302 Moved Temporarily\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g302;rport={port};received=127.0.0.1\r\n\
         Via: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK-upstream\r\n\
         From: \"Dana Lee\" <sip:+16505550123@127.0.0.1>;tag=g302\r\n\
         To: <sip:+18005550100@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: golden-302@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+14155550101@127.0.0.1;user=phone>\r\n\
         Server: switchboard/0.1.0\r\n\
         Content-Length: 0\r\n\
         \r\n",
        TagOf {
            call_id: "golden-302@127.0.0.1",
            from_tag: "g302",
            branch: "z9hG4bK-g302",
            cseq: "1 INVITE",
        },
    );
}

/// Over the size limit (32 KiB by default): `513 Message Too Large` from
/// the head alone (RFC 3261 §21.5.7), the same headers an error answer
/// copies and nothing of the body.
#[test]
fn golden_513() {
    let server = Server::start();
    let body = "a=x-padding\r\n".repeat(3000);
    golden(
        &server,
        &format!(
            "INVITE sip:+18005550100@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{{port}};branch=z9hG4bK-g513;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+16505550123@127.0.0.1>;tag=g513\r\n\
             To: <sip:+18005550100@127.0.0.1>\r\n\
             Call-ID: golden-513\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\
             \r\n\
             {body}",
            body.len()
        ),
        "SIP/2.0 513 Message Too Large\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g513;rport={port};received=127.0.0.1\r\n\
         From: <sip:+16505550123@127.0.0.1>;tag=g513\r\n\
         To: <sip:+18005550100@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: golden-513\r\n\
         CSeq: 1 INVITE\r\n\
         Server: switchboard/0.1.0\r\n\
         Content-Length: 0\r\n\
         \r\n",
        TagOf {
            call_id: "golden-513",
            from_tag: "g513",
            branch: "z9hG4bK-g513",
            cseq: "1 INVITE",
        },
    );
}

#[test]
fn golden_480() {
    let server = Server::start();
    golden(
        &server,
        "INVITE sip:+18005550144@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g480;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+19995550123@127.0.0.1>;tag=g480\r\n\
         To: <sip:+18005550144@127.0.0.1>\r\n\
         Call-ID: golden-480\r\n\
         CSeq: 10 INVITE\r\n\
         Content-Length: 0\r\n\
         \r\n",
        "SIP/2.0 480 Temporarily Unavailable\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g480;rport={port};received=127.0.0.1\r\n\
         From: <sip:+19995550123@127.0.0.1>;tag=g480\r\n\
         To: <sip:+18005550144@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: golden-480\r\n\
         CSeq: 10 INVITE\r\n\
         Reason: SIP;cause=480;text=\"User has no phone\"\r\n\
         Server: switchboard/0.1.0\r\n\
         Content-Length: 0\r\n\
         \r\n",
        TagOf {
            call_id: "golden-480",
            from_tag: "g480",
            branch: "z9hG4bK-g480",
            cseq: "10 INVITE",
        },
    );
}

#[test]
fn golden_404() {
    let server = Server::start();
    golden(
        &server,
        "INVITE tel:+1-999-555-0000 SIP/2.0\r\n\
         v: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g404;rport\r\n\
         Max-Forwards: 70\r\n\
         f: <sip:+16505550123@127.0.0.1>;tag=g404\r\n\
         t: <tel:+1-999-555-0000>\r\n\
         i: golden-404\r\n\
         CSeq: 2 INVITE\r\n\
         l: 0\r\n\
         \r\n",
        "SIP/2.0 404 Not Found\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-g404;rport={port};received=127.0.0.1\r\n\
         From: <sip:+16505550123@127.0.0.1>;tag=g404\r\n\
         To: <tel:+1-999-555-0000>;tag={to_tag}\r\n\
         Call-ID: golden-404\r\n\
         CSeq: 2 INVITE\r\n\
         Server: switchboard/0.1.0\r\n\
         Content-Length: 0\r\n\
         \r\n",
        TagOf {
            call_id: "golden-404",
            from_tag: "g404",
            branch: "z9hG4bK-g404",
            cseq: "2 INVITE",
        },
    );
}

#[test]
fn golden_options() {
    let server = Server::start();
    golden(
        &server,
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-gopt\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ping@127.0.0.1>;tag=gopt\r\n\
         To: <sip:127.0.0.1>\r\n\
         Call-ID: golden-options\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\
         \r\n",
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-gopt\r\n\
         From: <sip:ping@127.0.0.1>;tag=gopt\r\n\
         To: <sip:127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: golden-options\r\n\
         CSeq: 1 OPTIONS\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Supported: \r\n\
         Server: switchboard/0.1.0\r\n\
         Content-Length: 0\r\n\
         \r\n",
        TagOf {
            call_id: "golden-options",
            from_tag: "gopt",
            branch: "z9hG4bK-gopt",
            cseq: "1 OPTIONS",
        },
    );
}

/// The To tag's properties, whatever the hash: `sb` and 16 lowercase hex
/// digits; the same for a retransmission, for the same request from
/// another port and at another replica, and whatever the other headers
/// say; different as soon as the Call-ID, the From tag, the branch or the
/// CSeq differs.
#[test]
fn the_to_tag_names_the_transaction_and_nothing_else() {
    let server = Server::start();
    let replica = Server::start();
    let tag = |server: &Server, client: &UdpClient, parts: &TagOf<'_>, max_forwards: u8| {
        let message = request(
            &[
                "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
                &format!(
                    "Via: SIP/2.0/UDP 127.0.0.1:{{port}};branch={};rport",
                    parts.branch
                ),
                &format!("Max-Forwards: {max_forwards}"),
                &format!("From: <sip:+16505550123@127.0.0.1>;tag={}", parts.from_tag),
                "To: <sip:+18005550100@127.0.0.1>",
                &format!("Call-ID: {}", parts.call_id),
                &format!("CSeq: {}", parts.cseq),
                "Content-Length: 0",
                "",
            ],
            client.port(),
        );
        let answer = client.exchange(server.udp, &message);
        assert_eq!(status(&answer), 302, "{answer}");
        let to = header(&answer, "To").expect("a To header");
        let (uri, tag) = to.split_once(";tag=").expect("a To tag");
        assert_eq!(uri, "<sip:+18005550100@127.0.0.1>", "{answer}");
        assert!(
            tag.len() == 18
                && tag.starts_with("sb")
                && tag[2..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "not sb and 16 lowercase hex digits: {tag:?}"
        );
        tag.to_owned()
    };
    let base = TagOf {
        call_id: "tag-call",
        from_tag: "tag-from",
        branch: "z9hG4bK-tag",
        cseq: "1 INVITE",
    };
    let client = UdpClient::new();
    let first = tag(&server, &client, &base, 70);
    assert_eq!(first, base.tag(), "the tag is not derived as described");
    assert_eq!(tag(&server, &client, &base, 70), first, "a retransmission");
    let other = UdpClient::new();
    assert_eq!(tag(&replica, &other, &base, 70), first, "another replica");
    assert_eq!(
        tag(&server, &client, &base, 9),
        first,
        "another Max-Forwards"
    );

    let mut seen = vec![first];
    for changed in [
        TagOf {
            call_id: "tag-call-2",
            ..base
        },
        TagOf {
            from_tag: "tag-from-2",
            ..base
        },
        TagOf {
            branch: "z9hG4bK-tag-2",
            ..base
        },
        TagOf {
            cseq: "2 INVITE",
            ..base
        },
    ] {
        let got = tag(&server, &client, &changed, 70);
        assert!(!seen.contains(&got), "{got} seen before: {seen:?}");
        seen.push(got);
    }
}

#[test]
fn a_retransmitted_invite_gets_a_byte_identical_answer() {
    let server = Server::start();
    let client = UdpClient::new();
    let message = invite(
        "+18005550100",
        "+16505550123",
        "retransmit-1",
        client.port(),
    );
    let first = client.exchange(server.udp, &message);
    let second = client.exchange(server.udp, &message);
    assert_eq!(status(&first), 302);
    assert_eq!(first, second);
}

// ---- the docs/sip.md table, row by row ------------------------------------

#[test]
fn invite_without_to_tag_gets_the_routing_outcome() {
    let server = Server::start();
    let client = UdpClient::new();
    for (dialed, caller, want, contact) in [
        (
            "+18005550100",
            "+16505550123",
            302,
            Some("<sip:+14155550101@127.0.0.1;user=phone>"),
        ),
        (
            "+18005550111",
            "+16505550155",
            302,
            Some("<sip:+14155550101@127.0.0.1;user=phone>"),
        ),
        (
            "+18005550122",
            "+16505550155",
            302,
            Some("<sip:carol@pbx.acme.example>"),
        ),
        (
            "+18005550133",
            "+19995550123",
            302,
            Some("<sip:+14155550000@127.0.0.1;user=phone>"),
        ),
        ("+18005550144", "+16505550155", 480, None),
        (
            "+442079460100",
            "+447911555555",
            302,
            Some("<sip:+447400123456@sbc.globex.example;user=phone>"),
        ),
        ("+19995550000", "+16505550123", 404, None),
        (
            "8005550100",
            "6505550123",
            302,
            Some("<sip:+14155550101@127.0.0.1;user=phone>"),
        ),
    ] {
        let answer = client.exchange(
            server.udp,
            &invite(dialed, caller, &format!("row1-{dialed}"), client.port()),
        );
        assert_eq!(status(&answer), want, "{dialed} from {caller}: {answer}");
        assert_eq!(
            header(&answer, "Contact"),
            contact,
            "{dialed} from {caller}: {answer}"
        );
    }
}

#[test]
fn reinvite_with_to_tag_gets_481() {
    let server = Server::start();
    let lines = basic("INVITE", "sip:+18005550100@127.0.0.1", &[]);
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| {
            if l.starts_with("To:") {
                format!("{l};tag=existing")
            } else {
                l
            }
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let answer = udp_exchange(&server, &refs);
    assert!(
        answer.starts_with("SIP/2.0 481 Call/Transaction Does Not Exist\r\n"),
        "{answer}"
    );
    // The existing tag is kept, not a second one added.
    assert_eq!(
        header(&answer, "To"),
        Some("<sip:+18005550100@127.0.0.1>;tag=existing")
    );
}

#[test]
fn ack_and_cancel_get_nothing() {
    let server = Server::start();
    let client = UdpClient::new();
    for method in ["ACK", "CANCEL"] {
        let lines = basic(method, "sip:+18005550100@127.0.0.1", &[]);
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_silent(&server, &client, &request(&refs, client.port()));
    }
    // Still serving.
    assert_eq!(
        status(&send_basic(&server, "OPTIONS", "sip:127.0.0.1", &[])),
        200
    );
}

#[test]
fn options_gets_200_with_allow_accept_supported() {
    let server = Server::start();
    let answer = send_basic(&server, "OPTIONS", "sip:127.0.0.1", &[]);
    assert_eq!(status(&answer), 200);
    assert_eq!(
        header(&answer, "Allow"),
        Some("INVITE, ACK, CANCEL, BYE, OPTIONS")
    );
    assert_eq!(header(&answer, "Accept"), Some("application/sdp"));
    assert!(header(&answer, "Supported").is_some());
}

#[test]
fn bye_gets_481() {
    let server = Server::start();
    assert_eq!(
        status(&send_basic(
            &server,
            "BYE",
            "sip:+18005550100@127.0.0.1",
            &[]
        )),
        481
    );
}

#[test]
fn other_methods_get_405_with_allow() {
    let server = Server::start();
    for method in ["REGISTER", "SUBSCRIBE", "NEWMETHOD", "invite"] {
        let answer = send_basic(&server, method, "sip:127.0.0.1", &[]);
        assert!(
            answer.starts_with("SIP/2.0 405 Method Not Allowed\r\n"),
            "{method}: {answer}"
        );
        assert_eq!(
            header(&answer, "Allow"),
            Some("INVITE, ACK, CANCEL, BYE, OPTIONS"),
            "{method}"
        );
    }
}

#[test]
fn max_forwards_zero_gets_483() {
    let server = Server::start();
    let lines: Vec<String> = basic("INVITE", "sip:+18005550100@127.0.0.1", &[])
        .into_iter()
        .map(|l| {
            if l.starts_with("Max-Forwards") {
                "Max-Forwards: 0".to_owned()
            } else {
                l
            }
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let answer = udp_exchange(&server, &refs);
    assert!(
        answer.starts_with("SIP/2.0 483 Too Many Hops\r\n"),
        "{answer}"
    );
}

#[test]
fn unsupported_uri_schemes_get_416() {
    let server = Server::start();
    for uri in [
        "http://example.com/+18005550100",
        "mailto:ops@example.com",
        "urn:service:sos",
    ] {
        let answer = send_basic(&server, "INVITE", uri, &[]);
        assert!(
            answer.starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"),
            "{uri}: {answer}"
        );
    }
}

#[test]
fn other_sip_versions_get_505() {
    let server = Server::start();
    let lines: Vec<String> = basic("INVITE", "sip:+18005550100@127.0.0.1", &[])
        .into_iter()
        .map(|l| {
            l.replace(" SIP/2.0", " SIP/7.0")
                .replace("Via: SIP/7.0", "Via: SIP/2.0")
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let answer = udp_exchange(&server, &refs);
    assert!(
        answer.starts_with("SIP/2.0 505 Version Not Supported\r\n"),
        "{answer}"
    );
}

#[test]
fn unsupported_require_gets_420_with_unsupported() {
    let server = Server::start();
    let answer = send_basic(
        &server,
        "INVITE",
        "sip:+18005550100@127.0.0.1",
        &["Require: 100rel, foo"],
    );
    assert!(
        answer.starts_with("SIP/2.0 420 Bad Extension\r\n"),
        "{answer}"
    );
    assert_eq!(header(&answer, "Unsupported"), Some("100rel, foo"));
}

#[test]
fn malformed_requests_with_a_via_get_400_saying_why() {
    let server = Server::start();
    let cases: [(&[&str], &str); 4] = [
        (&["Call-ID: second"], "400 Duplicate Call-ID"),
        (&["From: <sip:x@y>;tag=2"], "400 Duplicate From"),
        (&["Content-Length: 5"], "400 Duplicate Content-Length"),
        (&["Max-Forwards: many"], "400 Malformed Max-Forwards"),
    ];
    for (extra, want) in cases {
        let answer = send_basic(&server, "INVITE", "sip:+18005550100@127.0.0.1", extra);
        assert!(
            answer.starts_with(&format!("SIP/2.0 {want}\r\n")),
            "{extra:?}: {answer}"
        );
        assert_eq!(header(&answer, "Call-ID"), Some("basic-1"), "{answer}");
    }
    let mismatch: Vec<String> = basic("INVITE", "sip:+18005550100@127.0.0.1", &[])
        .into_iter()
        .map(|l| {
            if l.starts_with("CSeq") {
                "CSeq: 7 OPTIONS".to_owned()
            } else {
                l
            }
        })
        .collect();
    let refs: Vec<&str> = mismatch.iter().map(String::as_str).collect();
    assert!(udp_exchange(&server, &refs).starts_with("SIP/2.0 400 CSeq Method Mismatch\r\n"));
}

#[test]
fn no_usable_via_or_not_sip_is_dropped() {
    let server = Server::start();
    let client = UdpClient::new();
    let no_via: Vec<String> = basic("INVITE", "sip:+18005550100@127.0.0.1", &[])
        .into_iter()
        .filter(|l| !l.starts_with("Via"))
        .collect();
    let refs: Vec<&str> = no_via.iter().map(String::as_str).collect();
    assert_silent(&server, &client, &request(&refs, client.port()));
    assert_silent(&server, &client, b"\x00\x01\x02garbage\xff");
    assert_silent(&server, &client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_silent(
        &server,
        &client,
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n",
    );
    assert_eq!(
        status(&send_basic(&server, "OPTIONS", "sip:127.0.0.1", &[])),
        200
    );
}

// ---- transports ----------------------------------------------------------

#[test]
fn without_rport_the_answer_goes_to_the_sent_by_port() {
    // RFC 3261 §18.2.2: received address, Via port; not the source port.
    let server = Server::start();
    let sender = UdpClient::new();
    let listener = UdpClient::new();
    let message = request(
        &[
            "OPTIONS sip:127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-sentby",
            "From: <sip:ping@127.0.0.1>;tag=1",
            "To: <sip:127.0.0.1>",
            "Call-ID: sent-by",
            "CSeq: 1 OPTIONS",
            "",
            "",
        ],
        listener.port(),
    );
    sender.send(server.udp, &message);
    let answer = listener
        .receive_within(common::ANSWER_TIMEOUT)
        .expect("answer at the Via port");
    assert_eq!(status(&String::from_utf8_lossy(&answer)), 200);
    assert!(sender.receive_within(QUIET).is_none());
}

#[test]
fn tcp_frames_several_messages_split_reads_and_keep_alives() {
    let server = Server::start();
    let mut client = TcpClient::connect(server.tcp);
    let port = client.port();
    let one = |call: &str| {
        request(
            &[
                "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
                "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp",
                "Max-Forwards: 70",
                "From: <sip:+16505550123@127.0.0.1>;tag=t",
                "To: <sip:+18005550100@127.0.0.1>",
                &format!("Call-ID: {call}"),
                "CSeq: 1 INVITE",
                "Content-Type: application/sdp",
                "Content-Length: 10",
                "",
                "v=0\r\no=x\r\n",
            ],
            port,
        )
        .strip_suffix(b"\r\n")
        .expect("CRLF")
        .to_vec()
    };
    // Two messages in one write.
    let mut both = one("tcp-a");
    both.extend_from_slice(&one("tcp-b"));
    client.send(&both);
    let answers = client.read_responses(2);
    assert!(
        answers[0].contains("Call-ID: tcp-a") && answers[1].contains("Call-ID: tcp-b"),
        "{answers:?}"
    );
    // One message over many writes.
    for chunk in one("tcp-c").chunks(7) {
        client.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    let answers = client.read_responses(1);
    assert_eq!(status(&answers[0]), 302);
    assert!(answers[0].contains("Call-ID: tcp-c"));
    // Keep-alive: CRLF CRLF gets CRLF.
    client.send(b"\r\n\r\n");
    assert_eq!(client.read_exact(2), b"\r\n");
    // The sent-by host is the source address and there is no rport: the
    // top Via comes back unchanged.
    client.send(&one("tcp-d"));
    let answers = client.read_responses(1);
    assert!(
        answers[0].contains(&format!(
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp\r\n"
        )),
        "{}",
        answers[0]
    );
}

#[test]
fn tcp_answers_what_came_before_a_framing_error_then_closes() {
    let server = Server::start();
    let mut client = TcpClient::connect(server.tcp);
    let port = client.port();
    let message = |call: &str, length: &str| {
        request(
            &[
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-fe",
                "Max-Forwards: 70",
                "From: <sip:ping@127.0.0.1>;tag=t",
                "To: <sip:127.0.0.1>",
                &format!("Call-ID: {call}"),
                "CSeq: 1 OPTIONS",
                &format!("Content-Length: {length}"),
                "",
            ],
            port,
        )
    };
    // Two requests, a keep-alive and a message whose length cannot be
    // read, in one write: the answers go out (in one write, in order),
    // then the connection closes.
    let mut all = message("fe-a", "0");
    all.extend_from_slice(b"\r\n\r\n");
    all.extend_from_slice(&message("fe-b", "0"));
    all.extend_from_slice(&message("fe-c", "many"));
    client.send(&all);
    let mut received = Vec::new();
    client
        .stream
        .read_to_end(&mut received)
        .expect("closed within the timeout");
    let text = String::from_utf8_lossy(&received);
    let a = text.find("Call-ID: fe-a").expect("fe-a answered");
    let b = text.find("Call-ID: fe-b").expect("fe-b answered");
    assert!(a < b, "{text}");
    assert_eq!(text.matches("SIP/2.0 200 OK\r\n").count(), 2, "{text}");
    assert!(!text.contains("fe-c"), "{text}");
    assert!(
        text.contains("\r\n\r\n\r\nSIP/2.0 200 OK"),
        "the keep-alive's CRLF between: {text}"
    );
}

#[test]
fn a_tcp_message_without_content_length_gets_400() {
    let server = Server::start();
    let mut client = TcpClient::connect(server.tcp);
    let port = client.port();
    client.send(&request(
        &[
            "OPTIONS sip:127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-nocl",
            "From: <sip:ping@127.0.0.1>;tag=1",
            "To: <sip:127.0.0.1>",
            "Call-ID: no-cl",
            "CSeq: 1 OPTIONS",
            "",
        ],
        port,
    ));
    let answers = client.read_responses(1);
    assert!(
        answers[0].starts_with("SIP/2.0 400 Missing Content-Length\r\n"),
        "{}",
        answers[0]
    );
}

#[test]
fn ipv6_loopback_is_served() {
    common::require_ipv6_loopback();
    let data = common::example_data();
    let server = Server::start_with(&["--routing", &data, "--listen", "[::1]:0"]);
    let client = UdpClient::bind("[::1]:0");
    let message = request(
        &[
            "INVITE sip:+18005550100@[::1] SIP/2.0",
            "Via: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6",
            "From: <sip:+16505550123@[::1]>;tag=6",
            "To: <sip:+18005550100@[::1]>",
            "Call-ID: v6",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        client.port(),
    );
    let answer = client.exchange(server.udp, &message);
    assert_eq!(status(&answer), 302, "{answer}");
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@[::1];user=phone>")
    );
}

// ---- trust, settings, reload, lifecycle -----------------------------------

#[test]
fn untrusted_peers_get_nothing_and_pai_counts_only_from_trusted_ones() {
    let data = common::example_data();
    // Only 127.0.0.2 is trusted; 127.0.0.1 is not.
    let server = Server::start_with(&["--routing", &data, "--trust", "127.0.0.2/32"]);
    let outsider = UdpClient::new();
    assert_silent(
        &server,
        &outsider,
        &invite("+18005550100", "+16505550123", "untrusted", outsider.port()),
    );
    let trusted = UdpClient::bind("127.0.0.2:0");
    let with_pai = |pai: &str| {
        request(
            &[
                "INVITE sip:+18005550111@127.0.0.1 SIP/2.0",
                "Via: SIP/2.0/UDP 127.0.0.2:{port};branch=z9hG4bK-pai;rport",
                "From: <sip:anonymous@anonymous.invalid>;tag=p",
                "To: <sip:+18005550111@127.0.0.1>",
                &format!("P-Asserted-Identity: {pai}"),
                "Privacy: id",
                "Call-ID: pai",
                "CSeq: 1 INVITE",
                "Content-Length: 0",
                "",
            ],
            trusted.port(),
        )
    };
    // PAI names alice's contact: rule 2.
    let answer = trusted.exchange(
        server.udp,
        &with_pai("\"Eli\" <sip:+16505550155@carrier.example;user=phone>, <tel:+16505550155>"),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.2;user=phone>"),
        "{answer}"
    );
    // A PAI whose first URI has no number: the tel URI is used.
    let answer = trusted.exchange(
        server.udp,
        &with_pai("<sip:trunk@carrier.example>, <tel:+16505550155>"),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.2;user=phone>"),
        "{answer}"
    );
}

#[test]
fn untrusted_reject_mode_answers_403() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.yaml");
    fs::write(
        &config,
        format!(
            "routing: {}\ntrust: [10.0.0.0/8]\nuntrusted: reject\nrule_header: true\n",
            common::example_data()
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let answer = send_basic(&server, "INVITE", "sip:+18005550100@127.0.0.1", &[]);
    assert!(answer.starts_with("SIP/2.0 403 Forbidden\r\n"), "{answer}");
}

/// Settings trusting 127.0.0.1 only, answering everyone else `403` (so an
/// untrusted peer's answer can be read), with the rule header on.
fn trust_only_127_0_0_1(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("switchboard.yaml");
    fs::write(
        &config,
        format!(
            "routing: {}\ntrust: [127.0.0.1/32]\nuntrusted: reject\nrule_header: true\n",
            common::example_data()
        ),
    )
    .unwrap();
    config
}

/// The sales line (+18005550111, nobody's) from a caller nobody knows
/// (+16505550199: the forwarding rule), with `extra` headers.
fn sales_line_call(port: u16, extra: &[&str]) -> Vec<u8> {
    let lines = basic("INVITE", "sip:+18005550111@127.0.0.1", extra);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    request(&refs, port)
}

/// A trusted peer's P-Asserted-Identity decides the caller (RFC 3325): the
/// same call goes by its From without one (forwarding) and to the asserted
/// number's owner with one (contact_owner).
#[test]
fn pai_from_a_trusted_peer_decides_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let config = trust_only_127_0_0_1(dir.path());
    let server = Server::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--trust",
        "127.0.0.1/32",
    ]);
    let client = UdpClient::new();
    let without = client.exchange(server.udp, &sales_line_call(client.port(), &[]));
    assert_eq!(status(&without), 302, "{without}");
    assert_eq!(
        header(&without, "X-Switchboard-Rule"),
        Some("forwarding"),
        "{without}"
    );
    assert_eq!(
        header(&without, "Contact"),
        Some("<sip:+14155550199@127.0.0.1;user=phone>"),
        "{without}"
    );
    let answer = send_basic(
        &server,
        "INVITE",
        "sip:+18005550111@127.0.0.1",
        &["P-Asserted-Identity: <sip:+16505550155@x>"],
    );
    assert_eq!(
        header(&answer, "X-Switchboard-Rule"),
        Some("contact_owner"),
        "{answer}"
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.1;user=phone>"),
        "{answer}"
    );
}

/// An untrusted peer's P-Asserted-Identity cannot influence routing. No
/// setting lets an untrusted peer's INVITE be routed at all (docs/security.md:
/// silence or `403`, never a routing answer; `caller()` in the handler reads
/// PAI only from trusted peers), so this is what can be seen from outside:
/// from 127.0.0.2, the call with the PAI that moves it for a trusted peer
/// gets the very same `403`, byte for byte, as without it, with no Contact
/// and no rule; from 127.0.0.1, on the same server, that PAI does move it.
#[test]
fn pai_from_an_untrusted_peer_cannot_influence_routing() {
    let dir = tempfile::tempdir().unwrap();
    let config = trust_only_127_0_0_1(dir.path());
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let pai = "P-Asserted-Identity: <sip:+16505550155@x>";

    let outsider = UdpClient::bind("127.0.0.2:0");
    let with_pai = outsider.exchange(server.udp, &sales_line_call(outsider.port(), &[pai]));
    let without = outsider.exchange(server.udp, &sales_line_call(outsider.port(), &[]));
    assert!(
        with_pai.starts_with("SIP/2.0 403 Forbidden\r\n"),
        "{with_pai}"
    );
    assert_eq!(
        with_pai, without,
        "the PAI changed an untrusted peer's answer"
    );
    assert_eq!(header(&with_pai, "Contact"), None, "{with_pai}");
    assert_eq!(header(&with_pai, "X-Switchboard-Rule"), None, "{with_pai}");

    // The control: the same PAI from the trusted address is honoured.
    let insider = UdpClient::new();
    let trusted = insider.exchange(server.udp, &sales_line_call(insider.port(), &[pai]));
    assert_eq!(
        header(&trusted, "X-Switchboard-Rule"),
        Some("contact_owner"),
        "{trusted}"
    );
}

/// The server's Contact template from `SWITCHBOARD_CONTACT_TEMPLATE` and
/// from `--contact-template`; the flag beats the variable (docs/operations.md:
/// the file, then the environment, then flags), an account's own template
/// beats both.
#[test]
fn contact_template_flag_and_environment() {
    let data = common::example_data();
    let variable = (
        "SWITCHBOARD_CONTACT_TEMPLATE",
        "sip:{number}@env.example.net;tpl=env",
    );
    let client = UdpClient::new();

    // The variable alone.
    let server = Server::start_with_env(&["--routing", &data], &[variable]);
    let answer = client.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "tpl-env", client.port()),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@env.example.net;tpl=env>"),
        "{answer}"
    );
    drop(server);

    // The flag and the variable: the flag wins.
    let server = Server::start_with_env(
        &[
            "--routing",
            &data,
            "--contact-template",
            "sip:{number}@pstn.example.net;user=phone;src={source}",
        ],
        &[variable],
    );
    let answer = client.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "tpl", client.port()),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some(
            format!(
                "<sip:+14155550101@pstn.example.net;user=phone;src=127.0.0.1:{}>",
                client.port()
            )
            .as_str()
        )
    );
    // An account's own template wins over the server's.
    let answer = client.exchange(
        server.udp,
        &invite("+442079460100", "+447911555555", "tpl2", client.port()),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+447400123456@sbc.globex.example;user=phone>")
    );
}

#[test]
fn settings_come_from_the_environment_too() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    let out = command
        .args(["serve"])
        .env(
            "SWITCHBOARD_ROUTING",
            common::project_path("tests/fixtures/bad.yaml"),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .output()
        .expect("runs");
    // The routing data came from the environment: it is refused with its report.
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:10: error: number +18005550100 is assigned to both alice"),
        "{stderr}"
    );
    assert!(stderr.contains("not starting"), "{stderr}");
}

#[test]
fn routing_changes_are_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    let data = |target: &str| {
        format!(
            "accounts:\n  - id: a\n    numbers:\n      - number: \"+18005550100\"\n        forward_to: \"{target}\"\n"
        )
    };
    fs::write(&file, data("+14155550001")).unwrap();
    let server = Server::start_with(&[
        "--routing",
        file.to_str().unwrap(),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = server.admin.expect("the admin address");
    let client = UdpClient::new();
    let contact = |call: &str| {
        let answer = client.exchange(
            server.udp,
            &invite("+18005550100", "+16505550123", call, client.port()),
        );
        header(&answer, "Contact").map(str::to_owned)
    };
    assert_eq!(
        contact("r1").as_deref(),
        Some("<sip:+14155550001@127.0.0.1;user=phone>")
    );
    let tmp = dir.path().join(".new");
    fs::write(&tmp, data("+14155550002")).unwrap();
    fs::rename(&tmp, &file).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if contact("r2").as_deref() == Some("<sip:+14155550002@127.0.0.1;user=phone>") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Broken data: once the reload has run and failed (counted in
    // /metrics), the last good table keeps serving.
    fs::write(&file, "accounts: [").unwrap();
    let failed = r#"switchboard_reloads_total{result="failed"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let scrape = loop {
        let (code, scrape) = common::http_get(admin, "/metrics");
        assert_eq!(code, 200, "{scrape}");
        if common::metric_value(&scrape, failed).is_some_and(|n| n >= 1.0) {
            break scrape;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the broken data's reload was not counted as failed:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        common::metric_value(&scrape, r#"switchboard_reloads_total{result="ok"}"#),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        contact("r3").as_deref(),
        Some("<sip:+14155550002@127.0.0.1;user=phone>")
    );
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let server = Server::start();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn tcp_reads_a_folded_content_length_and_bare_line_feeds() {
    let server = Server::start();
    let mut client = TcpClient::connect(server.tcp);
    let port = client.port();
    let folded = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-f\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: folded-cl\r\nCSeq: 1 OPTIONS\r\nContent-Length:\r\n 2\r\n\r\nhi"
    );
    let bare = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-b\nFrom: <sip:a@127.0.0.1>\n ;tag=2\nTo: <sip:127.0.0.1>\nCall-ID: bare-lf\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    );
    client.send(format!("{folded}{bare}").as_bytes());
    let answers = client.read_responses(2);
    assert_eq!(status(&answers[0]), 200, "{}", answers[0]);
    assert!(
        answers[1].contains("Call-ID: bare-lf\r\n"),
        "{}",
        answers[1]
    );
    // The folded From comes back on one line, with no bare LF.
    assert!(
        answers[1].contains("\r\nFrom: <sip:a@127.0.0.1> ;tag=2\r\n"),
        "{}",
        answers[1]
    );
    assert!(
        !answers[1].replace("\r\n", "").contains('\n'),
        "{:?}",
        answers[1]
    );
}

//! A SIP torture suite of our own, after the categories of RFC 4475 (SIP
//! torture test messages) and RFC 5118 (IPv6 torture tests), with messages
//! written for switchboard's example data (config/routing.yaml):
//! +18005550100 is Alice's line (302 to
//! `<sip:+14155550101@127.0.0.1;user=phone>` when asked from 127.0.0.1),
//! +19995550000 is nobody's number (404).
//!
//! Every test starts the real binary once and sends it raw bytes over UDP
//! (some over TCP), checking the exact outcome docs/sip.md demands: valid
//! but tricky messages are routed, malformed ones with a usable Via get a
//! `400` whose reason phrase says what is wrong, and messages without a
//! usable Via, responses and garbage get no answer at all, after which the
//! server must still answer.
//!
//! Messages are written as lines; `{port}` becomes the client's port (so
//! the answer comes back to it, RFC 3261 §18.2.2) and `{len}` the length
//! of the body after the blank line.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{ANSWER_TIMEOUT, Server, UdpClient, example_data};

/// How long a test waits to be sure nothing is coming.
const QUIET: Duration = Duration::from_millis(300);

/// Alice's phone, at the host that asked (the default contact template).
const ALICE: &str = "<sip:+14155550101@127.0.0.1;user=phone>";
const ALICE_V6: &str = "<sip:+14155550101@[::1];user=phone>";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Joins `lines` with CRLF (each line gets one), then fills `{port}` and
/// `{len}` (the length of what follows the first empty line).
fn build(lines: &[&str], port: u16) -> Vec<u8> {
    build_with_body(lines, &[], port)
}

/// Like [`build`], with `body` (any bytes) appended after the lines;
/// `{len}` counts the body lines and `body` together.
fn build_with_body(lines: &[&str], body: &[u8], port: u16) -> Vec<u8> {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    let text = text.replace("{port}", &port.to_string());
    let body_len = text.find("\r\n\r\n").map_or(0, |i| text.len() - i - 4) + body.len();
    let mut bytes = text.replace("{len}", &body_len.to_string()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One response, kept as text (bytes that are not UTF-8 are replaced).
#[derive(Debug, Clone)]
struct Answer {
    raw: Vec<u8>,
    text: String,
}

impl Answer {
    fn new(raw: Vec<u8>) -> Answer {
        let text = String::from_utf8_lossy(&raw).into_owned();
        Answer { raw, text }
    }

    fn status(&self) -> u16 {
        common::status(&self.text)
    }

    /// The reason phrase of the status line.
    fn reason(&self) -> &str {
        let line = self.text.split("\r\n").next().unwrap_or_default();
        line.splitn(3, ' ').nth(2).unwrap_or_default()
    }

    /// Every value of the header `name` (full name, any case), in order,
    /// with continuation lines kept (joined by CRLF) as sent.
    fn all(&self, name: &str) -> Vec<String> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or_default();
        let mut fields: Vec<String> = Vec::new();
        for line in head.split("\r\n").skip(1) {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.push_str("\r\n");
                    last.push_str(line);
                }
            } else {
                fields.push(line.to_owned());
            }
        }
        fields
            .iter()
            .filter_map(|field| {
                let (n, v) = field.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .collect()
    }

    /// The one value of the header `name`.
    fn one(&self, name: &str) -> String {
        let all = self.all(name);
        assert_eq!(all.len(), 1, "one {name} expected in\n{}", self.text);
        all.into_iter().next().unwrap_or_default()
    }

    /// Every Via value in canonical form (see [`canon`]).
    fn vias(&self) -> Vec<String> {
        self.all("Via").iter().map(|v| canon(v)).collect()
    }

    /// The Via values are these, in this order (compared canonically).
    fn assert_vias(&self, want: &[String]) {
        let want: Vec<String> = want.iter().map(|v| canon(v)).collect();
        assert_eq!(self.vias(), want, "{}", self.text);
    }

    /// Checks the framing every response must have whatever it answers:
    /// a SIP/2.0 status line, CRLF line ends only, a `Content-Length: 0`
    /// and nothing after the blank line.
    fn assert_well_formed(&self) {
        assert!(self.text.starts_with("SIP/2.0 "), "{}", self.text);
        assert!(self.text.ends_with("\r\n\r\n"), "{}", self.text);
        for (i, &b) in self.raw.iter().enumerate() {
            match b {
                b'\n' => assert!(
                    i > 0 && self.raw[i - 1] == b'\r',
                    "bare LF at {i} in {:?}",
                    self.text
                ),
                b'\r' => assert_eq!(
                    self.raw.get(i + 1),
                    Some(&b'\n'),
                    "bare CR at {i} in {:?}",
                    self.text
                ),
                _ => {}
            }
        }
        let head_len = self.text.find("\r\n\r\n").map_or(0, |i| i + 4);
        assert_eq!(head_len, self.raw.len(), "a body in {:?}", self.text);
        assert_eq!(self.one("Content-Length"), "0");
    }

    /// The routing answer for Alice's line: 302 to her phone, with a To tag.
    fn assert_alice(&self, contact: &str) {
        self.assert_well_formed();
        assert_eq!(self.status(), 302, "{}", self.text);
        assert_eq!(self.one("Contact"), contact, "{}", self.text);
        assert!(self.one("To").contains(";tag="), "{}", self.text);
    }

    /// A `400` whose reason phrase names the problem.
    fn assert_bad_request(&self, says: &str) {
        self.assert_well_formed();
        assert_eq!(self.status(), 400, "{}", self.text);
        assert!(
            self.reason()
                .to_ascii_lowercase()
                .contains(&says.to_ascii_lowercase()),
            "reason {:?} should say {says:?}:\n{}",
            self.reason(),
            self.text
        );
    }
}

/// `s` with every run of SP, HTAB, CR and LF turned into one space.
fn squash(s: &str) -> String {
    s.split([' ', '\t', '\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A header value with its linear white space (folding included) squashed
/// and dropped next to separators (`;`, `,`, `=`, `/`, `:`), where RFC 3261
/// §7.3.1 makes it meaningless: a response may echo a value as written or
/// unfolded, and both compare equal.
fn canon(s: &str) -> String {
    let squashed: Vec<char> = squash(s).chars().collect();
    let is_separator = |c: char| ";,=/:".contains(c);
    let mut out = String::new();
    for (i, &c) in squashed.iter().enumerate() {
        let next_to_separator = i
            .checked_sub(1)
            .map(|j| squashed[j])
            .is_some_and(is_separator)
            || squashed.get(i + 1).copied().is_some_and(is_separator);
        if c == ' ' && next_to_separator {
            continue;
        }
        out.push(c);
    }
    out
}

/// `actual` and `want` are the same header value (compared canonically).
fn assert_canon(actual: &str, want: &str) {
    assert_eq!(canon(actual), canon(want), "{actual:?}");
}

/// A server and the address family its clients use.
struct Torture {
    server: Server,
    client_addr: &'static str,
}

impl Torture {
    /// switchboard on 127.0.0.1 with the example data.
    fn start() -> Torture {
        Torture {
            server: Server::start(),
            client_addr: "127.0.0.1:0",
        }
    }

    /// switchboard on [::1]; the test fails, saying so, when this host has
    /// no IPv6 loopback.
    fn start_v6() -> Torture {
        common::require_ipv6_loopback();
        Torture {
            server: Server::start_with(&["--routing", &example_data(), "--listen", "[::1]:0"]),
            client_addr: "[::1]:0",
        }
    }

    /// A fresh UDP client (a fresh port per message, so an answer can never
    /// be taken for the answer to another message).
    fn client(&self) -> UdpClient {
        UdpClient::bind(self.client_addr)
    }

    /// Sends the message from a fresh client and returns the one answer.
    fn ask(&self, lines: &[&str]) -> Answer {
        self.ask_port(lines).0
    }

    /// Like [`Torture::ask`], also returning the client's port.
    fn ask_port(&self, lines: &[&str]) -> (Answer, u16) {
        let client = self.client();
        let message = build(lines, client.port());
        (self.ask_from(&client, &message), client.port())
    }

    fn ask_with_body(&self, lines: &[&str], body: &[u8]) -> Answer {
        let client = self.client();
        let message = build_with_body(lines, body, client.port());
        self.ask_from(&client, &message)
    }

    fn ask_from(&self, client: &UdpClient, message: &[u8]) -> Answer {
        client.send(self.server.udp, message);
        let answer = client
            .receive_within(ANSWER_TIMEOUT)
            .unwrap_or_else(|| panic!("no answer to\n{}", String::from_utf8_lossy(message)));
        Answer::new(answer)
    }

    /// Sends the message and checks that nothing comes back.
    fn silent(&self, lines: &[&str]) {
        let client = self.client();
        let message = build(lines, client.port());
        self.silent_from(&client, &message);
    }

    fn silent_bytes(&self, message: &[u8]) {
        self.silent_from(&self.client(), message);
    }

    fn silent_from(&self, client: &UdpClient, message: &[u8]) {
        client.send(self.server.udp, message);
        if let Some(answer) = client.receive_within(QUIET) {
            panic!(
                "expected no answer to\n{}\ngot\n{}",
                String::from_utf8_lossy(message),
                String::from_utf8_lossy(&answer)
            );
        }
    }

    /// After whatever came before, a plain OPTIONS still gets its 200.
    fn still_answers(&self) {
        let answer = self.ask(&[
            "OPTIONS sip:127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-alive;rport",
            "Max-Forwards: 70",
            "From: <sip:ping@127.0.0.1>;tag=alive",
            "To: <sip:127.0.0.1>",
            "Call-ID: still-alive",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
            "",
        ]);
        answer.assert_well_formed();
        assert_eq!(answer.status(), 200, "{}", answer.text);
    }

    fn tcp(&self) -> Tcp {
        Tcp::connect(self.server.tcp)
    }
}

/// A TCP connection with a reader that waits for what it needs.
struct Tcp {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Tcp {
    fn connect(to: SocketAddr) -> Tcp {
        let stream = TcpStream::connect(to).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Tcp {
            stream,
            buffer: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.stream.local_addr().expect("bound").port()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads until `done` says the buffer holds enough; false when the
    /// connection closed or `wait` passed first.
    fn read_until(&mut self, wait: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        while !done(&self.buffer) {
            if Instant::now() > deadline {
                return false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The next `count` responses (each ends at its blank line: they all
    /// carry `Content-Length: 0`).
    fn responses(&mut self, count: usize) -> Vec<Answer> {
        let complete = |buf: &[u8]| {
            let text = String::from_utf8_lossy(buf);
            text.matches("\r\n\r\n").count() >= count
        };
        assert!(
            self.read_until(ANSWER_TIMEOUT, complete),
            "{count} responses expected, got {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
        let mut answers = Vec::new();
        for _ in 0..count {
            let end = find(&self.buffer, b"\r\n\r\n").expect("complete") + 4;
            let raw: Vec<u8> = self.buffer.drain(..end).collect();
            answers.push(Answer::new(raw));
        }
        answers
    }

    /// Exactly these bytes come next.
    fn expect_bytes(&mut self, want: &[u8]) {
        assert!(
            self.read_until(ANSWER_TIMEOUT, |buf| buf.len() >= want.len()),
            "expected {want:?}, got {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
        let got: Vec<u8> = self.buffer.drain(..want.len()).collect();
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&got));
    }

    /// Nothing arrives for a while (and the connection stays open).
    fn expect_nothing(&mut self) {
        let got_something = self.read_until(QUIET, |buf| !buf.is_empty());
        assert!(
            !got_something && self.buffer.is_empty(),
            "expected nothing, got {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
    }

    /// The server closes the connection without answering.
    fn expect_closed(&mut self) {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut chunk = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "the connection stayed open");
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => panic!(
                    "expected the connection closed, got {:?}",
                    String::from_utf8_lossy(&chunk[..n])
                ),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break, // reset: closed too
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A plain INVITE for `dialed` over UDP with rport, plus `extra` header
/// lines; `call_id` (also in the branch) keeps messages apart.
fn invite_lines(dialed: &str, call_id: &str, extra: &[&str]) -> Vec<String> {
    let mut lines = vec![
        format!("INVITE sip:{dialed}@127.0.0.1;user=phone SIP/2.0"),
        format!("Via: SIP/2.0/UDP 127.0.0.1:{{port}};branch=z9hG4bK-{call_id};rport"),
        "Max-Forwards: 70".to_owned(),
        "From: <sip:+16505550100@127.0.0.1>;tag=caller-1".to_owned(),
        format!("To: <sip:{dialed}@127.0.0.1>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".to_owned(),
    ];
    lines.extend(extra.iter().map(|&l| l.to_owned()));
    lines.push("Content-Length: 0".to_owned());
    lines.push(String::new());
    lines
}

fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.1.1: valid messages, however tortuous, are parsed and routed
// ---------------------------------------------------------------------------

/// RFC 4475 §3.1.1.1 (a short tortuous INVITE) and §3.1.1.6 (no LWS
/// between display name and `<`): odd case, white space before colons,
/// folding everywhere, compact forms, leading zeros, unknown headers with
/// unusual values, several Via values across folded lines, and a body.
#[test]
fn rfc4475_3_1_1_1_tortuous_invite_is_routed() {
    let t = Torture::start();
    let (answer, port) = t.ask_port(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone;unknownparam SIP/2.0",
        "tO  :",
        " <sip:+18005550100@127.0.0.1;user=phone> ;   odd-param    = its-value",
        r#"fROm   : "Tortured \\\"Q\\\" Caller"      <sip:+16505550100@127.0.0.1>"#,
        "  ;",
        "  tag = t0rtur3d",
        "mAx-FoRwArDs: 0069",
        "cALL-iD: tortuous.1.adapted@192.0.2.77",
        "Content-Length   : {len}",
        "cseq: 0017",
        "  INVITE",
        "Via  : SIP  /   2.0",
        " /UDP",
        "    client.invalid:{port};branch=z9hG4bK-tortuous-1 ;",
        " rport",
        "s :",
        "StrangelyNamedHeader:   a first value",
        "   and its continuation",
        "HeaderWithOnlyPunctuation: ;;,,;;,;",
        "c: application/sdp",
        "Record-Route:",
        " <sip:edge.example.net;lr;unknownwith=value;unknown-no-value>",
        "v:  SIP  / 2.0  / TCP     relay.example.org   ;",
        "  branch  =   z9hG4bKrelay77  ,",
        " SIP  /    2.0   / UDP  192.0.2.200   ; branch=",
        " z9hG4bKedge42",
        r#"m:"Quoted \"\"\" name" <sip:caller@example.com> ; aparam ="#,
        "      avalue ;",
        "  bareparam ; q = 0.7",
        "",
        "v=0",
        "o=torture 7 7 IN IP4 192.0.2.77",
        "s=-",
        "c=IN IP4 192.0.2.77",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8",
        "a=rtpmap:0 PCMU/8000",
    ]);
    answer.assert_alice(ALICE);
    answer.assert_vias(&[
        format!(
            "SIP/2.0/UDP client.invalid:{port};branch=z9hG4bK-tortuous-1;rport={port};received=127.0.0.1"
        ),
        "SIP/2.0/TCP relay.example.org;branch=z9hG4bKrelay77,SIP/2.0/UDP 192.0.2.200;branch=z9hG4bKedge42".to_owned(),
    ]);
    assert_canon(
        &answer.one("From"),
        r#""Tortured \\\"Q\\\" Caller" <sip:+16505550100@127.0.0.1>;tag=t0rtur3d"#,
    );
    let to = canon(&answer.one("To"));
    assert!(
        to.starts_with("<sip:+18005550100@127.0.0.1;user=phone>;odd-param=its-value;tag="),
        "{to}"
    );
    assert_eq!(squash(&answer.one("CSeq")), "0017 INVITE");
    assert_eq!(answer.one("Call-ID"), "tortuous.1.adapted@192.0.2.77");

    // §3.1.1.6: no white space between the display name and '<'.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-lwsdisp;rport",
        "Max-Forwards: 70",
        "From: caller<sip:+16505550100@127.0.0.1>;tag=lwsdisp",
        "To: Alice<sip:+18005550100@127.0.0.1>",
        "Call-ID: lwsdisp",
        "CSeq: 1 INVITE",
        "l: 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(
        answer.one("From"),
        "caller<sip:+16505550100@127.0.0.1>;tag=lwsdisp"
    );
}

/// RFC 3261 §7.3.1 / §7.3.3 (exercised by RFC 4475 §3.1.1.1): compact
/// forms (v f t i m l c k s e) in both cases, header names in odd case,
/// white space before the colon, and folding in every header we read.
#[test]
fn compact_forms_odd_case_and_folding_are_read() {
    let t = Torture::start();

    // Every compact form we know, lower case.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "v: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-compact;rport",
        "f: <sip:+16505550100@127.0.0.1>;tag=compact",
        "t: <sip:+18005550100@127.0.0.1>",
        "i: compact-forms@192.0.2.1",
        "CSeq: 3 INVITE",
        "m: <sip:+16505550100@192.0.2.1>",
        "k: timer, 100rel",
        "s: compact forms",
        "e: identity",
        "c: application/sdp",
        "l: {len}",
        "",
        "v=0",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("Call-ID"), "compact-forms@192.0.2.1");
    assert_eq!(
        answer.one("From"),
        "<sip:+16505550100@127.0.0.1>;tag=compact"
    );
    assert_eq!(answer.vias().len(), 1);

    // Upper-case compact forms, and long names in odd case with white
    // space (SP and HTAB) before the colon.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "V : SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-upper;rport",
        "F\t: <sip:+16505550100@127.0.0.1>;tag=upper",
        "T   : <sip:+18005550100@127.0.0.1>",
        "I: upper-compact",
        "cSeQ \t : 4 INVITE",
        "MAX-FORWARDS: 70",
        "L: 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("CSeq"), "4 INVITE");

    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "vIA: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-oddcase;rport",
        "FROM: <sip:+16505550100@127.0.0.1>;tag=oddcase",
        "tO: <sip:+18005550100@127.0.0.1>",
        "CALL-id: odd-case",
        "CSEQ: 5 INVITE",
        "max-forwards: 70",
        "CONTENT-length: 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("Call-ID"), "odd-case");

    // Folding (continuation lines) in every header switchboard reads,
    // including the Via (inside the sent-protocol, before the
    // parameters and between values) and the From.
    let (answer, port) = t.ask_port(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP",
        "  127.0.0.1:{port}",
        "\t;branch=z9hG4bK-folded",
        " ;rport,",
        " SIP/2.0/TCP folded.example.org;branch=z9hG4bKsecond",
        "Max-Forwards:",
        " 70",
        "From: \"Folded",
        " Caller\" <sip:+16505550100@127.0.0.1>",
        " ;tag=folded",
        "To:",
        "\t<sip:+18005550100@127.0.0.1>",
        "Call-ID:",
        "  folded-call-id",
        "CSeq: 6",
        "      INVITE",
        "Content-Length:",
        " 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    answer.assert_vias(&[format!(
        "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-folded;rport={port};received=127.0.0.1, SIP/2.0/TCP folded.example.org;branch=z9hG4bKsecond"
    )]);
    assert_canon(
        &answer.one("From"),
        "\"Folded Caller\" <sip:+16505550100@127.0.0.1>;tag=folded",
    );
    assert_eq!(answer.one("Call-ID"), "folded-call-id");
    assert_eq!(squash(&answer.one("CSeq")), "6 INVITE");

    // A folded Max-Forwards of 0 is still 0 (RFC 3261 §16.3 / docs/sip.md).
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-foldmf;rport",
        "Max-Forwards:",
        "   0",
        "From: <sip:+16505550100@127.0.0.1>;tag=foldmf",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: folded-max-forwards",
        "CSeq: 1 INVITE",
        "",
    ]);
    assert_eq!(answer.status(), 483, "{}", answer.text);

    // A folded Require is still read: 420 naming the option.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-foldreq;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=foldreq",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: folded-require",
        "CSeq: 1 INVITE",
        "Require:",
        "  nosuchextension",
        "",
    ]);
    assert_eq!(answer.status(), 420, "{}", answer.text);
    assert_eq!(squash(&answer.one("Unsupported")), "nosuchextension");
}

/// RFC 4475 §3.1.1.2: a wide range of valid characters, in the method,
/// header names, the Request-URI's user part, Call-ID and display names.
#[test]
fn rfc4475_3_1_1_2_wide_range_of_valid_characters() {
    let t = Torture::start();

    // A method made of every token character: valid, unknown, so 405.
    let method = "!odd-Method0123456789_*+`.%indeed'~";
    let request_line = format!("{method} sip:+18005550100@127.0.0.1 SIP/2.0");
    let cseq = format!("CSeq: 139122385 {method}");
    let answer = t.ask(&[
        &request_line,
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-intmeth;rport",
        "Max-Forwards: 255",
        "extensionHeader-!.%*+_`'~: \u{ef}\u{bb}\u{bf}\u{5927}\u{505c}\u{8f66}",
        r#"From: "\"\\\x27~!@#$%^&*()_+`{}|[]:;<>?,./\"" <sip:+16505550100@127.0.0.1>;tag=_token~1'+`*%!-."#,
        "To: \"\u{2603} \u{c9}t\u{e9}\" <sip:+18005550100@127.0.0.1>",
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        &cseq,
        "Content-Length: 0",
        "",
    ]);
    answer.assert_well_formed();
    assert_eq!(answer.status(), 405, "{}", answer.text);
    assert!(answer.one("Allow").contains("INVITE"), "{}", answer.text);
    assert_eq!(answer.one("CSeq"), format!("139122385 {method}"));
    assert_eq!(
        answer.one("Call-ID"),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );

    // An INVITE whose user part uses RFC 3966 visual separators and other
    // legal user characters still reaches the number.
    let answer = t.ask(&[
        "INVITE sip:+1(800)555-01.00@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-visual;rport",
        "Max-Forwards: 70",
        "From: \"\u{c5}sa \u{d6}berg\" <sip:+16505550100@127.0.0.1>;tag=visual",
        "To: <sip:+1(800)555-01.00@127.0.0.1;user=phone>",
        "Call-ID: visual-separators",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(
        answer.one("From"),
        "\"\u{c5}sa \u{d6}berg\" <sip:+16505550100@127.0.0.1>;tag=visual"
    );
}

/// RFC 4475 §3.1.1.3 (valid % escapes), §3.1.1.4 (escaped NULs) and
/// §3.1.1.5 (% that is not an escape, outside URIs).
#[test]
fn rfc4475_3_1_1_3_to_5_escapes() {
    let t = Torture::start();
    for (uri, want) in [
        ("sip:%2B18005550100@127.0.0.1;user=phone", 302),
        ("sip:+1800555%30100@127.0.0.1;user=phone", 302),
        ("sip:%2b1%38%30%30%35%35%35%30%31%30%30@127.0.0.1", 302),
        ("sip:%2B1%2D800%2D555%2D0100@127.0.0.1;user=phone", 302),
        ("sips:%2B18005550100@127.0.0.1;user=phone", 302),
        // Escaped NULs: a valid URI, but no number of ours.
        ("sip:null-%00-null@127.0.0.1", 404),
        ("sip:+1800555%000100@127.0.0.1", 404),
        ("sip:%2B19995550000@127.0.0.1", 404),
    ] {
        let request_line = format!("INVITE {uri} SIP/2.0");
        let answer = t.ask(&[
            &request_line,
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-esc;rport",
            "Max-Forwards: 70",
            "From: <sip:%2B16505550100@127.0.0.1>;tag=esc",
            "To: <sip:%2B18005550100@127.0.0.1>",
            "Call-ID: escapes",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ]);
        answer.assert_well_formed();
        assert_eq!(answer.status(), want, "{uri}: {}", answer.text);
        if want == 302 {
            assert_eq!(answer.one("Contact"), ALICE, "{uri}");
        }
    }

    // '%' that is not an escape where no escaping applies (§3.1.1.5).
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-esc02;rport",
        "Max-Forwards: 70",
        "From: \"%Z%45\" <sip:+16505550100@127.0.0.1>;tag=esc02",
        "To: \"100% sure\" <sip:+18005550100@127.0.0.1>",
        "Call-ID: esc02.%ZZ%%",
        "CSeq: 1 INVITE",
        "X-Percent: 50% off, %zz",
        "Content-Length: 0",
        "",
    ]);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("Call-ID"), "esc02.%ZZ%%");
    assert_eq!(
        answer.one("From"),
        "\"%Z%45\" <sip:+16505550100@127.0.0.1>;tag=esc02"
    );
}

/// RFC 4475 §3.1.1.7: long values in header fields (a long tag, Call-ID,
/// display name, unknown header and many Via values).
#[test]
fn rfc4475_3_1_1_7_long_values() {
    let t = Torture::start();
    let long_tag = "t".repeat(600);
    let long_name = "N".repeat(1500);
    let long_call_id = format!("{}@192.0.2.1", "c".repeat(3000));
    let from = format!("From: \"{long_name}\" <sip:+16505550100@127.0.0.1>;tag={long_tag}");
    let call_id = format!("Call-ID: {long_call_id}");
    let unknown = format!("X-Very-Long-Header: {}", "v".repeat(8000));
    let via_values: Vec<String> = (0..40)
        .map(|i| format!("SIP/2.0/UDP hop{i}.example.net:5060;branch=z9hG4bK-hop{i}"))
        .collect();
    let many_vias = format!("Via: {}", via_values.join(","));
    let lines = [
        "INVITE sip:+18005550100@127.0.0.1;user=phone;some-long-uri-param=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-longreq;rport",
        &many_vias,
        "Max-Forwards: 70",
        &from,
        "To: <sip:+18005550100@127.0.0.1>",
        &call_id,
        "CSeq: 1 INVITE",
        &unknown,
        "Content-Length: 0",
        "",
    ];
    let answer = t.ask(&lines);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("Call-ID"), long_call_id);
    assert_eq!(answer.one("From"), from["From: ".len()..]);
    let vias = answer.vias();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1], via_values.join(","));
}

/// RFC 4475 §3.1.1.7 also reached its UAS through a long chain of
/// proxies: one Via line per hop, 34 of them. A request may carry as many
/// as it can have hops (Max-Forwards starts at 70), each copied into the
/// answer in order.
#[test]
fn rfc4475_3_1_1_7_a_long_chain_of_proxies() {
    let t = Torture::start();
    for hops in [33, 69] {
        let mut lines = vec![
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0".to_owned(),
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-chain;rport".to_owned(),
        ];
        let proxies: Vec<String> = (1..=hops)
            .rev()
            .map(|i| format!("SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK-hop{i}"))
            .collect();
        lines.extend(proxies.iter().map(|via| format!("Via: {via}")));
        lines.extend(
            [
                "Max-Forwards: 70",
                "From: <sip:+16505550100@127.0.0.1>;tag=chain",
                "To: <sip:+18005550100@127.0.0.1>",
                "Call-ID: a-long-chain",
                "CSeq: 1 INVITE",
                "Content-Length: 0",
                "",
            ]
            .map(str::to_owned),
        );
        let answer = t.ask(&refs(&lines));
        answer.assert_alice(ALICE);
        let vias = answer.vias();
        assert_eq!(vias.len(), hops + 1, "{}", answer.text);
        assert_eq!(&vias[1..], proxies.as_slice());
    }
}

/// RFC 4475 §3.1.1.8 (extra octets after the message in a UDP datagram),
/// §3.1.1.11 (a multipart body with binary parts), and Content-Length over
/// UDP (RFC 3261 §18.3: may be missing; a smaller one trims the body).
#[test]
fn rfc4475_3_1_1_8_and_11_bodies_over_udp() {
    let t = Torture::start();

    // A plain SDP body with an exact Content-Length.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-sdp;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=sdp",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: sdp-body",
        "CSeq: 1 INVITE",
        "Content-Type: application/sdp",
        "Content-Length: {len}",
        "",
        "v=0",
        "o=- 20518 0 IN IP4 192.0.2.5",
        "s=-",
        "c=IN IP4 192.0.2.5",
        "t=0 0",
        "m=audio 54400 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    answer.assert_alice(ALICE);

    // No Content-Length at all: over UDP the datagram ends the body.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-nocl;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=nocl",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: no-content-length",
        "CSeq: 1 INVITE",
        "Content-Type: application/sdp",
        "",
        "v=0",
        "s=-",
    ]);
    answer.assert_alice(ALICE);

    // A Content-Length smaller than the body: the rest is ignored.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-shortcl;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=shortcl",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: short-content-length",
        "CSeq: 1 INVITE",
        "Content-Type: application/sdp",
        "Content-Length: 5",
        "",
        "v=0",
        "this line is beyond the Content-Length",
    ]);
    answer.assert_alice(ALICE);

    // §3.1.1.8: a second complete request after Content-Length: 0 in the
    // same datagram is not a message: one answer, for the first only.
    let client = t.client();
    let mut datagram = build(
        &refs(&invite_lines("+18005550100", "dblreq", &[])),
        client.port(),
    );
    datagram.extend_from_slice(&build(
        &refs(&invite_lines("+19995550000", "dblreq-second", &[])),
        client.port(),
    ));
    let answer = t.ask_from(&client, &datagram);
    answer.assert_alice(ALICE);
    assert_eq!(answer.one("Call-ID"), "dblreq");
    assert_eq!(client.receive_within(QUIET), None, "a second answer");

    // §3.1.1.11: multipart/mixed with a binary part (not UTF-8, NULs).
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--boundary42\r\nContent-Type: application/sdp\r\n\r\nv=0\r\ns=-\r\n\
          --boundary42\r\nContent-Type: application/octet-stream\r\n\r\n",
    );
    body.extend((0u8..=255).chain((0u8..=255).rev()));
    body.extend_from_slice(b"\r\n--boundary42--\r\n");
    let answer = t.ask_with_body(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-mpart;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=mpart",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: multipart",
            "CSeq: 1 INVITE",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed;boundary=boundary42",
            "Content-Length: {len}",
            "",
        ],
        &body,
    );
    answer.assert_alice(ALICE);

    // RFC 4475 §3.3.6: a body of an unknown type. A redirect server never
    // reads the body, so the call is still routed.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-invut;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=invut",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: unknown-content-type",
        "CSeq: 1 INVITE",
        "Accept: text/nobodyKnowsThis",
        "Content-Type: application/unknownformat",
        "Content-Length: {len}",
        "",
        "<something-nobody-can-read/>",
    ]);
    answer.assert_alice(ALICE);
}

/// RFC 4475 §3.1.1.10 (varied and unknown transports) and RFC 3581: every
/// Via is echoed in order, values on one line and lines alike; only the
/// top one gains `received` and a filled-in `rport`.
#[test]
fn rfc4475_3_1_1_10_vias_are_echoed_in_order() {
    let t = Torture::start();
    let client = t.client();
    let port = client.port();
    let message = build(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-top;rport, SIP/2.0/SCTP sctp.example.net;branch=z9hG4bK-sctp",
            "Via: SIP/2.0/TLS-SCTP tls-sctp.example.net;branch=z9hG4bK-ts,SIP/2.0/UNKNOWN unknown.example.net:5999;branch=z9hG4bK-unknown",
            "Via: SIP/2.0/TLS [2001:db8::3]:5061;branch=z9hG4bK-tls;received=192.0.2.9",
            "v: SIP/2.0/WS ws.example.net;branch=z9hG4bK-ws;rport=6000;received=192.0.2.10",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=transports",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: transports",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        port,
    );
    let answer = t.ask_from(&client, &message);
    answer.assert_alice(ALICE);
    answer.assert_vias(&[
            format!(
                "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-top;rport={port};received=127.0.0.1, SIP/2.0/SCTP sctp.example.net;branch=z9hG4bK-sctp"
            ),
            "SIP/2.0/TLS-SCTP tls-sctp.example.net;branch=z9hG4bK-ts,SIP/2.0/UNKNOWN unknown.example.net:5999;branch=z9hG4bK-unknown".to_owned(),
            "SIP/2.0/TLS [2001:db8::3]:5061;branch=z9hG4bK-tls;received=192.0.2.9".to_owned(),
            "SIP/2.0/WS ws.example.net;branch=z9hG4bK-ws;rport=6000;received=192.0.2.10".to_owned(),
        ]);

    // RFC 3261 §18.2.1 without rport: a host name gets `received`; the
    // answer goes to the source address and the sent-by port.
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP client.invalid:{port};branch=z9hG4bK-name",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=name",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: received-name",
        "CSeq: 1 INVITE",
        "",
    ]);
    answer.assert_alice(ALICE);
    let via = answer.vias().remove(0);
    assert!(
        via.ends_with(";branch=z9hG4bK-name;received=127.0.0.1"),
        "{via}"
    );

    // Sent-by equal to the source address, no rport: echoed untouched.
    let client = t.client();
    let port = client.port();
    let message = build(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-same",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=same",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: received-same",
            "CSeq: 1 INVITE",
            "",
        ],
        port,
    );
    let answer = t.ask_from(&client, &message);
    answer.assert_vias(&[format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-same")]);

    // A stale `received` in the request is replaced, `rport` filled in,
    // and the answer goes to the source port, not the sent-by port 9.
    let client = t.client();
    let port = client.port();
    let message = build(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP nat.invalid:9;received=192.0.2.99;branch=z9hG4bK-nat;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=nat",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: behind-nat",
            "CSeq: 1 INVITE",
            "",
        ],
        port,
    );
    let answer = t.ask_from(&client, &message);
    answer.assert_alice(ALICE);
    answer.assert_vias(&[format!(
        "SIP/2.0/UDP nat.invalid:9;branch=z9hG4bK-nat;rport={port};received=127.0.0.1"
    )]);
}

/// RFC 4475 §3.1.1.9 (semicolons in the user part), §3.3.2/§3.3.3
/// (unknown and atypical schemes: 416) and the unusual but legal
/// Request-URIs a trunk may send: sips, tel, URI parameters and headers,
/// passwords, national and E.164 spellings, upper-case schemes.
#[test]
fn rfc4475_request_uri_forms() {
    let t = Torture::start();
    for (method, uri, want) in [
        ("INVITE", "sip:+18005550100@127.0.0.1;user=phone", 302),
        (
            "INVITE",
            "sip:+18005550100;isub=1234;postd=pp22@127.0.0.1;user=phone",
            302,
        ),
        (
            "INVITE",
            "sips:+18005550100@127.0.0.1:5061;user=phone;transport=tcp",
            302,
        ),
        // Escaped headers in a Request-URI (RFC 4475 §3.1.2.11 lets an
        // element ignore them).
        (
            "INVITE",
            "sip:+18005550100@127.0.0.1;user=phone?Subject=torture%20test&Priority=urgent",
            302,
        ),
        ("INVITE", "tel:+1-800-555-0100", 302),
        ("INVITE", "tel:+18005550100;isub=12", 302),
        ("INVITE", "SIP:+18005550100@127.0.0.1", 302),
        ("INVITE", "sip:+18005550100:secret@127.0.0.1", 302),
        ("INVITE", "sip:18005550100@127.0.0.1;user=phone", 302),
        ("INVITE", "sip:800-555-0100@127.0.0.1;user=phone", 302),
        ("INVITE", "sip:01118005550100@127.0.0.1", 302),
        ("INVITE", "sip:0018005550100@127.0.0.1", 302),
        (
            "INVITE",
            "sip:+18005550100@switchboard.example.com:5060",
            302,
        ),
        ("INVITE", "sip:+19995550000@127.0.0.1;user=phone", 404),
        ("INVITE", "sip:127.0.0.1", 404),
        ("INVITE", "sip:alice@127.0.0.1", 404),
        ("INVITE", "http://www.example.com/alice", 416),
        ("INVITE", "mailto:alice@example.com", 416),
        ("INVITE", "urn:service:sos", 416),
        ("OPTIONS", "nobodyKnowsThisScheme:totallyopaquecontent", 416),
        ("OPTIONS", "soap.beep://192.0.2.103:3002", 416),
        ("OPTIONS", "sip:127.0.0.1", 200),
        ("OPTIONS", "sips:127.0.0.1:5061", 200),
    ] {
        let request_line = format!("{method} {uri} SIP/2.0");
        let cseq = format!("CSeq: 8 {method}");
        let answer = t.ask(&[
            &request_line,
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uri;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=uri",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: request-uri-forms",
            &cseq,
            "Content-Length: 0",
            "",
        ]);
        answer.assert_well_formed();
        assert_eq!(answer.status(), want, "{uri}: {}", answer.text);
        if want == 302 {
            assert_eq!(answer.one("Contact"), ALICE, "{uri}");
        } else {
            assert!(answer.all("Contact").is_empty(), "{uri}: {}", answer.text);
        }
    }
}

/// The rows of docs/sip.md's table that are not routing, with the RFC 4475
/// messages that exercise them: unknown and odd-case methods (§3.1.1.2),
/// other SIP versions (§3.1.2.16), Max-Forwards 0 (§3.3.11), Require
/// (§3.3.5), dialog requests, CANCEL and ACK, and the RFC 2543 syntax of
/// §3.4.1 and missing branch of §3.2.1, which must still work.
#[test]
fn rfc4475_3_3_methods_versions_and_extensions() {
    let t = Torture::start();
    let with = |request_line: &str, cseq: &str, extra: &[&str]| -> Vec<String> {
        let mut lines = vec![
            request_line.to_owned(),
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-meth;rport".to_owned(),
            "Max-Forwards: 70".to_owned(),
            "From: <sip:+16505550100@127.0.0.1>;tag=meth".to_owned(),
            "To: <sip:+18005550100@127.0.0.1>".to_owned(),
            "Call-ID: methods".to_owned(),
            format!("CSeq: {cseq}"),
        ];
        lines.extend(extra.iter().map(|&l| l.to_owned()));
        lines.push("Content-Length: 0".to_owned());
        lines.push(String::new());
        lines
    };

    // OPTIONS: 200 with Allow, Accept and Supported.
    let answer = t.ask(&refs(&with(
        "OPTIONS sip:+18005550100@127.0.0.1 SIP/2.0",
        "1 OPTIONS",
        &["Accept: application/sdp"],
    )));
    answer.assert_well_formed();
    assert_eq!(answer.status(), 200, "{}", answer.text);
    let allow = answer.one("Allow");
    for method in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"] {
        assert!(allow.contains(method), "{allow}");
    }
    assert_eq!(answer.all("Accept").len(), 1, "{}", answer.text);
    assert_eq!(answer.all("Supported").len(), 1, "{}", answer.text);
    assert!(answer.one("To").contains(";tag="), "{}", answer.text);

    // Methods we do not answer: 405 with Allow. Methods are
    // case-sensitive (RFC 3261 §7.1), so `invite` is another method.
    for method in [
        "NEWMETHOD",
        "REGISTER",
        "SUBSCRIBE",
        "MESSAGE",
        "invite",
        "Invite",
        "INVITEX",
        "options",
    ] {
        let request_line = format!("{method} sip:+18005550100@127.0.0.1 SIP/2.0");
        let answer = t.ask(&refs(&with(&request_line, &format!("1 {method}"), &[])));
        answer.assert_well_formed();
        assert_eq!(answer.status(), 405, "{method}: {}", answer.text);
        assert!(answer.one("Allow").contains("INVITE"), "{}", answer.text);
        assert_eq!(answer.one("CSeq"), format!("1 {method}"));
    }

    // RFC 4475 §3.3.12-§3.3.14 and §3.3.7: REGISTERs with odd Contacts
    // and unknown authorization: still just a method we do not serve.
    let answer = t.ask(&refs(&with(
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "2 REGISTER",
        &[
            "Contact: sip:user@host?Route=%3Csip:example.com%3E",
            "Contact: <sip:+16505550100@192.0.2.1;transport=udp>;expires=3600;unknownparam",
            "Authorization: NoOneKnowsThisScheme opaque-data=here",
        ],
    )));
    assert_eq!(answer.status(), 405, "{}", answer.text);

    // §3.1.2.16: SIP/7.0 is 505; the version is case-insensitive.
    let answer = t.ask(&refs(&with(
        "INVITE sip:+18005550100@127.0.0.1 SIP/7.0",
        "1 INVITE",
        &[],
    )));
    answer.assert_well_formed();
    assert_eq!(answer.status(), 505, "{}", answer.text);
    let answer = t.ask(&refs(&with(
        "INVITE sip:+18005550100@127.0.0.1 sip/2.0",
        "1 INVITE",
        &[],
    )));
    answer.assert_alice(ALICE);

    // §3.3.11: Max-Forwards 0 is 483 for an INVITE (and a BYE).
    for (request_line, cseq) in [
        ("INVITE sip:+18005550100@127.0.0.1 SIP/2.0", "1 INVITE"),
        ("BYE sip:+18005550100@127.0.0.1 SIP/2.0", "2 BYE"),
    ] {
        let mut lines = with(request_line, cseq, &[]);
        lines[2] = "Max-Forwards: 0".to_owned();
        let answer = t.ask(&refs(&lines));
        answer.assert_well_formed();
        assert_eq!(answer.status(), 483, "{}", answer.text);
    }

    // §3.3.5: Require with options we lack is 420 listing them all in
    // Unsupported; Proxy-Require is for proxies and not listed.
    let answer = t.ask(&refs(&with(
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
        "1 INVITE",
        &["Require: nosuchextension"],
    )));
    answer.assert_well_formed();
    assert_eq!(answer.status(), 420, "{}", answer.text);
    assert_eq!(answer.one("Unsupported"), "nosuchextension");
    let answer = t.ask(&refs(&with(
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
        "1 INVITE",
        &[
            "Require: nothingSupportedHere, nothingHereEither",
            "Proxy-Require: proxyOnlyExtension",
            "Require: andOneMore",
        ],
    )));
    assert_eq!(answer.status(), 420, "{}", answer.text);
    let unsupported = answer.one("Unsupported");
    for option in ["nothingSupportedHere", "nothingHereEither", "andOneMore"] {
        assert!(unsupported.contains(option), "{unsupported}");
    }
    assert!(!unsupported.contains("proxyOnly"), "{unsupported}");

    // Dialog requests: a re-INVITE (To tag) and a BYE get 481.
    let mut reinvite = with("INVITE sip:+18005550100@127.0.0.1 SIP/2.0", "2 INVITE", &[]);
    reinvite[4] = "To: <sip:+18005550100@127.0.0.1>;tag=existing-dialog".to_owned();
    let answer = t.ask(&refs(&reinvite));
    answer.assert_well_formed();
    assert_eq!(answer.status(), 481, "{}", answer.text);
    assert_eq!(
        answer.one("To"),
        "<sip:+18005550100@127.0.0.1>;tag=existing-dialog"
    );
    let answer = t.ask(&refs(&with(
        "BYE sip:+18005550100@127.0.0.1 SIP/2.0",
        "3 BYE",
        &[],
    )));
    answer.assert_well_formed();
    assert_eq!(answer.status(), 481, "{}", answer.text);

    // CANCEL (RFC 3261 §8.2.7) and ACK get nothing.
    t.silent(&refs(&with(
        "CANCEL sip:+18005550100@127.0.0.1 SIP/2.0",
        "1 CANCEL",
        &[],
    )));
    t.silent(&refs(&with(
        "ACK sip:+18005550100@127.0.0.1 SIP/2.0",
        "1 ACK",
        &[],
    )));
    let mut ack_in_dialog = with("ACK sip:+14155550101@127.0.0.1 SIP/2.0", "1 ACK", &[]);
    ack_in_dialog[4] = "To: <sip:+18005550100@127.0.0.1>;tag=sb0123456789abcdef".to_owned();
    t.silent(&refs(&ack_in_dialog));

    // §3.4.1: RFC 2543 syntax (no branch cookie, no Max-Forwards, no tag,
    // no Content-Length) and §3.2.1 (a branch without the magic cookie).
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port}",
        "From: <sip:+16505550100@127.0.0.1>",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: rfc2543@192.0.2.15",
        "CSeq: 1 INVITE",
        "Content-Type: application/sdp",
        "",
        "v=0",
    ]);
    answer.assert_alice(ALICE);
    let answer = t.ask(&[
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=390skdjuw",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@127.0.0.1>;tag=badbranch",
        "To: <sip:+18005550100@127.0.0.1>",
        "Call-ID: badbranch",
        "CSeq: 1 INVITE",
        "",
    ]);
    answer.assert_alice(ALICE);

    t.still_answers();
}

/// Messages RFC 4475 lets an element accept liberally, which switchboard
/// does: §3.1.2.9 (several SPs in the request line), §3.1.2.10 (SP at its
/// end), §3.1.2.12 (a bad Date), §3.1.2.14 (spaces inside `<>`),
/// §3.1.2.15 (an unquoted display name with non-token characters),
/// §3.3.4 (unknown URI schemes in From and To), §3.3.15 (an Accept we
/// cannot meet: a 302 has no body).
#[test]
fn rfc4475_tolerated_irregularities_are_routed() {
    let t = Torture::start();
    let cases: [&[&str]; 6] = [
        &[
            "INVITE  sip:+18005550100@127.0.0.1;user=phone   SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-lwsstart;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=lwsstart",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: lwsstart",
            "CSeq: 1 INVITE",
            "",
        ],
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0  ",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-trws;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=trws",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: trws",
            "CSeq: 1 INVITE",
            "",
        ],
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-baddate;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=baddate",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: baddate",
            "CSeq: 1 INVITE",
            "Date: Fri, 01 Jan 2010 16:00:00 EST",
            "",
        ],
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-badaspec;rport",
            "Max-Forwards: 70",
            "From: \"Bell, Alexander\" < sip:+16505550100@127.0.0.1 >;tag=badaspec",
            "To: \"Watson, Thomas\" < sip:+18005550100@127.0.0.1 >",
            "Call-ID: badaspec",
            "CSeq: 1 INVITE",
            "",
        ],
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-baddn;rport",
            "Max-Forwards: 70",
            "From: Bell, Alexander <sip:+16505550100@127.0.0.1>;tag=baddn",
            "To: Watson, Thomas <sip:+18005550100@127.0.0.1>",
            "Call-ID: baddn",
            "CSeq: 1 INVITE",
            "",
        ],
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-unksm2;rport",
            "Max-Forwards: 70",
            "From: <http://www.example.com>;tag=unksm2",
            "To: isbn:2983792873",
            "Call-ID: unksm2",
            "CSeq: 1 INVITE",
            "Accept: text/nobodyKnowsThis",
            "",
        ],
    ];
    for lines in cases {
        t.ask(lines).assert_alice(ALICE);
    }
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.1.2 and §3.3: malformed messages with a usable Via get a 400
// saying what is wrong
// ---------------------------------------------------------------------------

#[test]
fn rfc4475_3_1_2_malformed_messages_get_400_with_a_reason() {
    let t = Torture::start();
    let standard = |request_line: &str, drop: &[&str], extra: &[&str]| -> Vec<String> {
        let mut lines = vec![request_line.to_owned()];
        for header in [
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-bad;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=bad",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: malformed",
            "CSeq: 1 INVITE",
        ] {
            let name = header.split(':').next().unwrap_or_default();
            if !drop.contains(&name) {
                lines.push(header.to_owned());
            }
        }
        lines.extend(extra.iter().map(|&l| l.to_owned()));
        lines.push(String::new());
        lines
    };
    let invite = "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0";
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        // §3.3.8: several values in single-value headers.
        (
            "duplicate From",
            standard(invite, &[], &["From: <sip:+16505550199@127.0.0.1>;tag=2"]),
            "Duplicate From",
        ),
        (
            "duplicate To (compact)",
            standard(invite, &[], &["t: <sip:+18005550111@127.0.0.1>"]),
            "Duplicate To",
        ),
        (
            "duplicate Call-ID",
            standard(invite, &[], &["i: another-call-id"]),
            "Duplicate Call-ID",
        ),
        (
            "duplicate CSeq",
            standard(invite, &[], &["CSeq: 2 INVITE"]),
            "Duplicate CSeq",
        ),
        (
            "two To values on one line",
            standard(
                invite,
                &["To"],
                &["To: <sip:+18005550100@127.0.0.1>, <sip:+18005550111@127.0.0.1>"],
            ),
            "To",
        ),
        // §3.1.2.17 / §3.1.2.18: CSeq method differs from the request's.
        (
            "CSeq method mismatch",
            standard(invite, &["CSeq"], &["CSeq: 1 ACK"]),
            "CSeq Method Mismatch",
        ),
        (
            "unknown method, CSeq mismatch",
            standard("NEWMETHOD sip:+18005550100@127.0.0.1 SIP/2.0", &[], &[]),
            "CSeq Method Mismatch",
        ),
        // §3.1.2.3, §3.3.9, §3.1.2.2: Content-Length problems.
        (
            "negative Content-Length",
            standard(invite, &[], &["Content-Length: -999", "", "v=0"]),
            "Content-Length",
        ),
        (
            "garbage Content-Length",
            standard(invite, &[], &["Content-Length: twelve"]),
            "Content-Length",
        ),
        (
            "overflowing Content-Length",
            standard(invite, &[], &["Content-Length: 99999999999999999999"]),
            "Content-Length",
        ),
        (
            "two Content-Lengths",
            standard(invite, &[], &["Content-Length: 3", "l: 4", "", "v=0"]),
            "Duplicate Content-Length",
        ),
        (
            "Content-Length larger than the body",
            standard(invite, &[], &["Content-Length: 9999", "", "v=0", "s=-"]),
            "Content-Length Larger Than Body",
        ),
        // §3.1.2.4: overlarge scalars.
        (
            "Max-Forwards over 255",
            standard(invite, &["Max-Forwards"], &["Max-Forwards: 300"]),
            "Max-Forwards",
        ),
        (
            "garbage Max-Forwards",
            standard(invite, &["Max-Forwards"], &["Max-Forwards: seventy"]),
            "Max-Forwards",
        ),
        (
            "negative Max-Forwards",
            standard(invite, &["Max-Forwards"], &["Max-Forwards: -1"]),
            "Max-Forwards",
        ),
        (
            "overlarge CSeq",
            standard(invite, &["CSeq"], &["CSeq: 36893488147419103232 INVITE"]),
            "CSeq",
        ),
        (
            "CSeq of 2**31",
            standard(invite, &["CSeq"], &["CSeq: 2147483648 INVITE"]),
            "CSeq",
        ),
        (
            "CSeq without a method",
            standard(invite, &["CSeq"], &["CSeq: 1"]),
            "CSeq",
        ),
        // §3.3.1: missing required headers.
        (
            "missing Call-ID",
            standard(invite, &["Call-ID"], &[]),
            "Missing Call-ID",
        ),
        (
            "empty Call-ID",
            standard(invite, &["Call-ID"], &["Call-ID:   "]),
            "Call-ID",
        ),
        (
            "missing From",
            standard(invite, &["From"], &[]),
            "Missing From",
        ),
        ("missing To", standard(invite, &["To"], &[]), "Missing To"),
        (
            "missing CSeq",
            standard(invite, &["CSeq"], &[]),
            "Missing CSeq",
        ),
        // §3.1.2.6: unterminated quoted string in a display name.
        (
            "unbalanced quote in To",
            standard(
                invite,
                &["To"],
                &["To: \"Mr. J. User <sip:+18005550100@127.0.0.1>"],
            ),
            "To",
        ),
        (
            "From without a URI",
            standard(invite, &["From"], &["From: just some words;tag=x"]),
            "From",
        ),
        // Header lines that are not headers.
        (
            "header line without a colon",
            standard(invite, &[], &["This line has no colon at all"]),
            "Header Line",
        ),
        (
            "header name with a space",
            standard(invite, &[], &["Bad Name: value"]),
            "Header Line",
        ),
        (
            "continuation line with nothing to continue",
            {
                let mut lines = standard(invite, &[], &[]);
                lines.insert(1, "  a continuation of the request line".to_owned());
                lines
            },
            "Header Line",
        ),
        // Bad request lines.
        (
            "request line with four parts (§3.1.2.8, LWS in the URI)",
            standard("INVITE sip:+18005550100@127.0.0.1; lr SIP/2.0", &[], &[]),
            "Request Line",
        ),
        (
            "request line without a version",
            standard("INVITE sip:+18005550100@127.0.0.1", &[], &[]),
            "Request Line",
        ),
        (
            "request line of one word",
            standard("INVITE", &[], &[]),
            "Request Line",
        ),
        (
            "method with a non-token character",
            standard(
                "INV@ITE sip:+18005550100@127.0.0.1 SIP/2.0",
                &["CSeq"],
                &["CSeq: 1 INV@ITE"],
            ),
            "Method",
        ),
        (
            "version that is not SIP/x.y",
            standard("INVITE sip:+18005550100@127.0.0.1 SIP/2.0x", &[], &[]),
            "Version",
        ),
        // §3.1.2.7: a Request-URI in <>; RFC 5118 §4.2 is in the IPv6 test.
        (
            "Request-URI in angle brackets",
            standard("INVITE <sip:+18005550100@127.0.0.1> SIP/2.0", &[], &[]),
            "Request-URI",
        ),
        // Raw control octets in the Request-URI (RFC 3986 §2: escaped,
        // never raw): a NUL, a C0 octet, DEL.
        (
            "NUL in the Request-URI",
            standard("INVITE sip:+1800555\u{0}0100@127.0.0.1 SIP/2.0", &[], &[]),
            "Request-URI",
        ),
        (
            "a C0 octet in a Request-URI parameter",
            standard(
                "INVITE sip:+18005550100@127.0.0.1;user=phone\u{1b} SIP/2.0",
                &[],
                &[],
            ),
            "Request-URI",
        ),
        (
            "DEL in a tel: Request-URI",
            standard("INVITE tel:+1800555\u{7f}0100 SIP/2.0", &[], &[]),
            "Request-URI",
        ),
        (
            "Request-URI without a scheme",
            standard("INVITE +18005550100 SIP/2.0", &[], &[]),
            "Request-URI",
        ),
        // §3.1.2.1: extraneous separators in the Via.
        (
            "empty Via parameters and values",
            standard(
                invite,
                &["Via"],
                &["Via: SIP/2.0/UDP 127.0.0.1:{port};rport;;,;,,"],
            ),
            "Via",
        ),
        (
            "a malformed second Via line",
            standard(invite, &[], &["Via: SIP/2.0/UDP"]),
            "Via",
        ),
    ];
    for (name, lines, says) in &cases {
        let answer = t.ask(&refs(lines));
        answer.assert_bad_request(says);
        // The answer still copies what identifies the transaction.
        assert!(!answer.all("Via").is_empty(), "{name}: {}", answer.text);
        if !name.contains("Call-ID") {
            assert!(!answer.all("Call-ID").is_empty(), "{name}: {}", answer.text);
        }
    }

    // Bounded everything (docs/security.md): too many headers, more Via
    // lines than a request can have hops (70, Max-Forwards' initial value).
    let mut lines = standard(invite, &[], &[]);
    lines.pop();
    for i in 0..130 {
        lines.push(format!("X-Filler-{i}: {i}"));
    }
    lines.push(String::new());
    t.ask(&refs(&lines)).assert_bad_request("Too Many Headers");
    let mut lines = standard(invite, &[], &[]);
    lines.pop();
    for i in 0..70 {
        lines.push(format!(
            "Via: SIP/2.0/UDP hop{i}.example.net;branch=z9hG4bK{i}"
        ));
    }
    lines.push(String::new());
    t.ask(&refs(&lines)).assert_bad_request("Too Many Via");

    t.still_answers();
}

// ---------------------------------------------------------------------------
// No usable Via, responses, garbage: dropped, and the server carries on
// ---------------------------------------------------------------------------

/// RFC 4475 §3.1.1.12, §3.1.1.13, §3.1.2.5, §3.1.2.19 and §3.3.10 are
/// responses (a stateless UAS answers none); requests without a usable Via
/// have nowhere to be answered; binary garbage is not SIP at all.
#[test]
fn rfc4475_unanswerable_messages_are_dropped() {
    let t = Torture::start();
    let request_without = |via: Option<&str>| -> Vec<String> {
        let mut lines = vec!["INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0".to_owned()];
        if let Some(via) = via {
            lines.push(via.to_owned());
        }
        lines.extend(
            [
                "Max-Forwards: 70",
                "From: <sip:+16505550100@127.0.0.1>;tag=novia",
                "To: <sip:+18005550100@127.0.0.1>",
                "Call-ID: no-usable-via",
                "CSeq: 1 INVITE",
                "Content-Length: 0",
                "",
            ]
            .map(str::to_owned),
        );
        lines
    };
    for via in [
        None,
        Some("Via:"),
        Some("Via: SIP/2.0/UDP"),
        Some("Via: SIP/2.0/UDP ;branch=z9hG4bK-nohost"),
        Some("Via: SIP/2.0 127.0.0.1:{port};rport"),
        Some("Via: HTTP/1.1/TCP 127.0.0.1:{port};rport"),
        Some("Via: 1.1 proxy.example.com"),
        Some("Via: SIP/2.0/UDP 127.0.0.1:99999;rport"),
        Some("Via: SIP/2.0/UDP [::1;rport"),
    ] {
        t.silent(&refs(&request_without(via)));
    }

    // Responses, however odd (RFC 4475 §3.1.1.12 unusual reason,
    // §3.1.1.13 empty reason, §3.1.2.19 overlarge code, §3.3.10 broadcast
    // received): never answered.
    for status_line in [
        "SIP/2.0 200 OK",
        "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e}",
        "SIP/2.0 100 ",
        "SIP/2.0 4294967301 better not break the receiver",
        "SIP/7.0 200 OK",
    ] {
        t.silent(&[
            status_line,
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-resp;rport;received=255.255.255.255",
            "From: <sip:+16505550100@127.0.0.1>;tag=resp",
            "To: <sip:+18005550100@127.0.0.1>;tag=resp2",
            "Call-ID: a-response",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ]);
    }

    // Not SIP at all.
    let mut lcg: u32 = 0x5eed_1234;
    let random: Vec<u8> = (0..1400)
        .map(|_| {
            lcg = lcg.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (lcg >> 24) as u8
        })
        .collect();
    // A STUN binding request (RFC 5389 §6), a common keep-alive on 5060.
    let stun: &[u8] = &[
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let garbage: [&[u8]; 10] = [
        &random,
        &[0u8; 64],
        &[0xff; 300],
        stun,
        b"\r\n\r\n",
        b"\r\n",
        b"jaK\n",
        b" ",
        b"",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for bytes in garbage {
        t.silent_bytes(bytes);
    }
    t.still_answers();
}

// ---------------------------------------------------------------------------
// Retransmissions (RFC 3261 §8.2.6, §17.2.1): the same answer, byte for byte
// ---------------------------------------------------------------------------

#[test]
fn retransmissions_get_byte_identical_answers() {
    let t = Torture::start();
    let client = t.client();
    for dialed in ["+18005550100", "+19995550000"] {
        let message = build(
            &refs(&invite_lines(dialed, &format!("retransmit-{dialed}"), &[])),
            client.port(),
        );
        let first = t.ask_from(&client, &message);
        let second = t.ask_from(&client, &message);
        assert_eq!(first.raw, second.raw, "{}\n{}", first.text, second.text);
        assert!(first.one("To").contains(";tag="), "{}", first.text);
    }
    // A malformed one too: its 400 carries the same To tag every time.
    let message = build(
        &refs(&invite_lines(
            "+18005550100",
            "retransmit-bad",
            &["Max-Forwards: 300"],
        )),
        client.port(),
    );
    let first = t.ask_from(&client, &message);
    let second = t.ask_from(&client, &message);
    assert_eq!(first.status(), 400, "{}", first.text);
    assert_eq!(first.raw, second.raw);
    // And over TCP the same request gets the same bytes as over UDP save
    // for the Via, which the client wrote differently.
    let mut tcp = t.tcp();
    let port = tcp.port();
    let lines: Vec<String> = invite_lines("+18005550100", "retransmit-tcp", &[])
        .into_iter()
        .map(|l| l.replace("SIP/2.0/UDP", "SIP/2.0/TCP"))
        .collect();
    let message = build(&refs(&lines), port);
    tcp.send(&message);
    tcp.send(&message);
    let answers = tcp.responses(2);
    assert_eq!(answers[0].raw, answers[1].raw);
    answers[0].assert_alice(ALICE);
}

// ---------------------------------------------------------------------------
// TCP framing (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1)
// ---------------------------------------------------------------------------

fn tcp_invite(dialed: &str, call_id: &str, port: u16) -> Vec<u8> {
    let lines: Vec<String> = invite_lines(dialed, call_id, &[])
        .into_iter()
        .map(|l| l.replace("SIP/2.0/UDP", "SIP/2.0/TCP"))
        .collect();
    build(&refs(&lines), port)
}

fn tcp_options(call_id: &str, port: u16) -> Vec<u8> {
    let call_id = format!("Call-ID: {call_id}");
    build(
        &[
            "OPTIONS sip:127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp-options",
            "Max-Forwards: 70",
            "From: <sip:ping@127.0.0.1>;tag=tcp",
            "To: <sip:127.0.0.1>",
            &call_id,
            "CSeq: 7 OPTIONS",
            "Content-Length: 0",
            "",
        ],
        port,
    )
}

#[test]
fn tcp_framing_and_keep_alives() {
    let t = Torture::start();

    // Several messages in one write, answered in order.
    let mut tcp = t.tcp();
    let port = tcp.port();
    let mut burst = tcp_invite("+18005550100", "burst-1", port);
    burst.extend(tcp_options("burst-2", port));
    burst.extend(tcp_invite("+19995550000", "burst-3", port));
    tcp.send(&burst);
    let answers = tcp.responses(3);
    answers[0].assert_alice(ALICE);
    assert_eq!(answers[0].one("Call-ID"), "burst-1");
    assert_eq!(answers[1].status(), 200, "{}", answers[1].text);
    assert_eq!(answers[1].one("Call-ID"), "burst-2");
    assert_eq!(answers[2].status(), 404, "{}", answers[2].text);
    assert_eq!(answers[2].one("Call-ID"), "burst-3");
    for answer in &answers {
        answer.assert_well_formed();
    }
    // rport is filled in over TCP too (RFC 3581 §4); without it the Via
    // is echoed untouched.
    answers[0].assert_vias(&[format!(
        "SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-burst-1;rport={port};received=127.0.0.1"
    )]);
    answers[1].assert_vias(&[format!(
        "SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp-options"
    )]);

    // One message over many writes of a few bytes each.
    let message = tcp_invite("+18005550100", "split", port);
    for chunk in message.chunks(7) {
        tcp.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    tcp.responses(1)[0].assert_alice(ALICE);

    // And byte by byte, preceded by a keep-alive, likewise byte by byte.
    let mut message = b"\r\n\r\n".to_vec();
    message.extend(tcp_options("byte-by-byte", port));
    for byte in &message {
        tcp.send(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_millis(1));
    }
    tcp.expect_bytes(b"\r\n");
    let answer = tcp.responses(1).remove(0);
    assert_eq!(answer.status(), 200, "{}", answer.text);
    assert_eq!(answer.one("Call-ID"), "byte-by-byte");

    // CRLF CRLF keep-alives get one CRLF each; a lone CRLF between messages
    // is skipped; a ping glued to a message's end is still a ping.
    tcp.send(b"\r\n\r\n");
    tcp.expect_bytes(b"\r\n");
    tcp.send(b"\r\n\r\n\r\n\r\n");
    tcp.expect_bytes(b"\r\n\r\n");
    let mut glued = b"\r\n".to_vec();
    glued.extend(tcp_options("glued", port));
    glued.extend_from_slice(b"\r\n\r\n");
    tcp.send(&glued);
    let answer = tcp.responses(1).remove(0);
    assert_eq!(answer.one("Call-ID"), "glued");
    tcp.expect_bytes(b"\r\n");
    tcp.expect_nothing();

    // A message with a body that looks like headers and another message
    // (a blank line, a Content-Length, a request line), then a real one:
    // the body is exactly Content-Length bytes.
    let tricky_body =
        "v=0\r\n\r\nContent-Length: 999\r\n\r\nINVITE sip:+19995550000@127.0.0.1 SIP/2.0\r\n";
    let with_body = build_with_body(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-body",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=body",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: body-then-next",
            "CSeq: 1 INVITE",
            "Content-Type: application/sdp",
            "Content-Length: {len}",
            "",
        ],
        tricky_body.as_bytes(),
        port,
    );
    let mut both = with_body.clone();
    both.extend(tcp_options("after-body", port));
    // The first message's body arrives in a second write.
    let split_at = with_body.len() - 20;
    tcp.send(&both[..split_at]);
    std::thread::sleep(Duration::from_millis(20));
    tcp.send(&both[split_at..]);
    let answers = tcp.responses(2);
    answers[0].assert_alice(ALICE);
    assert_eq!(answers[0].one("Call-ID"), "body-then-next");
    assert_eq!(answers[1].status(), 200, "{}", answers[1].text);
    assert_eq!(answers[1].one("Call-ID"), "after-body");
    tcp.expect_nothing();

    // Over a stream Content-Length is required (RFC 3261 §18.3): 400.
    tcp.send(&build(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-nocl",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=nocl",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: tcp-no-content-length",
            "CSeq: 1 INVITE",
            "",
        ],
        port,
    ));
    tcp.responses(1)[0].assert_bad_request("Content-Length");
    // The connection still serves.
    tcp.send(&tcp_options("still-open", port));
    assert_eq!(tcp.responses(1)[0].status(), 200);

    // RFC 4475 §3.1.2.3: a negative Content-Length on a stream cannot be
    // framed; the connection is closed, unanswered.
    let mut tcp = t.tcp();
    let port = tcp.port();
    let mut negative = build(
        &[
            "INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-ncl",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@127.0.0.1>;tag=ncl",
            "To: <sip:+18005550100@127.0.0.1>",
            "Call-ID: tcp-negative-content-length",
            "CSeq: 1 INVITE",
            "Content-Length: -999",
            "",
        ],
        port,
    );
    negative.extend(tcp_options("never-read", port));
    tcp.send(&negative);
    tcp.expect_closed();

    // New connections are served as before.
    let mut tcp = t.tcp();
    let port = tcp.port();
    tcp.send(&tcp_invite("+18005550100", "after-garbage", port));
    tcp.responses(1)[0].assert_alice(ALICE);
    t.still_answers();
}

// ---------------------------------------------------------------------------
// RFC 5118: IPv6 torture tests (parsed over IPv4 loopback)
// ---------------------------------------------------------------------------

#[test]
fn rfc5118_ipv6_references_in_messages() {
    let t = Torture::start();
    let ask = |uri: &str, via: &str, extra: &[&str], body: &str| -> Answer {
        let request_line = format!("INVITE {uri} SIP/2.0");
        let mut lines = vec![
            request_line.as_str(),
            via,
            "Max-Forwards: 70",
            "From: <sip:+16505550100@[2001:db8::5]>;tag=v6",
            "To: <sip:+18005550100@[2001:db8::10]>",
            "Call-ID: ipv6-torture",
            "CSeq: 1 INVITE",
        ];
        lines.extend_from_slice(extra);
        lines.push("Content-Length: {len}");
        lines.push("");
        lines.extend(body.lines());
        t.ask(&lines)
    };
    let plain_via = "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-v6;rport";

    // §4.1: a valid message with IPv6 references (the sent-by answers to
    // the source address and the sent-by port: our port).
    let answer = ask(
        "sip:+18005550100@[2001:db8::10];user=phone",
        "Via: SIP/2.0/UDP [2001:db8::9:1]:{port};branch=z9hG4bK-v6good",
        &["Contact: \"Caller\" <sip:caller@[2001:db8::9:1]:5060>"],
        "",
    );
    answer.assert_alice(ALICE);
    let via = answer.vias().remove(0);
    assert!(
        via.starts_with("SIP/2.0/UDP [2001:db8::9:1]:")
            && via.ends_with(";branch=z9hG4bK-v6good;received=127.0.0.1"),
        "{via}"
    );
    assert_eq!(
        answer.one("From"),
        "<sip:+16505550100@[2001:db8::5]>;tag=v6"
    );

    // §4.2: an IPv6 address without brackets in the Request-URI.
    ask("sip:+18005550100@2001:db8::10", plain_via, &[], "").assert_bad_request("Request-URI");

    // §4.3 / §4.4: the port is inside the brackets (part of the address)
    // or outside (a port): both valid.
    ask("sip:+18005550100@[2001:db8::10:5070]", plain_via, &[], "").assert_alice(ALICE);
    ask("sip:+18005550100@[2001:db8::10]:5070", plain_via, &[], "").assert_alice(ALICE);

    // §4.5: `received` with and without brackets in the request: both
    // accepted, and replaced by the real source address.
    for received in ["[2001:db8::9:255]", "2001:db8::9:255"] {
        let via = format!(
            "Via: SIP/2.0/UDP [2001:db8::9:1];received={received};branch=z9hG4bK-rcv;rport"
        );
        let answer = ask("sip:+18005550100@[2001:db8::10]", &via, &[], "");
        answer.assert_alice(ALICE);
        let top = answer.vias().remove(0);
        assert!(
            top.starts_with("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bK-rcv;rport=")
                && top.ends_with(";received=127.0.0.1")
                && !top.contains("9:255"),
            "{top}"
        );
    }

    // §4.6 / §4.8: IPv6 (and mixed) addresses in the SDP body.
    let sdp6 = "v=0\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\ns=-\nc=IN IP6 2001:db8::20\nt=0 0\nm=audio 6000 RTP/AVP 0\n";
    ask(
        "sip:+18005550100@[2001:db8::10]",
        plain_via,
        &["Content-Type: application/sdp"],
        sdp6,
    )
    .assert_alice(ALICE);
    let mixed = "v=0\no=bob 280744730 28977631 IN IP4 192.0.2.132\ns=-\nt=0 0\nm=audio 22334 RTP/AVP 0\nc=IN IP4 192.0.2.132\nm=audio 34022 RTP/AVP 0\nc=IN IP6 2001:db8::1\n";
    ask(
        "sip:+18005550100@[2001:db8::10]",
        plain_via,
        &["Content-Type: application/sdp"],
        mixed,
    )
    .assert_alice(ALICE);

    // §4.7: several addresses of both families in the Vias, echoed in
    // order.
    let answer = ask(
        "sip:+18005550100@[2001:db8::10]",
        "Via: SIP/2.0/UDP [2001:db8::9:1]:{port};branch=z9hG4bK-mult;rport",
        &[
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-v4hop, SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK-v6hop;received=192.0.2.200",
            "Contact: \"Caller\" <sip:caller@[2001:db8::9:1]>",
        ],
        "",
    );
    answer.assert_alice(ALICE);
    let vias = answer.vias();
    assert_eq!(vias.len(), 2, "{}", answer.text);
    assert!(vias[0].ends_with(";received=127.0.0.1"), "{}", vias[0]);
    assert_canon(
        &vias[1],
        "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-v4hop, SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK-v6hop;received=192.0.2.200",
    );

    // §4.9: IPv4-mapped IPv6 addresses.
    let answer = ask(
        "sip:+18005550100@[::ffff:192.0.2.10]:19823;user=phone",
        "Via: SIP/2.0/UDP [::ffff:192.0.2.10]:{port};branch=z9hG4bK-mapped",
        &[],
        "",
    );
    answer.assert_alice(ALICE);
    assert!(answer.vias()[0].ends_with(";received=127.0.0.1"));

    // §4.10: three colons before the embedded IPv4 address are invalid,
    // two are right; in the Request-URI and in a Via.
    ask("sip:+18005550100@[2001:db8::192.0.2.1]", plain_via, &[], "").assert_alice(ALICE);
    ask(
        "sip:+18005550100@[2001:db8:::192.0.2.1]",
        plain_via,
        &[],
        "",
    )
    .assert_bad_request("Request-URI");
    ask(
        "sip:+18005550100@[2001:db8::10]",
        "Via: SIP/2.0/UDP [2001:db8::192.0.2.1]:{port};branch=z9hG4bK-2colons",
        &[],
        "",
    )
    .assert_alice(ALICE);
    ask(
        "sip:+18005550100@[2001:db8::10]",
        "Via: SIP/2.0/UDP [2001:db8:::192.0.2.1]:{port};branch=z9hG4bK-3colons;rport",
        &[],
        "",
    )
    .assert_bad_request("Via");
    ask(
        "sip:+18005550100@[2001:db8::10]",
        plain_via,
        &["Via: SIP/2.0/UDP [2001:db8:::192.0.2.1];branch=z9hG4bK-3colons-below"],
        "",
    )
    .assert_bad_request("Via");
    // Unterminated or garbage brackets.
    ask("sip:+18005550100@[2001:db8::10", plain_via, &[], "").assert_bad_request("Request-URI");
    ask("sip:+18005550100@[not:an:address]", plain_via, &[], "").assert_bad_request("Request-URI");
    t.still_answers();
}

// ---------------------------------------------------------------------------
// RFC 5118 over a real IPv6 socket ([::1] is required)
// ---------------------------------------------------------------------------

#[test]
fn rfc5118_over_ipv6_loopback() {
    let t = Torture::start_v6();
    assert!(t.server.udp.is_ipv6() && t.server.tcp.is_ipv6());

    // rport: received is the source address without brackets (RFC 5118
    // §4.5, RFC 3261 §20.42); the Contact host is in brackets.
    let client = t.client();
    let port = client.port();
    let message = build(
        &[
            "INVITE sip:+18005550100@[::1];user=phone SIP/2.0",
            "Via: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6-rport;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550100@[::1]>;tag=v6",
            "To: <sip:+18005550100@[::1]>",
            "Call-ID: over-ipv6",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        port,
    );
    let answer = t.ask_from(&client, &message);
    answer.assert_alice(ALICE_V6);
    answer.assert_vias(&[format!(
        "SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6-rport;rport={port};received=::1"
    )]);

    // Without rport: a host name or another address gets received=::1; a
    // sent-by that is the source address, in any spelling, gets nothing.
    for (sent_by, received) in [
        ("client.invalid", true),
        ("[2001:db8::9:1]", true),
        ("127.0.0.1", true),
        ("[::1]", false),
        ("[0:0:0:0:0:0:0:1]", false),
        ("[0000::0001]", false),
    ] {
        let client = t.client();
        let port = client.port();
        let via = format!("Via: SIP/2.0/UDP {sent_by}:{port};branch=z9hG4bK-v6-sentby");
        let message = build(
            &[
                "INVITE sip:+18005550100@[::1]:5060;user=phone SIP/2.0",
                &via,
                "Max-Forwards: 70",
                "From: <sip:+16505550100@[::1]>;tag=v6",
                "To: <sip:+18005550100@[::1]>",
                "Call-ID: over-ipv6-sent-by",
                "CSeq: 1 INVITE",
                "",
            ],
            port,
        );
        let answer = t.ask_from(&client, &message);
        answer.assert_alice(ALICE_V6);
        let expected = format!(
            "SIP/2.0/UDP {sent_by}:{port};branch=z9hG4bK-v6-sentby{}",
            if received { ";received=::1" } else { "" }
        );
        answer.assert_vias(&[expected]);
    }

    // The other rows work over IPv6 as well.
    let answer = t.ask(&refs(
        &invite_lines("+19995550000", "v6-unknown", &[])
            .into_iter()
            .map(|l| l.replace("127.0.0.1", "[::1]"))
            .collect::<Vec<_>>(),
    ));
    assert_eq!(answer.status(), 404, "{}", answer.text);
    t.ask(&[
        "INVITE sip:+18005550100@::1 SIP/2.0",
        "Via: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6-bad;rport",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@[::1]>;tag=v6",
        "To: <sip:+18005550100@[::1]>",
        "Call-ID: over-ipv6-bad-uri",
        "CSeq: 1 INVITE",
        "",
    ])
    .assert_bad_request("Request-URI");
    t.silent(&[
        "INVITE sip:+18005550100@[::1] SIP/2.0",
        "Max-Forwards: 70",
        "From: <sip:+16505550100@[::1]>;tag=v6",
        "To: <sip:+18005550100@[::1]>",
        "Call-ID: over-ipv6-no-via",
        "CSeq: 1 INVITE",
        "",
    ]);
    let options = t.ask(&[
        "OPTIONS sip:[::1] SIP/2.0",
        "Via: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6-options;rport",
        "Max-Forwards: 70",
        "From: <sip:ping@[::1]>;tag=v6",
        "To: <sip:[::1]>",
        "Call-ID: over-ipv6-options",
        "CSeq: 1 OPTIONS",
        "",
    ]);
    assert_eq!(options.status(), 200, "{}", options.text);

    // TCP over IPv6.
    let mut tcp = t.tcp();
    let port = tcp.port();
    let lines: Vec<String> = invite_lines("+18005550100", "v6-tcp", &[])
        .into_iter()
        .map(|l| l.replace("SIP/2.0/UDP 127.0.0.1", "SIP/2.0/TCP [::1]"))
        .collect();
    tcp.send(&build(&refs(&lines), port));
    let answer = tcp.responses(1).remove(0);
    answer.assert_alice(ALICE_V6);
    answer.assert_vias(&[format!(
        "SIP/2.0/TCP [::1]:{port};branch=z9hG4bK-v6-tcp;rport={port};received=::1"
    )]);
    tcp.send(b"\r\n\r\n");
    tcp.expect_bytes(b"\r\n");
}

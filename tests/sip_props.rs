//! Property tests for the SIP path, in process: the whole
//! datagram → response path never panics on any bytes, and a 302 copies
//! Via, From, To, Call-ID and CSeq byte for byte (RFC 3261 §8.2.6).

use std::net::SocketAddr;
use std::path::Path;

use proptest::prelude::*;
use switchboard::routing::{Region, RoutingTable};
use switchboard::routing_data::Loader;
use switchboard::server::handler::{Context, Handler, Outcome, Peer, Transport};
use switchboard::settings::{Settings, Untrusted};
use switchboard::sip::Framing;

fn table() -> RoutingTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
    Loader::new(path, Region::us())
        .load()
        .expect("example data loads")
        .table
}

fn config() -> Handler {
    Handler::from_settings(&Settings {
        trust: vec!["127.0.0.0/8".parse().expect("network")],
        untrusted: Untrusted::Reject,
        ..Settings::default()
    })
    .expect("default settings are valid")
}

fn peer(framing: Framing) -> Peer {
    let transport = match framing {
        Framing::Datagram => Transport::Udp,
        Framing::Stream => Transport::Tcp,
    };
    Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), transport)
}

const INVITE: &str = "INVITE sip:+18005550100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"A\" <sip:+16505550123@127.0.0.1>;tag=1\r\n\
To: <sip:+18005550100@127.0.0.1>\r\n\
Call-ID: prop@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Require: \r\n\
Content-Length: 0\r\n\r\n";

/// Token-ish text for header values: no CR, LF or commas.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,24}"
}

/// A host name (RFC 3261 §25.1 `hostname`).
fn host() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z]{2,6}){0,2}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let table = table_once();
        let mut out = Vec::new();
        for framing in [Framing::Datagram, Framing::Stream] {
            let _ = config().handle(&mut Context::new(table, &mut out), &bytes, peer(framing));
        }
    }

    #[test]
    fn mutated_invites_never_panic(
        edits in proptest::collection::vec((0usize..400, any::<u8>(), 0u8..3), 1..12)
    ) {
        let mut bytes = INVITE.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        let mut out = Vec::new();
        let outcome = config().handle(&mut Context::new(table_once(), &mut out), &bytes, peer(Framing::Datagram));
        if let Outcome::Reply { .. } = outcome {
            prop_assert!(out.starts_with(b"SIP/2.0 "));
            prop_assert!(out.ends_with(b"\r\n\r\n"));
        }
    }

    #[test]
    fn a_302_copies_the_dialog_headers_byte_for_byte(
        upstream in proptest::collection::vec((host(), 1u16..65535, token()), 0..4),
        branch in token(),
        display in "[A-Za-z ]{0,16}",
        from_tag in token(),
        call_id in token(),
        call_host in token(),
        cseq in 0u32..(1 << 31),
        compact in any::<bool>(),
    ) {
        let via_name = if compact { "v" } else { "Via" };
        let mut text = String::from("INVITE sip:+18005550100@127.0.0.1;user=phone SIP/2.0\r\n");
        let top = format!("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{branch}");
        text.push_str(&format!("{via_name}: {top}\r\n"));
        let mut vias = Vec::new();
        for (host, port, b) in &upstream {
            let via = format!("SIP/2.0/TCP {host}:{port};branch=z9hG4bK{b}");
            text.push_str(&format!("{via_name}: {via}\r\n"));
            vias.push(via);
        }
        let from = format!("\"{display}\" <sip:+19995550123@127.0.0.1>;tag={from_tag}");
        let to = "<sip:+18005550100@127.0.0.1;user=phone>".to_owned();
        let call_id = format!("{call_id}@{call_host}");
        let cseq = format!("{cseq} INVITE");
        text.push_str(&format!("From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"));

        let mut out = Vec::new();
        let outcome = config().handle(&mut Context::new(table_once(), &mut out), text.as_bytes(), peer(Framing::Datagram));
        prop_assert!(matches!(outcome, Outcome::Reply { status: 302, .. }), "{outcome:?}");
        let response = String::from_utf8(out).unwrap();
        prop_assert!(response.contains(&format!("\r\nVia: {top}\r\n")), "{}", response);
        let mut rest = response.as_str();
        for via in &vias {
            let line = format!("\r\nVia: {via}\r\n");
            let at = rest.find(&line);
            prop_assert!(at.is_some(), "{} missing or out of order in {}", via, response);
            rest = &rest[at.unwrap() + line.len() - 2..];
        }
        prop_assert!(response.contains(&format!("\r\nFrom: {from}\r\n")), "{}", response);
        prop_assert!(response.contains(&format!("\r\nTo: {to};tag=")), "{}", response);
        prop_assert!(response.contains(&format!("\r\nCall-ID: {call_id}\r\n")), "{}", response);
        prop_assert!(response.contains(&format!("\r\nCSeq: {cseq}\r\n")), "{}", response);
    }
}

fn table_once() -> &'static RoutingTable {
    static TABLE: std::sync::OnceLock<RoutingTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(table)
}

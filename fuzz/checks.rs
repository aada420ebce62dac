//! What the fuzz targets check, in one place: `fuzz_targets/` run it under
//! libFuzzer (nightly), `tests/fuzz_corpus.rs` replays the committed corpus
//! through it on stable with the rest of the suite.

use std::net::SocketAddr;

use switchboard::routing::DiversionStyle;
use switchboard::routing::RoutingTable;
use switchboard::server::handler::{Context, Handler, Outcome, Peer, Transport};
use switchboard::settings::{FloodSettings, Settings, Untrusted};
use switchboard::sip::framing::{self, Frame};
use switchboard::sip::oversize::readable_head;
use switchboard::sip::{Framing, ParseLimits, Request};

/// Headers and text the server adds to any answer, at most.
const OVERHEAD: usize = 1024;

/// The parser and the TCP framer on arbitrary bytes: no panic, and what
/// they report stays inside the input.
pub fn parse(data: &[u8]) {
    // The first byte picks tight limits sometimes, so the limit paths run too.
    let limits = match data.first() {
        Some(b) if b % 4 == 0 => ParseLimits {
            max_headers: usize::from(b % 16),
            max_header_bytes: usize::from(*b),
        },
        _ => ParseLimits::default(),
    };
    for framing in [Framing::Datagram, Framing::Stream] {
        if let Some(request) = Request::parse_within(data, framing, limits) {
            assert!(request.body.len() <= data.len());
            let _ = request.to_tag();
            let _ = request.from_tag();
            let _ = request.requires();
            if let Some(via) = request.top_via {
                let _ = via.response_address(SocketAddr::from(([127, 0, 0, 1], 5060)));
            }
        }
    }
    let mut rest = data;
    while let Ok(Some(frame)) = framing::check(rest, 4096) {
        let n = match frame {
            Frame::Message(n) | Frame::Ping(n) | Frame::Skip(n) => n,
        };
        assert!(n > 0 && n <= rest.len() && n <= 4096);
        rest = &rest[n..];
    }
}

/// The handler the datagram target drives: untrusted peers rejected (so
/// 403s are built too), the rule header on, flood protection off (buckets
/// would make one input's outcome depend on the inputs before it).
pub fn datagram_config() -> Handler {
    Handler::from_settings(&Settings {
        untrusted: Untrusted::Reject,
        rule_header: true,
        // The largest 302 there is: a failover chain (the example data's
        // +18005550188), History-Info, and its entries in every Contact.
        diversion: DiversionStyle::HistoryInfo,
        contact_headers: true,
        flood: FloodSettings {
            rate: 0,
            ..FloodSettings::default()
        },
        ..Settings::default()
    })
    .expect("valid settings")
}

/// The whole datagram → response path. The first byte picks the peer
/// (trusted or not, IPv4 or IPv6) and the framing; the rest is the
/// message. No panic, and an answer is a SIP response no larger than the
/// request plus a bounded overhead (no reflection amplification).
pub fn datagram(data: &[u8], config: &Handler, table: &RoutingTable) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let source: SocketAddr = match selector % 4 {
        0 => SocketAddr::from(([127, 0, 0, 1], 5062)),
        1 => SocketAddr::from(([192, 0, 2, 7], 5060)),
        2 => "[::1]:5062".parse().expect("literal address"),
        _ => "[2001:db8::7]:5060".parse().expect("literal address"),
    };
    // Over TLS, a peer may also be trusted by its certificate.
    let peer = match selector & 12 {
        0 => Peer::at(source, Transport::Udp),
        4 => Peer::at(source, Transport::Tcp),
        8 => Peer::at(source, Transport::Tls),
        _ => Peer {
            trusted_by_certificate: true,
            ..Peer::at(source, Transport::Tls)
        },
    };
    let mut out = Vec::new();
    let outcome = config.handle(&mut Context::new(table, &mut out), message, peer);
    check_answer(outcome, &out, message.len());
    // The same bytes as the head of a message over a 512-byte limit: the
    // 513 path reads only what lies within it.
    let head = readable_head(message, OVERSIZE_LIMIT);
    let outcome = config.handle_oversize(&mut out, head, peer);
    if let Outcome::Reply { status, .. } = outcome {
        assert!(matches!(status, 513 | 503 | 403), "{status}");
    }
    check_answer(outcome, &out, head.len());
}

/// The size limit the oversize path is checked under.
const OVERSIZE_LIMIT: usize = 512;

/// An answer is a SIP response no larger than what it answers plus a
/// bounded overhead (no reflection amplification).
fn check_answer(outcome: Outcome, out: &[u8], answered: usize) {
    if let Outcome::Reply { status, .. } = outcome {
        assert!(
            out.starts_with(b"SIP/2.0 "),
            "{:?}",
            String::from_utf8_lossy(out)
        );
        assert!(out.ends_with(b"\r\n\r\n"));
        assert!((100..700).contains(&status));
        assert!(
            out.len() <= answered + OVERHEAD,
            "{} bytes answered to {answered}",
            out.len(),
        );
    }
}

/// The key the cache-entry target reads under: fixed, so that a seed
/// written with it (`cache_seed`) takes the fuzzer past the header.
pub fn cache_key() -> switchboard::routing_data::cache::EntryKey {
    switchboard::routing_data::cache::EntryKey {
        program: 0x5eed_5eed_5eed_5eed_5eed_5eed_5eed_5eed,
        settings: 1,
        path: b"routing.yaml".to_vec(),
        content: 2,
    }
}

/// A valid entry: the shipped example data, compiled and written.
pub fn cache_seed(example_yaml: &str) -> Vec<u8> {
    use std::sync::Arc;
    let file: Arc<std::path::Path> = Arc::from(std::path::Path::new("routing.yaml"));
    let compiled = switchboard::routing_data::compile::compile_file(
        &file,
        example_yaml,
        &switchboard::routing::Region::us(),
        &switchboard::routing_data::YamlLimits::default(),
    );
    switchboard::routing_data::cache::format::encode(&cache_key(), &compiled)
}

/// The cache reader on arbitrary bytes, as they are and with their header
/// sealed (length and checksum made to agree with the body, so that
/// mutations reach the body's reader instead of stopping at the checksum):
/// no panic, and whatever it accepts writes back to an entry it accepts
/// again with the same accounts.
pub fn cache_entry(data: &[u8]) {
    cache_entry_as_is(data);
    let mut sealed = data.to_vec();
    switchboard::routing_data::cache::format::seal(&mut sealed);
    cache_entry_as_is(&sealed);
}

fn cache_entry_as_is(data: &[u8]) {
    use std::sync::Arc;
    use switchboard::routing_data::cache::format::{decode, encode};
    let file: Arc<std::path::Path> = Arc::from(std::path::Path::new("routing.yaml"));
    let key = cache_key();
    if let Ok(compiled) = decode(data, &key, &file) {
        let again = decode(&encode(&key, &compiled), &key, &file)
            .expect("an accepted entry, written again, is accepted");
        assert_eq!(again.diagnostics, compiled.diagnostics);
        assert_eq!(again.accounts.len(), compiled.accounts.len());
        for (a, b) in again.accounts.iter().zip(&compiled.accounts) {
            assert_eq!(a.account, b.account);
            assert_eq!(a.number_lines, b.number_lines);
        }
    }
}

/// The response parser, as the proxy reads every datagram a next hop
/// sends (RFC 3261 §16.7), on arbitrary bytes, over both framings: no
/// panic; what it reports stays inside the input; the status is a SIP
/// status; and the proxy's two uses of a parsed response, removing its own
/// Via (`relay_response`) and relaying a stray 2xx statelessly
/// (`relay_stray_2xx`), never panic and never grow the message by more
/// than a rewritten Via line's framing (`Via: ` and CRLF for a compact,
/// LF-ended `v:` line).
pub fn response(data: &[u8]) {
    use switchboard::proxy::forward::{relay_response, relay_stray_2xx};
    use switchboard::sip::response_head::ResponseHead;

    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(head) = ResponseHead::parse(data, framing) else {
            continue;
        };
        assert!((100..=699).contains(&head.status), "{}", head.status);
        assert_eq!(head.is_final(), head.status >= 200);
        let line = head.top_via_line.clone();
        assert!(line.start <= line.end && line.end <= data.len(), "{line:?}");
        let body = head.body.clone();
        assert!(body.start <= body.end && body.end <= data.len(), "{body:?}");
        if let Some(length) = head.content_length {
            assert!(body.len() >= length.min(body.len()));
        }
        let _ = head.branch();
        let _ = head.top_via.relay_address();
        let mut out = Vec::new();
        relay_response(data, &head, &mut out);
        assert!(
            out.len() <= data.len() + 8,
            "{} from {}",
            out.len(),
            data.len()
        );
    }
    if let Some(out) = relay_stray_2xx(data) {
        assert!(
            out.len() <= data.len() + 8,
            "{} from {}",
            out.len(),
            data.len()
        );
        assert!(out.starts_with(b"SIP/2.0 2"));
    }
}

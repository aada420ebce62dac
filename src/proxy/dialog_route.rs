//! Record-Route, and the in-dialog requests that come back through it
//! (RFC 3261 §16.6 step 4, §16.4, §16.12 loose routing, §12.2.1.1).
//!
//! With `proxy.record_route`, every forwarded INVITE carries
//! `Record-Route: <sip:SENT-BY;sbd=MAC;lr>`. The phone copies it into its
//! answer, both ends put it in their route set, and the dialog's later
//! requests (ACK, BYE, re-INVITE, ...) arrive here with it as their top
//! `Route`. They are then relayed without a transaction (§16.11): the ends
//! retransmit their own requests, and each response finds its way back by
//! its Via.
//!
//! `sbd` is what keeps this from being an open relay. It is the first 8
//! bytes, in hex, of HMAC-SHA256(key, Call-ID ‖ 0x00 ‖ the caller's From
//! tag). A request whose top Route claims it must prove it: the MAC made
//! with its own From tag says it comes from the caller (downstream, toward
//! the phone), the MAC made with its To tag says it comes from the phone
//! (upstream, toward the caller). Anything else is forged and refused. The
//! Call-ID and tags are the dialog's (§12), so a MAC seen once opens only
//! that one dialog, and only to its own two ends' routes.
//!
//! ```text
//!  request with To tag
//!   └─ top Route <sip:..;sbd=..;lr> names this server?
//!        no  → not ours: handled as any other request (481, 403, ...)
//!        yes → MAC(Call-ID, From tag) matches → Downstream
//!              MAC(Call-ID, To tag)   matches → Upstream
//!              neither                        → Forged (403; an ACK is dropped)
//!   Downstream/Upstream: remove that Route value (§16.4), then go to the
//!   next Route's URI, else the Request-URI (§16.12)
//! ```

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::sip::Request;
use crate::sip::header_lines::{headers, start_line_end};
use crate::sip::host::split_host_port;
use crate::sip::text::trim;

/// The URI parameter that carries the MAC.
const PARAM: &[u8] = b"sbd=";
/// Bytes of the HMAC kept: 64 bits, in 16 hex digits.
const MAC_BYTES: usize = 8;

/// The key the Record-Route MACs are made with. Its bytes stay out of
/// logs.
#[derive(Clone)]
pub struct RouteKey(Vec<u8>);

impl std::fmt::Debug for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteKey(..)")
    }
}

impl RouteKey {
    pub fn new(bytes: Vec<u8>) -> RouteKey {
        RouteKey(bytes)
    }

    /// The MAC of a dialog's Call-ID and one of its tags, in hex.
    fn mac(&self, call_id: &[u8], tag: &[u8]) -> [u8; MAC_BYTES * 2] {
        let mut hex = [0u8; MAC_BYTES * 2];
        // HMAC takes a key of any length; the error is unreachable, and a
        // zero MAC would then match nothing a peer sends.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return hex;
        };
        mac.update(call_id);
        mac.update(&[0]);
        mac.update(tag);
        let digest = mac.finalize().into_bytes();
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in digest.iter().take(MAC_BYTES).enumerate() {
            hex[2 * i] = DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        hex
    }
}

/// Our Record-Route URI for a dialog (without `;lr`, which
/// `forward_request` adds): `sip:SENT-BY;sbd=MAC`.
pub fn record_route_uri(
    sent_by: &[u8],
    key: &RouteKey,
    call_id: &[u8],
    from_tag: &[u8],
) -> Vec<u8> {
    let mut uri = Vec::with_capacity(sent_by.len() + 26);
    uri.extend_from_slice(b"sip:");
    uri.extend_from_slice(sent_by);
    uri.push(b';');
    uri.extend_from_slice(PARAM);
    uri.extend_from_slice(&key.mac(trim(call_id), from_tag));
    uri
}

/// Which way an in-dialog request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the caller toward the phone.
    Downstream,
    /// From the phone back toward the caller.
    Upstream,
}

/// What an in-dialog request is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InDialog {
    /// Its top Route is not ours (or it has none): not for this module.
    NotOurs,
    /// Its top Route is ours with a MAC that fits neither end: refused.
    Forged,
    /// Ours: relay it, without the top Route value, to `next`.
    Relay {
        direction: Direction,
        /// The URI to send to: the next Route's, else the Request-URI.
        next: Vec<u8>,
    },
}

/// Classifies a request that carries a To tag (§12: in a dialog).
/// `sent_by` is our Record-Route host and port.
pub fn classify(raw: &[u8], request: &Request<'_>, key: &RouteKey, sent_by: &[u8]) -> InDialog {
    let Some(start) = start_line_end(raw) else {
        return InDialog::NotOurs;
    };
    let mut routes = headers(raw, start).filter(|h| h.is(b"Route"));
    let Some(first) = routes.next() else {
        return InDialog::NotOurs;
    };
    let Some((top, rest)) = split_first_route(first.value) else {
        return InDialog::NotOurs;
    };
    let Some(claimed) = ours(top, sent_by) else {
        return InDialog::NotOurs;
    };
    let call_id = request.call_id.map(trim).unwrap_or_default();
    let fits = |tag: Option<&[u8]>| tag.is_some_and(|tag| key.mac(call_id, tag) == claimed);
    let direction = if fits(request.from_tag()) {
        Direction::Downstream
    } else if fits(request.to_tag()) {
        Direction::Upstream
    } else {
        return InDialog::Forged;
    };
    let next = match rest {
        Some(rest) => split_first_route(rest).map(|(uri, _)| uri),
        None => routes
            .next()
            .and_then(|line| split_first_route(line.value).map(|(uri, _)| uri)),
    };
    InDialog::Relay {
        direction,
        next: next.unwrap_or(request.uri).to_vec(),
    }
}

/// The URI of a Route value's first entry (`<uri>` with its params after
/// `>`), and what follows its comma, if anything.
pub fn split_first_route(value: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let open = memchr::memchr(b'<', value)?;
    let close = open + memchr::memchr(b'>', value.get(open..)?)?;
    let uri = value.get(open + 1..close)?;
    let after = value.get(close + 1..)?;
    let rest = memchr::memchr(b',', after)
        .and_then(|comma| after.get(comma + 1..))
        .map(trim)
        .filter(|rest| !rest.is_empty());
    Some((uri, rest))
}

/// The MAC a Route URI carries, when it names `sent_by` and has one.
fn ours<'a>(uri: &'a [u8], sent_by: &[u8]) -> Option<&'a [u8]> {
    let rest = uri
        .strip_prefix(b"sip:")
        .or_else(|| uri.strip_prefix(b"SIP:"))?;
    let (hostport, params) = match memchr::memchr(b';', rest) {
        Some(at) => (rest.get(..at)?, rest.get(at + 1..)?),
        None => return None,
    };
    let (host, port) = split_host_port(hostport)?;
    let (our_host, our_port) = split_host_port(sent_by)?;
    if !host.eq_ignore_ascii_case(our_host) || port.unwrap_or(5060) != our_port.unwrap_or(5060) {
        return None;
    }
    params
        .split(|&b| b == b';')
        .find_map(|param| param.strip_prefix(PARAM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Framing;

    const SENT_BY: &[u8] = b"10.0.0.1:5060";

    fn key() -> RouteKey {
        RouteKey::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    fn bye(from_tag: &str, to_tag: &str, route: &str) -> String {
        format!(
            "BYE sip:+14155550101@10.0.0.9:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKb1\r\n\
             Max-Forwards: 70\r\n\
             {route}\
             From: <sip:+16505550123@192.0.2.7>;tag={from_tag}\r\n\
             To: <sip:+18005550100@sb.example>;tag={to_tag}\r\n\
             Call-ID: c1@192.0.2.7\r\n\
             CSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    fn classify_str(message: &str) -> InDialog {
        let request = Request::parse(message.as_bytes(), Framing::Datagram).unwrap();
        classify(message.as_bytes(), &request, &key(), SENT_BY)
    }

    fn our_route(tag: &str) -> String {
        let uri = record_route_uri(SENT_BY, &key(), b"c1@192.0.2.7", tag.as_bytes());
        format!("<{};lr>", String::from_utf8(uri).unwrap())
    }

    #[test]
    fn the_uri_carries_a_mac_of_the_dialog() {
        let uri = record_route_uri(SENT_BY, &key(), b"c1@192.0.2.7", b"f1");
        let text = String::from_utf8(uri).unwrap();
        assert!(text.starts_with("sip:10.0.0.1:5060;sbd="), "{text}");
        assert_eq!(text.len(), "sip:10.0.0.1:5060;sbd=".len() + 16);
        // Another dialog, another MAC.
        let other = record_route_uri(SENT_BY, &key(), b"c2@192.0.2.7", b"f1");
        assert_ne!(text.into_bytes(), other);
    }

    #[test]
    fn the_callers_requests_go_downstream_and_the_phones_upstream() {
        let route = format!("Route: {}\r\n", our_route("f1"));
        assert_eq!(
            classify_str(&bye("f1", "t9", &route)),
            InDialog::Relay {
                direction: Direction::Downstream,
                next: b"sip:+14155550101@10.0.0.9:5070".to_vec(),
            }
        );
        // The phone's BYE: its From is the dialog's To.
        assert_eq!(
            classify_str(&bye("t9", "f1", &route)),
            InDialog::Relay {
                direction: Direction::Upstream,
                next: b"sip:+14155550101@10.0.0.9:5070".to_vec(),
            }
        );
    }

    #[test]
    fn the_next_route_wins_over_the_request_uri() {
        let same_line = format!("Route: {}, <sip:edge.example;lr>\r\n", our_route("f1"));
        let next_line = format!(
            "Route: {}\r\nRoute: <sip:edge.example;lr>\r\n",
            our_route("f1")
        );
        for route in [same_line, next_line] {
            assert_eq!(
                classify_str(&bye("f1", "t9", &route)),
                InDialog::Relay {
                    direction: Direction::Downstream,
                    next: b"sip:edge.example;lr".to_vec(),
                },
                "{route}"
            );
        }
    }

    #[test]
    fn a_forged_or_foreign_route_is_not_relayed() {
        let route = format!("Route: {}\r\n", our_route("f1"));
        // Right MAC, another dialog's tags.
        assert_eq!(classify_str(&bye("x", "y", &route)), InDialog::Forged);
        let forged = "Route: <sip:10.0.0.1:5060;sbd=0000000000000000;lr>\r\n";
        assert_eq!(classify_str(&bye("f1", "t9", forged)), InDialog::Forged);
        // Someone else's host, or no MAC: not ours.
        let foreign = route.replace("10.0.0.1", "10.0.0.2");
        assert_eq!(classify_str(&bye("f1", "t9", &foreign)), InDialog::NotOurs);
        let plain = "Route: <sip:10.0.0.1:5060;lr>\r\n";
        assert_eq!(classify_str(&bye("f1", "t9", plain)), InDialog::NotOurs);
        assert_eq!(classify_str(&bye("f1", "t9", "")), InDialog::NotOurs);
    }

    #[test]
    fn a_default_port_matches_an_explicit_5060() {
        let uri = record_route_uri(b"10.0.0.1", &key(), b"c1@192.0.2.7", b"f1");
        let route = format!("Route: <{};lr>\r\n", String::from_utf8(uri).unwrap());
        assert!(matches!(
            classify_str(&bye("f1", "t9", &route)),
            InDialog::Relay { .. }
        ));
    }
}

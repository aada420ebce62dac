//! Building the messages a stateful proxy sends, byte for byte:
//!
//! - the forwarded INVITE of one leg (RFC 3261 §16.6): a copy of the
//!   request with the target as Request-URI (step 2), Max-Forwards
//!   decremented or `Max-Forwards: 70` added (step 3), `Record-Route` with
//!   `;lr` on top when asked (step 4, §16.12 loose routing), the caller's
//!   extra headers such as Diversion (RFC 5806) or History-Info (RFC 7044)
//!   (step 5), our Via on top with a fresh branch and `rport` (step 8,
//!   RFC 3581) and a Content-Length (step 9, needed on streams);
//! - the CANCEL of a leg (§9.1): the same Request-URI, Call-ID, From, To
//!   and CSeq number as the INVITE it cancels, method CANCEL, only our top
//!   Via (same branch), `Max-Forwards: 70`, the INVITE's Route headers;
//! - the hop-by-hop ACK for a non-2xx final response (§17.1.1.3): like the
//!   CANCEL, method ACK, with the To of the response (its tag);
//! - a response relayed upstream with our top Via removed (§16.7 step 3).
//!
//! Header values are copied unfolded (§7.3.1 allows folding to be
//! replaced by one space) and every line written ends in CRLF, so a
//! forwarded request never carries the bare LF a lenient parser accepted.
//! Route processing (§16.4, removing our own URI from the top Route) is
//! the caller's: the Request-URI here is always a target the routing data
//! chose.

use std::net::SocketAddr;

use crate::sip::header::HeaderName;
use crate::sip::header_lines::{HeaderLine, headers, start_line_end};
use crate::sip::response_head::ResponseHead;
use crate::sip::text::{parse_u32, trim, write_unfolded};
use crate::sip::{Framing, Request};

use super::branch::{Branch, STATELESS_LEG, STREAM_LEG};
use super::dialog_route::split_first_route;

/// Why a message could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("Max-Forwards is 0: answer 483 instead of forwarding")]
    TooManyHops,
    #[error("the request cannot be parsed")]
    Unparsable,
    #[error("the request has no usable CSeq")]
    BadCSeq,
}

/// Our Via: `SIP/2.0/<transport> <sent_by>`.
#[derive(Debug, Clone, Copy)]
pub struct ViaSpec<'a> {
    /// `UDP`, `TCP` or `TLS`.
    pub transport: &'a [u8],
    /// `host[:port]` as peers should send responses to.
    pub sent_by: &'a [u8],
}

/// What a forwarded INVITE is made of besides the received request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSpec<'a> {
    pub target_uri: &'a [u8],
    pub via: ViaSpec<'a>,
    pub branch: &'a Branch,
    /// Our URI for Record-Route, without `;lr` (added here); `None`: stay
    /// off the dialog's path.
    pub record_route: Option<&'a [u8]>,
    /// Whole header lines (each ending in CRLF) put first, after our Via
    /// and Record-Route: for headers whose newest value goes on top, such
    /// as Diversion (RFC 5806 §3).
    pub top_headers: &'a [u8],
    /// Whole header lines put last: for headers appended in order, such as
    /// History-Info (RFC 7044 §9.1).
    pub bottom_headers: &'a [u8],
    /// Where the request came from: the received top Via then gets
    /// `received` and the `rport` value (§18.2.1, RFC 3581 §4), so that
    /// a response relayed without state still finds its way back.
    pub received_from: Option<SocketAddr>,
    /// Remove the first Route value: it named us (§16.4), as an in-dialog
    /// request's does when we record-routed its dialog.
    pub drop_top_route: bool,
}

/// Writes the forwarded copy of `request` (parsed from `raw`) into `out`
/// (cleared first).
pub fn forward_request(
    raw: &[u8],
    request: &Request<'_>,
    spec: &ForwardSpec<'_>,
    out: &mut Vec<u8>,
) -> Result<(), ForwardError> {
    let max_forwards = match request.max_forwards {
        Some(0) => return Err(ForwardError::TooManyHops),
        Some(n) => Some(n - 1),
        None => None,
    };
    let start = start_line_end(raw).ok_or(ForwardError::Unparsable)?;
    out.clear();
    out.extend_from_slice(request.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.target_uri);
    out.extend_from_slice(b" SIP/2.0\r\n");
    write_via(out, spec.via, spec.branch);
    // Record-Route and the top headers go after the received Vias, so the
    // Vias stay together (lazy parsers read only a first block of them),
    // and before any received Record-Route (ours must be the top one).
    let mut placed = false;
    let mut first_via = true;
    let mut route_to_drop = spec.drop_top_route;
    let mut number = itoa::Buffer::new();
    for header in headers(raw, start) {
        if !placed && header.kind() != HeaderName::Via {
            write_top(out, spec);
            placed = true;
        }
        match header.kind() {
            HeaderName::MaxForwards => {
                // Several lines: the parser kept the last; one is written.
                continue;
            }
            // Written once, below, from the body actually forwarded.
            HeaderName::ContentLength => continue,
            _ if route_to_drop && header.is(b"Route") => {
                route_to_drop = false;
                // The line's other values stay, in order.
                if let Some((_, Some(rest))) = split_first_route(header.value) {
                    out.extend_from_slice(header.name);
                    out.extend_from_slice(b": ");
                    write_unfolded(out, rest);
                    out.extend_from_slice(b"\r\n");
                }
            }
            HeaderName::Via if first_via => {
                first_via = false;
                match (spec.received_from, request.top_via) {
                    (Some(source), Some(top)) => {
                        out.extend_from_slice(header.name);
                        out.extend_from_slice(b": ");
                        top.write_echo(source, out);
                        if let Some(rest) = top.rest_of_line {
                            out.push(b',');
                            write_unfolded(out, rest);
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                    _ => copy_header(out, &header),
                }
            }
            _ => copy_header(out, &header),
        }
    }
    if !placed {
        write_top(out, spec);
    }
    out.extend_from_slice(b"Max-Forwards: ");
    out.extend_from_slice(number.format(max_forwards.unwrap_or(70)).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(spec.bottom_headers);
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(number.format(request.body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(request.body);
    Ok(())
}

/// The CANCEL for the leg whose forwarded INVITE is `forwarded` (§9.1).
pub fn build_cancel(forwarded: &[u8]) -> Result<Vec<u8>, ForwardError> {
    build_hop_request(forwarded, b"CANCEL", None)
}

/// The ACK for a non-2xx final response to `forwarded`, whose To value
/// (with the tag the UAS added) is `response_to` (§17.1.1.3).
pub fn build_ack(forwarded: &[u8], response_to: &[u8]) -> Result<Vec<u8>, ForwardError> {
    build_hop_request(forwarded, b"ACK", Some(response_to))
}

fn build_hop_request(
    forwarded: &[u8],
    method: &[u8],
    to: Option<&[u8]>,
) -> Result<Vec<u8>, ForwardError> {
    let request = Request::parse(forwarded, Framing::Datagram).ok_or(ForwardError::Unparsable)?;
    let via = *request.vias().first().ok_or(ForwardError::Unparsable)?;
    let number = request
        .cseq
        .and_then(|c| c.split(|b| crate::sip::text::is_lws(*b)).next())
        .filter(|n| parse_u32(n).is_some())
        .ok_or(ForwardError::BadCSeq)?;
    let mut out = Vec::with_capacity(forwarded.len().min(1024));
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(request.uri);
    out.extend_from_slice(b" SIP/2.0\r\nVia: ");
    // Only our Via: the one at the top of the forwarded INVITE.
    write_unfolded(&mut out, via);
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\n");
    for (name, value) in [
        (&b"From: "[..], request.from),
        (b"To: ", to.or(request.to)),
        (b"Call-ID: ", request.call_id),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(name);
            write_unfolded(&mut out, trim(value));
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(number);
    out.push(b' ');
    out.extend_from_slice(method);
    out.extend_from_slice(b"\r\n");
    if let Some(start) = start_line_end(forwarded) {
        for header in headers(forwarded, start).filter(|h| h.is(b"Route")) {
            copy_header(&mut out, &header);
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(out)
}

/// Writes `msg` without our top Via into `out` (cleared first): the whole
/// line when it holds only ours, else the line without its first value
/// (§16.7 step 3). The caller checks `head.more_vias` first: a response
/// with no Via left was for us and is not relayed.
pub fn relay_response(msg: &[u8], head: &ResponseHead<'_>, out: &mut Vec<u8>) {
    out.clear();
    let line = head.top_via_line.clone();
    let (Some(before), Some(after)) = (msg.get(..line.start), msg.get(line.end..)) else {
        return;
    };
    out.extend_from_slice(before);
    if let Some(rest) = head.top_via.rest_of_line {
        out.extend_from_slice(b"Via: ");
        write_unfolded(out, trim(rest));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(after);
}

/// A 2xx that matches no transaction any more (its call is over) but
/// carries one of our branches on top: relayed statelessly, our Via
/// removed (§16.7, RFC 6026 §7: a proxy never drops a 2xx). `None` for
/// anything else, which is dropped. The caller sends the result by its
/// (new) top Via: `received` and `rport` there say where (§18.2.2).
pub fn relay_stray_2xx(msg: &[u8]) -> Option<Vec<u8>> {
    relay_ours(msg, |status, _| (200..300).contains(&status))
}

/// A response to a request we relayed without a transaction (an
/// in-dialog request through our Record-Route, §16.11): relayed by its
/// Via whatever its status, our Via removed. `None` when its top branch
/// is not such a one of ours.
pub fn relay_stateless(msg: &[u8]) -> Option<Vec<u8>> {
    relay_ours(msg, |_, leg| leg == STATELESS_LEG || leg == STREAM_LEG)
}

/// `msg` without our top Via, when the top branch is ours and `relayed`
/// says yes to its status and leg, and a Via is left to send it by.
fn relay_ours(msg: &[u8], relayed: impl Fn(u16, u8) -> bool) -> Option<Vec<u8>> {
    let head = ResponseHead::parse(msg, Framing::Datagram).ok()?;
    let parts = head.branch().and_then(super::branch::parse)?;
    if !relayed(head.status, parts.leg) || !head.more_vias {
        return None;
    }
    let mut out = Vec::with_capacity(msg.len());
    relay_response(msg, &head, &mut out);
    Some(out)
}

fn write_top(out: &mut Vec<u8>, spec: &ForwardSpec<'_>) {
    if let Some(uri) = spec.record_route {
        out.extend_from_slice(b"Record-Route: <");
        out.extend_from_slice(uri);
        out.extend_from_slice(b";lr>\r\n");
    }
    out.extend_from_slice(spec.top_headers);
}

fn write_via(out: &mut Vec<u8>, via: ViaSpec<'_>, branch: &Branch) {
    out.extend_from_slice(b"Via: SIP/2.0/");
    out.extend_from_slice(via.transport);
    out.push(b' ');
    out.extend_from_slice(via.sent_by);
    out.extend_from_slice(b";branch=");
    out.extend_from_slice(branch.as_bytes());
    out.extend_from_slice(b";rport\r\n");
}

fn copy_header(out: &mut Vec<u8>, header: &HeaderLine<'_>) {
    out.extend_from_slice(header.name);
    out.extend_from_slice(b": ");
    write_unfolded(out, header.value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::branch::BranchParts;

    const INVITE: &str = "INVITE sip:+18005550100@sb.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKup;rport\r\n\
        Max-Forwards: 70\r\n\
        Route: <sip:edge.example;lr>\r\n\
        From: \"Ann\" <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
        To: <sip:+18005550100@sb.example>\r\n\
        Call-ID: c1@192.0.2.7\r\n\
        CSeq: 7 INVITE\r\n\
        Subject: folded\r\n  subject\r\n\
        Content-Type: application/sdp\r\n\
        l: 4\r\n\
        \r\n\
        v=0\n";

    fn branch() -> Branch {
        Branch::new(BranchParts {
            loop_hash: 1,
            call_nonce: 2,
            leg: 1,
        })
    }

    fn forwarded(invite: &str, record_route: Option<&[u8]>) -> Result<String, ForwardError> {
        let request = Request::parse(invite.as_bytes(), Framing::Datagram).unwrap();
        let b = branch();
        let spec = ForwardSpec {
            target_uri: b"sip:+14155550101@10.0.0.9:5070",
            via: ViaSpec {
                transport: b"UDP",
                sent_by: b"10.0.0.1:5060",
            },
            branch: &b,
            record_route,
            top_headers: b"Diversion: <sip:+18005550100@sb.example>;reason=no-answer;counter=1\r\n",
            bottom_headers: b"",
            received_from: Some("192.0.2.70:40000".parse().unwrap()),
            drop_top_route: false,
        };
        let mut out = Vec::new();
        forward_request(invite.as_bytes(), &request, &spec, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn golden_forwarded_invite() {
        assert_eq!(
            forwarded(INVITE, Some(b"sip:10.0.0.1:5060")).unwrap(),
            "INVITE sip:+14155550101@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsb0000000000000001.0000000000000002.01;rport\r\n\
            Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKup;rport=40000;received=192.0.2.70\r\n\
            Record-Route: <sip:10.0.0.1:5060;lr>\r\n\
            Diversion: <sip:+18005550100@sb.example>;reason=no-answer;counter=1\r\n\
            Route: <sip:edge.example;lr>\r\n\
            From: \"Ann\" <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
            To: <sip:+18005550100@sb.example>\r\n\
            Call-ID: c1@192.0.2.7\r\n\
            CSeq: 7 INVITE\r\n\
            Subject: folded subject\r\n\
            Content-Type: application/sdp\r\n\
            Max-Forwards: 69\r\n\
            Content-Length: 4\r\n\
            \r\n\
            v=0\n"
        );
    }

    #[test]
    fn max_forwards_added_or_refused() {
        let without = INVITE.replace("Max-Forwards: 70\r\n", "");
        assert!(
            forwarded(&without, None)
                .unwrap()
                .contains("\r\nMax-Forwards: 70\r\n")
        );
        let zero = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0");
        assert_eq!(forwarded(&zero, None), Err(ForwardError::TooManyHops));
        let one = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 1");
        assert!(
            forwarded(&one, None)
                .unwrap()
                .contains("\r\nMax-Forwards: 0\r\n")
        );
    }

    #[test]
    fn golden_cancel_and_ack() {
        let fwd = forwarded(INVITE, None).unwrap();
        let cancel = String::from_utf8(build_cancel(fwd.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            cancel,
            "CANCEL sip:+14155550101@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsb0000000000000001.0000000000000002.01;rport\r\n\
            Max-Forwards: 70\r\n\
            From: \"Ann\" <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
            To: <sip:+18005550100@sb.example>\r\n\
            Call-ID: c1@192.0.2.7\r\n\
            CSeq: 7 CANCEL\r\n\
            Route: <sip:edge.example;lr>\r\n\
            Content-Length: 0\r\n\r\n"
        );
        let ack = String::from_utf8(
            build_ack(fwd.as_bytes(), b"<sip:+18005550100@sb.example>;tag=callee").unwrap(),
        )
        .unwrap();
        assert_eq!(
            ack,
            cancel
                .replace("CANCEL", "ACK")
                .replace("sb.example>\r\n", "sb.example>;tag=callee\r\n")
        );
    }

    #[test]
    fn stray_2xx_are_relayed_only_when_ours() {
        let ours = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb0000000000000001.0000000000000002.01\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup;received=192.0.2.70;rport=40000\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\nTo: <sip:b@h>;tag=t\r\n\r\n";
        let relayed = String::from_utf8(relay_stray_2xx(ours.as_bytes()).unwrap()).unwrap();
        assert!(relayed.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.7;"));
        assert_eq!(
            relay_stray_2xx(ours.replace("200 OK", "486 Busy").as_bytes()),
            None
        );
        assert_eq!(
            relay_stray_2xx(ours.replace("z9hG4bKsb", "z9hG4bKxx").as_bytes()),
            None
        );
        assert_eq!(relay_stray_2xx(b"garbage"), None);
    }

    #[test]
    fn responses_to_stateless_requests_are_relayed_whatever_their_status() {
        let via = |leg: &str| {
            format!(
                "SIP/2.0 481 Call Does Not Exist\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb0000000000000001.0000000000000002.{leg}\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\nCSeq: 2 BYE\r\nCall-ID: c\r\nTo: <sip:b@h>;tag=t\r\n\r\n"
            )
        };
        let relayed = relay_stateless(via("ff").as_bytes()).unwrap();
        assert!(
            relayed.starts_with(b"SIP/2.0 481 Call Does Not Exist\r\nVia: SIP/2.0/UDP 192.0.2.7;")
        );
        // A leg of a call's transaction is not stateless.
        assert_eq!(relay_stateless(via("01").as_bytes()), None);
    }

    #[test]
    fn golden_in_dialog_request_without_our_route() {
        let bye = "BYE sip:bob@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKb1\r\n\
            Route: <sip:10.0.0.1:5060;sbd=0123456789abcdef;lr>, <sip:edge.example;lr>\r\n\
            Route: <sip:core.example;lr>\r\n\
            From: <sip:a@192.0.2.7>;tag=f1\r\n\
            To: <sip:b@sb.example>;tag=t9\r\n\
            Call-ID: c1\r\n\
            CSeq: 2 BYE\r\n\
            Content-Length: 0\r\n\r\n";
        let request = Request::parse(bye.as_bytes(), Framing::Datagram).unwrap();
        let b = Branch::new(BranchParts {
            loop_hash: 1,
            call_nonce: 2,
            leg: STATELESS_LEG,
        });
        let mut spec = ForwardSpec {
            target_uri: request.uri,
            via: ViaSpec {
                transport: b"UDP",
                sent_by: b"10.0.0.1:5060",
            },
            branch: &b,
            record_route: None,
            top_headers: b"",
            bottom_headers: b"",
            received_from: Some("192.0.2.70:40000".parse().unwrap()),
            drop_top_route: true,
        };
        let mut out = Vec::new();
        forward_request(bye.as_bytes(), &request, &spec, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "BYE sip:bob@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsb0000000000000001.0000000000000002.ff;rport\r\n\
            Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKb1;received=192.0.2.70\r\n\
            Route: <sip:edge.example;lr>\r\n\
            Route: <sip:core.example;lr>\r\n\
            From: <sip:a@192.0.2.7>;tag=f1\r\n\
            To: <sip:b@sb.example>;tag=t9\r\n\
            Call-ID: c1\r\n\
            CSeq: 2 BYE\r\n\
            Max-Forwards: 70\r\n\
            Content-Length: 0\r\n\r\n"
        );
        // A Route line holding only ours goes whole.
        let single = bye.replace(", <sip:edge.example;lr>", "");
        let request = Request::parse(single.as_bytes(), Framing::Datagram).unwrap();
        spec.target_uri = request.uri;
        forward_request(single.as_bytes(), &request, &spec, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sbd="), "{text}");
        assert!(
            text.contains("\r\nRoute: <sip:core.example;lr>\r\n"),
            "{text}"
        );
    }

    #[test]
    fn relays_responses_without_our_via() {
        let alone = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\nTo: <sip:b@h>;tag=t\r\n\r\n";
        let head = ResponseHead::parse(alone.as_bytes(), Framing::Datagram).unwrap();
        let mut out = Vec::new();
        relay_response(alone.as_bytes(), &head, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            alone.replace("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb\r\n", "")
        );
        let listed = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb ,\r\n SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\nTo: <sip:b@h>;tag=t\r\n\r\n";
        let head = ResponseHead::parse(listed.as_bytes(), Framing::Datagram).unwrap();
        relay_response(listed.as_bytes(), &head, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\nTo: <sip:b@h>;tag=t\r\n\r\n"
        );
    }

    proptest::proptest! {
        /// Whatever a peer put in the INVITE or its answer: no panic.
        #[test]
        fn never_panics_on_mutated_messages(
            at in 0..INVITE.len(),
            byte in proptest::prelude::any::<u8>(),
            cut in 0..INVITE.len(),
            to in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut bytes = INVITE.as_bytes().to_vec();
            bytes[at] = byte;
            bytes.truncate(cut.max(at) + 1);
            let b = branch();
            let spec = ForwardSpec {
                target_uri: b"sip:x@y",
                via: ViaSpec { transport: b"UDP", sent_by: b"h" },
                branch: &b,
                record_route: None,
                top_headers: b"",
                bottom_headers: b"",
                received_from: Some("192.0.2.1:1".parse().unwrap()),
                drop_top_route: false,
            };
            if let Some(request) = Request::parse(&bytes, Framing::Datagram) {
                let mut out = Vec::new();
                let _ = forward_request(&bytes, &request, &spec, &mut out);
            }
            let _ = build_cancel(&bytes);
            let _ = build_ack(&bytes, &to);
            let _ = relay_stray_2xx(&bytes);
            let _ = relay_stateless(&bytes);
            if let Some(request) = Request::parse(&bytes, Framing::Datagram) {
                let mut out = Vec::new();
                let dropping = ForwardSpec { drop_top_route: true, ..spec };
                let _ = forward_request(&bytes, &request, &dropping, &mut out);
            }
        }
    }
}

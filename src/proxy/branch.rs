//! Branch ids for the proxy's own Via (RFC 3261 §8.1.1.7, §16.6 step 8)
//! and loop detection (§16.3 step 4, RFC 5393 §4.2).
//!
//! A branch is `z9hG4bK` (the magic cookie: this element follows RFC 3261
//! transaction matching) followed by three fields of fixed width:
//!
//! ```text
//! z9hG4bK sb <loop hash: 16 hex> . <call nonce: 16 hex> . <leg: 2 hex>
//! ```
//!
//! - the **loop hash** is a stable hash (xxh3, the same on every replica
//!   and after a restart) of what decides how the request is routed:
//!   Request-URI, From, To tag, Call-ID, CSeq number, P-Asserted-Identity,
//!   Proxy-Require and Proxy-Authorization (§16.6 step 8: "MUST depend on
//!   all information affecting processing of a request"). The Via headers
//!   are left out: they change on every hop, so a looped request would
//!   never hash the same;
//! - the **call nonce** is given by whoever creates the call (a counter
//!   mixed with a random start): it makes the branch unique per call
//!   (§8.1.1.7), and lets the transport layer find the call a response
//!   belongs to without a lookup by string;
//! - the **leg** is the index of the forwarded INVITE within the call, so
//!   each leg is its own client transaction (§16.6 step 8).
//!
//! A request that comes back carrying one of our Vias is a loop when its
//! loop hash equals the one in that Via (same routing inputs: it would go
//! round again, 482), and a spiral when it differs (its Request-URI was
//! changed on the way: routing it again is legitimate, §16.3 step 4).

use xxhash_rust::xxh3::Xxh3;

use crate::sip::Request;
use crate::sip::header_lines::{headers, start_line_end};
use crate::sip::method::Method;
use crate::sip::response_head::ResponseHead;
use crate::sip::text::split_first_value;
use crate::sip::via::TopVia;

/// RFC 3261 §8.1.1.7.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";
/// `sb` marks branches made here, so that parsing someone else's branch
/// that happens to have the same length fails.
const MARK: &[u8] = b"sb";
/// Bytes in a branch made here.
pub const BRANCH_LEN: usize = MAGIC_COOKIE.len() + MARK.len() + 16 + 1 + 16 + 1 + 2;

/// A branch id made by this proxy: fixed size, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Branch {
    bytes: [u8; BRANCH_LEN],
}

impl std::fmt::Debug for Branch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.bytes))
    }
}

/// The leg of a request relayed without a transaction (an in-dialog
/// request through our Record-Route, §16.11): a response on it is relayed
/// by its Via, whatever its status. Calls have at most 254 targets, legs
/// 0 to 253.
pub const STATELESS_LEG: u8 = u8::MAX;

/// As [`STATELESS_LEG`], for a request that came over a stream (TCP or
/// TLS): the branch's call nonce is that connection's id, so that its
/// answers go back on the connection (§18.2.2) with nothing remembered.
pub const STREAM_LEG: u8 = u8::MAX - 1;

/// The fields of a branch made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchParts {
    pub loop_hash: u64,
    pub call_nonce: u64,
    pub leg: u8,
}

impl Branch {
    pub fn new(parts: BranchParts) -> Branch {
        let mut bytes = [0u8; BRANCH_LEN];
        let mut at = 0;
        for piece in [MAGIC_COOKIE, MARK] {
            bytes[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        }
        at = write_hex(&mut bytes, at, parts.loop_hash, 16);
        bytes[at] = b'.';
        at = write_hex(&mut bytes, at + 1, parts.call_nonce, 16);
        bytes[at] = b'.';
        write_hex(&mut bytes, at + 1, u64::from(parts.leg), 2);
        Branch { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn parts(&self) -> BranchParts {
        // Always parses: it was written by `new`.
        parse(&self.bytes).unwrap_or(BranchParts {
            loop_hash: 0,
            call_nonce: 0,
            leg: 0,
        })
    }
}

/// The fields of a branch made here; `None` for anyone else's (or any
/// malformed) branch.
pub fn parse(branch: &[u8]) -> Option<BranchParts> {
    let rest = branch.strip_prefix(MAGIC_COOKIE)?.strip_prefix(MARK)?;
    if rest.len() != 16 + 1 + 16 + 1 + 2 || rest[16] != b'.' || rest[33] != b'.' {
        return None;
    }
    Some(BranchParts {
        loop_hash: read_hex(&rest[..16])?,
        call_nonce: read_hex(&rest[17..33])?,
        leg: u8::try_from(read_hex(&rest[34..])?).ok()?,
    })
}

/// §17.1.3: a response matches a client transaction when the top Via's
/// branch is the transaction's and the CSeq method is the request's (a
/// CANCEL shares its INVITE's branch).
pub fn response_matches(response: &ResponseHead<'_>, branch: &Branch, method: Method<'_>) -> bool {
    response.branch() == Some(branch.as_bytes()) && response.cseq_method == method
}

/// The loop hash of a request: see the module docs for the fields.
/// `raw` is the request's bytes, for the headers [`Request`] does not keep.
pub fn loop_hash(raw: &[u8], request: &Request<'_>) -> u64 {
    let mut h = Xxh3::new();
    let mut field = |bytes: &[u8]| {
        h.update(bytes);
        // A separator, so that moving bytes between fields changes the hash.
        h.update(&[0xff]);
    };
    field(request.uri);
    field(request.from.unwrap_or_default());
    field(request.to_tag().unwrap_or_default());
    field(request.call_id.unwrap_or_default());
    let cseq = request.cseq.unwrap_or_default();
    field(
        cseq.split(|b| crate::sip::text::is_lws(*b))
            .next()
            .unwrap_or_default(),
    );
    field(request.p_asserted_identity.unwrap_or_default());
    if let Some(start) = start_line_end(raw) {
        for header in headers(raw, start) {
            if header.is(b"Proxy-Require") || header.is(b"Proxy-Authorization") {
                field(header.name);
                field(header.value);
            }
        }
    }
    h.digest()
}

/// What a request's Vias say about loops (§16.3 step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopCheck {
    /// None of our Vias: the request has not been here.
    Clean,
    /// It has been here, but with other routing inputs: route it again.
    Spiral,
    /// It has been here with the same routing inputs: answer 482.
    Loop,
}

/// Looks through every Via value for one of ours (`is_ours` says whether
/// a Via's sent-by is this element) carrying a branch made here.
pub fn check_loop(
    raw: &[u8],
    request: &Request<'_>,
    is_ours: impl Fn(&TopVia<'_>) -> bool,
) -> LoopCheck {
    let mut hash = None;
    let mut seen = LoopCheck::Clean;
    for line in request.vias() {
        let mut rest = Some(*line);
        while let Some(values) = rest {
            let (value, next) = split_first_value(values);
            rest = next;
            let Some(via) = TopVia::parse(value) else {
                continue;
            };
            let Some(parts) = via.branch.and_then(parse) else {
                continue;
            };
            if !is_ours(&via) {
                continue;
            }
            let current = *hash.get_or_insert_with(|| loop_hash(raw, request));
            if parts.loop_hash == current {
                return LoopCheck::Loop;
            }
            seen = LoopCheck::Spiral;
        }
    }
    seen
}

fn write_hex(out: &mut [u8], at: usize, value: u64, digits: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..digits {
        let shift = (digits - 1 - i) * 4;
        out[at + i] = HEX[((value >> shift) & 0xf) as usize];
    }
    at + digits
}

fn read_hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Framing;

    fn parts(leg: u8) -> BranchParts {
        BranchParts {
            loop_hash: 0x0123_4567_89ab_cdef,
            call_nonce: 42,
            leg,
        }
    }

    #[test]
    fn branches_round_trip_and_start_with_the_cookie() {
        let b = Branch::new(parts(3));
        assert_eq!(
            b.as_bytes(),
            b"z9hG4bKsb0123456789abcdef.000000000000002a.03"
        );
        assert_eq!(b.parts(), parts(3));
        assert_eq!(parse(b.as_bytes()), Some(parts(3)));
        assert_ne!(Branch::new(parts(4)), b);
        for other in [
            &b"z9hG4bK776asdhds"[..],
            b"",
            b"z9hG4bKsb0123456789abcdeX.000000000000002a.03",
            b"z9hG4bKsb0123456789abcdef.000000000000002a.0300",
        ] {
            assert_eq!(parse(other), None);
        }
    }

    #[test]
    fn responses_match_by_branch_and_cseq_method() {
        let b = Branch::new(parts(0));
        let response = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch={b:?}\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 CANCEL\r\n\r\n"
        );
        let head = ResponseHead::parse(response.as_bytes(), Framing::Datagram).unwrap();
        assert!(response_matches(&head, &b, Method::Cancel));
        // The INVITE shares the branch but not the method (§17.1.3).
        assert!(!response_matches(&head, &b, Method::Invite));
        assert!(!response_matches(
            &head,
            &Branch::new(parts(1)),
            Method::Cancel
        ));
    }

    const INVITE: &str = "INVITE sip:+18005550100@sb.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\n\
        From: <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
        To: <sip:+18005550100@sb.example>\r\n\
        Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\r\n";

    fn hash(msg: &str) -> u64 {
        let r = Request::parse(msg.as_bytes(), Framing::Datagram).unwrap();
        loop_hash(msg.as_bytes(), &r)
    }

    #[test]
    fn the_loop_hash_ignores_vias_but_not_routing_inputs() {
        let base = hash(INVITE);
        let via_added = INVITE.replace("Via:", "Via: SIP/2.0/UDP x;branch=z9hG4bKo\r\nVia:");
        assert_eq!(hash(&via_added), base);
        let max_forwards = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 69");
        assert_eq!(hash(&max_forwards), base);
        for changed in [
            INVITE.replace("sip:+18005550100@sb.example SIP", "sip:+14155550101@h SIP"),
            INVITE.replace("tag=f1", "tag=f2"),
            INVITE.replace("Call-ID: c1", "Call-ID: c2"),
            INVITE.replace("CSeq: 1", "CSeq: 2"),
            INVITE.replace("\r\n\r\n", "\r\nProxy-Require: foo\r\n\r\n"),
        ] {
            assert_ne!(hash(&changed), base, "{changed}");
        }
    }

    #[test]
    fn loops_and_spirals() {
        let ours = |via: &TopVia<'_>| via.host == b"10.0.0.1";
        let check = |msg: &str| {
            let r = Request::parse(msg.as_bytes(), Framing::Datagram).unwrap();
            check_loop(msg.as_bytes(), &r, ours)
        };
        assert_eq!(check(INVITE), LoopCheck::Clean);
        let b = Branch::new(BranchParts {
            loop_hash: hash(INVITE),
            call_nonce: 1,
            leg: 0,
        });
        let our_via = format!("SIP/2.0/UDP 10.0.0.1;branch={b:?}");
        // Came back unchanged, our Via second in a comma list: a loop.
        let looped = INVITE.replace(
            "Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup",
            &format!("Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx, {our_via}\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup"),
        );
        assert_eq!(check(&looped), LoopCheck::Loop);
        // Came back for another number: a spiral.
        let spiral = looped.replace("sip:+18005550100@sb.example SIP", "sip:+14155550101@h SIP");
        assert_eq!(check(&spiral), LoopCheck::Spiral);
        // The same branch in someone else's Via proves nothing.
        let theirs = looped.replace("10.0.0.1", "10.0.0.2");
        assert_eq!(check(&theirs), LoopCheck::Clean);
    }
}

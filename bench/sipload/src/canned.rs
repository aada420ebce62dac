//! `sipreflect`'s answers: the cheapest well-formed reply to a request, with no
//! routing at all, to measure what the wire and the kernel cost alone.
//!
//! INVITE gets `302 Moved Temporarily` with a fixed Contact, OPTIONS `200 OK`,
//! ACK nothing (RFC 3261 §17.2.1: it ends the server transaction), any other
//! request `501 Not Implemented`; answers sent to us are dropped. The reply
//! copies what §8.2.6.2 says a response must carry from its request: every Via
//! (in order), From, To (with a tag added when it has none), Call-ID and CSeq.
//! Nothing else of the request is looked at. The Vias are echoed as they came:
//! no `received`/`rport` (§18.2.2 lets a stateless responder answer on the
//! source it read, which is what the reflector does).

use memchr::memchr;

/// The user part of the reflector's Contact.
pub const CONTACT_USER: &str = "+15550000000";
const CONTACT: &[u8] = b"Contact: <sip:+15550000000@127.0.0.1>\r\n";
/// Added to a To without a tag (§8.2.6.2).
const TO_TAG: &[u8] = b";tag=sipreflect";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Copy {
    No,
    Yes,
    To,
}

/// Which request headers go into the reply (compact forms too, §7.3.3).
#[inline]
fn copied(name: &[u8]) -> Copy {
    match name.len() {
        1 => match name[0] | 0x20 {
            b'v' | b'f' | b'i' => Copy::Yes,
            b't' => Copy::To,
            _ => Copy::No,
        },
        2 if name.eq_ignore_ascii_case(b"to") => Copy::To,
        3 if name.eq_ignore_ascii_case(b"via") => Copy::Yes,
        4 if name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"cseq") => Copy::Yes,
        7 if name.eq_ignore_ascii_case(b"call-id") => Copy::Yes,
        _ => Copy::No,
    }
}

fn has_tag(header: &[u8]) -> bool {
    header.windows(4).any(|w| w.eq_ignore_ascii_case(b"tag="))
}

/// Appends the reply to `req` to `out`; false (and nothing appended) when no
/// reply is due: an ACK, an answer, or a message without a Via to answer along.
pub fn answer(req: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(first_end) = memchr(b'\n', req) else {
        return false;
    };
    let Some(sp) = memchr(b' ', &req[..first_end]) else {
        return false;
    };
    let status: &[u8] = match &req[..sp] {
        b"INVITE" => b"SIP/2.0 302 Moved Temporarily\r\n",
        b"OPTIONS" => b"SIP/2.0 200 OK\r\n",
        b"ACK" => return false,
        m if m.starts_with(b"SIP/") => return false,
        _ => b"SIP/2.0 501 Not Implemented\r\n",
    };
    let invite = status[8] == b'3';
    let begin = out.len();
    out.extend_from_slice(status);
    let mut vias = 0;
    // The header being copied, and where the To header started in `out`.
    let mut copying = Copy::No;
    let mut to_start = None;
    let mut pos = first_end + 1;
    while pos < req.len() {
        let nl = memchr(b'\n', &req[pos..]).map_or(req.len(), |i| pos + i);
        let mut end = nl;
        if end > pos && req[end - 1] == b'\r' {
            end -= 1;
        }
        let line = &req[pos..end];
        pos = nl + 1;
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            // A folded continuation of the header before.
            if copying != Copy::No {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            continue;
        }
        end_to(out, &mut to_start);
        let Some(colon) = memchr(b':', line) else {
            copying = Copy::No;
            continue;
        };
        let name = line[..colon].trim_ascii();
        copying = copied(name);
        if copying == Copy::No {
            continue;
        }
        if name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v") {
            vias += 1;
        }
        if copying == Copy::To {
            to_start = Some(out.len());
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    end_to(out, &mut to_start);
    if vias == 0 {
        out.truncate(begin);
        return false;
    }
    if invite {
        out.extend_from_slice(CONTACT);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    true
}

/// Once the To header (and any folded lines of it) is copied: adds our tag if it
/// has none.
fn end_to(out: &mut Vec<u8>, to_start: &mut Option<usize>) {
    if let Some(start) = to_start.take()
        && !has_tag(&out[start..])
    {
        out.truncate(out.len() - 2);
        out.extend_from_slice(TO_TAG);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response;
    use proptest::prelude::*;

    const INVITE: &[u8] = b"INVITE sip:+18005550100@127.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport\r\n\
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:+16505550123@127.0.0.1:40000>;tag=f1\r\n\
        To: <sip:+18005550100@127.0.0.1:5060>\r\n\
        Call-ID: c1@sipload\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:sipload@127.0.0.1:40000>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn invite_gets_a_302() {
        let mut out = Vec::new();
        assert!(answer(INVITE, &mut out));
        let want = "SIP/2.0 302 Moved Temporarily\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport\r\n\
            Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n\
            From: <sip:+16505550123@127.0.0.1:40000>;tag=f1\r\n\
            To: <sip:+18005550100@127.0.0.1:5060>;tag=sipreflect\r\n\
            Call-ID: c1@sipload\r\n\
            CSeq: 1 INVITE\r\n\
            Contact: <sip:+15550000000@127.0.0.1>\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        let r = response::parse(&out).unwrap();
        assert_eq!(r.branch, Some(&b"z9hG4bKabc"[..]));
        let user = response::uri_user(response::contact_uri(r.contact.unwrap()));
        assert_eq!(user, Some(CONTACT_USER.as_bytes()));
    }

    #[test]
    fn options_ack_answers_and_others() {
        let mut out = Vec::new();
        let options = b"OPTIONS sip:x SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK1\nt: <sip:x>;tag=already\ni: c\n\n";
        assert!(answer(options, &mut out));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains("t: <sip:x>;tag=already\r\n"), "{text}");
        assert!(!text.contains("Contact"));
        out.clear();
        assert!(!answer(b"ACK sip:x SIP/2.0\r\nVia: a\r\n\r\n", &mut out));
        assert!(!answer(b"SIP/2.0 200 OK\r\nVia: a\r\n\r\n", &mut out));
        assert!(
            !answer(b"INVITE sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n", &mut out),
            "no Via"
        );
        assert!(out.is_empty());
        assert!(answer(b"BYE sip:x SIP/2.0\r\nVia: a\r\n\r\n", &mut out));
        assert!(out.starts_with(b"SIP/2.0 501 Not Implemented\r\n"));
    }

    #[test]
    fn folded_to_gets_its_tag_at_the_end() {
        let mut out = Vec::new();
        assert!(answer(
            b"INVITE sip:x SIP/2.0\r\nVia: a\r\nTo: <sip:x>\r\n ;p=1\r\nCSeq: 1 INVITE\r\n\r\n",
            &mut out
        ));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("To: <sip:x>\r\n ;p=1;tag=sipreflect\r\nCSeq: 1 INVITE\r\n"),
            "{text}"
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            if !answer(&bytes, &mut out) {
                prop_assert!(out.is_empty());
            }
        }
    }
}

//! Reading an answer: just what matching, the ACK and `verify` need, borrowed from
//! the receive buffer (RFC 3261 §7.2 status line, §7.3 headers).
//!
//! Kept: the status code, the branch of the top Via (§17.1.3 matches answers to
//! client transactions by it), the Call-ID (fallback match), the To value (copied
//! into the ACK, §17.1.1.3: it carries the server's tag) and the first Contact
//! (checked by `verify`). Header names are matched case-insensitively, compact
//! forms included (§7.3.3: `v`, `i`, `t`, `m`); folded continuation lines (§7.3.1)
//! stay part of their header. Everything else is skipped without looking at it.
//! The parser never panics and never allocates: it reads whatever a peer sends.

use memchr::memchr;

/// The parts of an answer sipload uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    /// Value of the top Via's `branch` parameter.
    pub branch: Option<&'a [u8]>,
    pub call_id: Option<&'a [u8]>,
    /// The To header's whole value, as sent (with its tag).
    pub to: Option<&'a [u8]>,
    /// The first Contact header's whole value.
    pub contact: Option<&'a [u8]>,
}

/// Why a message is not an answer sipload can use.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    /// It does not start with `SIP/2.0 `: a request, or garbage.
    NotAResponse,
    /// The status code is not three digits from 100 to 699.
    BadStatus,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Via,
    CallId,
    To,
    Contact,
    Other,
}

/// Which kept header a name is, compact forms included.
#[inline]
fn field(name: &[u8]) -> Field {
    match name.len() {
        1 => match name[0] | 0x20 {
            b'v' => Field::Via,
            b'i' => Field::CallId,
            b't' => Field::To,
            b'm' => Field::Contact,
            _ => Field::Other,
        },
        2 if name.eq_ignore_ascii_case(b"to") => Field::To,
        3 if name.eq_ignore_ascii_case(b"via") => Field::Via,
        7 if name.eq_ignore_ascii_case(b"call-id") => Field::CallId,
        7 if name.eq_ignore_ascii_case(b"contact") => Field::Contact,
        _ => Field::Other,
    }
}

/// The value of the `branch` parameter of the first Via value in `via`.
fn branch_of(via: &[u8]) -> Option<&[u8]> {
    // Several Via values may share one line (§7.3.1); only the top one is ours.
    let top = match memchr(b',', via) {
        Some(i) => &via[..i],
        None => via,
    };
    let mut rest = top;
    while let Some(i) = memchr(b';', rest) {
        rest = &rest[i + 1..];
        let param = rest.trim_ascii_start();
        if param.len() >= 7 && param[..7].eq_ignore_ascii_case(b"branch=") {
            let v = &param[7..];
            let end = v
                .iter()
                .position(|&c| c == b';' || c.is_ascii_whitespace())
                .unwrap_or(v.len());
            return Some(&v[..end]);
        }
    }
    None
}

/// Parses the head of one answer (`msg` may go on past the head: a body, or the
/// next message on a stream; it is not looked at).
pub fn parse(msg: &[u8]) -> Result<Response<'_>, ParseError> {
    if msg.len() < 12 || &msg[..8] != b"SIP/2.0 " {
        return Err(ParseError::NotAResponse);
    }
    let d = &msg[8..11];
    if !d.iter().all(u8::is_ascii_digit) || !matches!(msg[11], b' ' | b'\r' | b'\n') {
        return Err(ParseError::BadStatus);
    }
    let status =
        u16::from(d[0] - b'0') * 100 + u16::from(d[1] - b'0') * 10 + u16::from(d[2] - b'0');
    if !(100..700).contains(&status) {
        return Err(ParseError::BadStatus);
    }
    let mut r = Response {
        status,
        ..Response::default()
    };
    let mut pos = match memchr(b'\n', msg) {
        Some(i) => i + 1,
        None => return Ok(r),
    };
    // The header being read, and where its value starts, so that folded lines can
    // extend it.
    let mut current = Field::Other;
    let mut value_start = 0;
    // A top Via without a branch must not let a lower one stand in for it.
    let mut seen_via = false;
    while pos < msg.len() {
        let nl = memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i);
        let mut end = nl;
        if end > pos && msg[end - 1] == b'\r' {
            end -= 1;
        }
        let line = &msg[pos..end];
        if line.is_empty() {
            break; // end of the head
        }
        if matches!(line[0], b' ' | b'\t') {
            // A continuation: the value now ends here.
            let v = &msg[value_start..end];
            match current {
                Field::Via => r.branch = branch_of(v),
                Field::To => r.to = Some(v),
                Field::Contact => r.contact = Some(v),
                Field::CallId => r.call_id = Some(v.trim_ascii()),
                _ => {}
            }
        } else if let Some(colon) = memchr(b':', line) {
            let f = field(line[..colon].trim_ascii());
            let start = pos + colon + 1;
            let v = &msg[start..end];
            // Only the first of each is kept: the first Via is the top one.
            current = Field::Other;
            match f {
                Field::Via if !seen_via => {
                    seen_via = true;
                    r.branch = branch_of(v);
                    current = f;
                }
                Field::CallId if r.call_id.is_none() => {
                    r.call_id = Some(v.trim_ascii());
                    current = f;
                }
                Field::To if r.to.is_none() => {
                    r.to = Some(v);
                    current = f;
                }
                Field::Contact if r.contact.is_none() => {
                    r.contact = Some(v);
                    current = f;
                }
                _ => {}
            }
            value_start = start;
        } else {
            current = Field::Other;
        }
        pos = nl + 1;
    }
    Ok(r)
}

/// The URI of the first value of a Contact header: inside `<...>` when present,
/// else up to the first `;` (which starts header parameters, §20.10) or `,`.
pub fn contact_uri(value: &[u8]) -> &[u8] {
    let v = value.trim_ascii();
    if let Some(open) = memchr(b'<', v) {
        let inner = &v[open + 1..];
        let close = memchr(b'>', inner).unwrap_or(inner.len());
        return inner[..close].trim_ascii();
    }
    let end = v
        .iter()
        .position(|&c| c == b';' || c == b',')
        .unwrap_or(v.len());
    v[..end].trim_ascii()
}

/// The user part of a `sip:`/`sips:`/`tel:` URI (the number, for a `tel:` URI);
/// `None` when there is none (`sip:host`) or the scheme is another one.
pub fn uri_user(uri: &[u8]) -> Option<&[u8]> {
    let lower = |n: usize| uri.get(..n).map(|s| s.to_ascii_lowercase());
    if lower(4).as_deref() == Some(b"tel:") {
        let rest = &uri[4..];
        let end = memchr(b';', rest).unwrap_or(rest.len());
        return Some(&rest[..end]);
    }
    let rest = if lower(4).as_deref() == Some(b"sip:") {
        &uri[4..]
    } else if lower(5).as_deref() == Some(b"sips:") {
        &uri[5..]
    } else {
        return None;
    };
    let at = memchr(b'@', rest)?;
    let user = &rest[..at];
    // A password (user:password@host) is not part of the user.
    Some(match memchr(b':', user) {
        Some(i) => &user[..i],
        None => user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SWITCHBOARD_302: &[u8] = b"SIP/2.0 302 Moved Temporarily\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK000000010000000000000002;rport=40000;received=127.0.0.1\r\n\
        From: <sip:+16505550123@127.0.0.1:40000>;tag=000000010000000000000002\r\n\
        To: <sip:+18005550100@127.0.0.1:5060>;tag=sb1\r\n\
        Call-ID: 000000010000000000000002@sipload\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:+14155550101@127.0.0.1;user=phone>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_302() {
        let r = parse(SWITCHBOARD_302).unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.branch, Some(&b"z9hG4bK000000010000000000000002"[..]));
        assert_eq!(r.call_id, Some(&b"000000010000000000000002@sipload"[..]));
        assert_eq!(
            r.to,
            Some(&b" <sip:+18005550100@127.0.0.1:5060>;tag=sb1"[..])
        );
        let uri = contact_uri(r.contact.unwrap());
        assert_eq!(uri, b"sip:+14155550101@127.0.0.1;user=phone");
        assert_eq!(uri_user(uri), Some(&b"+14155550101"[..]));
    }

    #[test]
    fn compact_names_case_and_several_vias() {
        let msg = b"SIP/2.0 404 Not Found\nv: SIP/2.0/UDP a;BRANCH=z9hG4bKtop , SIP/2.0/UDP b;branch=z9hG4bKsecond\n\
            VIA: SIP/2.0/UDP c;branch=z9hG4bKthird\nI: abc@x\nt: <sip:1@h>;tag=9\nm: sip:2@h\n\nbody";
        let r = parse(msg).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.branch, Some(&b"z9hG4bKtop"[..]));
        assert_eq!(r.call_id, Some(&b"abc@x"[..]));
        assert_eq!(r.to, Some(&b" <sip:1@h>;tag=9"[..]));
        assert_eq!(contact_uri(r.contact.unwrap()), b"sip:2@h");
    }

    #[test]
    fn folded_to_stays_whole() {
        let msg = b"SIP/2.0 480 Temporarily Unavailable\r\nTo: <sip:1@h>\r\n ;tag=x\r\nCall-ID: c\r\n\r\n";
        let r = parse(msg).unwrap();
        assert_eq!(r.to, Some(&b" <sip:1@h>\r\n ;tag=x"[..]));
        assert_eq!(r.call_id, Some(&b"c"[..]));
        assert_eq!(r.branch, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse(b"INVITE sip:x@y SIP/2.0\r\n\r\n"),
            Err(ParseError::NotAResponse)
        );
        assert_eq!(
            parse(b"SIP/2.0 30x Moved\r\n\r\n"),
            Err(ParseError::BadStatus)
        );
        assert_eq!(
            parse(b"SIP/2.0 099 Low\r\n\r\n"),
            Err(ParseError::BadStatus)
        );
        assert_eq!(
            parse(b"SIP/2.0 3021 Long\r\n\r\n"),
            Err(ParseError::BadStatus)
        );
        assert_eq!(parse(b"SIP/2.0 200 OK").unwrap().status, 200);
    }

    #[test]
    fn uris() {
        assert_eq!(
            contact_uri(b"\"A\" <sip:carol@pbx.example>;expires=5"),
            b"sip:carol@pbx.example"
        );
        assert_eq!(contact_uri(b" sip:1@h;expires=3, sip:2@h"), b"sip:1@h");
        assert_eq!(uri_user(b"sips:bob:pw@h"), Some(&b"bob"[..]));
        assert_eq!(uri_user(b"TEL:+1555;phone-context=x"), Some(&b"+1555"[..]));
        assert_eq!(uri_user(b"sip:host.example"), None);
        assert_eq!(uri_user(b"http://x"), None);
        assert_eq!(uri_user(b""), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(Response { contact: Some(c), .. }) = parse(&bytes) {
                let _ = uri_user(contact_uri(c));
            }
        }

        #[test]
        fn never_panics_on_near_answers(tail in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b';'), Just(b' '), Just(b','),
                        Just(b'<'), Just(b'>'), Just(b'@'), Just(b'v'), Just(b't'), any::<u8>()], 0..400)) {
            let mut msg = b"SIP/2.0 302 Moved\r\nVia: x;branch=".to_vec();
            msg.extend_from_slice(&tail);
            if let Ok(r) = parse(&msg) {
                prop_assert_eq!(r.status, 302);
                if let Some(c) = r.contact {
                    let _ = uri_user(contact_uri(c));
                }
            }
        }
    }
}

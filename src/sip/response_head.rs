//! Parsing a SIP response as a proxy reads it (RFC 3261 §7.2, §16.7,
//! §17.1.3), borrowing from the received bytes: the status, the top Via
//! (whose branch and the CSeq method match it to a client transaction,
//! §17.1.3), where that Via sits (so the proxy can remove it, §16.7 step
//! 3), the To tag (the ACK for a non-2xx copies To, §17.1.1.3), Call-ID
//! and the body's framing.
//!
//! On a stream, responses are cut by [`super::framing::check`] exactly as
//! requests are: it looks only at the header block and Content-Length
//! (§18.3), never at the start line.
//!
//! Responses come from the network: any byte string gives a value or an
//! error, never a panic (a property test checks it).

use std::ops::Range;

use super::header::HeaderName;
use super::header_lines::{headers, start_line_end};
use super::method::{Method, is_token_char};
use super::request::Framing;
use super::text::{parse_u32, trim};
use super::uri::NameAddr;
use super::via::TopVia;

/// Why a response cannot be used. A proxy drops such a response
/// (§16.7: there is no one to answer a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("not a SIP/2.0 response")]
    NotAResponse,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("no usable top Via")]
    BadVia,
    #[error("missing or malformed CSeq")]
    BadCSeq,
    #[error("missing Call-ID")]
    MissingCallId,
    #[error("missing or malformed To")]
    BadTo,
    #[error("malformed or duplicate Content-Length")]
    BadContentLength,
    #[error("Content-Length larger than the body")]
    BodyShorterThanContentLength,
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
}

/// A parsed response head; every slice borrows from the message.
#[derive(Debug, Clone)]
pub struct ResponseHead<'a> {
    /// 100..=699.
    pub status: u16,
    pub reason: &'a [u8],
    pub top_via: TopVia<'a>,
    /// The whole header line holding the top Via, line end included.
    pub top_via_line: Range<usize>,
    /// Whether any Via remains once the top one is removed (§16.7 step 3:
    /// a response with none left was meant for this element).
    pub more_vias: bool,
    pub cseq_number: u32,
    pub cseq_method: Method<'a>,
    /// The To value as written (trimmed).
    pub to: &'a [u8],
    pub to_tag: Option<&'a [u8]>,
    pub call_id: &'a [u8],
    pub content_length: Option<usize>,
    /// Where the body is in the message.
    pub body: Range<usize>,
}

impl<'a> ResponseHead<'a> {
    /// The top Via's branch.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.top_via.branch
    }

    /// 1 for provisional, 2 for success, ... 6 for global failure.
    pub fn class(&self) -> u16 {
        self.status / 100
    }

    /// Whether this is a final response (200..=699).
    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    /// Parses a response. `Err` when it cannot be matched to a transaction
    /// or relayed safely.
    pub fn parse(msg: &'a [u8], framing: Framing) -> Result<ResponseHead<'a>, ResponseError> {
        // §7.5: CRLFs before the start line are ignored.
        let lead = msg
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(ResponseError::NotAResponse)?;
        let line_end = start_line_end(&msg[lead..]).map_or(msg.len(), |end| lead + end);
        let (status, reason) = status_line(trim(&msg[lead..line_end]))?;

        let mut top_via: Option<(TopVia<'a>, Range<usize>)> = None;
        let mut more_vias = false;
        let mut cseq = None;
        let mut to = None;
        let mut call_id = None;
        let mut content_length: Option<usize> = None;
        let mut lines = headers(msg, line_end);
        for header in lines.by_ref() {
            match header.kind() {
                HeaderName::Via => {
                    if top_via.is_none() {
                        let via = TopVia::parse(header.value).ok_or(ResponseError::BadVia)?;
                        more_vias |= via.rest_of_line.is_some();
                        top_via = Some((via, header.range));
                    } else {
                        more_vias = true;
                    }
                }
                HeaderName::CSeq => {
                    if cseq.is_some() {
                        return Err(ResponseError::BadCSeq);
                    }
                    cseq = Some(parse_cseq(header.value).ok_or(ResponseError::BadCSeq)?);
                }
                HeaderName::To => {
                    if to.is_some() {
                        return Err(ResponseError::BadTo);
                    }
                    to = Some(header.value);
                }
                HeaderName::CallId => {
                    call_id.get_or_insert(header.value);
                }
                HeaderName::ContentLength => {
                    let n =
                        parse_u32(header.value).ok_or(ResponseError::BadContentLength)? as usize;
                    if content_length.is_some_and(|earlier| earlier != n) {
                        return Err(ResponseError::BadContentLength);
                    }
                    content_length = Some(n);
                }
                _ => {}
            }
        }
        let body_start = lines.body_start().unwrap_or(msg.len()).min(msg.len());
        let (top_via, top_via_line) = top_via.ok_or(ResponseError::BadVia)?;
        let (cseq_number, cseq_method) = cseq.ok_or(ResponseError::BadCSeq)?;
        let call_id = call_id
            .filter(|c| !c.is_empty())
            .ok_or(ResponseError::MissingCallId)?;
        let to = to.ok_or(ResponseError::BadTo)?;
        let to_tag = NameAddr::parse(to).ok_or(ResponseError::BadTo)?.tag();
        let available = msg.len() - body_start;
        let body_len = match (content_length, framing) {
            (Some(n), _) if n > available => {
                return Err(ResponseError::BodyShorterThanContentLength);
            }
            (Some(n), _) => n,
            (None, Framing::Datagram) => available,
            (None, Framing::Stream) => return Err(ResponseError::MissingContentLength),
        };
        Ok(ResponseHead {
            status,
            reason,
            top_via,
            top_via_line,
            more_vias,
            cseq_number,
            cseq_method,
            to,
            to_tag,
            call_id,
            content_length,
            body: body_start..body_start + body_len,
        })
    }
}

/// `SIP/2.0 SP Status-Code SP Reason-Phrase` (§7.2); the reason may be
/// empty.
fn status_line(line: &[u8]) -> Result<(u16, &[u8]), ResponseError> {
    let Some(rest) = line
        .get(..8)
        .filter(|v| v.eq_ignore_ascii_case(b"SIP/2.0 "))
        .map(|_| &line[8..])
    else {
        return Err(ResponseError::NotAResponse);
    };
    let rest = trim(rest);
    let (code, reason) = match rest.get(..3) {
        Some(code) if rest.len() == 3 || rest[3] == b' ' => (code, trim(&rest[3..])),
        _ => return Err(ResponseError::BadStatusLine),
    };
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::BadStatusLine);
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&status) {
        return Err(ResponseError::BadStatusLine);
    }
    Ok((status, reason))
}

/// `CSeq: 1*DIGIT LWS Method` (§20.16).
fn parse_cseq(value: &[u8]) -> Option<(u32, Method<'_>)> {
    let value = trim(value);
    let split = value.iter().position(|&b| super::text::is_lws(b))?;
    let number = parse_u32(&value[..split])?;
    let method = trim(&value[split..]);
    if method.is_empty() || !method.iter().all(|&b| is_token_char(b)) {
        return None;
    }
    Some((number, Method::from_token(method)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::framing::{Frame, check};
    use proptest::prelude::*;

    const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsb1;rport=5060, SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKup\r\n\
        v: SIP/2.0/TCP 192.0.2.8;branch=z9hG4bKup2\r\n\
        From: <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
        To: <sip:+14155550101@10.0.0.9>;tag=callee7\r\n\
        Call-ID: c1@192.0.2.7\r\n\
        CSeq: 42 INVITE\r\n\
        Content-Length: 4\r\n\
        \r\n\
        abcdNEXT";

    #[test]
    fn golden_ringing() {
        let r = ResponseHead::parse(RINGING.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(r.status, 180);
        assert_eq!(r.reason, b"Ringing");
        assert_eq!(r.class(), 1);
        assert!(!r.is_final());
        assert_eq!(r.branch(), Some(&b"z9hG4bKsb1"[..]));
        assert_eq!(r.top_via.host, b"10.0.0.1");
        assert!(r.more_vias);
        assert_eq!(r.cseq_number, 42);
        assert_eq!(r.cseq_method, Method::Invite);
        assert_eq!(r.to_tag, Some(&b"callee7"[..]));
        assert_eq!(r.call_id, b"c1@192.0.2.7");
        assert_eq!(r.content_length, Some(4));
        assert_eq!(&RINGING.as_bytes()[r.body.clone()], b"abcd");
        assert!(
            RINGING.as_bytes()[r.top_via_line.clone()].starts_with(b"Via: SIP/2.0/UDP 10.0.0.1")
        );
        assert!(RINGING.as_bytes()[r.top_via_line.clone()].ends_with(b"z9hG4bKup\r\n"));
    }

    #[test]
    fn golden_cancel_200_with_one_via_and_no_to_tag() {
        let msg = b"\r\nSIP/2.0 200 OK\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\nTo: sip:b@h\nCall-ID: x\nCSeq: 1 CANCEL\n\n";
        let r = ResponseHead::parse(msg, Framing::Datagram).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.cseq_method, Method::Cancel);
        assert!(!r.more_vias);
        assert_eq!(r.to_tag, None);
        assert_eq!(r.body, msg.len()..msg.len());
        assert_eq!(r.top_via_line, 17..52);
    }

    #[test]
    fn rejects_what_cannot_be_matched_or_relayed() {
        let ok = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>;tag=t\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert!(ResponseHead::parse(ok.as_bytes(), Framing::Stream).is_ok());
        for (bad, want) in [
            ("INVITE sip:a SIP/2.0\r\n", ResponseError::NotAResponse),
            ("", ResponseError::NotAResponse),
            ("SIP/2.0 99 X\r\n", ResponseError::BadStatusLine),
            ("SIP/2.0 700 X\r\n", ResponseError::BadStatusLine),
            ("SIP/2.0 2000 X\r\n", ResponseError::BadStatusLine),
            ("SIP/2.0 2x0 X\r\n", ResponseError::BadStatusLine),
        ] {
            assert_eq!(
                ResponseHead::parse(bad.as_bytes(), Framing::Datagram).unwrap_err(),
                want,
                "{bad}"
            );
        }
        for (from, to, want) in [
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n",
                "",
                ResponseError::BadVia,
            ),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bKx",
                "Via: nonsense",
                ResponseError::BadVia,
            ),
            ("CSeq: 1 INVITE", "CSeq: x INVITE", ResponseError::BadCSeq),
            ("CSeq: 1 INVITE", "CSeq: 1", ResponseError::BadCSeq),
            ("Call-ID: x\r\n", "", ResponseError::MissingCallId),
            ("To: <sip:b@h>;tag=t\r\n", "", ResponseError::BadTo),
            (
                "Content-Length: 0",
                "Content-Length: 9",
                ResponseError::BodyShorterThanContentLength,
            ),
            (
                "Content-Length: 0",
                "Content-Length: -1",
                ResponseError::BadContentLength,
            ),
        ] {
            let bad = ok.replacen(from, to, 1);
            assert_eq!(
                ResponseHead::parse(bad.as_bytes(), Framing::Datagram).unwrap_err(),
                want,
                "{bad}"
            );
        }
        let no_length = ok.replacen("Content-Length: 0\r\n", "", 1);
        assert_eq!(
            ResponseHead::parse(no_length.as_bytes(), Framing::Stream).unwrap_err(),
            ResponseError::MissingContentLength
        );
        assert!(ResponseHead::parse(no_length.as_bytes(), Framing::Datagram).is_ok());
    }

    #[test]
    fn streams_frame_responses_by_content_length() {
        assert_eq!(
            check(RINGING.as_bytes(), 4096),
            Ok(Some(Frame::Message(RINGING.len() - 4)))
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ResponseHead::parse(&bytes, Framing::Datagram);
            let _ = ResponseHead::parse(&bytes, Framing::Stream);
        }

        #[test]
        fn never_panics_on_mutated_responses(
            cut in 0..RINGING.len(),
            at in 0..RINGING.len(),
            byte in any::<u8>(),
        ) {
            let mut bytes = RINGING.as_bytes().to_vec();
            bytes[at] = byte;
            bytes.truncate(cut.max(at));
            if let Ok(r) = ResponseHead::parse(&bytes, Framing::Datagram) {
                // Every range it gives is inside the message.
                prop_assert!(r.body.end <= bytes.len());
                prop_assert!(r.top_via_line.end <= bytes.len());
            }
        }
    }
}

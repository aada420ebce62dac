//! `proxyload`'s logic: proxied calls in closed loop, both ends in one
//! thread. The caller side sends an INVITE through the proxy under test and
//! ACKs its 200 (RFC 3261 §13.2.2.4, the ACK to the proxy, which relays it
//! to the phone); the phone side answers each INVITE at once with 180 and
//! 200 (§8.2.6: Via, From, Call-ID and CSeq copied, a To tag added).
//!
//! It exists because SIPp, with both ends on one core, runs out of CPU long
//! before a fast proxy does: `bench/proxy.sh`'s per-core figure needs the
//! proxy's core saturated. Batching (`recvmmsg`/`sendmmsg`) keeps the
//! generator's own cost per call small. Loopback only, no retransmissions:
//! a call not answered within `CALL_TIMEOUT` counts as failed and another
//! takes its place.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a call may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The dialog-forming headers a response copies from its request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied<'a> {
    /// Every Via line, in order, with its name and without CRLF.
    pub vias: Vec<&'a [u8]>,
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    pub call_id: Option<&'a [u8]>,
    pub cseq: Option<&'a [u8]>,
}

/// The header lines of `message` that a response copies (full lines, name
/// included, compact forms too). Stops at the blank line.
pub fn copied(message: &[u8]) -> Copied<'_> {
    let mut out = Copied::default();
    let mut lines = message.split(|&b| b == b'\n').skip(1);
    for line in lines.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v") {
            out.vias.push(line);
        } else if name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"f") {
            out.from = Some(line);
        } else if name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t") {
            out.to = Some(line);
        } else if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            out.call_id = Some(line);
        } else if name.eq_ignore_ascii_case(b"cseq") {
            out.cseq = Some(line);
        }
    }
    out
}

/// The value of a header line (after the colon, trimmed).
pub fn value(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => line[colon + 1..].trim_ascii(),
        None => b"",
    }
}

/// The status code of a response, if `message` is one.
pub fn status(message: &[u8]) -> Option<u16> {
    let code = message.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The call number in a Call-ID this generator made (`pl<N>-<run>`).
pub fn call_number(call_id: &[u8]) -> Option<u64> {
    let rest = call_id.strip_prefix(b"pl")?;
    let end = rest.iter().position(|&b| b == b'-')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

const SDP: &[u8] = b"v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Where the caller and the phone are, as they write themselves.
#[derive(Debug, Clone)]
pub struct Ends {
    /// The caller's `host:port` (its Via and Contact).
    pub caller: String,
    /// The phone's `host:port` (its Contact, the ACK's Request-URI).
    pub phone: String,
    /// The proxy's `host:port` (the INVITE's Request-URI host).
    pub proxy: String,
    /// The number dialed.
    pub dialed: String,
    /// Tells this run's Call-IDs from another's.
    pub run: u32,
}

/// Appends call `n`'s INVITE.
pub fn write_invite(out: &mut Vec<u8>, ends: &Ends, n: u64) {
    let Ends {
        caller,
        proxy,
        dialed,
        run,
        ..
    } = ends;
    out.extend_from_slice(
        format!(
            "INVITE sip:{dialed}@{proxy} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {caller};branch=z9hG4bKpl{n}x{run};rport\r\n\
             From: <sip:+16505550123@{caller}>;tag=c{n}\r\n\
             To: <sip:{dialed}@{proxy}>\r\n\
             Call-ID: pl{n}-{run}@load\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:+16505550123@{caller}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n",
            SDP.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(SDP);
}

/// Appends the ACK of call `n`'s 200, whose To line is `to` (with the
/// phone's tag).
pub fn write_ack(out: &mut Vec<u8>, ends: &Ends, n: u64, to: &[u8]) {
    let Ends {
        caller, phone, run, ..
    } = ends;
    out.extend_from_slice(
        format!(
            "ACK sip:phone@{phone} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {caller};branch=z9hG4bKpl{n}a{run};rport\r\n\
             From: <sip:+16505550123@{caller}>;tag=c{n}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(to);
    out.extend_from_slice(
        format!(
            "\r\nCall-ID: pl{n}-{run}@load\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
}

/// Appends the phone's answer to an INVITE: `180` or `200` (with SDP).
pub fn write_answer(out: &mut Vec<u8>, ends: &Ends, invite: &Copied<'_>, code: u16) {
    out.extend_from_slice(if code == 200 {
        b"SIP/2.0 200 OK\r\n"
    } else {
        b"SIP/2.0 180 Ringing\r\n"
    });
    for via in &invite.vias {
        out.extend_from_slice(via);
        out.extend_from_slice(b"\r\n");
    }
    for line in [invite.from, invite.call_id, invite.cseq]
        .into_iter()
        .flatten()
    {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(to) = invite.to {
        out.extend_from_slice(to);
        out.extend_from_slice(b";tag=phone\r\n");
    }
    out.extend_from_slice(format!("Contact: <sip:phone@{}>\r\n", ends.phone).as_bytes());
    if code == 200 {
        out.extend_from_slice(
            format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
                SDP.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(SDP);
    } else {
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }
}

/// The calls in flight: when each started.
#[derive(Debug, Default)]
pub struct InFlight {
    started: HashMap<u64, Instant>,
    next: u64,
}

impl InFlight {
    /// A new call's number, started now.
    pub fn start(&mut self, now: Instant) -> u64 {
        let n = self.next;
        self.next += 1;
        self.started.insert(n, now);
        n
    }

    /// Ends call `n`; how long it took, if it was in flight.
    pub fn finish(&mut self, n: u64, now: Instant) -> Option<Duration> {
        self.started
            .remove(&n)
            .map(|at| now.saturating_duration_since(at))
    }

    /// Ends the calls older than `CALL_TIMEOUT`; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.started.len();
        self.started
            .retain(|_, at| now.saturating_duration_since(*at) < CALL_TIMEOUT);
        before - self.started.len()
    }

    pub fn len(&self) -> usize {
        self.started.len()
    }

    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> Ends {
        Ends {
            caller: "127.0.0.1:4000".into(),
            phone: "127.0.0.1:5000".into(),
            proxy: "127.0.0.1:5060".into(),
            dialed: "+18005550100".into(),
            run: 7,
        }
    }

    #[test]
    fn the_phone_answers_with_every_via_and_a_to_tag() {
        let invite = b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bK1\r\nv: SIP/2.0/UDP caller;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\ni: pl3-7@load\r\nCSeq: 1 INVITE\r\n\r\n";
        let c = copied(invite);
        assert_eq!(c.vias.len(), 2);
        let mut out = Vec::new();
        write_answer(&mut out, &ends(), &c, 200);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bK1\r\nv: SIP/2.0/UDP caller"
        ));
        assert!(text.contains("To: <sip:x@y>;tag=phone\r\n"));
        assert_eq!(status(text.as_bytes()), Some(200));
        assert_eq!(call_number(value(c.call_id.expect("call-id"))), Some(3));
    }

    #[test]
    fn the_ack_takes_the_answers_to_line() {
        let mut out = Vec::new();
        write_ack(&mut out, &ends(), 3, b"To: <sip:x@y>;tag=phone");
        let c = copied(&out);
        assert_eq!(c.to, Some(&b"To: <sip:x@y>;tag=phone"[..]));
        assert_eq!(call_number(value(c.call_id.expect("call-id"))), Some(3));
        assert!(out.starts_with(b"ACK sip:phone@127.0.0.1:5000 SIP/2.0\r\n"));
    }

    #[test]
    fn calls_expire_after_the_timeout() {
        let mut f = InFlight::default();
        let t0 = Instant::now();
        let a = f.start(t0);
        let _b = f.start(t0);
        assert!(f.finish(a, t0).is_some());
        assert!(f.finish(a, t0).is_none());
        assert_eq!(f.expire(t0 + CALL_TIMEOUT), 1);
        assert!(f.is_empty());
    }
}

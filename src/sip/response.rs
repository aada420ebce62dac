//! Building responses as a stateless UAS (RFC 3261 §8.2.6, §8.2.7): Via,
//! From, To, Call-ID and CSeq copied from the request (folded values on one
//! line), a To tag derived
//! from the request when it had none (so a retransmission gets the same
//! bytes, as Kamailio's `sl` module does), `received`/`rport` on the top
//! Via (§18.2.1, RFC 3581), then the caller's own headers, `Server` and
//! `Content-Length: 0`.
//!
//! Everything is appended to a caller-owned buffer: nothing is allocated
//! per response once the buffer has grown.

use std::hash::Hasher;
use std::net::SocketAddr;

use rustc_hash::FxHasher;

use super::request::Request;
use super::text::write_unfolded;

/// The parts of a response that are not copied from the request.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
}

impl Status {
    pub const fn new(code: u16, reason: &'static str) -> Self {
        Status { code, reason }
    }
}

/// Writes the response to `request` into `out` (cleared first), with
/// `extra` headers (each a full `Name: value` without CRLF) written by the
/// caller's closure before `Server`.
pub fn write_response(
    out: &mut Vec<u8>,
    request: &Request<'_>,
    source: SocketAddr,
    status: Status,
    server: &str,
    extra: impl FnOnce(&mut Vec<u8>),
) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    let mut code = itoa::Buffer::new();
    out.extend_from_slice(code.format(status.code).as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_vias(out, request, source);
    if let Some(from) = request.from {
        header(out, b"From: ", from);
    }
    if let Some(to) = request.to {
        header_start(out, b"To: ", to);
        if request.to_tag().is_none() {
            out.extend_from_slice(b";tag=");
            write_to_tag(out, request);
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(call_id) = request.call_id {
        header(out, b"Call-ID: ", call_id);
    }
    if let Some(cseq) = request.cseq {
        header(out, b"CSeq: ", cseq);
    }
    extra(out);
    if !server.is_empty() {
        header(out, b"Server: ", server.as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// Every Via of the request, in order; the top one with `received` and
/// `rport` filled in, the rest byte for byte.
fn write_vias(out: &mut Vec<u8>, request: &Request<'_>, source: SocketAddr) {
    for (i, via) in request.vias().iter().enumerate() {
        out.extend_from_slice(b"Via: ");
        match (&request.top_via, i) {
            (Some(top), 0) => {
                top.write_echo(source, out);
                if let Some(rest) = top.rest_of_line {
                    out.push(b',');
                    write_unfolded(out, rest);
                }
            }
            _ => write_unfolded(out, via),
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    header_start(out, name, value);
    out.extend_from_slice(b"\r\n");
}

fn header_start(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    write_unfolded(out, value);
}

/// A To tag derived from what identifies the transaction (Call-ID, From
/// tag, top Via branch, CSeq): the same request always gets the same tag,
/// on every replica.
fn write_to_tag(out: &mut Vec<u8>, request: &Request<'_>) {
    let mut hasher = FxHasher::default();
    for part in [
        request.call_id.unwrap_or_default(),
        request.from_tag().unwrap_or_default(),
        request.top_via.and_then(|v| v.branch).unwrap_or_default(),
        request.cseq.unwrap_or_default(),
    ] {
        hasher.write(part);
        hasher.write_u8(0xff);
    }
    let tag = hasher.finish();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"sb");
    for shift in (0..16).rev() {
        out.push(HEX[((tag >> (shift * 4)) & 0xf) as usize]);
    }
}

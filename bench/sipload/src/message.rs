//! Building the INVITEs and ACKs, and the transaction ids they carry.
//!
//! Every INVITE carries one 24-hex-digit id three times: in the Via branch
//! (`z9hG4bK` + id, the RFC 3261 §8.1.1.7 magic cookie), the From tag and the
//! Call-ID. The id is the run id (random per process, so answers from an earlier
//! run never match) followed by a 64-bit transaction number that names the
//! sender's thread and table slot, so an answer is matched by decoding its branch
//! (or Call-ID): no hashing, no search.
//!
//! Requests are appended to a caller-owned buffer from pieces formatted once per
//! socket (they hold its local address); only the row's two users and the id
//! change from one request to the next, so building one is a few `memcpy`s.
//!
//! The ACK for a non-2xx final answer follows RFC 3261 §17.1.1.3: same
//! Request-URI, the same single Via (same branch), same From and Call-ID, the To
//! of the answer (it carries the server's tag), `CSeq: 1 ACK`.

use crate::csv::Row;
use std::net::SocketAddr;

/// Length of the textual id: 8 hex digits of run id, 16 of transaction number.
pub const ID_LEN: usize = 24;
/// RFC 3261 §8.1.1.7: branches of compliant clients start with this.
pub const BRANCH_COOKIE: &[u8] = b"z9hG4bK";
/// Domain part of our Call-IDs.
pub const CALL_ID_HOST: &[u8] = b"@sipload";

/// The textual id carried by one request.
pub type Id = [u8; ID_LEN];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `run` and `tx` as 24 lowercase hex digits.
#[inline]
pub fn encode_id(run: u32, tx: u64) -> Id {
    let mut id = [0u8; ID_LEN];
    for (i, d) in id[..8].iter_mut().enumerate() {
        *d = HEX[((run >> (28 - 4 * i)) & 0xf) as usize];
    }
    for (i, d) in id[8..].iter_mut().enumerate() {
        *d = HEX[((tx >> (60 - 4 * i)) & 0xf) as usize];
    }
    id
}

/// The transaction number in `text` (which must start with an id of this run);
/// `None` for anything else: another run's id, a foreign tag, garbage.
#[inline]
pub fn decode_id(run: u32, text: &[u8]) -> Option<u64> {
    let text = text.get(..ID_LEN)?;
    let mut acc: u128 = 0;
    for &c in text {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        acc = (acc << 4) | u128::from(v);
    }
    ((acc >> 64) as u32 == run).then_some(acc as u64)
}

/// Transaction number layout: thread (8 bits), slot (24 bits), generation (32
/// bits). The generation tells a late answer for a slot's earlier request from
/// the answer to its current one.
pub const MAX_SLOTS: usize = 1 << 24;

#[inline]
pub fn tx_number(thread: u8, slot: u32, generation: u32) -> u64 {
    (u64::from(thread) << 56) | (u64::from(slot & 0xff_ffff) << 32) | u64::from(generation)
}

/// (thread, slot, generation) of a transaction number.
#[inline]
pub fn tx_parts(tx: u64) -> (u8, u32, u32) {
    ((tx >> 56) as u8, ((tx >> 32) & 0xff_ffff) as u32, tx as u32)
}

/// Request pieces for one socket: everything but the users, the id and the To of
/// an ACK.
pub struct Templates {
    /// `@HOST SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK`
    ruri_to_branch: Vec<u8>,
    /// `;rport\r\nMax-Forwards: 70\r\nFrom: <sip:`
    branch_to_from: Vec<u8>,
    /// `@LOCAL>;tag=`
    from_to_tag: Vec<u8>,
    /// `@HOST>\r\nCall-ID: `
    to_to_call_id: Vec<u8>,
    /// `@sipload\r\nCSeq: 1 INVITE\r\nContact: <sip:sipload@LOCAL>\r\nContent-Length: 0\r\n\r\n`
    invite_tail: Vec<u8>,
}

impl Templates {
    /// `transport` is `UDP` or `TCP` (the Via's protocol), `target` the server
    /// (Request-URI and To host), `local` this socket's address (Via sent-by,
    /// From host, Contact).
    pub fn new(transport: &str, target: SocketAddr, local: SocketAddr) -> Self {
        Self {
            ruri_to_branch: format!(
                "@{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK"
            )
            .into_bytes(),
            branch_to_from: b";rport\r\nMax-Forwards: 70\r\nFrom: <sip:".to_vec(),
            from_to_tag: format!("@{local}>;tag=").into_bytes(),
            to_to_call_id: format!("@{target}>\r\nCall-ID: ").into_bytes(),
            invite_tail: format!(
                "@sipload\r\nCSeq: 1 INVITE\r\nContact: <sip:sipload@{local}>\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        }
    }

    /// Request line, Via, Max-Forwards and From: shared by the INVITE and its ACK
    /// (§17.1.1.3 wants them equal).
    #[inline]
    fn common(&self, out: &mut Vec<u8>, method: &[u8], row: &Row, id: &Id) {
        out.extend_from_slice(method);
        out.extend_from_slice(b" sip:");
        out.extend_from_slice(row.dialed.as_bytes());
        out.extend_from_slice(&self.ruri_to_branch);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.branch_to_from);
        out.extend_from_slice(row.caller.as_bytes());
        out.extend_from_slice(&self.from_to_tag);
        out.extend_from_slice(id);
    }

    /// Appends the INVITE for `row` with transaction id `id`.
    #[inline]
    pub fn invite(&self, out: &mut Vec<u8>, row: &Row, id: &Id) {
        self.common(out, b"INVITE", row, id);
        out.extend_from_slice(b"\r\nTo: <sip:");
        out.extend_from_slice(row.dialed.as_bytes());
        out.extend_from_slice(&self.to_to_call_id);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.invite_tail);
    }

    /// Appends the ACK for a non-2xx final answer whose To header value (after
    /// the colon) is `to`.
    #[inline]
    pub fn ack(&self, out: &mut Vec<u8>, row: &Row, id: &Id, to: &[u8]) {
        self.common(out, b"ACK", row, id);
        out.extend_from_slice(b"\r\nTo: ");
        out.extend_from_slice(to.trim_ascii());
        out.extend_from_slice(b"\r\nCall-ID: ");
        out.extend_from_slice(id);
        out.extend_from_slice(b"@sipload\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            line: 1,
            dialed: "+18005550100".into(),
            caller: "+16505550123".into(),
            rest: vec![],
        }
    }

    #[test]
    fn ids_round_trip_and_reject_other_runs() {
        let tx = tx_number(3, 0x12_3456, 0xdead_beef);
        let id = encode_id(0x0bad_cafe, tx);
        assert_eq!(&id, b"0badcafe03123456deadbeef");
        assert_eq!(decode_id(0x0bad_cafe, &id), Some(tx));
        assert_eq!(tx_parts(tx), (3, 0x12_3456, 0xdead_beef));
        assert_eq!(decode_id(0x0bad_cafd, &id), None);
        assert_eq!(decode_id(0x0bad_cafe, &id[..20]), None);
        assert_eq!(decode_id(0x0bad_cafe, b"0BADCAFE03123456DEADBEEF"), None);
    }

    #[test]
    fn invite_text() {
        let t = Templates::new(
            "UDP",
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:40000".parse().unwrap(),
        );
        let id = encode_id(1, 2);
        let mut out = Vec::new();
        t.invite(&mut out, &row(), &id);
        let want = "INVITE sip:+18005550100@127.0.0.1:5060 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK000000010000000000000002;rport\r\n\
            Max-Forwards: 70\r\n\
            From: <sip:+16505550123@127.0.0.1:40000>;tag=000000010000000000000002\r\n\
            To: <sip:+18005550100@127.0.0.1:5060>\r\n\
            Call-ID: 000000010000000000000002@sipload\r\n\
            CSeq: 1 INVITE\r\n\
            Contact: <sip:sipload@127.0.0.1:40000>\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn ack_keeps_branch_from_call_id_and_takes_the_answers_to() {
        let t = Templates::new(
            "TCP",
            "[::1]:5060".parse().unwrap(),
            "[::1]:4000".parse().unwrap(),
        );
        let id = encode_id(1, 2);
        let mut out = Vec::new();
        t.ack(
            &mut out,
            &row(),
            &id,
            b" <sip:+18005550100@[::1]:5060>;tag=abc ",
        );
        let want = "ACK sip:+18005550100@[::1]:5060 SIP/2.0\r\n\
            Via: SIP/2.0/TCP [::1]:4000;branch=z9hG4bK000000010000000000000002;rport\r\n\
            Max-Forwards: 70\r\n\
            From: <sip:+16505550123@[::1]:4000>;tag=000000010000000000000002\r\n\
            To: <sip:+18005550100@[::1]:5060>;tag=abc\r\n\
            Call-ID: 000000010000000000000002@sipload\r\n\
            CSeq: 1 ACK\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

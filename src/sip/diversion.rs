//! Telling the next hop that a call was diverted, in the two forms
//! carriers read: `Diversion` (RFC 5806) and `History-Info` (RFC 7044);
//! and embedding such a header in a Contact URI (RFC 3261 §19.1.1), for
//! followers that apply the headers of the URI they are redirected to.
//!
//! Writes bytes only: the caller writes the URIs (through the Contact
//! template) and says why the call was diverted.

use super::text::HEX_UPPER;

/// Why a call was diverted: RFC 5806 §4's `diversion-reason` values that
/// a redirect server's rules mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiversionReason {
    /// The dialed number is a user's own line, and the call follows the
    /// user to their phone (rule 1).
    FollowMe,
    /// The call goes elsewhere whatever the state of anyone's phone: to
    /// the owner of the caller's contact record (rule 2) or to the
    /// number's forwarding target (rule 3).
    Unconditional,
    /// The fallback Contact of a failover chain: used only when the phone
    /// before it did not answer (RFC 5806 "no-answer", the classic Call
    /// Forwarding on No Reply).
    NoAnswer,
}

impl DiversionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DiversionReason::FollowMe => "follow-me",
            DiversionReason::Unconditional => "unconditional",
            DiversionReason::NoAnswer => "no-answer",
        }
    }
}

/// Writes a `Diversion` value after the caller wrote `<` and the dialed
/// number's URI: closes the name-addr and adds the reason and
/// `counter=1` (one diversion: this one).
pub fn finish_diversion(out: &mut Vec<u8>, reason: DiversionReason) {
    out.extend_from_slice(b">;reason=");
    out.extend_from_slice(reason.as_str().as_bytes());
    out.extend_from_slice(b";counter=1");
}

/// Closes a `History-Info` entry for the dialed number, after the caller
/// wrote `<` and its URI: the 302 that retargeted it is its Reason
/// (RFC 7044 §9.4, as an escaped header of the entry's URI), and it is the
/// first entry.
pub fn finish_history_dialed(out: &mut Vec<u8>) {
    out.extend_from_slice(b"?Reason=SIP%3Bcause%3D302>;index=1");
}

/// Closes a `History-Info` entry for the `nth` (1-based) Contact, after
/// the caller wrote `<` and its URI: a target mapped from the dialed
/// number (`mp=1`: another user's phone or number, RFC 7044 §9.3).
pub fn finish_history_target(out: &mut Vec<u8>, nth: usize) {
    out.extend_from_slice(b">;index=1.");
    out.extend_from_slice(itoa::Buffer::new().format(nth).as_bytes());
    out.extend_from_slice(b";mp=1");
}

/// Closes a `History-Info` entry for the `nth` (1-based) target that was
/// tried and left, after the caller wrote `<` and its URI: the SIP cause
/// it was left for as its Reason (RFC 7044 §9.4; RFC 4458 §3: 486 busy,
/// 408 no answer, ...), mapped from the dialed number like any target.
pub fn finish_history_left(out: &mut Vec<u8>, nth: usize, cause: u16) {
    out.extend_from_slice(b"?Reason=SIP%3Bcause%3D");
    out.extend_from_slice(itoa::Buffer::new().format(cause).as_bytes());
    finish_history_target(out, nth);
}

/// Percent-escapes `out[from..]` in place so that it can be the value of
/// a header embedded in a URI (RFC 3261 §19.1.1, §25.1 `hvalue`): every
/// octet but the unreserved ones and `[]/?:+$` becomes `%XX`. In place,
/// from the end, so that nothing is allocated beyond `out`'s growth.
pub fn escape_header_value(out: &mut Vec<u8>, from: usize) {
    let escapes = out[from..].iter().filter(|&&b| !is_hvalue_char(b)).count();
    if escapes == 0 {
        return;
    }
    let end = out.len();
    out.resize(end + 2 * escapes, 0);
    let mut write = out.len();
    for read in (from..end).rev() {
        let b = out[read];
        if is_hvalue_char(b) {
            write -= 1;
            out[write] = b;
        } else {
            write -= 3;
            out[write] = b'%';
            out[write + 1] = HEX_UPPER[usize::from(b >> 4)];
            out[write + 2] = HEX_UPPER[usize::from(b & 0x0f)];
        }
    }
}

/// RFC 3261 §25.1: `hvalue = *( hnv-unreserved / unreserved / escaped )`.
fn is_hvalue_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diversion_value() {
        let mut out = b"<sip:+18005550100@example.com;user=phone".to_vec();
        finish_diversion(&mut out, DiversionReason::FollowMe);
        assert_eq!(
            out,
            b"<sip:+18005550100@example.com;user=phone>;reason=follow-me;counter=1"
        );
    }

    #[test]
    fn history_info_entries() {
        let mut out = b"<sip:+18005550100@h".to_vec();
        finish_history_dialed(&mut out);
        out.extend_from_slice(b",<sip:+14155550101@h");
        finish_history_target(&mut out, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<sip:+18005550100@h?Reason=SIP%3Bcause%3D302>;index=1,<sip:+14155550101@h>;index=1.1;mp=1"
        );
    }

    #[test]
    fn escapes_what_a_uri_header_value_cannot_hold() {
        let mut out = b"Contact: <sip:a@b?Diversion=".to_vec();
        let from = out.len();
        out.extend_from_slice(b"<sip:+18005550100@h;user=phone>;reason=\"x y\",%");
        escape_header_value(&mut out, from);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Contact: <sip:a@b?Diversion=%3Csip:+18005550100%40h%3Buser%3Dphone%3E%3Breason%3D%22x%20y%22%2C%25"
        );
    }

    #[test]
    fn escaping_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = b"prefix".to_vec();
        out.extend_from_slice(&all);
        escape_header_value(&mut out, 6);
        assert!(out[6..].iter().all(|&b| is_hvalue_char(b) || b == b'%'));
        // Unescape and compare.
        let mut back = Vec::new();
        let mut i = 6;
        while i < out.len() {
            if out[i] == b'%' {
                let hex = std::str::from_utf8(&out[i + 1..i + 3]).unwrap();
                back.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                back.push(out[i]);
                i += 1;
            }
        }
        assert_eq!(back, all);
    }
}

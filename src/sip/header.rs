//! Header names (RFC 3261 §7.3): case-insensitive, with the compact forms
//! of §7.3.3 (a MUST for receivers) for the headers a redirect server reads.

use super::text::eq_lower;

/// The headers switchboard reads or copies; everything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    Require,
    PAssertedIdentity,
    Other,
}

impl HeaderName {
    /// Classifies a header name as written (any case, compact or long).
    /// Every header of every request comes through here, so the name is
    /// told apart by its length and first letter before any comparison,
    /// and the one comparison made is a fixed-length one the compiler
    /// unrolls (see [`eq_lower`](super::text::eq_lower)).
    pub fn classify(name: &[u8]) -> HeaderName {
        match name {
            [letter] => match letter | 0x20 {
                // `| 0x20` lower-cases a letter, and only the letters
                // below (either case) give these bytes.
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'l' => HeaderName::ContentLength,
                // m Contact, c Content-Type, k Supported, s Subject,
                // e Content-Encoding, and the rest: not read here.
                _ => HeaderName::Other,
            },
            [_, _] => same(eq_lower(name, b"to"), HeaderName::To),
            [_, _, _] => same(eq_lower(name, b"via"), HeaderName::Via),
            [first, ..] => match (name.len(), first | 0x20) {
                (4, b'f') => same(eq_lower(name, b"from"), HeaderName::From),
                (4, b'c') => same(eq_lower(name, b"cseq"), HeaderName::CSeq),
                (7, b'c') => same(eq_lower(name, b"call-id"), HeaderName::CallId),
                (7, b'r') => same(eq_lower(name, b"require"), HeaderName::Require),
                (12, b'm') => same(eq_lower(name, b"max-forwards"), HeaderName::MaxForwards),
                (14, b'c') => same(eq_lower(name, b"content-length"), HeaderName::ContentLength),
                (19, b'p') => same(
                    eq_lower(name, b"p-asserted-identity"),
                    HeaderName::PAssertedIdentity,
                ),
                _ => HeaderName::Other,
            },
            [] => HeaderName::Other,
        }
    }
}

fn same(is_same: bool, header: HeaderName) -> HeaderName {
    if is_same { header } else { HeaderName::Other }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_compact_forms_in_any_case() {
        for (name, want) in [
            (&b"Via"[..], HeaderName::Via),
            (b"v", HeaderName::Via),
            (b"V", HeaderName::Via),
            (b"VIA", HeaderName::Via),
            (b"f", HeaderName::From),
            (b"t", HeaderName::To),
            (b"i", HeaderName::CallId),
            (b"call-ID", HeaderName::CallId),
            (b"l", HeaderName::ContentLength),
            (b"CSeq", HeaderName::CSeq),
            (b"cseq", HeaderName::CSeq),
            (b"Max-Forwards", HeaderName::MaxForwards),
            (b"P-Asserted-Identity", HeaderName::PAssertedIdentity),
            (b"m", HeaderName::Other),
            (b"Contact", HeaderName::Other),
            (b"X-Via", HeaderName::Other),
        ] {
            assert_eq!(
                HeaderName::classify(name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    /// Every known name with any one byte changed is classified as the
    /// plain comparison `eq_ignore_ascii_case` would have it.
    #[test]
    fn agrees_with_a_plain_comparison_for_every_byte() {
        let known = [
            (&b"to"[..], HeaderName::To),
            (b"via", HeaderName::Via),
            (b"from", HeaderName::From),
            (b"cseq", HeaderName::CSeq),
            (b"call-id", HeaderName::CallId),
            (b"require", HeaderName::Require),
            (b"max-forwards", HeaderName::MaxForwards),
            (b"content-length", HeaderName::ContentLength),
            (b"p-asserted-identity", HeaderName::PAssertedIdentity),
        ];
        let plain = |name: &[u8]| {
            known
                .iter()
                .find(|(long, _)| long.eq_ignore_ascii_case(name))
                .map_or(HeaderName::Other, |&(_, header)| header)
        };
        for (long, _) in known {
            for at in 0..long.len() {
                for byte in 0..=255u8 {
                    let mut name = long.to_vec();
                    name[at] = byte;
                    assert_eq!(HeaderName::classify(&name), plain(&name), "{name:?}");
                }
            }
        }
    }
}

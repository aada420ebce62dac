//! Header names (RFC 3261 §7.3): case-insensitive, with the compact forms
//! of §7.3.3 (a MUST for receivers) for the headers a redirect server reads.

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
    pub fn classify(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'l' => HeaderName::ContentLength,
                // m Contact, c Content-Type, k Supported, s Subject,
                // e Content-Encoding, and the rest: not read here.
                _ => HeaderName::Other,
            };
        }
        // Compare only against the name of the same length.
        let (long, header): (&[u8], HeaderName) = match name.len() {
            2 => (b"to", HeaderName::To),
            3 => (b"via", HeaderName::Via),
            4 if name[0].eq_ignore_ascii_case(&b'f') => (b"from", HeaderName::From),
            4 => (b"cseq", HeaderName::CSeq),
            7 if name[0].eq_ignore_ascii_case(&b'c') => (b"call-id", HeaderName::CallId),
            7 => (b"require", HeaderName::Require),
            12 => (b"max-forwards", HeaderName::MaxForwards),
            14 => (b"content-length", HeaderName::ContentLength),
            19 => (b"p-asserted-identity", HeaderName::PAssertedIdentity),
            _ => return HeaderName::Other,
        };
        if long.eq_ignore_ascii_case(name) {
            header
        } else {
            HeaderName::Other
        }
    }
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
}

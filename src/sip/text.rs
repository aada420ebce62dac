//! Small byte-level helpers for SIP text (RFC 3261 §25.1): linear white
//! space, quoted strings, top-level comma splitting, parameters.

use std::ops::Range;

/// Whether `b` is white space inside a header value (SP, HTAB, or the CR
/// and LF of a folded line).
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The first `needle` in `haystack`. SIP lines and values are short, and
/// for a few dozen bytes `memchr`'s vector set-up costs more than the
/// search, so `memchr` is used only past that; below, eight bytes are
/// tested at a time in a plain `u64` (see [`find_any`]).
#[inline]
pub fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() >= 64 {
        return memchr::memchr(needle, haystack);
    }
    find_any([needle], haystack)
}

/// The first of either needle in `haystack`, as [`find`] looks.
#[inline]
pub fn find2(a: u8, b: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() >= 64 {
        return memchr::memchr2(a, b, haystack);
    }
    find_any([a, b], haystack)
}

/// The first of any of three needles in `haystack`, as [`find`] looks.
#[inline]
pub fn find3(a: u8, b: u8, c: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() >= 64 {
        return memchr::memchr3(a, b, c, haystack);
    }
    find_any([a, b, c], haystack)
}

/// Whether `s` holds linear white space (SP, HTAB, CR, LF).
#[inline]
pub fn has_lws(s: &[u8]) -> bool {
    if s.len() >= 64 {
        return s.iter().any(|&b| is_lws(b));
    }
    find_any([b' ', b'\t', b'\r', b'\n'], s).is_some()
}

/// The first of `needles` in a short `haystack`, eight bytes at a time:
/// each byte equal to a needle becomes a zero byte of `word ^ needle`, and
/// `(x - 0x01..) & !x & 0x80..` flags every zero byte. A byte above a zero
/// one may be flagged too (a borrow), never a byte below, so the lowest
/// flag over all needles is the first match. The bytes past the last whole
/// word are read as the haystack's last eight, overlapping bytes already
/// tested: they hold no match, so they start no borrow and flag nothing.
#[inline(always)]
fn find_any<const N: usize>(needles: [u8; N], haystack: &[u8]) -> Option<usize> {
    let flags = |word: [u8; 8]| {
        let word = u64::from_le_bytes(word);
        let mut zeros = 0;
        for needle in needles {
            let x = word ^ u64::from_ne_bytes([needle; 8]);
            zeros |= x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080;
        }
        zeros
    };
    let first = |zeros: u64| (zeros.trailing_zeros() / 8) as usize;
    let Some(&last) = haystack.last_chunk::<8>() else {
        return haystack.iter().position(|b| needles.contains(b));
    };
    let (words, tail) = haystack.as_chunks::<8>();
    for (i, &word) in words.iter().enumerate() {
        let zeros = flags(word);
        if zeros != 0 {
            return Some(i * 8 + first(zeros));
        }
    }
    if tail.is_empty() {
        return None;
    }
    let zeros = flags(last);
    (zeros != 0).then(|| haystack.len() - 8 + first(zeros))
}

/// Whether `s` is `lower` in any case (ASCII), as `eq_ignore_ascii_case`
/// says, for a `lower` with no upper-case letter: a letter of `lower` is
/// matched with the case bit (0x20) set, which only that letter in either
/// case gives; any other byte must be equal. The length is fixed, so the
/// compiler unrolls this into a few word-sized operations, where
/// `eq_ignore_ascii_case` walks byte by byte.
#[inline(always)]
pub fn eq_lower<const N: usize>(s: &[u8], lower: &[u8; N]) -> bool {
    let Ok(s) = <&[u8; N]>::try_from(s) else {
        return false;
    };
    let mut diff = 0u8;
    for i in 0..N {
        let case = if lower[i].is_ascii_lowercase() {
            0x20
        } else {
            0
        };
        diff |= (s[i] | case) ^ lower[i];
    }
    diff == 0
}

/// `s` without leading and trailing linear white space.
pub fn trim(s: &[u8]) -> &[u8] {
    // Nearly every value is already trimmed but for the space after the
    // colon: look at the ends before walking anything.
    if let (Some(&first), Some(&last)) = (s.first(), s.last())
        && !is_lws(first)
        && !is_lws(last)
    {
        return s;
    }
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Appends a header value with any folding (a line end followed by white
/// space, §7.3.1) replaced by one space: the same value, on one line, so a
/// response never carries a request's bare LF. Values without line ends,
/// the usual case, are copied as they are.
pub fn write_unfolded(out: &mut Vec<u8>, value: &[u8]) {
    if find2(b'\r', b'\n', value).is_none() {
        out.extend_from_slice(value);
        return;
    }
    let mut i = 0;
    while i < value.len() {
        if matches!(value[i], b'\r' | b'\n') {
            while i < value.len() && is_lws(value[i]) {
                i += 1;
            }
            if !out.ends_with(b" ") {
                out.push(b' ');
            }
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
}

/// Appends an IP address: IPv4 dotted (written by hand: the formatting
/// machinery costs more than the rest of a response), IPv6 in RFC 5952
/// form, in brackets when `brackets` (a URI host, RFC 3261 §25.1) and
/// bare otherwise (a Via `received`, RFC 5118 §4.5).
pub fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr, brackets: bool) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = if brackets {
                write!(out, "[{v6}]")
            } else {
                write!(out, "{v6}")
            };
        }
    }
}

/// Splits `s` at the first comma outside quotes and angle brackets: the
/// first value and, if there is one, the rest after the comma.
pub fn split_first_value(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    // Before the first quote or `<`, a comma is at the top level (a `\\`
    // or `>` there changes nothing), so the usual value is split by one
    // search; a quote or bracket first is walked byte by byte.
    match find3(b',', b'"', b'<', s) {
        None => return (s, None),
        Some(i) if s[i] == b',' => return (&s[..i], Some(&s[i + 1..])),
        Some(_) => {}
    }
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    (s, None)
}

/// Where each `;`-separated parameter of `s` (which starts at or before
/// the first `;`) is: the range of its text after the `;`, untrimmed.
/// Semicolons inside quoted strings do not split.
pub fn param_spans(s: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut next = find(b';', s).map(|semicolon| semicolon + 1);
    std::iter::from_fn(move || {
        let start = next?;
        let rest = &s[start..];
        // A `;` before any quote ends the parameter; after a quote, the
        // quotes are followed byte by byte.
        let len = match find2(b';', b'"', rest) {
            None => rest.len(),
            Some(i) if rest[i] == b';' => i,
            Some(_) => {
                let mut in_quotes = false;
                rest.iter()
                    .position(|&b| {
                        if b == b'"' {
                            in_quotes = !in_quotes;
                        }
                        b == b';' && !in_quotes
                    })
                    .unwrap_or(rest.len())
            }
        };
        let end = start + len;
        next = (end < s.len()).then_some(end + 1);
        Some(start..end)
    })
}

/// One parameter's text split into its trimmed name and, after an `=`,
/// its trimmed value.
pub fn split_param(param: &[u8]) -> (&[u8], Option<&[u8]>) {
    match find(b'=', param) {
        Some(eq) => (trim(&param[..eq]), Some(trim(&param[eq + 1..]))),
        None => (trim(param), None),
    }
}

/// Iterates the `;name[=value]` parameters in `s` (which starts at or
/// before the first `;`), yielding trimmed names and values. Semicolons
/// inside quoted strings do not split.
pub fn params(s: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    param_spans(s).map(move |span| split_param(&s[span]))
}

/// Parses a decimal number, ignoring surrounding white space; `None` for
/// anything else (signs, garbage, overflow).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    let digits = trim(s);
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    // One walk that checks and adds up (ten digits fit a u64).
    let mut value = 0u64;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

/// Upper-case hexadecimal digits, for percent-escapes (RFC 3986 §2.1
/// prefers them).
pub const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_folded_white_space() {
        assert_eq!(trim(b" \t a b \r\n "), b"a b");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn writes_addresses() {
        let mut out = Vec::new();
        write_ip(&mut out, "192.0.2.255".parse().unwrap(), true);
        out.push(b' ');
        write_ip(&mut out, "2001:db8::1".parse().unwrap(), true);
        out.push(b' ');
        write_ip(&mut out, "2001:db8::1".parse().unwrap(), false);
        assert_eq!(out, b"192.0.2.255 [2001:db8::1] 2001:db8::1");
    }

    #[test]
    fn unfolds_line_ends() {
        let mut out = Vec::new();
        write_unfolded(&mut out, b"<sip:a@b>\r\n ;tag=x");
        assert_eq!(out, b"<sip:a@b> ;tag=x");
        out.clear();
        write_unfolded(&mut out, b"a \n\t b\r\n c");
        assert_eq!(out, b"a b c");
        out.clear();
        write_unfolded(&mut out, b"plain value");
        assert_eq!(out, b"plain value");
    }

    #[test]
    fn splits_at_top_level_commas_only() {
        assert_eq!(split_first_value(b"a, b"), (&b"a"[..], Some(&b" b"[..])));
        assert_eq!(
            split_first_value(b"\"x, y\" <sip:a@b>, <tel:1>"),
            (&b"\"x, y\" <sip:a@b>"[..], Some(&b" <tel:1>"[..]))
        );
        assert_eq!(
            split_first_value(b"<sip:a,b@c>"),
            (&b"<sip:a,b@c>"[..], None)
        );
    }

    #[test]
    fn iterates_params() {
        let all: Vec<_> = params(b"SIP/2.0/UDP h;branch=z9;rport; received = 1.2.3.4").collect();
        assert_eq!(
            all,
            vec![
                (&b"branch"[..], Some(&b"z9"[..])),
                (&b"rport"[..], None),
                (&b"received"[..], Some(&b"1.2.3.4"[..])),
            ]
        );
        assert_eq!(params(b"no params").count(), 0);
        assert_eq!(params(b"x;a=\"q;q\";b").count(), 2);
        assert_eq!(params(b"x;").collect::<Vec<_>>(), vec![(&b""[..], None)]);
        let s = b"h;a=1; b ;c";
        let spans: Vec<_> = param_spans(s).map(|span| &s[span]).collect();
        assert_eq!(spans, vec![&b"a=1"[..], b" b ", b"c"]);
    }

    #[test]
    fn finds_the_first_byte_at_any_length_and_place() {
        for len in 0..80 {
            for at in 0..=len {
                for needle in [0u8, b'\n', 0x80, 0xff] {
                    // Bytes on either side of the needle's value, which
                    // a borrow between bytes could confuse with it.
                    let mut hay: Vec<u8> = (0..len)
                        .map(|i| needle.wrapping_add(if i % 2 == 0 { 1 } else { 0xff }))
                        .collect();
                    if at < len {
                        hay[at] = needle;
                        if at + 1 < len {
                            hay[at + 1] = needle;
                        }
                    }
                    let want = hay.iter().position(|&b| b == needle);
                    assert_eq!(find(needle, &hay), want, "{len} {at} {needle}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn finds_any_as_a_plain_loop(
            hay in proptest::collection::vec(
                proptest::sample::select(b"ab;,\"<\r\n \t\x80\xff".to_vec()),
                0..100,
            ),
        ) {
            proptest::prop_assert_eq!(
                find2(b';', b'"', &hay),
                hay.iter().position(|&b| b == b';' || b == b'"')
            );
            proptest::prop_assert_eq!(
                find3(b',', b'"', b'<', &hay),
                hay.iter().position(|&b| b == b',' || b == b'"' || b == b'<')
            );
            proptest::prop_assert_eq!(has_lws(&hay), hay.iter().any(|&b| is_lws(b)));
        }

        #[test]
        fn finds_as_a_plain_loop(
            hay in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            needle in proptest::prelude::any::<u8>(),
        ) {
            proptest::prop_assert_eq!(find(needle, &hay), hay.iter().position(|&b| b == needle));
        }
    }

    #[test]
    fn compares_as_eq_ignore_ascii_case_does() {
        for lower in [&b"sip/2.0"[..], b"branch", b"tag", b"p-a"] {
            for at in 0..lower.len() {
                for byte in 0..=255u8 {
                    let mut s = lower.to_vec();
                    s[at] = byte;
                    let want = s.eq_ignore_ascii_case(lower);
                    let got = match lower.len() {
                        7 => eq_lower(&s, b"sip/2.0"),
                        6 => eq_lower(&s, b"branch"),
                        3 if lower == b"tag" => eq_lower(&s, b"tag"),
                        _ => eq_lower(&s, b"p-a"),
                    };
                    assert_eq!(got, want, "{s:?}");
                }
            }
        }
        assert!(!eq_lower(b"sip/2.", b"sip/2.0"));
        assert!(!eq_lower(b"sip/2.00", b"sip/2.0"));
    }

    #[test]
    fn parses_numbers_strictly() {
        assert_eq!(parse_u32(b" 70 "), Some(70));
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"1e3"), None);
        assert_eq!(parse_u32(b"99999999999"), None);
        assert_eq!(parse_u32(b""), None);
    }
}

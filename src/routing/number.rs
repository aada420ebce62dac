//! Phone numbers in E.164 form (ITU-T E.164, RFC 3966 §5.1) and the cheap
//! normaliser used on every request.
//!
//! The wire carries one number in many spellings: `+14155550101`,
//! `14155550101`, `4155550101` (national), `+1-415-555-0101` (RFC 3966
//! visual separators), `tel:+14155550101`, `sip:+14155550101@host;user=phone`,
//! `%2B14155550101`, `0014155550101` / `01114155550101` (international
//! prefixes). [`Spelling::parse`] reads any of them into a fixed-size digit
//! buffer without allocating, and [`Spelling::candidates`] lists the E.164
//! numbers it may mean, in the order docs/routing.md tries them.

use std::fmt;

use super::region::Region;

/// The most digits an E.164 number has (ITU-T E.164 §6).
pub const MAX_E164_DIGITS: usize = 15;

/// The most digits a spelling may carry: an E.164 number behind the
/// longest international prefix we accept (`011`).
const MAX_SPELLING_DIGITS: usize = MAX_E164_DIGITS + 3;

/// An E.164 number, stored as the value of its digits.
///
/// E.164 numbers never start with `0`, so the value alone identifies the
/// number; it fits in a `u64` (at most 15 digits) and hashes cheaply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(u64);

impl E164 {
    /// Builds a number from its digits (most significant first), or `None`
    /// when they cannot be an E.164 number: empty, longer than 15 digits, or
    /// starting with `0`.
    pub fn from_digits(digits: &[u8]) -> Option<E164> {
        if digits.is_empty() || digits.len() > MAX_E164_DIGITS || digits[0] == 0 {
            return None;
        }
        let value = digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d));
        Some(E164(value))
    }

    /// The number whose digits are `value`'s decimal digits, or `None`
    /// when that is not an E.164 number (0, or more than 15 digits).
    pub fn from_value(value: u64) -> Option<E164> {
        (1..=999_999_999_999_999)
            .contains(&value)
            .then_some(E164(value))
    }

    /// The number's digits as an integer (no `+`).
    pub fn value(self) -> u64 {
        self.0
    }

    /// Parses a strict `+` E.164 string such as `+14155550101`.
    pub fn parse_plus(s: &str) -> Option<E164> {
        E164::parse_plus_bytes(s.as_bytes())
    }

    /// [`E164::parse_plus`] of bytes: `+` and 1 to 15 digits, the first
    /// not `0`. What `Spelling::parse` and `as_e164` make of such bytes,
    /// read without their general reading (the call records' writer reads
    /// every caller).
    pub fn parse_plus_bytes(s: &[u8]) -> Option<E164> {
        let digits = s.strip_prefix(b"+")?;
        if digits.is_empty()
            || digits.len() > MAX_E164_DIGITS
            || digits[0] == b'0'
            || !digits.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        Some(E164(value))
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164(+{})", self.0)
    }
}

/// Why a string cannot be a phone number at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpellingError {
    #[error("it is empty")]
    Empty,
    #[error("it contains {0:?}, which is not a digit, a leading '+' or a visual separator")]
    BadCharacter(char),
    #[error("it has more than {MAX_SPELLING_DIGITS} digits")]
    TooLong,
    #[error("it has a malformed percent-escape")]
    BadEscape,
}

/// A number as written: whether it had a leading `+`, and its digits.
///
/// Holds the digits inline (no allocation), including leading zeros, which
/// matter for national and international-prefix spellings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Spelling {
    plus: bool,
    len: u8,
    digits: [u8; MAX_SPELLING_DIGITS],
}

impl fmt::Debug for Spelling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.plus { "Spelling(+" } else { "Spelling(" })?;
        for d in self.digits() {
            write!(f, "{d}")?;
        }
        f.write_str(")")
    }
}

impl Spelling {
    /// Reads a number in any spelling docs/routing.md lists. A `sip:`/`sips:` URI
    /// contributes its user part, a `tel:` URI its number; URI parameters
    /// (`;user=phone`, `;phone-context=...`) are ignored.
    pub fn parse(input: &[u8]) -> Result<Spelling, SpellingError> {
        let number = number_part(input.trim_ascii());
        let mut spelling = Spelling {
            plus: false,
            len: 0,
            digits: [0; MAX_SPELLING_DIGITS],
        };
        let mut seen_anything = false;
        let mut i = 0;
        while i < number.len() {
            let (byte, used) = unescape(number, i)?;
            i += used;
            match byte {
                b'0'..=b'9' => {
                    if usize::from(spelling.len) == MAX_SPELLING_DIGITS {
                        return Err(SpellingError::TooLong);
                    }
                    spelling.digits[usize::from(spelling.len)] = byte - b'0';
                    spelling.len += 1;
                }
                b'+' if !seen_anything => spelling.plus = true,
                // RFC 3966 §5.1.1 visual separators, plus the space people type.
                b'-' | b'.' | b'(' | b')' | b' ' => {}
                other => return Err(SpellingError::BadCharacter(char::from(other))),
            }
            seen_anything = true;
        }
        if spelling.len == 0 {
            return Err(SpellingError::Empty);
        }
        Ok(spelling)
    }

    /// Whether the number was written with a leading `+`.
    pub fn has_plus(&self) -> bool {
        self.plus
    }

    /// The digits as written, leading zeros included.
    pub fn digits(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// The digits after an international prefix (`00` or `011`), if the
    /// spelling starts with one and has no `+`.
    pub fn after_international_prefix(&self) -> Option<&[u8]> {
        if self.plus {
            return None;
        }
        let digits = self.digits();
        digits
            .strip_prefix(&[0, 1, 1][..])
            .or_else(|| digits.strip_prefix(&[0, 0][..]))
    }

    /// The number read as E.164 digits: exactly the digits after a `+`, or
    /// the digits of a spelling without one taken as if it had it.
    pub fn as_e164(&self) -> Option<E164> {
        E164::from_digits(self.digits())
    }

    /// The number read as a national number of `region`: the region's
    /// national prefix (trunk prefix) is dropped and its country code put in
    /// front. `None` for `+` spellings, which are never national.
    pub fn as_national(&self, region: &Region) -> Option<E164> {
        if self.plus {
            return None;
        }
        let national = region.strip_national_prefix(self.digits());
        if national.is_empty() {
            return None;
        }
        let mut buf = [0u8; MAX_E164_DIGITS];
        let code = region.country_code_digits();
        let total = code.len() + national.len();
        if total > MAX_E164_DIGITS {
            return None;
        }
        buf[..code.len()].copy_from_slice(code);
        buf[code.len()..total].copy_from_slice(national);
        E164::from_digits(&buf[..total])
    }

    /// The E.164 numbers this spelling may mean on the wire, most likely
    /// first (docs/routing.md): a `+` spelling means exactly one number; otherwise
    /// the digits after an international prefix, then the digits as E.164,
    /// then the digits as a national number of `region`.
    pub fn candidates(&self, region: &Region) -> Candidates {
        let mut out = Candidates::default();
        if self.plus {
            out.push(self.as_e164());
            return out;
        }
        out.push(
            self.after_international_prefix()
                .and_then(E164::from_digits),
        );
        out.push(self.as_e164());
        out.push(self.as_national(region));
        out
    }
}

/// Up to three distinct E.164 readings of one spelling, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Candidates {
    len: usize,
    items: [Option<E164>; 3],
}

impl Candidates {
    fn push(&mut self, candidate: Option<E164>) {
        let Some(number) = candidate else { return };
        if self.as_slice().contains(&Some(number)) || self.len == self.items.len() {
            return;
        }
        self.items[self.len] = Some(number);
        self.len += 1;
    }

    fn as_slice(&self) -> &[Option<E164>] {
        &self.items[..self.len]
    }

    /// The candidates in order.
    pub fn iter(&self) -> impl Iterator<Item = E164> + '_ {
        self.as_slice().iter().flatten().copied()
    }

    /// Whether there is no reading at all (e.g. `+0...`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The part of `input` that carries the number: the user part of a
/// `sip:`/`sips:` URI, the number of a `tel:` URI (RFC 3966 §3), without
/// URI parameters or headers; the input itself otherwise.
fn number_part(input: &[u8]) -> &[u8] {
    let rest = strip_scheme(input);
    let end_of_user = if rest.len() < input.len() {
        // A URI: the user part ends at '@' (sip/sips), parameters at ';',
        // headers at '?'.
        memchr::memchr3(b'@', b';', b'?', rest).unwrap_or(rest.len())
    } else {
        memchr::memchr2(b';', b'@', rest).unwrap_or(rest.len())
    };
    &rest[..end_of_user]
}

fn strip_scheme(input: &[u8]) -> &[u8] {
    for scheme in [&b"sips:"[..], b"sip:", b"tel:"] {
        if input.len() >= scheme.len() && input[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return &input[scheme.len()..];
        }
    }
    input
}

/// The byte at `i`, decoding a `%XX` escape (RFC 3986 §2.1); returns the
/// byte and how many input bytes it took.
fn unescape(input: &[u8], i: usize) -> Result<(u8, usize), SpellingError> {
    if input[i] != b'%' {
        return Ok((input[i], 1));
    }
    let hex = input.get(i + 1..i + 3).ok_or(SpellingError::BadEscape)?;
    let high = hex_value(hex[0]).ok_or(SpellingError::BadEscape)?;
    let low = hex_value(hex[1]).ok_or(SpellingError::BadEscape)?;
    Ok((high << 4 | low, 3))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        Region::us()
    }

    fn first(s: &str, region: &Region) -> Option<String> {
        let spelling = Spelling::parse(s.as_bytes()).ok()?;
        spelling
            .candidates(region)
            .iter()
            .next()
            .map(|n| n.to_string())
    }

    #[test]
    fn every_listed_spelling_offers_the_same_number() {
        let region = us();
        let want = E164::parse_plus("+14155550101").unwrap();
        for s in [
            "+14155550101",
            "14155550101",
            "4155550101",
            "+1-415-555-0101",
            "+1 (415) 555.0101",
            "tel:+1-415-555-0101",
            "tel:+14155550101;phone-context=example.com",
            "sip:+14155550101@carrier.example;user=phone",
            "SIPS:+14155550101@carrier.example",
            "sip:%2B14155550101@h",
            "%2b1%2D415%2d555%2D0101",
            "0014155550101",
            "01114155550101",
            "  +14155550101  ",
        ] {
            let spelling = Spelling::parse(s.as_bytes()).unwrap();
            assert!(
                spelling.candidates(&region).iter().any(|c| c == want),
                "{s} does not offer {want}: {:?}",
                spelling.candidates(&region)
            );
        }
    }

    #[test]
    fn plus_spelling_means_exactly_one_number() {
        let s = Spelling::parse(b"+4155550101").unwrap();
        let all: Vec<_> = s.candidates(&us()).iter().collect();
        assert_eq!(all, vec![E164::parse_plus("+4155550101").unwrap()]);
    }

    #[test]
    fn digits_are_tried_as_e164_before_national() {
        let s = Spelling::parse(b"4155550101").unwrap();
        let all: Vec<String> = s.candidates(&us()).iter().map(|n| n.to_string()).collect();
        assert_eq!(all, ["+4155550101", "+14155550101"]);
    }

    #[test]
    fn international_prefix_comes_first() {
        let s = Spelling::parse(b"00491521234567").unwrap();
        let all: Vec<String> = s.candidates(&us()).iter().map(|n| n.to_string()).collect();
        assert_eq!(all, ["+491521234567", "+100491521234567"]);
    }

    #[test]
    fn national_prefix_is_stripped_per_region() {
        let de = Region::from_code("DE").unwrap();
        assert_eq!(first("0711758400", &de).as_deref(), Some("+49711758400"));
        let gb = Region::from_code("gb").unwrap();
        let s = Spelling::parse(b"020 7946 0123").unwrap();
        assert_eq!(s.as_national(&gb).unwrap().to_string(), "+442079460123");
        // Italy keeps its leading zero: it has no national prefix.
        let it = Region::from_code("IT").unwrap();
        let s = Spelling::parse(b"06 1234 5678").unwrap();
        assert_eq!(s.as_national(&it).unwrap().to_string(), "+390612345678");
        // US national prefix 1.
        let s = Spelling::parse(b"1 415 555 0101").unwrap();
        assert_eq!(s.as_national(&us()).unwrap().to_string(), "+14155550101");
    }

    #[test]
    fn non_numbers_are_rejected() {
        assert_eq!(
            Spelling::parse(b"anonymous"),
            Err(SpellingError::BadCharacter('a'))
        );
        assert_eq!(
            Spelling::parse(b"sip:anonymous@anonymous.invalid"),
            Err(SpellingError::BadCharacter('a'))
        );
        assert_eq!(Spelling::parse(b""), Err(SpellingError::Empty));
        assert_eq!(Spelling::parse(b"tel:"), Err(SpellingError::Empty));
        assert_eq!(Spelling::parse(b"+-"), Err(SpellingError::Empty));
        assert_eq!(
            Spelling::parse(b"1+2"),
            Err(SpellingError::BadCharacter('+'))
        );
        assert_eq!(Spelling::parse(b"%2"), Err(SpellingError::BadEscape));
        assert_eq!(Spelling::parse(b"%zz1"), Err(SpellingError::BadEscape));
        assert_eq!(
            Spelling::parse(b"1234567890123456789"),
            Err(SpellingError::TooLong)
        );
    }

    #[test]
    fn impossible_numbers_have_no_candidates() {
        // + then 16 digits: too long for E.164.
        let s = Spelling::parse(b"+1234567890123456").unwrap();
        assert!(s.candidates(&us()).is_empty());
        let s = Spelling::parse(b"+0123").unwrap();
        assert!(s.candidates(&us()).is_empty());
    }

    #[test]
    fn e164_round_trips_through_display() {
        let n = E164::parse_plus("+442079460123").unwrap();
        assert_eq!(n.to_string(), "+442079460123");
        assert_eq!(E164::parse_plus("+"), None);
        assert_eq!(E164::parse_plus("+0"), None);
        assert_eq!(E164::parse_plus("+1a"), None);
        assert_eq!(E164::parse_plus("+1234567890123456"), None);
    }
}

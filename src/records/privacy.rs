//! Phone numbers in records as `records.numbers` says (docs/security.md,
//! "Call records"): in full, masked to the country code and the last
//! four digits, or replaced by a keyed HMAC-SHA256 that still lets a
//! receiver join records on the same number without reading it.

use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::routing::E164;
use crate::settings::NumbersMode;

/// Digits a masked number keeps at its end.
const KEPT_DIGITS: usize = 4;

/// A numbers mode with its key.
#[derive(Clone)]
pub enum Numbers {
    Full,
    Masked,
    Hmac(Vec<u8>),
}

impl std::fmt::Debug for Numbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.write_str(match self {
            Numbers::Full => "Full",
            Numbers::Masked => "Masked",
            Numbers::Hmac(_) => "Hmac",
        })
    }
}

impl Numbers {
    pub fn new(mode: NumbersMode, key: Option<Vec<u8>>) -> Numbers {
        match (mode, key) {
            (NumbersMode::Full, _) => Numbers::Full,
            (NumbersMode::Masked, _) => Numbers::Masked,
            (NumbersMode::Hmac, Some(key)) => Numbers::Hmac(key),
            // Checked with the settings; masked is the safe side.
            (NumbersMode::Hmac, None) => Numbers::Masked,
        }
    }

    /// `number` as this mode writes it.
    pub fn apply(&self, number: &str) -> String {
        match self {
            Numbers::Full => number.to_owned(),
            Numbers::Masked => mask(number),
            Numbers::Hmac(key) => keyed(key, number),
        }
    }
}

/// `+16505550123` → `+1******0123`: the country code (from the E.164
/// numbering plan) and the last digits, the rest starred so the length
/// shows. Anything not E.164 keeps only its last digits.
pub fn mask(number: &str) -> String {
    let Some(digits) = number
        .strip_prefix('+')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    else {
        let chars: Vec<char> = number.chars().collect();
        let keep = chars.len().saturating_sub(KEPT_DIGITS);
        return chars
            .iter()
            .enumerate()
            .map(|(i, &c)| if i < keep { '*' } else { c })
            .collect();
    };
    let mut out = Vec::with_capacity(digits.len() + 1);
    push_masked(&mut out, digits.as_bytes());
    // Only `+`, digits and stars were written.
    String::from_utf8(out).unwrap_or_default()
}

/// An E.164 number masked as [`mask`] writes it, as a JSON string
/// (nothing in it needs escaping): appended to a record's line, with no
/// string of its own (masking is `records.numbers`' default, and the
/// string per number cost the writer more than the rest of the number).
pub fn json_masked_e164(out: &mut Vec<u8>, number: E164) {
    let mut digits = itoa::Buffer::new();
    out.push(b'"');
    push_masked(out, digits.format(number.value()).as_bytes());
    out.push(b'"');
}

/// `+`, the country code, stars and the last digits of `digits` (ASCII
/// digits, at least one).
fn push_masked(out: &mut Vec<u8>, digits: &[u8]) {
    let cc = country_code_len(digits).min(digits.len());
    let tail = digits.len().saturating_sub(KEPT_DIGITS).max(cc);
    out.push(b'+');
    out.extend_from_slice(&digits[..cc]);
    out.resize(out.len() + (tail - cc), b'*');
    out.extend_from_slice(&digits[tail..]);
}

/// Digits of the country code that starts `digits` (ASCII digits; ITU-T
/// E.164 codes are prefix-free): the phonenumber crate's metadata
/// decides, read once into a table of the 1,000 possible codes (its
/// lookup, per masked number, cost more than the rest of the masking).
fn country_code_len(digits: &[u8]) -> usize {
    static CODES: OnceLock<[bool; 1000]> = OnceLock::new();
    let codes = CODES.get_or_init(|| {
        let mut codes = [false; 1000];
        for (cc, known) in (0u16..).zip(codes.iter_mut()) {
            *known = phonenumber::metadata::DATABASE
                .by_code(&cc)
                .is_some_and(|regions| !regions.is_empty());
        }
        codes
    });
    // The first one, two and three digits read as a number (leading
    // zeros and all, as `str::parse` reads them).
    let mut cc = 0usize;
    for (n, &d) in digits.iter().take(3).enumerate() {
        cc = cc * 10 + usize::from(d.wrapping_sub(b'0') % 10);
        if codes.get(cc).copied().unwrap_or(false) {
            return n + 1;
        }
    }
    1
}

/// `hmac-sha256:` and the first 16 bytes of the MAC, in hex.
fn keyed(key: &[u8], number: &str) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; kept total all the same.
        Err(_) => return mask(number),
    };
    mac.update(number.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("hmac-sha256:");
    for byte in &digest[..16] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_numbers_keep_the_country_code_and_the_last_digits() {
        assert_eq!(mask("+16505550123"), "+1******0123");
        assert_eq!(mask("+442079460958"), "+44******0958");
        assert_eq!(mask("+35312345678"), "+353****5678");
        assert_eq!(mask("+1234"), "+1234");
        assert_eq!(mask("anonymous"), "*****mous");
        // "01" reads as code 1, as `str::parse` read it before.
        assert_eq!(mask("+0123456789"), "+01****6789");
    }

    #[test]
    fn e164_numbers_are_masked_in_place_as_mask_writes_them() {
        // Country codes of one, two and three digits, numbers too short to
        // star, and the longest E.164 numbers.
        for value in [
            1u64,
            44,
            1234,
            16_505_550_123,
            442_079_460_958,
            35_312_345_678,
            8_801_234_567,
            999_999_999_999_999,
            210_000_000_000_000,
        ] {
            let number = E164::from_value(value).expect("E.164");
            let mut out = Vec::new();
            json_masked_e164(&mut out, number);
            assert_eq!(
                out,
                format!("\"{}\"", mask(&number.to_string())).into_bytes()
            );
        }
    }

    #[test]
    fn hmac_numbers_are_stable_per_key_and_differ_across_keys() {
        let a = Numbers::Hmac(b"key one".to_vec());
        let b = Numbers::Hmac(b"key two".to_vec());
        assert_eq!(a.apply("+16505550123"), a.apply("+16505550123"));
        assert_ne!(a.apply("+16505550123"), b.apply("+16505550123"));
        assert_ne!(a.apply("+16505550123"), a.apply("+16505550124"));
        assert!(a.apply("+16505550123").starts_with("hmac-sha256:"));
        assert_eq!(a.apply("+16505550123").len(), "hmac-sha256:".len() + 32);
    }
}

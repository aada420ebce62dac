//! Property tests for number normalisation (docs/routing.md): it never panics,
//! it is idempotent, and every spelling of a number reaches the same E.164
//! key.

use proptest::prelude::*;
use switchboard::routing::{E164, Region, Spelling};

/// Country codes with their regions, spread over 1-, 2- and 3-digit codes.
const COUNTRIES: &[(&str, &str)] = &[
    ("1", "US"),
    ("7", "RU"),
    ("33", "FR"),
    ("44", "GB"),
    ("49", "DE"),
    ("61", "AU"),
    ("81", "JP"),
    ("351", "PT"),
    ("353", "IE"),
    ("971", "AE"),
];

/// A country and an E.164 number in it: code + a national significant
/// number not starting with 0, 4 to 15 digits in all.
fn number() -> impl Strategy<Value = (&'static str, String)> {
    (
        0..COUNTRIES.len(),
        proptest::collection::vec(0u8..10, 3..=11),
    )
        .prop_map(|(i, mut nsn)| {
            let (code, region) = COUNTRIES[i];
            if nsn[0] == 0 {
                nsn[0] = 5;
            }
            nsn.truncate(15 - code.len());
            let digits: String = nsn.iter().map(|d| char::from(b'0' + d)).collect();
            (region, format!("{code}{digits}"))
        })
}

/// Visual separators between digits (RFC 3966 §5.1.1).
fn separated(digits: &str, seps: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        out.push(c);
        if let Some(&s) = seps.get(i) {
            match s % 8 {
                0 => out.push('-'),
                1 => out.push('.'),
                2 => out.push(' '),
                _ => {}
            }
        }
    }
    out
}

fn e164(digits: &str) -> E164 {
    E164::parse_plus(&format!("+{digits}")).expect("generated numbers are E.164")
}

fn candidates(spelling: &str, region: &Region) -> Vec<E164> {
    Spelling::parse(spelling.as_bytes())
        .unwrap_or_else(|e| panic!("{spelling:?}: {e}"))
        .candidates(region)
        .iter()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(spelling) = Spelling::parse(&bytes) {
            for region in ["US", "GB", "DE", "IT"] {
                let region = Region::from_code(region).unwrap();
                for candidate in spelling.candidates(&region).iter() {
                    prop_assert!(candidate.to_string().len() <= 16);
                }
            }
        }
    }

    #[test]
    fn never_panics_on_number_like_text(text in "[+0-9%()., ;@a-zA-Z:-]{0,40}") {
        if let Ok(spelling) = Spelling::parse(text.as_bytes()) {
            let _ = spelling.candidates(&Region::us());
        }
    }

    #[test]
    fn normalising_is_idempotent((region, digits) in number(), seps in proptest::collection::vec(any::<u8>(), 0..16)) {
        let region = Region::from_code(region).unwrap();
        let written = format!("+{}", separated(&digits, &seps));
        let once = candidates(&written, &region);
        prop_assert_eq!(once.len(), 1);
        let twice = candidates(&once[0].to_string(), &region);
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn every_spelling_reaches_the_same_key((region, digits) in number(), seps in proptest::collection::vec(any::<u8>(), 0..16)) {
        let want = e164(&digits);
        let region_info = Region::from_code(region).unwrap();
        let visual = separated(&digits, &seps);
        // Spellings with '+' (or its escape) mean exactly this number.
        for exact in [
            format!("+{digits}"),
            format!("+{visual}"),
            format!("tel:+{visual}"),
            format!("tel:+{digits};phone-context=example.com"),
            format!("sip:+{digits}@carrier.example;user=phone"),
            format!("sips:+{digits}@carrier.example"),
            format!("%2B{digits}"),
            format!("sip:%2b{digits}@h"),
        ] {
            prop_assert_eq!(candidates(&exact, &region_info), vec![want], "{}", exact);
        }
        // Spellings without '+' offer it among their readings.
        for offered in [
            digits.clone(),
            visual.clone(),
            format!("00{digits}"),
            format!("011{visual}"),
            format!("sip:00{digits}@h"),
        ] {
            prop_assert!(candidates(&offered, &region_info).contains(&want), "{}", offered);
        }
    }

    #[test]
    fn national_spellings_reach_the_number_in_their_region(nsn in proptest::collection::vec(0u8..10, 6..=10)) {
        // National significant numbers start with neither the GB national
        // prefix 0 nor the US one, 1 (NANP area codes start with 2-9).
        let mut nsn = nsn;
        if nsn[0] < 2 {
            nsn[0] = 7;
        }
        let digits: String = nsn.iter().map(|d| char::from(b'0' + d)).collect();
        let gb = Region::from_code("GB").unwrap();
        let want = e164(&format!("44{digits}"));
        let national = format!("0{digits}");
        prop_assert!(candidates(&national, &gb).contains(&want));
        // US: the national prefix 1 is optional.
        let us = Region::us();
        let want = e164(&format!("1{digits}"));
        prop_assert!(candidates(&digits, &us).contains(&want));
        let with_prefix = format!("1{digits}");
        prop_assert!(candidates(&with_prefix, &us).contains(&want));
    }
}

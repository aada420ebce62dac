//! Reading the phone numbers written in routing data.
//!
//! Data numbers may use any spelling the wire does (docs/routing.md) and are read
//! with the account's region. Unlike the request path, load time can afford
//! libphonenumber: it settles spellings without `+` and flags numbers its
//! data does not know as valid.
//!
//! A spelling without `+` is read, in order, after an international prefix
//! (`00`, `011`), as a national number of the account's region, and as
//! E.164 digits; the first reading libphonenumber calls valid wins, else the
//! first reading. (The wire tries E.164 first, because there the table tells
//! which reading is a known number; here nothing does, and data written for
//! one account is most likely national.)

use std::sync::{Arc, LazyLock, RwLock};

use phonenumber::metadata::DATABASE;
use rustc_hash::FxHashMap;

use crate::routing::{E164, Region, Spelling, SpellingError, Target};
use crate::template::{has_sip_scheme, unfit_for_contact};

/// A number read from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataNumber {
    pub number: E164,
    /// libphonenumber knows the number as valid (only when asked to check).
    pub valid: bool,
}

/// Why a string in the data cannot be a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotANumber {
    #[error("{0}")]
    Spelling(#[from] SpellingError),
    #[error("its digits cannot form an E.164 number (1 to 15 digits, the first not 0)")]
    ImpossibleLength,
    #[error("a SIP URI needs a host after '@' and no spaces, '<', '>' or quotes")]
    BadUri,
    #[error("no country has the calling code of {0}")]
    UnknownCountryCode(E164),
    #[error(
        "{number} has {digits} digits after its country code +{code}, and numbers there have {possible}"
    )]
    WrongLength {
        number: E164,
        code: u16,
        digits: usize,
        possible: String,
    },
}

/// Whether to ask libphonenumber about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Numbers that route calls (account numbers, phones, forwarding):
    /// few, and worth a warning when invalid.
    Validity,
    /// Contact phones: up to millions, other people's numbers. Checked only
    /// where a spelling without `+` is ambiguous.
    OnlyAmbiguous,
}

/// Reads a number written in the data for an account in `region`.
pub fn read_number(raw: &str, region: &Region, check: Check) -> Result<DataNumber, NotANumber> {
    let spelling = Spelling::parse(raw.as_bytes())?;
    let readings: [Option<E164>; 3] = if spelling.has_plus() {
        [spelling.as_e164(), None, None]
    } else {
        [
            spelling
                .after_international_prefix()
                .and_then(E164::from_digits),
            spelling.as_national(region),
            spelling.as_e164(),
        ]
    };
    let mut readings = readings.into_iter().flatten().peekable();
    let first = *readings.peek().ok_or(NotANumber::ImpossibleLength)?;
    let ambiguous = !spelling.has_plus();
    if check == Check::OnlyAmbiguous && !ambiguous {
        return Ok(DataNumber {
            number: first,
            valid: true,
        });
    }
    // The first reading libphonenumber knows as valid; else the first that
    // is at least possible, reported as not valid; else the first reading's
    // impossibility is the error.
    let mut first_possible = None;
    let mut first_error = None;
    for number in std::iter::once(first).chain(readings.skip(1)) {
        match validity(number) {
            Ok(true) => {
                return Ok(DataNumber {
                    number,
                    valid: true,
                });
            }
            Ok(false) => {
                first_possible.get_or_insert(number);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (first_possible, first_error) {
        (Some(number), _) => Ok(DataNumber {
            number,
            valid: check == Check::OnlyAmbiguous,
        }),
        (None, Some(e)) if check == Check::Validity => Err(e),
        _ => Ok(DataNumber {
            number: first,
            valid: true,
        }),
    }
}

/// Reads a user's phone or a forwarding number: a SIP URI (used as is) or a
/// phone number.
pub fn read_target(raw: &str, region: &Region) -> Result<(Target, bool), NotANumber> {
    let trimmed = raw.trim();
    if has_sip_scheme(trimmed) {
        // A URI with a user part names a phone; the number inside it (if
        // any) is the carrier's business, so it is kept as written.
        let host = trimmed.split_once('@').map(|(_, host)| host).unwrap_or("");
        if host.is_empty() || unfit_for_contact(trimmed).is_some() {
            return Err(NotANumber::BadUri);
        }
        return Ok((Target::Uri(trimmed.into()), true));
    }
    let n = read_number(trimmed, region, Check::Validity)?;
    Ok((Target::Number(n.number), n.valid))
}

/// The kinds of number whose lengths libphonenumber's metadata lists (its
/// general descriptor's list is empty in this crate's data).
const NUMBER_TYPES: [phonenumber::Type; 10] = {
    use phonenumber::Type::*;
    [
        FixedLine,
        Mobile,
        TollFree,
        PremiumRate,
        SharedCost,
        PersonalNumber,
        Voip,
        Pager,
        Uan,
        Voicemail,
    ]
};

/// Asks libphonenumber about `number`: `Ok(true)` valid, `Ok(false)`
/// possible but not known as valid, `Err` impossible (no such country code,
/// or a length no number of that country has).
pub fn validity(number: E164) -> Result<bool, NotANumber> {
    let digits = number.value().to_string();
    // The country code is the first 1 to 3 digits that are one, as the
    // crate's parser finds it; short numbers (where its parser has more to
    // say) and codes it does not know go to the crate itself.
    let split = (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        DATABASE.by_code(&code).map(|_| (code, &digits[len..]))
    });
    let Some((code, national)) = split.filter(|(_, national)| national.len() > 3) else {
        return validity_by_the_crate(number);
    };
    match super::validity::is_valid(code, national) {
        Some(valid) => check_length(number, code, national.len()).map(|()| valid),
        None => validity_by_the_crate(number),
    }
}

/// Numbers there have other lengths: an error naming the possible ones.
fn check_length(number: E164, code: u16, digits: usize) -> Result<(), NotANumber> {
    let possible = possible_lengths(code).ok_or(NotANumber::UnknownCountryCode(number))?;
    if !possible.is_empty() && !possible.iter().any(|&l| usize::from(l) == digits) {
        let possible = possible
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(NotANumber::WrongLength {
            number,
            code,
            digits,
            possible,
        });
    }
    Ok(())
}

/// The national number lengths of every type of every region of `code`,
/// sorted; kept per code, as every data number asks.
fn possible_lengths(code: u16) -> Option<Arc<[u16]>> {
    /// By country code; `None` for a code no region has.
    type ByCode = FxHashMap<u16, Option<Arc<[u16]>>>;
    static LENGTHS: LazyLock<RwLock<ByCode>> = LazyLock::new(Default::default);
    if let Some(found) = LENGTHS.read().ok().and_then(|m| m.get(&code).cloned()) {
        return found;
    }
    let lengths = DATABASE.by_code(&code).map(|regions| {
        let mut lengths: Vec<u16> = regions
            .iter()
            .flat_map(|m| NUMBER_TYPES.iter().filter_map(|&t| m.descriptors().get(t)))
            .flat_map(|d| d.possible_length().iter().copied())
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        Arc::from(lengths)
    });
    if let Ok(mut map) = LENGTHS.write() {
        map.insert(code, lengths.clone());
    }
    lengths
}

/// The crate's own parse and check: slow (its pattern cache), kept for
/// what `validity` does not settle itself.
fn validity_by_the_crate(number: E164) -> Result<bool, NotANumber> {
    let parsed = match phonenumber::parse(None, number.to_string()) {
        Ok(parsed) => parsed,
        Err(phonenumber::ParseError::InvalidCountryCode) => {
            return Err(NotANumber::UnknownCountryCode(number));
        }
        Err(_) => return Err(NotANumber::ImpossibleLength),
    };
    let code = parsed.code().value();
    let digits = number.to_string().len() - 1 - code.to_string().len();
    check_length(number, code, digits)?;
    Ok(phonenumber::is_valid(&parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str, region: &str) -> String {
        let region = Region::from_code(region).unwrap();
        read_number(raw, &region, Check::Validity)
            .unwrap()
            .number
            .to_string()
    }

    #[test]
    fn national_spellings_use_the_account_region() {
        assert_eq!(read("4155550101", "US"), "+14155550101");
        assert_eq!(read("1 (415) 555-0101", "US"), "+14155550101");
        assert_eq!(read("0711 758400", "DE"), "+49711758400");
        assert_eq!(read("020 7946 0123", "GB"), "+442079460123");
    }

    #[test]
    fn e164_digits_win_when_the_national_reading_is_invalid() {
        assert_eq!(read("4915224832508", "US"), "+4915224832508");
        assert_eq!(read("442079460123", "US"), "+442079460123");
    }

    #[test]
    fn international_prefixes_and_uris() {
        assert_eq!(read("0049711758400", "US"), "+49711758400");
        assert_eq!(read("011 49 711 758400", "US"), "+49711758400");
        assert_eq!(read("tel:+1-415-555-0101", "DE"), "+14155550101");
        assert_eq!(read("sip:+14155550101@h;user=phone", "DE"), "+14155550101");
    }

    #[test]
    fn validity_is_reported() {
        let us = Region::us();
        assert!(
            read_number("+14155550101", &us, Check::Validity)
                .unwrap()
                .valid
        );
        // Possible (ten digits after +1) but not a valid US/NANP number.
        assert!(
            !read_number("+11235550100", &us, Check::Validity)
                .unwrap()
                .valid
        );
        assert!(
            read_number("+11235550100", &us, Check::OnlyAmbiguous)
                .unwrap()
                .valid
        );
    }

    /// The compiled-once check gives the crate's answers (or errors) on
    /// numbers of every country code and length.
    #[test]
    fn validity_agrees_with_the_crate() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut valid = 0;
        for _ in 0..4_000 {
            let len = 5 + (next() % 11);
            let mut value = 1 + next() % 9;
            for _ in 1..len {
                value = value * 10 + next() % 10;
            }
            let Some(number) = E164::from_value(value) else {
                continue;
            };
            let expected = validity_by_the_crate(number);
            assert_eq!(validity(number), expected, "{number}");
            valid += usize::from(expected == Ok(true));
        }
        // And the generator's kinds of numbers, most of them valid.
        for prefix in [1415u64, 1800, 4420, 4930, 331, 3906] {
            for i in 0..100u64 {
                let digits = if prefix < 10_000 { 10 } else { 9 };
                let tail = (next() % 10u64.pow(digits - 3)) + i;
                let Some(number) =
                    E164::from_value(prefix * 10u64.pow(digits - 3) + tail % 10u64.pow(digits - 3))
                else {
                    continue;
                };
                let expected = validity_by_the_crate(number);
                assert_eq!(validity(number), expected, "{number}");
                valid += usize::from(expected == Ok(true));
            }
        }
        assert!(valid > 300, "{valid} valid");
    }

    #[test]
    fn impossible_numbers_are_errors() {
        let us = Region::us();
        assert!(read_number("call me", &us, Check::Validity).is_err());
        assert!(read_number("+0123", &us, Check::Validity).is_err());
        assert!(read_number("+1234567890123456", &us, Check::Validity).is_err());
        let short = read_number("+1800555", &us, Check::Validity).unwrap_err();
        assert_eq!(
            short.to_string(),
            "+1800555 has 6 digits after its country code +1, and numbers there have 7 or 10"
        );
        let nowhere = read_number("+999123456", &us, Check::Validity).unwrap_err();
        assert_eq!(
            nowhere,
            NotANumber::UnknownCountryCode(E164::parse_plus("+999123456").unwrap())
        );
        // Contacts are not checked this deeply: other people's numbers.
        assert!(read_number("+1800555", &us, Check::OnlyAmbiguous).is_ok());
    }

    #[test]
    fn targets_are_uris_or_numbers() {
        let us = Region::us();
        let (t, _) = read_target("sip:alice@pbx.example.com", &us).unwrap();
        assert_eq!(t, Target::Uri("sip:alice@pbx.example.com".into()));
        let (t, valid) = read_target("415-555-0101", &us).unwrap();
        assert_eq!(t.to_string(), "+14155550101");
        assert!(valid);
        assert!(read_target("sip:alice", &us).is_err());
        assert!(read_target("sip:al ice@host", &us).is_err());
    }
}

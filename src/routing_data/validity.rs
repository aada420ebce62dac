//! libphonenumber's validity check (`phonenumber::is_valid`), with its
//! patterns compiled once.
//!
//! The `phonenumber` crate keeps its compiled patterns in one global cache
//! of 100 behind a mutex, keyed by the pattern's text: every check locks it,
//! hashes patterns hundreds of bytes long, clones a regex (so its lazy DFA
//! starts cold) and, with the 25 regions of +1 alone holding more patterns
//! than the cache, compiles them again. At 300,000 account numbers, phones
//! and forwarding targets that was 9 s of a 10-million-contact load's CPU.
//! Here each country code's patterns are compiled on first use (in each
//! thread) and kept,
//! and the check is the crate's own logic (`validator::is_valid_with`,
//! `source_for`, `number_type`) on them. `tests` hold the two to each other.

use std::cell::RefCell;
use std::rc::Rc;

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashMap;

/// One number type's pattern and lengths.
struct Desc {
    regex: Regex,
    possible_length: Vec<u16>,
}

impl Desc {
    fn new(d: &Descriptor) -> Option<Desc> {
        Some(Desc {
            regex: compile(d.national_number().as_str())?,
            possible_length: d.possible_length().to_vec(),
        })
    }

    /// `Descriptor::is_match`: the length is possible and the pattern
    /// matches from the first digit.
    fn is_match(&self, national: &str) -> bool {
        if !self.possible_length.is_empty()
            && !self
                .possible_length
                .contains(&u16::try_from(national.len()).unwrap_or(u16::MAX))
        {
            return false;
        }
        self.regex.is_match(national)
    }
}

/// What `number_type` needs of one region.
struct RegionRules {
    leading_digits: Option<Regex>,
    general: Desc,
    /// Every type `number_type` tries; a match of any is a known type.
    types: Vec<Desc>,
}

impl RegionRules {
    fn new(meta: &Metadata) -> Option<RegionRules> {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .map(Desc::new)
        .collect::<Option<Vec<_>>>()?;
        Some(RegionRules {
            leading_digits: match meta.leading_digits() {
                Some(pattern) => Some(compile(pattern.as_str())?),
                None => None,
            },
            general: Desc::new(d.general())?,
            types,
        })
    }

    /// `number_type(meta, national) != Type::Unknown`.
    fn knows(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

/// A country code's regions, in the database's order.
struct CodeRules {
    regions: Vec<RegionRules>,
    /// Every region's national prefix, as a pattern (`national_prefix_for_
    /// parsing`) or as text: the crate's parser may strip one from the
    /// start of a national number, which this module does not repeat.
    prefix_patterns: Vec<Regex>,
    prefix_texts: Vec<String>,
    /// The code has one region, or is non-geographic ("001"): its first
    /// metadata decides without looking at leading digits.
    single: bool,
}

/// The metadata's patterns as the crate builds them (`ignore_whitespace`),
/// anchored at the start: the crate asks whether the leftmost match
/// starts at the first digit, which is whether a match starts there, and
/// an anchored `is_match` answers that without scanning the rest for a
/// leftmost start and end. (The line break ends a `#` comment, were a
/// pattern to hold one, before the closing parenthesis.)
///
/// Without Unicode: a national number is ASCII digits (the E.164 value's
/// decimal form), where `\d` as the 10 digits matches what `\d` as every
/// script's 680 does, and the compiled form of a pattern made of such
/// classes is far smaller. With Unicode, heaptrack counted 33 MB of these
/// programs on the reload thread once every file of a 1M-contact export
/// had been reloaded, and that thread keeps them for the life of the
/// process (issue #23: most of the growth after reloads).
fn compile(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{pattern}\n)"))
        .ignore_whitespace(true)
        .unicode(false)
        .build()
        .ok()
}

/// The rules of `code`, compiled on first use in each thread: a regex
/// shared by threads hands its scratch space out through a pool whose slow
/// path the second thread takes on every match (a fifth of a load's time),
/// while compiling a code's patterns costs milliseconds once.
fn rules_for(code: u16) -> Option<Rc<CodeRules>> {
    thread_local! {
        static RULES: RefCell<FxHashMap<u16, Option<Rc<CodeRules>>>> =
            RefCell::new(FxHashMap::default());
    }
    RULES.with(|rules| {
        if let Some(found) = rules.borrow().get(&code) {
            return found.clone();
        }
        let built = build(code).map(Rc::new);
        rules.borrow_mut().insert(code, built.clone());
        built
    })
}

fn build(code: u16) -> Option<CodeRules> {
    let ids = DATABASE.region(&code)?;
    let metas: Vec<&Metadata> = if ids.len() == 1 && ids[0] == "001" {
        vec![DATABASE.by_code(&code)?.into_iter().next()?]
    } else {
        ids.iter()
            .map(|id| DATABASE.by_id(*id))
            .collect::<Option<Vec<_>>>()?
    };
    let mut prefix_patterns = Vec::new();
    let mut prefix_texts = Vec::new();
    for meta in DATABASE
        .by_code(&code)?
        .into_iter()
        .chain(metas.iter().copied())
    {
        if let Some(pattern) = meta.national_prefix_for_parsing() {
            prefix_patterns.push(compile(pattern.as_str())?);
        }
        if let Some(prefix) = meta.national_prefix() {
            prefix_texts.push(prefix.to_owned());
        }
    }
    Some(CodeRules {
        regions: metas
            .into_iter()
            .map(RegionRules::new)
            .collect::<Option<Vec<_>>>()?,
        prefix_patterns,
        prefix_texts,
        single: ids.len() == 1,
    })
}

/// Whether libphonenumber calls the number with country code `code` and
/// national significant number `national` valid; `None` when this module
/// cannot tell (a code or pattern it cannot read), for the caller to ask
/// the crate itself.
pub fn is_valid(code: u16, national: &str) -> Option<bool> {
    let rules = rules_for(code)?;
    // Leading zeros and national prefixes: the crate's parser may read
    // another national number than these digits. Left to it.
    if national.starts_with('0')
        || rules
            .prefix_texts
            .iter()
            .any(|p| national.starts_with(p.as_str()))
        || rules.prefix_patterns.iter().any(|p| p.is_match(national))
    {
        return None;
    }
    if rules.single {
        return Some(rules.regions.first()?.knows(national));
    }
    // `source_for`: the first region whose leading digits match at the
    // start, or, for a region without them, that knows the number.
    for region in &rules.regions {
        let chosen = match &region.leading_digits {
            Some(pattern) => pattern.is_match(national),
            None => region.knows(national),
        };
        if chosen {
            return Some(region.knows(national));
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate's own answer.
    fn reference(number: &str) -> Option<(u16, String, bool)> {
        let parsed = phonenumber::parse(None, number).ok()?;
        Some((
            parsed.code().value(),
            parsed.national().to_string(),
            phonenumber::is_valid(&parsed),
        ))
    }

    /// Every country code the database knows, in order.
    fn codes() -> Vec<u16> {
        let codes: Vec<u16> = (1..1000).filter(|c| DATABASE.region(c).is_some()).collect();
        assert!(codes.len() > 200, "{}", codes.len());
        codes
    }

    /// Numbers of every country code, of every length around the possible
    /// ones, from a fixed pseudo-random stream: the same answers.
    #[test]
    fn agrees_with_the_crate() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let codes = codes();
        let mut compared = 0;
        let mut valid = 0;
        for &code in &codes {
            for _ in 0..30 {
                let len = 4 + (next() % 10) as usize;
                let national: String = (0..len)
                    .map(|i| {
                        let d = (next() % 10) as u8;
                        // Mostly a non-zero first digit, as real numbers.
                        char::from(b'0' + if i == 0 && d == 0 { 1 } else { d })
                    })
                    .collect();
                let number = format!("+{code}{national}");
                let Some((c, n, expected)) = reference(&number) else {
                    continue;
                };
                if c != code {
                    continue;
                }
                let Some(ours) = is_valid(c, &n) else {
                    continue;
                };
                assert_eq!(ours, expected, "{number}");
                compared += 1;
                valid += usize::from(expected);
            }
        }
        assert!(
            compared > 5_000 && valid > 300,
            "{compared} compared, {valid} valid"
        );
    }

    /// Every country code's patterns compile as this module builds them:
    /// one that did not would leave its numbers to the crate, slowly.
    #[test]
    fn every_code_compiles() {
        for code in codes() {
            assert!(build(code).is_some(), "+{code}");
        }
    }

    #[test]
    fn known_numbers() {
        for (number, expected) in [
            ("+14155550101", true),
            ("+11235550100", false),
            ("+442079460000", true),
            ("+4930901820", true),
            ("+33142685300", true),
            ("+390612345678", true),
            ("+18005550100", true),
        ] {
            let (code, national, crate_says) = reference(number).unwrap();
            assert_eq!(crate_says, expected, "{number}");
            // +1 123...: "1" is the NANP's national prefix; Italian numbers
            // keep their leading 0: both left to the crate.
            let ours = is_valid(code, &national);
            let left_to_the_crate = ["+11235550100", "+390612345678"].contains(&number);
            assert_eq!(ours, (!left_to_the_crate).then_some(expected), "{number}");
        }
    }
}

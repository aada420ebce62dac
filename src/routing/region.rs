//! Regions (ISO 3166-1 alpha-2 codes) and what national dialling needs of
//! them: the country calling code (ITU-T E.164 Annex) and the national
//! (trunk) prefix, read once from libphonenumber's metadata.
//!
//! The request path only copies digits from a [`Region`]: it never touches
//! libphonenumber, whose parser is built on regular expressions.

use std::fmt;

/// A region as the routing rules need it.
#[derive(Clone, PartialEq, Eq)]
pub struct Region {
    code: [u8; 2],
    country_code: u16,
    country_code_digits: Digits<3>,
    national_prefix: Digits<4>,
}

/// A short, inline run of decimal digits.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digits<const N: usize> {
    len: u8,
    digits: [u8; N],
}

impl<const N: usize> Digits<N> {
    fn from_str(s: &str) -> Option<Self> {
        if s.len() > N || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits = [0u8; N];
        for (slot, b) in digits.iter_mut().zip(s.bytes()) {
            *slot = b - b'0';
        }
        Some(Digits {
            len: s.len() as u8,
            digits,
        })
    }

    fn as_slice(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }
}

/// The region code is not one libphonenumber knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}: expected an ISO 3166 two-letter code such as US, GB or DE")]
pub struct UnknownRegion(pub String);

impl Region {
    /// Looks a region up by its ISO 3166 code (case-insensitive).
    pub fn from_code(code: &str) -> Result<Region, UnknownRegion> {
        let unknown = || UnknownRegion(code.to_owned());
        let upper = code.trim().to_ascii_uppercase();
        let bytes: [u8; 2] = upper.as_bytes().try_into().map_err(|_| unknown())?;
        let meta = phonenumber::metadata::DATABASE
            .by_id(upper.as_str())
            .ok_or_else(unknown)?;
        let country_code = meta.country_code();
        let country_code_digits =
            Digits::from_str(&country_code.to_string()).ok_or_else(unknown)?;
        // Some regions have no national prefix (e.g. IT keeps its leading 0);
        // a prefix we cannot represent as plain digits is treated as none.
        let national_prefix = meta
            .national_prefix()
            .and_then(Digits::from_str)
            .unwrap_or(Digits {
                len: 0,
                digits: [0; 4],
            });
        Ok(Region {
            code: bytes,
            country_code,
            country_code_digits,
            national_prefix,
        })
    }

    /// The United States, the default region of docs/routing.md.
    pub fn us() -> Region {
        // The metadata is compiled into the phonenumber crate; US is in it.
        Region::from_code("US").expect("libphonenumber metadata knows US")
    }

    /// The ISO 3166 code, e.g. `US`.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("??")
    }

    /// The country calling code, e.g. 1 for US, 49 for DE.
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The country calling code as digits.
    pub fn country_code_digits(&self) -> &[u8] {
        self.country_code_digits.as_slice()
    }

    /// `national` without the region's national prefix, when it starts
    /// with it (`0711...` in DE gives `711...`; `1415...` in US gives `415...`).
    pub fn strip_national_prefix<'a>(&self, national: &'a [u8]) -> &'a [u8] {
        let prefix = self.national_prefix.as_slice();
        if prefix.is_empty() {
            return national;
        }
        national.strip_prefix(prefix).unwrap_or(national)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({} +{})", self.code(), self.country_code)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

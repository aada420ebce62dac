//! How a 302 tells the next hop that the call was diverted (docs/sip.md):
//! a `Diversion` header (RFC 5806), `History-Info` entries (RFC 7044), or
//! nothing. Carriers differ: several refuse a forwarded call without a
//! `Diversion` naming the number originally called, Microsoft Teams Direct
//! Routing reads `History-Info` instead. A presentation setting, server-wide
//! and per account, like the Contact template: the routing rules only say
//! which rule decided, `sip::diversion` writes the headers.

use std::fmt;
use std::str::FromStr;

/// Which header, if any, names the dialed number in a 302.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum DiversionStyle {
    /// `Diversion: <dialed>;reason=...;counter=1` (RFC 5806).
    #[serde(rename = "header")]
    Header,
    /// `History-Info` entries for the dialed number and each target
    /// (RFC 7044).
    #[serde(rename = "history-info")]
    HistoryInfo,
    /// Neither: the answer is byte for byte what it was before the setting
    /// existed, and what a follower that copies neither header gets anyway.
    #[default]
    #[serde(rename = "off")]
    Off,
}

impl DiversionStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            DiversionStyle::Header => "header",
            DiversionStyle::HistoryInfo => "history-info",
            DiversionStyle::Off => "off",
        }
    }
}

impl fmt::Display for DiversionStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of `header`, `history-info`, `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a diversion style: use header, history-info or off")]
pub struct UnknownDiversionStyle(pub String);

impl FromStr for DiversionStyle {
    type Err = UnknownDiversionStyle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "header" => Ok(DiversionStyle::Header),
            "history-info" => Ok(DiversionStyle::HistoryInfo),
            "off" => Ok(DiversionStyle::Off),
            other => Err(UnknownDiversionStyle(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        for style in [
            DiversionStyle::Header,
            DiversionStyle::HistoryInfo,
            DiversionStyle::Off,
        ] {
            assert_eq!(style.as_str().parse::<DiversionStyle>(), Ok(style));
        }
        assert!("history_info".parse::<DiversionStyle>().is_err());
    }
}

//! Request methods (RFC 3261 §7.1, §27.4): the ones a redirect server acts
//! on, and any other token, which gets 405 rather than a parse failure.

use std::fmt;

/// A method as a fixed label: the five this server acts on, or other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Invite,
    Ack,
    Cancel,
    Options,
    Bye,
    Other,
}

impl MethodKind {
    pub const ALL: [MethodKind; 6] = [
        MethodKind::Invite,
        MethodKind::Ack,
        MethodKind::Cancel,
        MethodKind::Options,
        MethodKind::Bye,
        MethodKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Invite => "INVITE",
            MethodKind::Ack => "ACK",
            MethodKind::Cancel => "CANCEL",
            MethodKind::Options => "OPTIONS",
            MethodKind::Bye => "BYE",
            MethodKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'a> {
    Invite,
    Ack,
    Cancel,
    Options,
    Bye,
    /// Any other method token (REGISTER, SUBSCRIBE, NEWMETHOD...).
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Reads a method token; methods are case-sensitive (RFC 3261 §7.1).
    pub fn from_token(token: &'a [u8]) -> Method<'a> {
        match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"BYE" => Method::Bye,
            other => Method::Other(other),
        }
    }

    /// The method without its token: what metrics count by.
    pub fn kind(&self) -> MethodKind {
        match self {
            Method::Invite => MethodKind::Invite,
            Method::Ack => MethodKind::Ack,
            Method::Cancel => MethodKind::Cancel,
            Method::Options => MethodKind::Options,
            Method::Bye => MethodKind::Bye,
            Method::Other(_) => MethodKind::Other,
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Cancel => b"CANCEL",
            Method::Options => b"OPTIONS",
            Method::Bye => b"BYE",
            Method::Other(token) => token,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// `token` membership by byte: a table, since every header name of every
/// request is checked.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_characters() {
        let token: Vec<u8> = (0..=255u8).filter(|&b| is_token_char(b)).collect();
        let mut want: Vec<u8> = (b'0'..=b'9')
            .chain(b'a'..=b'z')
            .chain(b'A'..=b'Z')
            .collect();
        want.extend_from_slice(b"-.!%*_+`'~");
        want.sort_unstable();
        assert_eq!(token, want);
    }
}

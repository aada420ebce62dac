//! The parts of URIs a redirect server reads (RFC 3261 §19.1, RFC 3966):
//! the scheme and the user part of a Request-URI, and the URI of a
//! From / To / P-Asserted-Identity value (`name-addr` or `addr-spec`,
//! §20.10) with its header parameters.

use super::text::{params, split_first_value, trim};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Anything else (`http:`, `mailto:`, ...): 416.
    Other,
}

/// A URI, split just enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme,
    /// The user part of a sip/sips URI (password removed), or the number
    /// of a tel URI; `None` when a sip URI has no user.
    pub user: Option<&'a [u8]>,
}

impl<'a> Uri<'a> {
    /// Splits a bare URI (no angle brackets). `None` when it has no scheme.
    pub fn parse(uri: &'a [u8]) -> Option<Uri<'a>> {
        let colon = memchr::memchr(b':', uri)?;
        let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
        if scheme.is_empty()
            || !scheme
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
        {
            return None;
        }
        let scheme = if scheme.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            return Some(Uri {
                scheme: Scheme::Other,
                user: None,
            });
        };
        let user = match scheme {
            // tel: the number runs to the first parameter (RFC 3966 §3).
            Scheme::Tel => Some(&rest[..memchr::memchr(b';', rest).unwrap_or(rest.len())]),
            // sip: userinfo ends at '@' and may itself hold ';', '?', '/'.
            _ => memchr::memchr(b'@', rest).map(|at| {
                let userinfo = &rest[..at];
                &userinfo[..memchr::memchr(b':', userinfo).unwrap_or(userinfo.len())]
            }),
        };
        Some(Uri { scheme, user })
    }
}

/// A From, To or P-Asserted-Identity value: its URI and header parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub uri: &'a [u8],
    /// The header parameters after the URI (`;tag=...`).
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses `"Display" <uri>;params`, `<uri>;params` or `uri;params`.
    pub fn parse(value: &'a [u8]) -> Option<NameAddr<'a>> {
        let value = trim(value);
        if let Some(open) = find_unquoted(value, b'<') {
            let close = memchr::memchr(b'>', &value[open..])? + open;
            return Some(NameAddr {
                uri: trim(&value[open + 1..close]),
                params: &value[close + 1..],
            });
        }
        // addr-spec: URI parameters would need brackets, so ';' starts the
        // header's own parameters (§20.10).
        let end = memchr::memchr(b';', value).unwrap_or(value.len());
        let uri = trim(&value[..end]);
        (!uri.is_empty()).then_some(NameAddr {
            uri,
            params: &value[end..],
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a [u8]> {
        params(self.params)
            .find(|(name, _)| name.eq_ignore_ascii_case(b"tag"))
            .and_then(|(_, value)| value)
    }
}

/// The first `needle` outside a quoted display name.
fn find_unquoted(s: &[u8], needle: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == needle && !in_quotes {
            return Some(i);
        }
    }
    None
}

/// The URIs of a header that may hold several values (P-Asserted-Identity
/// carries a sip and a tel URI), in order.
pub fn each_name_addr(value: &[u8]) -> impl Iterator<Item = NameAddr<'_>> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        loop {
            let (first, next) = split_first_value(rest?);
            rest = next;
            if let Some(addr) = NameAddr::parse(first) {
                return Some(addr);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uri: &str) -> Option<&str> {
        Uri::parse(uri.as_bytes())
            .and_then(|u| u.user)
            .map(|u| std::str::from_utf8(u).unwrap())
    }

    #[test]
    fn user_parts() {
        assert_eq!(
            user("sip:+18005550100@host;user=phone"),
            Some("+18005550100")
        );
        assert_eq!(user("SIP:alice:secret@host"), Some("alice"));
        assert_eq!(user("sips:a.b;c?d/e@[2001:db8::1]:5061"), Some("a.b;c?d/e"));
        assert_eq!(user("sip:%2B1800@h"), Some("%2B1800"));
        assert_eq!(user("sip:host.example"), None);
        assert_eq!(
            user("tel:+1-800-555-0100;phone-context=x"),
            Some("+1-800-555-0100")
        );
        assert_eq!(Uri::parse(b"mailto:a@b").unwrap().scheme, Scheme::Other);
        assert_eq!(Uri::parse(b"nocolon"), None);
    }

    #[test]
    fn name_addrs() {
        let a = NameAddr::parse(b" \"Bob, <Jr>\" <sip:+1415@h;user=phone>;tag=abc ").unwrap();
        assert_eq!(a.uri, b"sip:+1415@h;user=phone");
        assert_eq!(a.tag(), Some(&b"abc"[..]));
        let a = NameAddr::parse(b"sip:+1415@h;tag=x").unwrap();
        assert_eq!(a.uri, b"sip:+1415@h");
        assert_eq!(a.tag(), Some(&b"x"[..]));
        let a = NameAddr::parse(b"<tel:+1415>").unwrap();
        assert_eq!(a.tag(), None);
        assert!(NameAddr::parse(b"<sip:unclosed").is_none());
    }

    #[test]
    fn several_values() {
        let all: Vec<_> = each_name_addr(b"\"A\" <sip:alice@h>, <tel:+14155550101>")
            .map(|a| a.uri)
            .collect();
        assert_eq!(all, vec![&b"sip:alice@h"[..], &b"tel:+14155550101"[..]]);
    }
}

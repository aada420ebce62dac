//! The parts of URIs a redirect server reads (RFC 3261 §19.1, RFC 3966):
//! the scheme and the user part of a Request-URI, and the URI of a
//! From / To / P-Asserted-Identity value (`name-addr` or `addr-spec`,
//! §20.10) with its header parameters. Also the syntax checks that turn a
//! malformed Request-URI or host into a `400` (RFC 4475 §3.1.2.7,
//! RFC 5118 §4.2 and §4.10).

use super::host::{is_valid_host, split_host_port};
use super::text::{eq_lower, params, split_first_value, trim};

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
        let (scheme, rest) = split_scheme(uri)?;
        let scheme = if eq_lower(scheme, b"sip") {
            Scheme::Sip
        } else if eq_lower(scheme, b"sips") {
            Scheme::Sips
        } else if eq_lower(scheme, b"tel") {
            Scheme::Tel
        } else {
            return Some(Uri {
                scheme: Scheme::Other,
                user: None,
            });
        };
        let user = match scheme {
            // tel: the number runs to the first parameter (RFC 3966 §3).
            Scheme::Tel => Some(&rest[..super::text::find(b';', rest).unwrap_or(rest.len())]),
            // sip: userinfo ends at '@' and may itself hold ';', '?', '/'.
            _ => super::text::find(b'@', rest).map(|at| {
                let userinfo = &rest[..at];
                &userinfo[..super::text::find(b':', userinfo).unwrap_or(userinfo.len())]
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
    /// `None` when the value is malformed: no URI scheme, an unterminated
    /// quote or bracket, anything but parameters after the `>` (a second
    /// value, RFC 4475 §3.3.8), or an addr-spec holding white space, quotes,
    /// brackets or commas (§20: such URIs must be in brackets).
    pub fn parse(value: &'a [u8]) -> Option<NameAddr<'a>> {
        let value = trim(value);
        if let Some(open) = find_unquoted(value, b'<') {
            let close = super::text::find(b'>', &value[open..])? + open;
            let params = &value[close + 1..];
            let uri = trim(&value[open + 1..close]);
            let params_ok = matches!(trim(params).first(), None | Some(b';'));
            return (params_ok && split_scheme(uri).is_some()).then_some(NameAddr { uri, params });
        }
        // addr-spec: URI parameters would need brackets, so ';' starts the
        // header's own parameters (§20.10).
        let end = super::text::find(b';', value).unwrap_or(value.len());
        let uri = trim(&value[..end]);
        let clean = !uri
            .iter()
            .any(|&b| super::text::is_lws(b) || b"\"<>,".contains(&b));
        (clean && split_scheme(uri).is_some()).then_some(NameAddr {
            uri,
            params: &value[end..],
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a [u8]> {
        params(self.params)
            .find(|(name, _)| eq_lower(name, b"tag"))
            .and_then(|(_, value)| value)
    }
}

/// `scheme ":" rest` with an RFC 3986 §3.1 scheme (a letter, then letters,
/// digits, `+`, `-`, `.`); `None` when `uri` does not start with one.
fn split_scheme(uri: &[u8]) -> Option<(&[u8], &[u8])> {
    // One walk over the scheme: the first byte that cannot be in one must
    // be the colon (a colon further on would leave that byte in the scheme).
    if !uri.first()?.is_ascii_alphabetic() {
        return None;
    }
    let len = uri
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    (uri[len] == b':').then(|| (&uri[..len], &uri[len + 1..]))
}

/// Whether a Request-URI is well formed enough to act on: it has a
/// scheme, and a sip/sips URI has a valid `host[:port]` after its user
/// part (an IPv6 address only in brackets, RFC 5118 §4.2, and a valid one,
/// §4.10). Other schemes are only checked for the scheme (they get 416).
pub fn is_well_formed_request_uri(uri: &[u8]) -> bool {
    let Some((scheme, rest)) = split_scheme(uri) else {
        return false;
    };
    if !(eq_lower(scheme, b"sip") || eq_lower(scheme, b"sips")) {
        return true;
    }
    let hostport = super::text::find(b'@', rest).map_or(rest, |at| &rest[at + 1..]);
    let end = super::text::find2(b';', b'?', hostport).unwrap_or(hostport.len());
    let hostport = &hostport[..end];
    // No white space anywhere in a Request-URI host (it is one token).
    !super::text::has_lws(hostport)
        && split_host_port(hostport).is_some_and(|(host, _)| is_valid_host(host))
}

/// The first `needle` outside a quoted display name.
fn find_unquoted(s: &[u8], needle: u8) -> Option<usize> {
    // Before the first quote nothing is quoted (a `\\` escapes only inside
    // quotes), so the usual value needs one search.
    match super::text::find2(needle, b'"', s) {
        None => return None,
        Some(i) if s[i] == needle => return Some(i),
        Some(_) => {}
    }
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
    fn malformed_name_addrs() {
        for bad in [
            // RFC 4475 §3.1.2.6: unterminated quote in the display name.
            "\"Mr. J. User <sip:j.user@example.com>",
            // Two values in a single-value header (RFC 4475 §3.3.8).
            "<sip:a@example.com>, <sip:b@example.com>",
            "<sip:a@example.com> junk;tag=1",
            "sip:a@example.com, sip:b@example.com",
            "<>",
            "<nocolon>",
            "no-scheme-at-all",
            "<1sip:a@b>",
        ] {
            assert!(NameAddr::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        for good in [
            "\"A \\\"B\\\"\" <sip:a@b> ; tag = x",
            "caller<sip:caller@example.com>;tag=323",
            "<isbn:2983792873>",
            "<http://www.example.com>;tag=3234233",
            "tel:+14155550101;tag=x",
        ] {
            assert!(NameAddr::parse(good.as_bytes()).is_some(), "{good}");
        }
    }

    #[test]
    fn request_uri_syntax() {
        for good in [
            "sip:+18005550100@127.0.0.1;user=phone",
            "sips:%2B1800@h.example:5061;transport=tcp?Subject=x&Priority=urgent",
            "sip:+1800;isub=12@[2001:db8::10]:5070",
            "sip:[2001:db8::10:5070]",
            "sip:u@[::ffff:192.0.2.10]",
            "tel:+1-800-555-0100",
            "mailto:a@b.example",
            "nobodyKnowsThisScheme:totallyopaquecontent",
        ] {
            assert!(is_well_formed_request_uri(good.as_bytes()), "{good}");
        }
        for bad in [
            "<sip:user@example.com>",
            "sip:+18005550100@2001:db8::10",
            "sip:u@[2001:db8:::192.0.2.1]",
            "sip:u@[2001:db8::1",
            "sip:u@host:port",
            "sip:u@",
            "sip:",
            "nocolon",
            ":empty-scheme",
        ] {
            assert!(!is_well_formed_request_uri(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn several_values() {
        let all: Vec<_> = each_name_addr(b"\"A\" <sip:alice@h>, <tel:+14155550101>")
            .map(|a| a.uri)
            .collect();
        assert_eq!(all, vec![&b"sip:alice@h"[..], &b"tel:+14155550101"[..]]);
    }
}

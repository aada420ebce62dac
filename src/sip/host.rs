//! RFC 3261 §25.1 `host` and `hostport`, shared by the URI reader
//! (`uri.rs`) and the Via reader (`via.rs`): one grammar, one place, so
//! that neither module imports the other.

use super::text::{find, has_lws, parse_u32, trim};

/// RFC 3261 §25.1 `host`: a bracketed IPv6 reference that really is an
/// IPv6 address, or a host name / IPv4 address (letters, digits, `-`, `.`;
/// `_` tolerated, as some deployments use it).
pub fn is_valid_host(host: &[u8]) -> bool {
    if let Some(inner) = host.strip_prefix(b"[") {
        return inner
            .strip_suffix(b"]")
            .and_then(|v6| std::str::from_utf8(v6).ok())
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !host.is_empty()
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Splits `host[:port]`, where an IPv6 host is in brackets (RFC 3261
/// §25.1, RFC 5118). `None` when the host is empty or the port is bad.
pub fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if s.first() == Some(&b'[') {
        let close = find(b']', s)?;
        // COLON is SWS ":" SWS (§25.1): white space may surround it.
        let after = trim(&s[close + 1..]);
        let port = match after {
            [] => None,
            [b':', digits @ ..] => Some(digits),
            _ => return None,
        };
        (&s[..=close], port)
    } else {
        match find(b':', s) {
            Some(colon) => (&s[..colon], Some(&s[colon + 1..])),
            None => (s, None),
        }
    };
    let host = trim(host);
    if host.is_empty() || has_lws(host) || find(b',', host).is_some() {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) => Some(u16::try_from(parse_u32(digits)?).ok().filter(|&p| p != 0)?),
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_the_grammar() {
        assert!(is_valid_host(b"sip.example.com"));
        assert!(is_valid_host(b"192.0.2.1"));
        assert!(is_valid_host(b"[2001:db8::1]"));
        assert!(!is_valid_host(b"[not-v6]"));
        assert!(!is_valid_host(b""));
        assert!(!is_valid_host(b"a b"));
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(
            split_host_port(b"a.example:5060"),
            Some((&b"a.example"[..], Some(5060)))
        );
        assert_eq!(
            split_host_port(b"[::1] : 5061"),
            Some((&b"[::1]"[..], Some(5061)))
        );
        assert_eq!(
            split_host_port(b"a.example"),
            Some((&b"a.example"[..], None))
        );
        assert_eq!(split_host_port(b"a.example:0"), None);
        assert_eq!(split_host_port(b":5060"), None);
    }
}

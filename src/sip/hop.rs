//! Where a SIP URI says to send a request (RFC 3261 §19.1.1, §16.6 step
//! 6, RFC 3263 §4): the host, the port if given, the transport if given,
//! and whether the URI is `sips:`. Reads bytes only; resolving the host is
//! the server's.

use super::host::{is_valid_host, split_host_port};
use super::text::{find, params};

/// A transport a URI can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopTransport {
    Udp,
    Tcp,
    Tls,
}

impl HopTransport {
    /// The Via's transport token (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static [u8] {
        match self {
            HopTransport::Udp => b"UDP",
            HopTransport::Tcp => b"TCP",
            HopTransport::Tls => b"TLS",
        }
    }
}

/// The parts of a `sip:`/`sips:` URI that say where to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop<'a> {
    pub secure: bool,
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// The `transport` parameter; `None` when absent or not one of ours.
    pub transport: Option<HopTransport>,
    /// A `transport` parameter this server cannot use (`sctp`, `ws`, ...).
    pub unsupported_transport: bool,
}

impl<'a> Hop<'a> {
    /// Reads a bare URI (no angle brackets); `None` for another scheme or
    /// a host that breaks §25.1.
    pub fn parse(uri: &'a [u8]) -> Option<Hop<'a>> {
        let colon = find(b':', uri)?;
        let scheme = &uri[..colon];
        let secure = if scheme.eq_ignore_ascii_case(b"sips") {
            true
        } else if scheme.eq_ignore_ascii_case(b"sip") {
            false
        } else {
            return None;
        };
        let rest = &uri[colon + 1..];
        let rest = rest
            .iter()
            .rposition(|&b| b == b'@')
            .map_or(rest, |at| &rest[at + 1..]);
        let end = rest
            .iter()
            .position(|&b| b == b';' || b == b'?')
            .unwrap_or(rest.len());
        let (host, port) = split_host_port(&rest[..end])?;
        if !is_valid_host(host) {
            return None;
        }
        let after = &rest[end..];
        let parameters = &after[..find(b'?', after).unwrap_or(after.len())];
        let mut transport = None;
        let mut unsupported_transport = false;
        for (name, value) in params(parameters) {
            if !name.eq_ignore_ascii_case(b"transport") {
                continue;
            }
            let value = value.unwrap_or_default();
            transport = if value.eq_ignore_ascii_case(b"udp") {
                Some(HopTransport::Udp)
            } else if value.eq_ignore_ascii_case(b"tcp") {
                Some(HopTransport::Tcp)
            } else if value.eq_ignore_ascii_case(b"tls") {
                Some(HopTransport::Tls)
            } else {
                unsupported_transport = true;
                None
            };
        }
        Some(Hop {
            secure,
            host,
            port,
            transport,
            unsupported_transport,
        })
    }

    /// The host as text, without an IPv6 reference's brackets: what a
    /// resolver or a certificate check takes. `None` never happens for a
    /// host `parse` accepted (§25.1 hosts are ASCII).
    pub fn bare_host(&self) -> Option<&'a str> {
        let host = std::str::from_utf8(self.host).ok()?;
        Some(
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host),
        )
    }

    /// The transport to use: the parameter, else TLS for `sips:`, else UDP
    /// (RFC 3263 §4.1 when no NAPTR record says otherwise).
    pub fn effective_transport(&self) -> HopTransport {
        match (self.transport, self.secure) {
            (Some(t), _) => t,
            (None, true) => HopTransport::Tls,
            (None, false) => HopTransport::Udp,
        }
    }

    /// The port to use: the URI's, else 5061 for TLS, 5060 otherwise
    /// (RFC 3261 §19.1.2).
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.effective_transport() {
            HopTransport::Tls => 5061,
            _ => 5060,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_hosts_lose_only_ipv6_brackets() {
        fn host(uri: &str) -> Option<&str> {
            Hop::parse(uri.as_bytes()).unwrap().bare_host()
        }
        assert_eq!(host("sip:[2001:db8::1]:5060"), Some("2001:db8::1"));
        assert_eq!(host("sip:u@192.0.2.1;transport=tcp"), Some("192.0.2.1"));
        assert_eq!(host("sips:sbc.example.net"), Some("sbc.example.net"));
    }

    #[test]
    fn hops_are_read_from_uris() {
        let hop = Hop::parse(b"sip:+14155550101@sbc.example.net:5070;transport=tcp;user=phone")
            .expect("a hop");
        assert_eq!(hop.host, b"sbc.example.net");
        assert_eq!(hop.port, Some(5070));
        assert_eq!(hop.effective_transport(), HopTransport::Tcp);
        let hop = Hop::parse(b"sips:[2001:db8::1]").expect("a hop");
        assert_eq!(
            (hop.host, hop.effective_port()),
            (&b"[2001:db8::1]"[..], 5061)
        );
        assert_eq!(hop.effective_transport(), HopTransport::Tls);
        let hop = Hop::parse(b"sip:127.0.0.1:5090").expect("a hop");
        assert_eq!(
            (hop.effective_transport(), hop.effective_port()),
            (HopTransport::Udp, 5090)
        );
        let hop = Hop::parse(b"SIP:a.example;transport=sctp").expect("a hop");
        assert!(hop.unsupported_transport);
        assert_eq!(Hop::parse(b"tel:+14155550101"), None);
        assert_eq!(Hop::parse(b"sip:user@"), None);
        assert_eq!(Hop::parse(b"sip:a b"), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = Hop::parse(&bytes);
        }
    }
}

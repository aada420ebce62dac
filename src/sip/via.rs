//! The top Via (RFC 3261 §20.42, §18.2.1) and where a UDP response goes
//! (§18.2.2 with RFC 3581 `rport`); and the syntax check of whole Via
//! lines, so that a malformed one gets a `400` (RFC 4475 §3.1.2.1,
//! RFC 5118 §4.10) while the top Via still says where to send it.

use std::net::{IpAddr, SocketAddr};

use super::host::{is_valid_host, split_host_port};
use super::text::{eq_lower, has_lws, param_spans, params, split_first_value, split_param, trim};

/// The first value of the first Via header: what a response echoes back
/// with `received`/`rport` filled in, and what decides where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopVia<'a> {
    /// The value as written (trimmed).
    pub raw: &'a [u8],
    /// The rest of the same Via header line after the first value's comma.
    pub rest_of_line: Option<&'a [u8]>,
    /// `UDP`, `TCP`, `TLS`...
    pub transport: &'a [u8],
    /// The sent-by host, IPv6 in brackets as written.
    pub host: &'a [u8],
    pub port: Option<u16>,
    pub branch: Option<&'a [u8]>,
    /// `rport` present (RFC 3581): answer to the source port.
    pub rport: bool,
    /// Where the parameters start in `raw` (the `;` after sent-by).
    params_start: usize,
    /// Every parameter has a token name and, after an `=`, a value.
    params_well_formed: bool,
    echo: ParamEcho,
}

/// How the top Via's parameters are echoed, decided while parsing them so
/// that a response does not walk them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamEcho {
    /// Byte for byte, with the value of the `rport` parameter (where its
    /// name ends, where it ends, relative to the parameters) set to the
    /// source port: the usual case of no white space, no `received` and
    /// at most one `rport`.
    AsWritten { rport: Option<(usize, usize)> },
    /// One by one, trimmed, without `received`, `rport` written once.
    Rewritten,
}

impl<'a> TopVia<'a> {
    /// Parses the first value of a Via header; `None` when it is not a
    /// usable Via (then no response can be sent).
    pub fn parse(header_value: &'a [u8]) -> Option<TopVia<'a>> {
        let (first, rest) = split_first_value(header_value);
        let raw = trim(first);
        // sent-protocol: SIP / 2.0 / transport, white space allowed around '/'.
        let mut parts = raw.splitn(3, |&b| b == b'/');
        let name = trim(parts.next()?);
        let version = trim(parts.next()?);
        let after = parts.next()?;
        if !eq_lower(name, b"sip") || version.is_empty() {
            return None;
        }
        let after = trim_start(after);
        let transport_end = after.iter().position(|&b| super::text::is_lws(b))?;
        let transport = &after[..transport_end];
        let sent_by_and_params = trim_start(&after[transport_end..]);
        let sent_by_end =
            super::text::find(b';', sent_by_and_params).unwrap_or(sent_by_and_params.len());
        let (host, port) = split_host_port(trim(&sent_by_and_params[..sent_by_end]))?;
        if transport.is_empty() || !transport.iter().all(|&b| super::method::is_token_char(b)) {
            return None;
        }
        // Every slice since `raw` was cut from its front, so this is where
        // the parameters start in `raw`.
        let params_start = raw.len() - sent_by_and_params.len() + sent_by_end;
        let mut via = TopVia {
            raw,
            rest_of_line: rest,
            transport,
            host,
            port,
            branch: None,
            rport: false,
            params_start,
            params_well_formed: true,
            echo: ParamEcho::Rewritten,
        };
        via.read_params();
        Some(via)
    }

    /// One pass over the parameters: `branch`, `rport`, whether they are
    /// well formed and how a response echoes them.
    fn read_params(&mut self) {
        let params = &self.raw[self.params_start..];
        let mut first_rport = None;
        let mut rports = 0;
        let mut has_received = false;
        for span in param_spans(params) {
            let (name, value) = split_param(&params[span.clone()]);
            self.params_well_formed &= !name.is_empty()
                && name.iter().all(|&b| super::method::is_token_char(b))
                && value.is_none_or(|v| !v.is_empty());
            if eq_lower(name, b"branch") {
                self.branch = value;
            } else if eq_lower(name, b"rport") {
                rports += 1;
                first_rport.get_or_insert((span.start + name.len(), span.end));
            } else if eq_lower(name, b"received") {
                has_received = true;
            }
        }
        self.rport = rports > 0;
        // Without white space the trimmed names start where their spans do.
        if rports <= 1 && !has_received && !has_lws(params) {
            self.echo = ParamEcho::AsWritten { rport: first_rport };
        }
    }

    /// Where a UDP response goes (RFC 3261 §18.2.2, RFC 3581 §4): the
    /// source address and port with `rport`; else the source address
    /// (`received`) and the sent-by port, 5060 by default.
    pub fn response_address(&self, source: SocketAddr) -> SocketAddr {
        if self.rport {
            return source;
        }
        SocketAddr::new(source.ip(), self.port.unwrap_or(5060))
    }

    /// Where a proxy relays a response by this Via (RFC 3261 §18.2.2, RFC
    /// 3581 §4): the `received` address, else the sent-by host when it is
    /// an IP address; the `rport` value, else the sent-by port, else 5060.
    /// `None` when the host is a name (this server does not resolve it).
    pub fn relay_address(&self) -> Option<SocketAddr> {
        let mut received = None;
        let mut rport = None;
        for (name, value) in params(&self.raw[self.params_start..]) {
            if eq_lower(name, b"received") {
                received = value;
            } else if eq_lower(name, b"rport") {
                rport = value.and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
            }
        }
        let host = received.unwrap_or(self.host);
        let host = host
            .strip_prefix(b"[")
            .and_then(|h| h.strip_suffix(b"]"))
            .unwrap_or(host);
        let ip: IpAddr = std::str::from_utf8(host).ok()?.parse().ok()?;
        Some(SocketAddr::new(ip, rport.or(self.port).unwrap_or(5060)))
    }

    /// Whether a response must carry `received` (RFC 3261 §18.2.1: the
    /// sent-by host is not the source address; RFC 3581: always with rport).
    pub fn needs_received(&self, source: IpAddr) -> bool {
        if self.rport {
            return true;
        }
        let host = self
            .host
            .strip_prefix(b"[")
            .and_then(|h| h.strip_suffix(b"]"))
            .unwrap_or(self.host);
        let parsed = std::str::from_utf8(host)
            .ok()
            .and_then(|h| h.parse::<IpAddr>().ok());
        parsed != Some(source)
    }

    /// Appends the top Via value as a response carries it: parameters as
    /// written, except `rport` filled with the source port and `received`
    /// set to the source address. Repeated `rport` parameters are written
    /// once: filling each would let a request full of them make an answer
    /// much larger than itself (found by the `datagram` fuzz target).
    pub fn write_echo(&self, source: SocketAddr, out: &mut Vec<u8>) {
        let (sent_by, params) = self.raw.split_at(self.params_start);
        super::text::write_unfolded(out, sent_by);
        match self.echo {
            ParamEcho::AsWritten { rport: None } => out.extend_from_slice(params),
            ParamEcho::AsWritten {
                rport: Some((name_end, end)),
            } => {
                out.extend_from_slice(&params[..name_end]);
                out.push(b'=');
                write_u16(out, source.port());
                out.extend_from_slice(&params[end..]);
            }
            ParamEcho::Rewritten => write_params_rewritten(params, source.port(), out),
        }
        if self.needs_received(source.ip()) {
            out.extend_from_slice(b";received=");
            super::text::write_ip(out, source.ip(), false);
        }
    }
}

/// Whether every value of a Via header line is a well-formed `via-parm`
/// (§20.42): a usable sent-protocol and sent-by whose host is a valid host
/// name, IPv4 address or bracketed IPv6 address, and parameters that each
/// have a token name and, after an `=`, a value. Empty values between
/// commas and empty parameters between semicolons are malformed.
pub fn is_well_formed(header_value: &[u8]) -> bool {
    let mut rest = Some(header_value);
    while let Some(line) = rest {
        let (value, next) = split_first_value(line);
        rest = next;
        if !TopVia::parse(value).is_some_and(|via| via.is_well_formed()) {
            return false;
        }
    }
    true
}

impl TopVia<'_> {
    /// Whether this value is well formed (see [`is_well_formed`]), and so
    /// is the rest of its header line: the first Via line is checked
    /// without parsing its top value twice.
    pub fn is_well_formed_line(&self) -> bool {
        self.is_well_formed() && self.rest_of_line.is_none_or(is_well_formed)
    }

    fn is_well_formed(&self) -> bool {
        self.params_well_formed && is_valid_host(self.host)
    }
}

/// Writes Via parameters one by one, trimmed and unfolded, without
/// `received`, with the first `rport` set to `port` and any other dropped.
fn write_params_rewritten(written: &[u8], port: u16, out: &mut Vec<u8>) {
    let mut rport_written = false;
    for (name, value) in params(written) {
        let is_rport = eq_lower(name, b"rport");
        if eq_lower(name, b"received") || (is_rport && rport_written) {
            continue;
        }
        out.push(b';');
        super::text::write_unfolded(out, name);
        if is_rport {
            rport_written = true;
            out.push(b'=');
            write_u16(out, port);
        } else if let Some(value) = value {
            out.push(b'=');
            super::text::write_unfolded(out, value);
        }
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| !super::text::is_lws(b))
        .unwrap_or(s.len());
    &s[start..]
}

pub(crate) fn write_u16(out: &mut Vec<u8>, n: u16) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_relayed_to_received_and_rport() {
        let via = |v: &'static [u8]| TopVia::parse(v).expect("a Via");
        let at = |s: &str| Some(s.parse::<SocketAddr>().expect("address"));
        assert_eq!(
            via(b"SIP/2.0/UDP host.example;branch=z9hG4bK1;received=192.0.2.7;rport=5099")
                .relay_address(),
            at("192.0.2.7:5099")
        );
        assert_eq!(
            via(b"SIP/2.0/UDP 192.0.2.8:5070;branch=z9hG4bK1").relay_address(),
            at("192.0.2.8:5070")
        );
        assert_eq!(
            via(b"SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1").relay_address(),
            at("[2001:db8::1]:5060")
        );
        assert_eq!(
            via(b"SIP/2.0/UDP host.example:5070;branch=z9hG4bK1").relay_address(),
            None
        );
        // An rport without a value (the sender asked, nobody filled it in).
        assert_eq!(
            via(b"SIP/2.0/UDP 192.0.2.8:5070;rport;branch=z9hG4bK1").relay_address(),
            at("192.0.2.8:5070")
        );
    }

    fn via(s: &str) -> TopVia<'_> {
        TopVia::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s}"))
    }

    fn echo(s: &str, source: &str) -> String {
        let mut out = Vec::new();
        via(s).write_echo(source.parse().unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_the_parts() {
        let v =
            via("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds ;rport, SIP/2.0/TCP x");
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, b"pc33.atlanta.com");
        assert_eq!(v.port, Some(5066));
        assert_eq!(v.branch, Some(&b"z9hG4bK776asdhds"[..]));
        assert!(v.rport);
        assert_eq!(v.rest_of_line, Some(&b" SIP/2.0/TCP x"[..]));
        let v = via("SIP / 2.0 / TCP [2001:db8::9:1]:5061;branch=z9hG4bKas3");
        assert_eq!(v.host, b"[2001:db8::9:1]");
        assert_eq!(v.port, Some(5061));
        let v = via("SIP/2.0/UDP [2001:db8::9:255];branch=z9");
        assert_eq!(v.port, None);
    }

    #[test]
    fn rejects_unusable_vias() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ;branch=x",
            "HTTP/1.1/TCP h",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP h:0",
        ] {
            assert!(TopVia::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn whole_via_lines_are_checked() {
        for good in [
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport",
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP / 2.0 / UDP 192.168.255.111 ; branch=\r\n z9hG4bK30239",
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9",
            "SIP/2.0/UDP [2001:db8::9:1] : 5070;branch=z9",
            "SIP/2.0/UNKNOWN x.example, SIP/2.0/TLS-SCTP y.example;maddr=\"a;b\"",
        ] {
            assert!(is_well_formed(good.as_bytes()), "{good}");
        }
        for bad in [
            // RFC 4475 §3.1.2.1: empty parameters and values.
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "SIP/2.0/UDP h;branch=z9,",
            "SIP/2.0/UDP h;branch=",
            // RFC 5118 §4.10: three colons before the IPv4 part.
            "SIP/2.0/UDP [2001:db8:::192.0.2.1];branch=z9",
            "SIP/2.0/UDP [zz];branch=z9",
            "SIP/2.0/UDP h;branch=z9, SIP/2.0/UDP bad!host",
        ] {
            assert!(!is_well_formed(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn responses_go_where_rfc_3581_says() {
        let source: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        assert_eq!(
            via("SIP/2.0/UDP h:5070;rport").response_address(source),
            source
        );
        assert_eq!(
            via("SIP/2.0/UDP h:5070").response_address(source),
            "192.0.2.7:5070".parse().unwrap()
        );
        assert_eq!(
            via("SIP/2.0/UDP h").response_address(source),
            "192.0.2.7:5060".parse().unwrap()
        );
    }

    #[test]
    fn a_repeated_rport_is_echoed_once() {
        let source: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut out = Vec::new();
        via("SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1;rport;RPORT=1")
            .write_echo(source, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0/UDP 192.0.2.7:5060;rport=40000;branch=z9hG4bK1;received=192.0.2.7"
        );
    }

    /// The echo as the parameter-by-parameter path writes it.
    fn echo_rewritten(s: &str, source: SocketAddr) -> String {
        let v = via(s);
        let mut out = Vec::new();
        let (sent_by, written) = v.raw.split_at(v.params_start);
        crate::sip::text::write_unfolded(&mut out, sent_by);
        write_params_rewritten(written, source.port(), &mut out);
        if v.needs_received(source.ip()) {
            out.extend_from_slice(b";received=");
            crate::sip::text::write_ip(&mut out, source.ip(), false);
        }
        String::from_utf8(out).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Echoing the parameters as written (the usual case) gives the
        /// same bytes as rewriting them one by one.
        #[test]
        fn echo_as_written_equals_echo_rewritten(
            params in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["rport", "RPort", "branch", "received", "maddr"]),
                    proptest::option::of("[a-zA-Z0-9.!%*_+`'~-]{1,8}"),
                    // Mostly no white space: the as-written path.
                    proptest::sample::select(vec!["", "", "", "", " ", "\t"]),
                ),
                0..6,
            ),
            port in 1u16..,
        ) {
            let mut line = String::from("SIP/2.0/UDP 192.0.2.1:5060");
            for (name, value, space) in &params {
                line.push(';');
                line.push_str(space);
                line.push_str(name);
                if let Some(value) = value {
                    line.push('=');
                    line.push_str(value);
                }
            }
            let source = SocketAddr::from(([198, 51, 100, 7], port));
            proptest::prop_assert_eq!(echo(&line, &source.to_string()), echo_rewritten(&line, source));
        }
    }

    #[test]
    fn echo_fills_rport_and_received() {
        assert_eq!(
            echo(
                "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1",
                "192.0.2.7:5060"
            ),
            "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1"
        );
        assert_eq!(
            echo(
                "SIP/2.0/UDP client.example:5060;branch=z9hG4bK1",
                "192.0.2.7:5060"
            ),
            "SIP/2.0/UDP client.example:5060;branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(
            echo(
                "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1",
                "192.0.2.7:40000"
            ),
            "SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(
            echo(
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9;received=1.1.1.1",
                "[2001:db8::2]:5060"
            ),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9;received=2001:db8::2"
        );
        assert_eq!(
            echo("SIP/2.0/UDP [2001:db8::1];branch=z9", "[2001:db8::1]:5060"),
            "SIP/2.0/UDP [2001:db8::1];branch=z9"
        );
    }
}

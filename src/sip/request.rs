//! Parsing a SIP request (RFC 3261 §7, §8.2) without copying: every field
//! borrows from the received bytes.
//!
//! The parser reads what a redirect server needs and no more. It never
//! stops at the first problem: it notes the first one and keeps reading,
//! so that the top Via, From, To, Call-ID and CSeq are known and a `400`
//! naming the problem can still be sent. Without a usable top Via there is
//! nobody to answer, and the request is dropped.

use super::header::HeaderName;
use super::method::{Method, is_token_char};
use super::text::{parse_u32, trim};
use super::uri::NameAddr;
use super::via::TopVia;
pub use super::via_lines::MAX_VIA_LINES;
use super::via_lines::ViaLines;

/// Most header lines in one request, by default.
pub const MAX_HEADERS: usize = 128;
/// Longest request line or header (continuation lines included), by default.
pub const MAX_HEADER_BYTES: usize = 8192;
/// Most Require header lines read.
const MAX_REQUIRE_LINES: usize = 4;

/// Bounds on what one request may hold (docs/security.md). Past them the request
/// is still read far enough to answer `400`, never further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Most header lines (a folded header counts once).
    pub max_headers: usize,
    /// Longest request line or header, continuation lines included.
    pub max_header_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_headers: MAX_HEADERS,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

/// How the message was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A UDP datagram: the datagram is the message; Content-Length may be
    /// missing, may trim the body, but may not claim more than is there.
    Datagram,
    /// A message cut from a stream by its Content-Length (§18.3), which
    /// is then required.
    Stream,
}

/// What is wrong with a request, as the response says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    BadRequestLine,
    BadRequestUri,
    BadMethod,
    BadVersion,
    UnsupportedVersion,
    BadHeaderLine,
    TooManyHeaders,
    HeaderTooLong,
    TooManyVias,
    BadVia,
    MissingFrom,
    MissingTo,
    MissingCallId,
    MissingCSeq,
    DuplicateFrom,
    DuplicateTo,
    DuplicateCallId,
    DuplicateCSeq,
    BadFrom,
    BadTo,
    BadCSeq,
    CSeqMethodMismatch,
    BadMaxForwards,
    BadContentLength,
    DuplicateContentLength,
    MissingContentLength,
    BodyShorterThanContentLength,
}

impl Problem {
    /// The response code: 505 for another SIP version, 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            Problem::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    /// The reason phrase, saying what is wrong.
    pub fn reason_phrase(self) -> &'static str {
        match self {
            Problem::BadRequestLine => "Bad Request Line",
            Problem::BadRequestUri => "Malformed Request-URI",
            Problem::BadMethod => "Bad Method",
            Problem::BadVersion => "Bad SIP Version",
            Problem::UnsupportedVersion => "Version Not Supported",
            Problem::BadHeaderLine => "Malformed Header Line",
            Problem::TooManyHeaders => "Too Many Headers",
            Problem::HeaderTooLong => "Header Too Long",
            Problem::TooManyVias => "Too Many Via Headers",
            Problem::BadVia => "Malformed Via",
            Problem::MissingFrom => "Missing From",
            Problem::MissingTo => "Missing To",
            Problem::MissingCallId => "Missing Call-ID",
            Problem::MissingCSeq => "Missing CSeq",
            Problem::DuplicateFrom => "Duplicate From",
            Problem::DuplicateTo => "Duplicate To",
            Problem::DuplicateCallId => "Duplicate Call-ID",
            Problem::DuplicateCSeq => "Duplicate CSeq",
            Problem::BadFrom => "Malformed From",
            Problem::BadTo => "Malformed To",
            Problem::BadCSeq => "Malformed CSeq",
            Problem::CSeqMethodMismatch => "CSeq Method Mismatch",
            Problem::BadMaxForwards => "Malformed Max-Forwards",
            Problem::BadContentLength => "Malformed Content-Length",
            Problem::DuplicateContentLength => "Duplicate Content-Length",
            Problem::MissingContentLength => "Missing Content-Length",
            Problem::BodyShorterThanContentLength => "Content-Length Larger Than Body",
        }
    }
}

/// A parsed request. Header values are raw (folding included, surrounding
/// white space trimmed), ready to be copied into a response.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method<'a>,
    pub uri: &'a [u8],
    pub version: &'a [u8],
    /// Every Via header line, in order.
    vias: ViaLines<'a>,
    pub top_via: Option<TopVia<'a>>,
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    /// From and To split into URI and parameters (when well formed).
    pub from_addr: Option<NameAddr<'a>>,
    pub to_addr: Option<NameAddr<'a>>,
    pub call_id: Option<&'a [u8]>,
    pub cseq: Option<&'a [u8]>,
    pub max_forwards: Option<u32>,
    requires: [&'a [u8]; MAX_REQUIRE_LINES],
    require_count: usize,
    pub p_asserted_identity: Option<&'a [u8]>,
    pub content_length: Option<usize>,
    pub body: &'a [u8],
    /// The first problem found, if any.
    pub problem: Option<Problem>,
}

impl<'a> Request<'a> {
    fn empty() -> Self {
        Request {
            method: Method::Other(b""),
            uri: b"",
            version: b"",
            vias: ViaLines::default(),
            top_via: None,
            from: None,
            to: None,
            from_addr: None,
            to_addr: None,
            call_id: None,
            cseq: None,
            max_forwards: None,
            requires: [b""; MAX_REQUIRE_LINES],
            require_count: 0,
            p_asserted_identity: None,
            content_length: None,
            body: b"",
            problem: None,
        }
    }

    /// Every Via header value (one header line each), in order.
    pub fn vias(&self) -> &[&'a [u8]] {
        self.vias.as_slice()
    }

    /// The To tag: present on requests inside a dialog.
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.to_addr.and_then(|a| a.tag())
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.from_addr.and_then(|a| a.tag())
    }

    /// Every Require header value.
    pub fn requires(&self) -> &[&'a [u8]] {
        &self.requires[..self.require_count]
    }

    fn note(&mut self, problem: Problem) {
        self.problem.get_or_insert(problem);
    }

    /// Parses one request within the default limits.
    pub fn parse(buf: &'a [u8], framing: Framing) -> Option<Request<'a>> {
        Request::parse_within(buf, framing, ParseLimits::default())
    }

    /// Parses one request. Always returns what it could read; check
    /// `top_via` (none: drop) and `problem` (some: answer 400/505).
    /// `None` when the bytes are a response or not a request line at all.
    /// A header past `limits` is skipped and noted as the problem.
    pub fn parse_within(
        buf: &'a [u8],
        framing: Framing,
        limits: ParseLimits,
    ) -> Option<Request<'a>> {
        let mut request = Request::empty();
        // §7.5: CRLFs before the start line are ignored.
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
        let buf = &buf[start..];
        let (line, mut pos) = next_line(buf, 0)?;
        if line.starts_with(b"SIP/") {
            return None; // a response: not ours to answer
        }
        if line.len() > limits.max_header_bytes {
            request.note(Problem::HeaderTooLong);
        }
        request.read_request_line(line);
        let mut header_count = 0usize;
        // A header is complete only when the next line does not continue
        // it (folding, §7.3.1).
        let mut pending: Option<(&'a [u8], usize, usize)> = None;
        let body_start = loop {
            // The usual header line, `Name: value` with the colon right
            // after the name, is read in one pass from its first byte; the
            // rest (blank, folded, spaced or broken lines) below.
            if let Some((name_len, value_end, next)) = plain_header_line(buf, pos) {
                request.finish_header(pending.take(), buf, limits);
                header_count += 1;
                if header_count > limits.max_headers {
                    request.note(Problem::TooManyHeaders);
                } else {
                    pending = Some((&buf[pos..pos + name_len], pos + name_len + 1, value_end));
                }
                pos = next;
                continue;
            }
            let Some((line, next)) = next_line(buf, pos) else {
                // No blank line: the headers run to the end of the bytes.
                request.finish_header(pending.take(), buf, limits);
                break buf.len();
            };
            let line_start = pos;
            pos = next;
            if line.is_empty() {
                request.finish_header(pending.take(), buf, limits);
                break next;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                match &mut pending {
                    Some((_, _, to)) => *to = line_start + line.len(),
                    None => request.note(Problem::BadHeaderLine),
                }
                continue;
            }
            request.finish_header(pending.take(), buf, limits);
            header_count += 1;
            if header_count > limits.max_headers {
                request.note(Problem::TooManyHeaders);
                continue;
            }
            let Some(colon) = super::text::find(b':', line) else {
                request.note(Problem::BadHeaderLine);
                continue;
            };
            // White space may precede the colon (§7.3.1).
            let name = trim(&line[..colon]);
            if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
                request.note(Problem::BadHeaderLine);
                continue;
            }
            pending = Some((name, line_start + colon + 1, line_start + line.len()));
        };
        request.read_body(&buf[body_start.min(buf.len())..], framing);
        request.check_required();
        Some(request)
    }

    /// Reads a header whose last continuation line has been seen, unless
    /// it is longer than allowed. `header` is its name and value span.
    fn finish_header(
        &mut self,
        header: Option<(&'a [u8], usize, usize)>,
        buf: &'a [u8],
        limits: ParseLimits,
    ) {
        let Some((name, from, to)) = header else {
            return;
        };
        if to - from + name.len() > limits.max_header_bytes {
            self.note(Problem::HeaderTooLong);
            return;
        }
        // Most headers are not read: their values are not even trimmed.
        let header = HeaderName::classify(name);
        if header != HeaderName::Other {
            self.read_header(header, trim(&buf[from..to]));
        }
    }

    fn read_request_line(&mut self, line: &'a [u8]) {
        let Some([method, uri, version]) = split_request_line(line) else {
            self.note(Problem::BadRequestLine);
            return;
        };
        if !method.iter().all(|&b| is_token_char(b)) {
            self.note(Problem::BadMethod);
        }
        self.method = Method::from_token(method);
        self.uri = uri;
        self.version = version;
        if super::text::eq_lower(version, b"sip/2.0") {
            // `<sip:...>` (RFC 4475 §3.1.2.7), `sip:2001:db8::10` (RFC 5118
            // §4.2): 400, not 416, since no scheme is unsupported here. A
            // control octet (NUL, CR, ...) has no place in any URI (RFC 3986
            // §2: escaped, never raw) and would otherwise reach the logs.
            if has_control_octet(uri) || !super::uri::is_well_formed_request_uri(uri) {
                self.note(Problem::BadRequestUri);
            }
            return;
        }
        let is_sip_version = version.len() > 4
            && version[..4].eq_ignore_ascii_case(b"SIP/")
            && version[4..]
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b'.')
            && version[4..].contains(&b'.');
        self.note(if is_sip_version {
            Problem::UnsupportedVersion
        } else {
            Problem::BadVersion
        });
    }

    fn read_header(&mut self, header: HeaderName, value: &'a [u8]) {
        match header {
            HeaderName::Via => {
                if self.vias.len() == MAX_VIA_LINES {
                    self.note(Problem::TooManyVias);
                    return;
                }
                // A malformed Via anywhere is a 400, sent by the top Via
                // when that one is still usable.
                let well_formed = if self.vias.is_empty() {
                    self.top_via = TopVia::parse(value);
                    self.top_via.is_some_and(|top| top.is_well_formed_line())
                } else {
                    super::via::is_well_formed(value)
                };
                if !well_formed {
                    self.note(Problem::BadVia);
                }
                self.vias.push(value);
            }
            HeaderName::From => set_once(
                &mut self.from,
                value,
                Problem::DuplicateFrom,
                &mut self.problem,
            ),
            HeaderName::To => {
                set_once(&mut self.to, value, Problem::DuplicateTo, &mut self.problem)
            }
            HeaderName::CallId => set_once(
                &mut self.call_id,
                value,
                Problem::DuplicateCallId,
                &mut self.problem,
            ),
            HeaderName::CSeq => set_once(
                &mut self.cseq,
                value,
                Problem::DuplicateCSeq,
                &mut self.problem,
            ),
            HeaderName::MaxForwards => match parse_u32(value).filter(|&n| n <= 255) {
                Some(n) => self.max_forwards = Some(n),
                None => self.note(Problem::BadMaxForwards),
            },
            HeaderName::ContentLength => {
                if self.content_length.is_some() {
                    self.note(Problem::DuplicateContentLength);
                }
                match parse_u32(value) {
                    Some(n) => self.content_length = Some(n as usize),
                    None => self.note(Problem::BadContentLength),
                }
            }
            HeaderName::Require => {
                // An empty Require asks for nothing.
                if !value.is_empty() && self.require_count < MAX_REQUIRE_LINES {
                    self.requires[self.require_count] = value;
                    self.require_count += 1;
                }
            }
            HeaderName::PAssertedIdentity => {
                self.p_asserted_identity.get_or_insert(value);
            }
            HeaderName::Other => {}
        }
    }

    fn read_body(&mut self, rest: &'a [u8], framing: Framing) {
        self.body = match (self.content_length, framing) {
            (Some(len), _) if len > rest.len() => {
                self.note(Problem::BodyShorterThanContentLength);
                rest
            }
            (Some(len), _) => &rest[..len],
            (None, Framing::Datagram) => rest,
            (None, Framing::Stream) => {
                self.note(Problem::MissingContentLength);
                rest
            }
        };
    }

    fn check_required(&mut self) {
        let missing = [
            (self.from.is_none(), Problem::MissingFrom),
            (self.to.is_none(), Problem::MissingTo),
            (self.call_id.is_none(), Problem::MissingCallId),
            (self.cseq.is_none(), Problem::MissingCSeq),
        ];
        if let Some(&(_, problem)) = missing.iter().find(|(is_missing, _)| *is_missing) {
            self.note(problem);
        }
        self.from_addr = self.from.and_then(NameAddr::parse);
        if self.from.is_some() && self.from_addr.is_none() {
            self.note(Problem::BadFrom);
        }
        self.to_addr = self.to.and_then(NameAddr::parse);
        if self.to.is_some() && self.to_addr.is_none() {
            self.note(Problem::BadTo);
        }
        if let Some(cseq) = self.cseq {
            match split_cseq(cseq) {
                None => self.note(Problem::BadCSeq),
                Some((_, method)) if method != self.method.as_bytes() => {
                    self.note(Problem::CSeqMethodMismatch)
                }
                Some(_) => {}
            }
        }
        if self.call_id.is_some_and(|id| id.is_empty()) {
            self.note(Problem::MissingCallId);
        }
    }
}

fn set_once<'a>(
    slot: &mut Option<&'a [u8]>,
    value: &'a [u8],
    duplicate: Problem,
    problem: &mut Option<Problem>,
) {
    if slot.is_some() {
        problem.get_or_insert(duplicate);
    } else {
        *slot = Some(value);
    }
}

/// `CSeq: 314159 INVITE` → (314159, b"INVITE"); the number below 2**31
/// (§8.1.1.5).
pub fn split_cseq(value: &[u8]) -> Option<(u32, &[u8])> {
    let value = trim(value);
    let split = value.iter().position(|&b| super::text::is_lws(b))?;
    let number = parse_u32(&value[..split]).filter(|&n| n < 1 << 31)?;
    let method = trim(&value[split..]);
    (!method.is_empty() && method.iter().all(|&b| is_token_char(b))).then_some((number, method))
}

/// The three parts of a request line separated by runs of spaces (any
/// number, before, between and after); `None` for fewer or more. Each
/// part ends at a space found a word at a time.
fn split_request_line(line: &[u8]) -> Option<[&[u8]; 3]> {
    let mut parts: [&[u8]; 3] = [b""; 3];
    let mut rest = line;
    for part in &mut parts {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = super::text::find(b' ', rest).unwrap_or(rest.len());
        *part = &rest[..end];
        rest = &rest[end..];
    }
    rest.iter().all(|&b| b == b' ').then_some(parts)
}

/// Whether `bytes` holds a C0 control octet or DEL. Read to the end
/// rather than stopping at the first: the compiler then checks many
/// octets per instruction, and a URI is short.
fn has_control_octet(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |found, &b| found | (b < 0x20) | (b == 0x7f))
}

/// A header line starting at `pos` with a token name and the colon right
/// after it, as nearly every sender writes it: the name's length, where
/// the value ends (before the CRLF or bare LF) and where the next line
/// starts. `None` for any other line, which [`next_line`] then reads: the
/// name is then the same as trimming before the colon would give, since a
/// token holds neither white space nor colons.
fn plain_header_line(buf: &[u8], pos: usize) -> Option<(usize, usize, usize)> {
    let rest = buf.get(pos..)?;
    let name_len = rest.iter().position(|&b| !is_token_char(b))?;
    if name_len == 0 || rest[name_len] != b':' {
        return None;
    }
    let value_start = pos + name_len + 1;
    Some(match find_line_feed(&buf[value_start..]) {
        Some(nl) => {
            let nl = value_start + nl;
            // The byte before the LF is the colon or after it.
            let end = if buf[nl - 1] == b'\r' { nl - 1 } else { nl };
            (name_len, end, nl + 1)
        }
        None => (name_len, buf.len(), buf.len()),
    })
}

/// The first LF in `rest`, which runs to the end of the message: most
/// lines end within 64 bytes, found there a word at a time without the
/// set-up of a vector search over the whole rest.
fn find_line_feed(rest: &[u8]) -> Option<usize> {
    let near = &rest[..rest.len().min(63)];
    super::text::find(b'\n', near)
        .or_else(|| memchr::memchr(b'\n', &rest[near.len()..]).map(|at| near.len() + at))
}

/// The line starting at `pos` (without its CRLF or bare LF) and where the
/// next one starts; `None` at the end of the bytes.
fn next_line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    if rest.is_empty() {
        return None;
    }
    match super::text::find(b'\n', rest) {
        Some(nl) => {
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Some((line, pos + nl + 1))
        }
        None => Some((rest, buf.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(message: &str) -> Option<Problem> {
        let message = message.replace('\n', "\r\n");
        let request = Request::parse(message.as_bytes(), Framing::Datagram).expect("a request");
        assert!(request.top_via.is_some(), "{message}");
        request.problem
    }

    fn with(request_line: &str, via: &str) -> String {
        format!(
            "{request_line}\nVia: {via}\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: x\nCSeq: 1 INVITE\n\n"
        )
    }

    const VIA: &str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1";

    #[test]
    fn malformed_request_uris_are_400_not_416() {
        for uri in [
            "<sip:+18005550100@example.com>",
            "sip:+18005550100@2001:db8::10",
        ] {
            let line = format!("INVITE {uri} SIP/2.0");
            assert_eq!(
                problem(&with(&line, VIA)),
                Some(Problem::BadRequestUri),
                "{uri}"
            );
        }
        // Raw control octets, in any scheme and in any part.
        for uri in [
            "sip:+1800555\u{0}0100@example.com",
            "sip:+18005550100@example.com;x=\u{1}",
            "tel:+1800\u{1f}5550100",
            "sip:+18005550100\u{7f}@example.com",
            "sip:+18005550100\r@example.com",
        ] {
            let line = format!("INVITE {uri} SIP/2.0");
            assert_eq!(
                problem(&with(&line, VIA)),
                Some(Problem::BadRequestUri),
                "{uri:?}"
            );
        }
        for uri in ["sip:+18005550100@[2001:db8::10]", "http://example.com"] {
            let line = format!("INVITE {uri} SIP/2.0");
            assert_eq!(problem(&with(&line, VIA)), None, "{uri}");
        }
        // Another version is a 505 whatever its URI looks like.
        assert_eq!(
            problem(&with("INVITE <x> SIP/7.0", VIA)),
            Some(Problem::UnsupportedVersion)
        );
    }

    #[test]
    fn request_lines_split_at_runs_of_spaces() {
        assert_eq!(
            split_request_line(b"INVITE sip:a@b SIP/2.0"),
            Some([&b"INVITE"[..], b"sip:a@b", b"SIP/2.0"])
        );
        assert_eq!(
            split_request_line(b"  INVITE   sip:a@b  SIP/2.0  "),
            Some([&b"INVITE"[..], b"sip:a@b", b"SIP/2.0"])
        );
        assert_eq!(split_request_line(b"INVITE\tsip:a@b SIP/2.0"), None);
        assert_eq!(split_request_line(b"INVITE sip:a@b"), None);
        assert_eq!(split_request_line(b"INVITE sip:a@b SIP/2.0 x"), None);
        assert_eq!(split_request_line(b""), None);
    }

    #[test]
    fn headers_past_the_limits_are_skipped_and_named() {
        let limits = ParseLimits {
            max_headers: 8,
            max_header_bytes: 64,
        };
        let parse = |message: &str| {
            let message = message.replace('\n', "\r\n");
            let request = Request::parse_within(message.as_bytes(), Framing::Datagram, limits)
                .expect("a request");
            (request.top_via.is_some(), request.problem)
        };
        let base = with("INVITE sip:a@b SIP/2.0", VIA);
        assert_eq!(parse(&base), (true, None));
        let long = base.replace("Call-ID: x", &format!("Call-ID: {}", "x".repeat(60)));
        assert_eq!(parse(&long), (true, Some(Problem::HeaderTooLong)));
        // Folding counts: a header is as long as all its lines.
        let folded = base.replace("Call-ID: x", &format!("Call-ID: x\n {}", "y".repeat(60)));
        assert_eq!(parse(&folded), (true, Some(Problem::HeaderTooLong)));
        let uri = format!("INVITE sip:{}@b SIP/2.0", "1".repeat(60));
        assert_eq!(
            parse(&with(&uri, VIA)),
            (true, Some(Problem::HeaderTooLong))
        );
        // Five headers in `base`, four more: nine.
        let many = base.replace("\n\n", &format!("{}\n\n", "\nX-A: 1".repeat(4)));
        assert_eq!(parse(&many), (true, Some(Problem::TooManyHeaders)));
        // The default limits take all of these.
        let default = |m: &str| {
            let m = m.replace('\n', "\r\n");
            Request::parse(m.as_bytes(), Framing::Datagram).and_then(|r| r.problem)
        };
        assert_eq!(default(&long), None);
        assert_eq!(default(&many), None);
    }

    #[test]
    fn a_malformed_via_is_a_400_when_the_top_one_is_usable() {
        let line = "INVITE sip:a@b SIP/2.0";
        assert_eq!(
            problem(&with(line, "SIP/2.0/UDP 192.0.2.15:5060;;,;,,")),
            Some(Problem::BadVia)
        );
        assert_eq!(
            problem(&with(
                line,
                "SIP/2.0/UDP [2001:db8:::192.0.2.1]:5060;branch=z9"
            )),
            Some(Problem::BadVia)
        );
        let second_line = format!("{VIA}\nVia: SIP/2.0/UDP h;branch=");
        assert_eq!(problem(&with(line, &second_line)), Some(Problem::BadVia));
        assert_eq!(problem(&with(line, VIA)), None);
    }
}

//! Walking the header lines of a SIP message with their byte ranges
//! (RFC 3261 §7.3): a header is its first line plus any continuation lines
//! (a line starting with white space, §7.3.1), so that a proxy can copy,
//! drop or rewrite whole headers (§16.6, §16.7 step 3) without reparsing.
//! Lines may end in CRLF or, leniently like the request parser, bare LF.

use std::ops::Range;

use super::header::HeaderName;
use super::method::is_token_char;
use super::text::trim;

/// One header: its name, its value (trimmed, folding kept) and where the
/// whole header sits in the message, line ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLine<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// From the first byte of the name to just after the last line end.
    pub range: Range<usize>,
}

impl HeaderLine<'_> {
    /// The name, classified (compact forms included).
    pub fn kind(&self) -> HeaderName {
        HeaderName::classify(self.name)
    }

    /// Whether the name is `name` (case-insensitive), for headers
    /// [`HeaderName`] does not know, such as `Route` or `Record-Route`.
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Where the start line ends: the offset of the first header line. `None`
/// when there is no line end at all.
pub fn start_line_end(msg: &[u8]) -> Option<usize> {
    super::text::find(b'\n', msg).map(|nl| nl + 1)
}

/// The headers from `start` (the first header line) up to the empty line.
/// A line without a colon or with a bad name is skipped (and reported by
/// [`Headers::malformed`]), never a panic.
pub fn headers(msg: &[u8], start: usize) -> Headers<'_> {
    Headers {
        msg,
        pos: start.min(msg.len()),
        malformed: false,
        body_start: None,
    }
}

/// Iterator over [`HeaderLine`]s; after it is exhausted,
/// [`Headers::body_start`] says where the body starts.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    msg: &'a [u8],
    pos: usize,
    malformed: bool,
    body_start: Option<usize>,
}

impl<'a> Headers<'a> {
    /// Whether a line that is not a header was skipped.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Where the body starts (after the empty line), once the iterator
    /// has reached it; the end of the message when there is no empty line.
    pub fn body_start(&self) -> Option<usize> {
        self.body_start
    }

    /// The line at `pos`: its content end (before CR LF) and the start of
    /// the next line.
    fn line_at(&self, pos: usize) -> (usize, usize) {
        let rest = &self.msg[pos..];
        match super::text::find(b'\n', rest) {
            Some(nl) => {
                let content_end = if nl > 0 && rest[nl - 1] == b'\r' {
                    pos + nl - 1
                } else {
                    pos + nl
                };
                (content_end, pos + nl + 1)
            }
            None => (self.msg.len(), self.msg.len()),
        }
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = HeaderLine<'a>;

    fn next(&mut self) -> Option<HeaderLine<'a>> {
        loop {
            if self.body_start.is_some() {
                return None;
            }
            if self.pos >= self.msg.len() {
                self.body_start = Some(self.msg.len());
                return None;
            }
            let start = self.pos;
            let (content_end, mut next) = self.line_at(start);
            if content_end == start {
                // The empty line: the headers end here.
                self.body_start = Some(next);
                return None;
            }
            // Continuation lines belong to this header.
            let mut value_end = content_end;
            while next < self.msg.len() && matches!(self.msg[next], b' ' | b'\t') {
                let (end, after) = self.line_at(next);
                value_end = end;
                next = after;
            }
            self.pos = next;
            let line = &self.msg[start..value_end];
            let Some(colon) = super::text::find(b':', line) else {
                self.malformed = true;
                continue;
            };
            let name = trim(&line[..colon]);
            if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
                self.malformed = true;
                continue;
            }
            return Some(HeaderLine {
                name,
                value: trim(&line[colon + 1..]),
                range: start..next,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_headers_with_folding_and_ranges() {
        let msg = b"SIP/2.0 200 OK\r\nVia: a,\r\n b\r\nbad line\r\nl: 2\n\r\nhi";
        let start = start_line_end(msg).unwrap();
        let mut it = headers(msg, start);
        let via = it.next().unwrap();
        assert_eq!(via.name, b"Via");
        assert_eq!(via.value, b"a,\r\n b");
        assert_eq!(&msg[via.range.clone()], b"Via: a,\r\n b\r\n");
        let len = it.next().unwrap();
        assert_eq!(len.kind(), HeaderName::ContentLength);
        assert_eq!(&msg[len.range.clone()], b"l: 2\n");
        assert!(it.next().is_none());
        assert!(it.malformed());
        assert_eq!(it.body_start(), Some(msg.len() - 2));
    }

    #[test]
    fn no_empty_line_ends_at_the_end() {
        let msg = b"X: 1";
        let mut it = headers(msg, 0);
        assert_eq!(it.next().unwrap().range, 0..4);
        assert!(it.next().is_none());
        assert_eq!(it.body_start(), Some(4));
        assert!(headers(msg, 99).next().is_none());
    }
}

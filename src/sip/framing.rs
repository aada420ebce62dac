//! Cutting SIP messages out of a TCP byte stream (RFC 3261 §18.3): the
//! header block ends at the first empty line and the body is exactly
//! Content-Length bytes. Keep-alives (RFC 5626 §3.5.1): a double CRLF is a
//! ping, answered with a single CRLF.
//!
//! Two steps, as in mini-redis: [`check`] looks for a complete message
//! without parsing it (`Ok(None)`: need more bytes); the caller then parses
//! exactly the bytes it names.

use super::header::HeaderName;
use super::text::{parse_u32, trim};

/// What the front of the buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A message of this many bytes.
    Message(usize),
    /// A CRLF CRLF ping of this many bytes: answer with CRLF.
    Ping(usize),
    /// Stray line ends between messages: skip this many bytes.
    Skip(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("no usable Content-Length: the stream cannot be framed")]
    BadContentLength,
}

/// Looks for one complete frame at the front of `buf`.
pub fn check(buf: &[u8], max_message: usize) -> Result<Option<Frame>, FrameError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Some(Frame::Ping(4)));
    }
    if buf.starts_with(b"\r\n") {
        // Could be the start of a ping: wait for two more bytes.
        if buf.len() < 4 {
            return Ok(None);
        }
        return Ok(Some(Frame::Skip(2)));
    }
    if buf.first() == Some(&b'\n') {
        return Ok(Some(Frame::Skip(1)));
    }
    let Some((block_end, body_start)) = end_of_headers(buf) else {
        if buf.len() > max_message {
            return Err(FrameError::TooLarge(max_message));
        }
        return Ok(None);
    };
    let body = content_length(&buf[..block_end])?;
    let total = body_start
        .checked_add(body)
        .ok_or(FrameError::TooLarge(max_message))?;
    if total > max_message {
        return Err(FrameError::TooLarge(max_message));
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Frame::Message(total)))
}

/// Where the header block ends (at its last line end) and the body starts:
/// after the first empty line, CRLF or (leniently, like the parser) bare LF.
pub(super) fn end_of_headers(buf: &[u8]) -> Option<(usize, usize)> {
    memchr::memchr_iter(b'\n', buf).find_map(|nl| match &buf[nl + 1..] {
        [b'\n', ..] => Some((nl, nl + 2)),
        [b'\r', b'\n', ..] => Some((nl, nl + 3)),
        _ => None,
    })
}

/// The Content-Length of a header block: 0 when absent (the parser then
/// answers 400), an error when unusable or given twice with different
/// values, since then no one knows where the next message starts. A folded
/// value (continuation lines, §7.3.1) is read whole.
fn content_length(headers: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<u32> = None;
    // The Content-Length value being read: from after its colon to the end
    // of its last continuation line so far.
    let mut open: Option<(usize, usize)> = None;
    let mut settle = |value: (usize, usize)| -> Result<(), FrameError> {
        let length = parse_u32(&headers[value.0..value.1]).ok_or(FrameError::BadContentLength)?;
        if found.is_some_and(|earlier| earlier != length) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(length);
        Ok(())
    };
    for (start, end) in line_spans(headers) {
        let line = &headers[start..end];
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(value) = &mut open {
                value.1 = end;
            }
            continue;
        }
        if let Some(value) = open.take() {
            settle(value)?;
        }
        let Some(colon) = super::text::find(b':', line) else {
            continue;
        };
        if HeaderName::classify(trim(&line[..colon])) == HeaderName::ContentLength {
            open = Some((start + colon + 1, end));
        }
    }
    if let Some(value) = open {
        settle(value)?;
    }
    Ok(found.unwrap_or(0) as usize)
}

/// The (start, end) of each line, without its line end.
fn line_spans(block: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start > block.len() {
            return None;
        }
        let end = super::text::find(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
        let span = (
            start,
            if end > start && block[end - 1] == b'\r' {
                end - 1
            } else {
                end
            },
        );
        start = end + 1;
        Some(span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 4096;

    #[test]
    fn a_whole_message() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcOPTIONS";
        assert_eq!(check(msg, MAX), Ok(Some(Frame::Message(msg.len() - 7))));
    }

    #[test]
    fn partial_messages_need_more() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..msg.len() {
            let got = check(&msg[..cut], MAX).unwrap();
            assert!(
                got.is_none() || matches!(got, Some(Frame::Skip(_))),
                "{cut}: {got:?}"
            );
        }
        assert_eq!(check(msg, MAX), Ok(Some(Frame::Message(msg.len()))));
    }

    #[test]
    fn keep_alives() {
        assert_eq!(check(b"\r\n\r\n", MAX), Ok(Some(Frame::Ping(4))));
        assert_eq!(check(b"\r\n", MAX), Ok(None));
        assert_eq!(check(b"\r\nOPTI", MAX), Ok(Some(Frame::Skip(2))));
    }

    #[test]
    fn missing_content_length_frames_an_empty_body() {
        let msg = b"BYE sip:a SIP/2.0\r\nVia: x\r\n\r\nNEXT";
        assert_eq!(check(msg, MAX), Ok(Some(Frame::Message(msg.len() - 4))));
    }

    #[test]
    fn folded_content_length_and_bare_line_feeds() {
        let folded = b"A sip:a SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\nabcNEXT";
        assert_eq!(
            check(folded, MAX),
            Ok(Some(Frame::Message(folded.len() - 4)))
        );
        let bare = b"A sip:a SIP/2.0\nl: 2\n\nabNEXT";
        assert_eq!(check(bare, MAX), Ok(Some(Frame::Message(bare.len() - 4))));
    }

    #[test]
    fn unusable_lengths_and_oversize() {
        assert_eq!(
            check(b"A sip:a SIP/2.0\r\nl: -1\r\n\r\n", MAX),
            Err(FrameError::BadContentLength)
        );
        assert_eq!(
            check(b"A sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n", MAX),
            Err(FrameError::BadContentLength)
        );
        assert_eq!(
            check(b"A sip:a SIP/2.0\r\nl: 9999\r\n\r\n", MAX),
            Err(FrameError::TooLarge(MAX))
        );
        assert_eq!(check(&[b'x'; MAX + 1], MAX), Err(FrameError::TooLarge(MAX)));
    }
}

//! Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3): find the end of
//! the head (the first empty line), read its Content-Length, and the message ends
//! that many bytes later. Two steps, so a body is never searched for a blank line.
//!
//! CR/LF between messages (keep-alives, RFC 5626 §3.5.1) are skipped. A head
//! longer than [`MAX_HEAD`] or a body longer than [`MAX_BODY`] is a framing
//! error: the stream cannot be trusted past it and the connection is closed.

use memchr::memmem;

/// Longest head accepted before its empty line.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest Content-Length accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Where the next message lies in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// `buf[start..end]` is a whole message.
    Message { start: usize, end: usize },
    /// Not enough bytes yet; the first `skip` bytes are CR/LF and may be dropped.
    Incomplete { skip: usize },
}

#[derive(Debug, PartialEq, Eq)]
pub enum FramingError {
    HeadTooLong,
    BadContentLength,
    BodyTooLong,
}

/// The Content-Length of a head (`l` is its compact form, §7.3.3); 0 when
/// absent: a stream peer should send it, but an answer without one has no body.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    for line in head.split(|&c| c == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let is_cl = (name.len() == 1 && (name[0] | 0x20) == b'l')
            || name.eq_ignore_ascii_case(b"content-length");
        if !is_cl {
            continue;
        }
        let v = line[colon + 1..].trim_ascii();
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::BadContentLength);
        }
        let n = v
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
        return if n > MAX_BODY {
            Err(FramingError::BodyTooLong)
        } else {
            Ok(n)
        };
    }
    Ok(0)
}

/// Finds the first message in `buf`.
pub fn frame(buf: &[u8]) -> Result<Frame, FramingError> {
    let start = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let Some(head_len) = memmem::find(rest, b"\r\n\r\n") else {
        return if rest.len() > MAX_HEAD {
            Err(FramingError::HeadTooLong)
        } else {
            Ok(Frame::Incomplete { skip: start })
        };
    };
    if head_len > MAX_HEAD {
        return Err(FramingError::HeadTooLong);
    }
    let body = content_length(&rest[..head_len])?;
    let end = start + head_len + 4 + body;
    if end > buf.len() {
        return Ok(Frame::Incomplete { skip: start });
    }
    Ok(Frame::Message { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_messages_with_a_body_and_keepalives() {
        let a = b"SIP/2.0 302 Moved\r\nl: 4\r\n\r\nabcd";
        let b = b"SIP/2.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(a);
        buf.extend_from_slice(b);
        let Ok(Frame::Message { start, end }) = frame(&buf) else {
            panic!()
        };
        assert_eq!(&buf[start..end], a);
        assert_eq!(
            frame(&buf[end..]),
            Ok(Frame::Message {
                start: 0,
                end: b.len()
            })
        );
    }

    #[test]
    fn incomplete_head_or_body() {
        assert_eq!(
            frame(b"\r\nSIP/2.0 302 Moved\r\n"),
            Ok(Frame::Incomplete { skip: 2 })
        );
        assert_eq!(
            frame(b"SIP/2.0 302\r\nl: 5\r\n\r\nab"),
            Ok(Frame::Incomplete { skip: 0 })
        );
        assert_eq!(frame(b""), Ok(Frame::Incomplete { skip: 0 }));
        assert_eq!(frame(b"\r\n"), Ok(Frame::Incomplete { skip: 2 }));
    }

    #[test]
    fn errors() {
        assert_eq!(
            frame(b"SIP/2.0 302\r\nl: x\r\n\r\n"),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            frame(b"SIP/2.0 302\r\nl: 999999\r\n\r\n"),
            Err(FramingError::BodyTooLong)
        );
        assert_eq!(
            frame(&vec![b'a'; MAX_HEAD + 1]),
            Err(FramingError::HeadTooLong)
        );
        // No Content-Length: no body.
        assert_eq!(
            frame(b"SIP/2.0 302\r\n\r\nX"),
            Ok(Frame::Message { start: 0, end: 15 })
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_inside(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
            if let Ok(Frame::Message { start, end }) = frame(&bytes) {
                prop_assert!(start < end && end <= bytes.len());
            }
        }
    }
}

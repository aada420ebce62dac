//! Messages over the size limit: RFC 3261 §21.5.7 lets a server refuse a
//! request "because the message length exceeded the capabilities of the
//! server" with `513 Message Too Large`. Saying so beats silence, which a
//! UDP sender would take for loss and retransmit into. The answer is built
//! from the part of the head that lies within the limit, so it copies no
//! more than the answer to a message at the limit would, and never the
//! body.

/// The readable head of a message over `max_message` bytes: its header
/// block up to the blank line when that lies within the first
/// `max_message` bytes, else every complete line among them (a request
/// names its transaction in its first few lines). Empty when not even the
/// first line ends within the limit.
pub fn readable_head(message: &[u8], max_message: usize) -> &[u8] {
    let window = &message[..message.len().min(max_message)];
    if let Some((_, body_start)) = super::framing::end_of_headers(window) {
        return &window[..body_start];
    }
    match memchr::memrchr(b'\n', window) {
        Some(last) => &window[..=last],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 9000\r\n\r\n";

    #[test]
    fn a_whole_head_within_the_limit_is_read_without_its_body() {
        let message = [HEAD, &[b'x'; 9000][..]].concat();
        assert_eq!(readable_head(&message, 1024), HEAD);
    }

    #[test]
    fn a_head_past_the_limit_is_read_to_its_last_whole_line() {
        let limit = HEAD.len() - 10;
        let head = readable_head(HEAD, limit);
        assert!(head.ends_with(b"branch=z9hG4bK1\r\n"));
        assert!(head.len() <= limit);
    }

    #[test]
    fn nothing_is_readable_when_no_line_ends_within_the_limit() {
        assert_eq!(readable_head(&[b'a'; 5000], 1024), b"");
        assert_eq!(readable_head(b"", 1024), b"");
    }

    #[test]
    fn never_past_the_limit() {
        for limit in 0..HEAD.len() + 2 {
            assert!(readable_head(HEAD, limit).len() <= limit);
        }
    }
}

//! The SIP parser and the TCP framer on arbitrary bytes: they must never
//! panic, and what they report must stay inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::sip::framing::{self, Frame};
use switchboard::sip::{Framing, ParseLimits, Request};

fuzz_target!(|data: &[u8]| {
    // The first byte picks tight limits sometimes, so the limit paths run too.
    let limits = match data.first() {
        Some(b) if b % 4 == 0 => ParseLimits {
            max_headers: usize::from(b % 16),
            max_header_bytes: usize::from(*b),
        },
        _ => ParseLimits::default(),
    };
    for framing in [Framing::Datagram, Framing::Stream] {
        if let Some(request) = Request::parse_within(data, framing, limits) {
            assert!(request.body.len() <= data.len());
            let _ = request.to_tag();
            let _ = request.from_tag();
            let _ = request.requires();
            if let Some(via) = request.top_via {
                let _ = via.response_address("127.0.0.1:5060".parse().unwrap());
            }
        }
    }
    let mut rest = data;
    while let Ok(Some(frame)) = framing::check(rest, 4096) {
        let n = match frame {
            Frame::Message(n) | Frame::Ping(n) | Frame::Skip(n) => n,
        };
        assert!(n > 0 && n <= rest.len() && n <= 4096);
        rest = &rest[n..];
    }
});

//! The whole datagram → response path: parse, trust, route on the shipped
//! example data, build the answer. It must never panic, and an answer must
//! be a SIP response no larger than the request plus a bounded overhead
//! (no reflection amplification).
#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchboard::config::Loader;
use switchboard::config::settings::{FloodSettings, Settings, Untrusted};
use switchboard::routing::{Region, RoutingTable};
use switchboard::server::handler::{HandlerConfig, Outcome, Peer, handle};
use switchboard::sip::Framing;

static TABLE: LazyLock<RoutingTable> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/routing.yaml");
    Loader::new(path, Region::us()).load().expect("example data").table
});

static CONFIG: LazyLock<HandlerConfig> = LazyLock::new(|| {
    HandlerConfig::from_settings(&Settings {
        untrusted: Untrusted::Reject,
        rule_header: true,
        // Off: buckets would make one input's outcome depend on the last.
        flood: FloodSettings {
            rate: 0,
            ..FloodSettings::default()
        },
        ..Settings::default()
    })
    .expect("valid settings")
});

/// Headers and text the server adds to any answer, at most.
const OVERHEAD: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let source: SocketAddr = match selector % 4 {
        0 => "127.0.0.1:5062",
        1 => "192.0.2.7:5060",
        2 => "[::1]:5062",
        _ => "[2001:db8::7]:5060",
    }
    .parse()
    .unwrap();
    let framing = if selector & 4 == 0 {
        Framing::Datagram
    } else {
        Framing::Stream
    };
    let mut out = Vec::new();
    let outcome = handle(&CONFIG, &TABLE, message, Peer { source, framing }, &mut out);
    if let Outcome::Reply { status, .. } = outcome {
        assert!(out.starts_with(b"SIP/2.0 "), "{:?}", String::from_utf8_lossy(&out));
        assert!(out.ends_with(b"\r\n\r\n"));
        assert!((100..700).contains(&status));
        assert!(out.len() <= message.len() + OVERHEAD, "{} from {}", out.len(), message.len());
    } else {
        assert!(out.is_empty() || out.starts_with(b"SIP/2.0 "));
    }
});

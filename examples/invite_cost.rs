//! Runs the whole INVITE → 302 path (parse, route, build) in process N
//! times, for instruction counting with callgrind:
//!
//! ```sh
//! cargo build --release --example invite_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/invite_cost 1      # setup only
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/invite_cost 10001  # setup + 10,000 more
//! ```
//!
//! The difference of the two totals, divided by 10,000, is the
//! instructions per INVITE → 302 tracked in docs/performance.md;
//! `bench/instructions.sh` does this. A second argument `guarded` makes
//! the source take a flood token on every request; `chain` dials
//! +18005550188 instead (the same length), whose 302 has two Contacts
//! (`on_no_answer: forward`), with `diversion: header`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;

use switchboard::routing::DiversionStyle;
use switchboard::routing::Region;
use switchboard::routing_data::Loader;
use switchboard::server::handler::{Context, Handler, Outcome, Peer, Transport};
use switchboard::settings::{FloodSettings, Settings};

/// The same trunk INVITE as `benches/sip.rs`.
const INVITE: &[u8] = include_bytes!("../benches/invite.sip");

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(1), |n| n.parse())?;
    // `guarded`: the peer is not exempt, so every request takes a token
    // from its flood bucket (at a rate that never runs out).
    let mode = std::env::args().nth(2);
    let guarded = mode.as_deref() == Some("guarded");
    let chain = mode.as_deref() == Some("chain");
    let invite: Vec<u8> = if chain {
        String::from_utf8(INVITE.to_vec())?
            .replace("+18005550111", "+18005550188")
            .into_bytes()
    } else {
        INVITE.to_vec()
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
    let table = Loader::new(path, Region::us())
        .load()
        .map_err(|r| anyhow::anyhow!("{r}"))?
        .table;
    let config = Handler::from_settings(&Settings {
        trust: vec!["10.0.0.0/8".parse().expect("network")],
        // A trunk: trusted and exempt from flood limits, as deployed.
        flood: if guarded {
            FloodSettings {
                rate: u32::MAX,
                burst: u32::MAX,
                exempt: Vec::new(),
                ..FloodSettings::default()
            }
        } else {
            FloodSettings {
                exempt: vec!["10.0.0.0/8".parse().expect("network")],
                ..FloodSettings::default()
            }
        },
        diversion: if chain {
            DiversionStyle::Header
        } else {
            DiversionStyle::Off
        },
        ..Settings::default()
    })
    .expect("default settings are valid");
    let peer = Peer::at(SocketAddr::from(([10, 0, 0, 9], 5060)), Transport::Udp);
    let mut out = Vec::with_capacity(2048);
    let mut replies = 0usize;
    for _ in 0..rounds {
        if let Outcome::Reply { status: 302, .. } = config.handle(
            &mut Context::new(&table, &mut out),
            black_box(&invite),
            peer,
        ) {
            replies += 1;
        }
    }
    anyhow::ensure!(replies == rounds, "expected {rounds} 302s, got {replies}");
    Ok(())
}

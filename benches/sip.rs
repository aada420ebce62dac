//! Per-request cost of the SIP path (parse, route, build) for one
//! INVITE → 302, and the allocations it makes, counted by a wrapping
//! global allocator.
//!
//! Run: `cargo bench --bench sip`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard::routing::{Region, RoutingTable};
use switchboard::routing_data::Loader;
use switchboard::server::handler::{Context, Handler, Outcome, Peer, Transport};
use switchboard::settings::{FloodSettings, Settings};
use switchboard::sip::{Framing, Request, Status, write_response};

/// Counts every allocation made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A typical trunk INVITE with SDP, as SIPp and carriers send it.
const INVITE: &[u8] = include_bytes!("invite.sip");

fn table() -> RoutingTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
    Loader::new(path, Region::us())
        .load()
        .expect("example data")
        .table
}

fn config() -> Handler {
    Handler::from_settings(&Settings {
        trust: vec!["10.0.0.0/8".parse().expect("network")],
        // A trunk: trusted and exempt from flood limits, as deployed.
        flood: FloodSettings {
            exempt: vec!["10.0.0.0/8".parse().expect("network")],
            ..FloodSettings::default()
        },
        ..Settings::default()
    })
    .expect("default settings are valid")
}

fn bench(c: &mut Criterion) {
    let table = table();
    let config = config();
    let peer = Peer::at(SocketAddr::from(([10, 0, 0, 9], 5060)), Transport::Udp);
    let mut out = Vec::with_capacity(2048);
    let outcome = config.handle(&mut Context::new(&table, &mut out), INVITE, peer);
    assert!(
        matches!(outcome, Outcome::Reply { status: 302, .. }),
        "{outcome:?}"
    );

    // Allocations per INVITE → 302, the output buffer already grown.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    const ROUNDS: usize = 1000;
    for _ in 0..ROUNDS {
        black_box(config.handle(&mut Context::new(&table, &mut out), black_box(INVITE), peer));
    }
    let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / ROUNDS as f64;
    println!("allocations per INVITE->302 (parse + route + build): {per_request}");

    c.bench_function("parse_invite", |b| {
        b.iter(|| black_box(Request::parse(black_box(INVITE), Framing::Datagram)))
    });
    c.bench_function("route", |b| {
        b.iter(|| {
            black_box(
                table
                    .decide(black_box(b"+18005550111"), Some(black_box(b"+16505550155")))
                    .disposition,
            )
        })
    });
    let request = Request::parse(INVITE, Framing::Datagram).expect("parses");
    c.bench_function("build_302", |b| {
        b.iter(|| {
            write_response(
                &mut out,
                black_box(&request),
                peer.source,
                Status::new(302, "Moved Temporarily"),
                "switchboard/0.1.0",
                |o| o.extend_from_slice(b"Contact: <sip:+14155550101@10.0.0.9;user=phone>\r\n"),
            );
            black_box(out.len())
        })
    });
    c.bench_function("invite_to_302", |b| {
        b.iter(|| {
            black_box(config.handle(&mut Context::new(&table, &mut out), black_box(INVITE), peer))
        })
    });
    // The same from a peer that is not exempt: one token bucket per
    // request (a rate so high that every request is admitted).
    let limited = Handler::from_settings(&Settings {
        trust: vec!["10.0.0.0/8".parse().expect("network")],
        flood: FloodSettings {
            rate: u32::MAX,
            burst: u32::MAX,
            exempt: Vec::new(),
            ..FloodSettings::default()
        },
        ..Settings::default()
    })
    .expect("valid settings");
    c.bench_function("invite_to_302_flood_guarded", |b| {
        b.iter(|| {
            black_box(limited.handle(&mut Context::new(&table, &mut out), black_box(INVITE), peer))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

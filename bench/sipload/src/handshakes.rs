//! `sipload handshakes`: how many new TLS connections per second a server
//! takes, each one a full handshake (the client offers no session to resume),
//! one INVITE answered over it, its ACK, close_notify and close. One
//! connection at a time, so the figure is the handshake's cost plus a round
//! trip, not a queue: with the server alone on its core, its CPU per
//! handshake is its CPU over the run divided by the handshakes (bench/run.sh).
//!
//! The INVITE goes through the load loop itself (`tcp::run` with a window of
//! one and one request), so it is built, matched and ACKed as in `run`.

use crate::csv::Row;
use crate::histogram::Histogram;
use crate::load::{Outcome, Setup, run_id};
use crate::stats::Stats;
use crate::worker::Plan;
use crate::{sys, tcp, tls};
use std::time::Duration;

/// What a handshake run gives back besides the load loop's counts.
pub struct Handshakes {
    /// The INVITEs' counts (sent, answered, codes, latency of the answer on
    /// the fresh connection); `send_ns` is the whole run.
    pub outcome: Outcome<()>,
    /// Connect plus handshake, ns, of each connection that got one.
    pub handshake: Histogram,
    /// Connections whose connect or handshake failed.
    pub failures: u64,
}

/// Runs connections one after another until `setup.duration` or
/// `setup.requests` (handshakes) is reached. The first connection failing is
/// an error (nothing would be measured: a refused certificate, no listener);
/// later failures are counted, and the first of them is printed.
pub fn execute(setup: &Setup, rows: &[Row]) -> Result<Handshakes, String> {
    let client = setup
        .tls
        .as_ref()
        .ok_or("handshakes need a TLS client configuration")?;
    if rows.is_empty() {
        return Err("no calls to send".into());
    }
    let run = run_id();
    let start_ns = sys::now_ns();
    let until = start_ns.saturating_add(setup.duration.as_nanos().min(u64::MAX as u128) as u64);
    let max = setup.requests.unwrap_or(u64::MAX);
    let mut stats = Stats::default();
    let mut handshake = Histogram::new();
    let mut failures = 0u64;
    let mut done = 0u64;
    loop {
        let t0 = sys::now_ns();
        if t0 >= until || done >= max || sys::stop_requested() {
            break;
        }
        let stream = match client.connect(setup.target) {
            Ok(s) => s,
            Err(e) if done == 0 => {
                return Err(format!("cannot connect to {} over TLS: {e}", setup.target));
            }
            Err(e) => {
                if failures == 0 {
                    eprintln!("sipload: a TLS connection failed (counted as an error): {e}");
                }
                failures += 1;
                stats.errors += 1;
                continue;
            }
        };
        let t1 = sys::now_ns();
        handshake.record(t1.saturating_sub(t0));
        let i = (done % rows.len() as u64) as usize;
        let plan = Plan {
            thread: 0,
            threads: 1,
            window: 1,
            rate: None,
            requests: Some(1),
            start_ns: t1,
            send_until_ns: u64::MAX,
            timeout_ns: setup.timeout.as_nanos() as u64,
            once: false,
        };
        let (s, (), streams) = tcp::run(
            &plan,
            setup.tick,
            run,
            &rows[i..=i],
            setup.target,
            vec![stream],
            (),
        )
        .map_err(|e| format!("TLS connection {}: {e}", done + 1))?;
        streams.into_iter().for_each(tls::TlsStream::close);
        stats.merge(&s);
        done += 1;
    }
    let end = sys::now_ns();
    stats.send_ns = end.saturating_sub(start_ns);
    Ok(Handshakes {
        outcome: Outcome {
            stats,
            sinks: Vec::new(),
            elapsed: Duration::from_nanos(end.saturating_sub(start_ns)),
        },
        handshake,
        failures,
    })
}

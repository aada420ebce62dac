//! The one JSON line `sipload run` prints, and its exit status.
//!
//! Rates are per second of sending (the time from the start until sending
//! stopped, not counting the wait for the last answers), latencies in µs from
//! the histogram, CPU from getrusage of the whole process.

use crate::handshakes::Handshakes;
use crate::load::{Outcome, Setup};
use serde_json::{Map, Value, json};

/// Rounds to `digits` decimals, for readable output.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The summary of a finished run.
pub fn summary<S>(setup: &Setup, out: &Outcome<S>, cpu: (f64, f64)) -> Value {
    let s = &out.stats;
    let send_s = (s.send_ns as f64 / 1e9).max(1e-9);
    let us = |ns: u64| round(ns as f64 / 1000.0, 1);
    let h = &s.latency;
    let mut codes = Map::new();
    for (code, n) in s.code_counts() {
        codes.insert(code.to_string(), n.into());
    }
    json!({
        "target": setup.target.to_string(),
        "transport": setup.transport.name(),
        "mode": if setup.rate.is_some() { "open" } else { "closed" },
        "window": setup.window,
        "rate": setup.rate,
        "sockets": setup.sockets,
        "threads": setup.threads,
        "sent": s.sent,
        "answered": s.answered,
        "timeouts": s.timeouts,
        "errors": s.errors,
        "elapsed_s": round(out.elapsed.as_secs_f64(), 3),
        "send_s": round(send_s, 3),
        "rate_sent": round(s.sent as f64 / send_s, 1),
        "rate_answered": round(s.answered as f64 / send_s, 1),
        "latency_us": {
            "p50": us(h.quantile(0.5)),
            "p90": us(h.quantile(0.9)),
            "p99": us(h.quantile(0.99)),
            "p999": us(h.quantile(0.999)),
            "max": us(h.max()),
            "mean": round(h.mean() / 1000.0, 1),
        },
        "codes": codes,
        "acks": s.acks,
        "provisional": s.provisional,
        "stray": s.stray,
        "unparsable": s.unparsable,
        "window_full": s.window_full,
        "cpu_user_s": round(cpu.0, 3),
        "cpu_sys_s": round(cpu.1, 3),
    })
}

/// `sipload handshakes`: the mode, the handshake count and rate (per second of
/// the run) and the connect-plus-handshake time. `sent`, `answered` and
/// `latency_us` are the INVITEs, one per connection.
pub fn add_handshakes(summary: &mut Value, h: &Handshakes) {
    let secs = (h.outcome.stats.send_ns as f64 / 1e9).max(1e-9);
    let us = |ns: u64| round(ns as f64 / 1000.0, 1);
    let t = &h.handshake;
    summary["mode"] = "handshakes".into();
    summary["handshakes"] = t.count().into();
    summary["handshake_failures"] = h.failures.into();
    summary["rate_handshakes"] = round(t.count() as f64 / secs, 1).into();
    summary["handshake_us"] = json!({
        "p50": us(t.quantile(0.5)),
        "p90": us(t.quantile(0.9)),
        "p99": us(t.quantile(0.99)),
        "max": us(t.max()),
        "mean": round(t.mean() / 1000.0, 1),
    });
}

/// 0 when every request was answered, 3 when some timed out, 1 when some were
/// neither (lost to errors).
pub fn exit_code<S>(out: &Outcome<S>) -> i32 {
    let s = &out.stats;
    if s.timeouts > 0 {
        3
    } else if s.answered == s.sent {
        0
    } else {
        1
    }
}

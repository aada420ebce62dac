//! A whole run: opens every thread's sockets or connections first (so that a
//! refused connection is reported before any load), deals the window, rate and
//! request count out to the threads, runs them, and adds up what they counted.

use crate::cli::Transport;
use crate::csv::Row;
use crate::stats::Stats;
use crate::worker::{Plan, Sink};
use crate::{sys, tcp, tls, udp};
use std::net::SocketAddr;
use std::time::Duration;

/// Everything a run needs to know.
#[derive(Clone, Debug)]
pub struct Setup {
    pub target: SocketAddr,
    pub transport: Transport,
    /// Per thread.
    pub sockets: usize,
    pub threads: usize,
    /// Total over the threads.
    pub window: usize,
    /// Total over the threads, per second; `None`: closed loop.
    pub rate: Option<f64>,
    pub duration: Duration,
    pub requests: Option<u64>,
    pub timeout: Duration,
    pub tick: Duration,
    /// Send each row once (verify).
    pub once: bool,
    /// The TLS client, for [`Transport::Tls`].
    pub tls: Option<tls::Client>,
}

/// What a run gives back.
pub struct Outcome<S> {
    pub stats: Stats,
    pub sinks: Vec<S>,
    pub elapsed: Duration,
}

/// `total` split into `parts` shares that differ by at most one.
fn share(total: u64, parts: usize, i: usize) -> u64 {
    total / parts as u64 + u64::from((i as u64) < total % parts as u64)
}

/// A run id that differs from one run to the next, so that answers meant for an
/// earlier run (still in flight, or replayed) never match this one's.
pub(crate) fn run_id() -> u32 {
    let t = sys::now_ns();
    (t as u32) ^ ((t >> 32) as u32).rotate_left(7) ^ std::process::id().rotate_left(16)
}

enum Socks {
    Udp(Vec<std::net::UdpSocket>),
    Tcp(Vec<std::net::TcpStream>),
    Tls(Vec<tls::TlsStream>),
}

/// `n` TLS connections to `target`, each with its handshake done.
fn open_tls(setup: &Setup) -> Result<Vec<tls::TlsStream>, String> {
    let client = setup
        .tls
        .as_ref()
        .ok_or("TLS transport without a TLS client configuration")?;
    (0..setup.sockets)
        .map(|_| {
            client
                .connect(setup.target)
                .map_err(|e| format!("cannot connect to {} over TLS: {e}", setup.target))
        })
        .collect()
}

/// Runs `setup` over `rows`, with one sink per thread from `sink`.
pub fn execute<S: Sink + Send>(
    setup: &Setup,
    rows: &[Row],
    sink: impl Fn() -> S,
) -> Result<Outcome<S>, String> {
    if setup.threads == 0 || setup.window < setup.threads {
        return Err(format!(
            "the window ({}) must be at least the thread count ({})",
            setup.window, setup.threads
        ));
    }
    let mut socks = Vec::with_capacity(setup.threads);
    for _ in 0..setup.threads {
        socks.push(match setup.transport {
            Transport::Udp => Socks::Udp(
                udp::open_sockets(setup.target, setup.sockets)
                    .map_err(|e| format!("cannot open UDP sockets to {}: {e}", setup.target))?,
            ),
            Transport::Tcp => Socks::Tcp(
                tcp::open_connections(setup.target, setup.sockets)
                    .map_err(|e| format!("cannot connect to {} over TCP: {e}", setup.target))?,
            ),
            Transport::Tls => Socks::Tls(open_tls(setup)?),
        });
    }
    let run = run_id();
    let start_ns = sys::now_ns();
    let send_until_ns =
        start_ns.saturating_add(setup.duration.as_nanos().min(u64::MAX as u128) as u64);
    let plans: Vec<Plan> = (0..setup.threads)
        .map(|i| Plan {
            thread: i as u8,
            threads: setup.threads,
            window: share(setup.window as u64, setup.threads, i) as usize,
            rate: setup.rate.map(|r| r / setup.threads as f64),
            requests: setup.requests.map(|n| share(n, setup.threads, i)),
            start_ns,
            send_until_ns,
            timeout_ns: setup.timeout.as_nanos() as u64,
            once: setup.once,
        })
        .collect();
    let results: Vec<std::io::Result<(Stats, S)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .zip(socks)
            .map(|(plan, s)| {
                let sink = sink();
                std::thread::Builder::new()
                    .name(format!("sipload-{}", plan.thread))
                    .spawn_scoped(scope, move || match s {
                        Socks::Udp(v) => {
                            udp::run(plan, setup.tick, run, rows, setup.target, &v, sink)
                        }
                        Socks::Tcp(v) => {
                            tcp::run(plan, setup.tick, run, rows, setup.target, v, sink)
                                .map(|(stats, sink, _)| (stats, sink))
                        }
                        Socks::Tls(v) => {
                            tcp::run(plan, setup.tick, run, rows, setup.target, v, sink).map(
                                |(stats, sink, streams)| {
                                    streams.into_iter().for_each(tls::TlsStream::close);
                                    (stats, sink)
                                },
                            )
                        }
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a load thread panicked"))),
                Err(e) => Err(e),
            })
            .collect()
    });
    let elapsed = Duration::from_nanos(sys::now_ns().saturating_sub(start_ns));
    let mut stats = Stats::default();
    let mut sinks = Vec::new();
    for r in results {
        let (s, k) = r.map_err(|e| format!("load thread failed: {e}"))?;
        stats.merge(&s);
        sinks.push(k);
    }
    Ok(Outcome {
        stats,
        sinks,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(100, 3), (7, 7), (1, 1), (10, 4)] {
            let s: Vec<u64> = (0..parts).map(|i| share(total, parts, i)).collect();
            assert_eq!(s.iter().sum::<u64>(), total);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }
}

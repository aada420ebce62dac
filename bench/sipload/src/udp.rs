//! The UDP load loop of one thread: its connected sockets, batched sends and
//! receives (`batch`), and the [`Worker`] that decides what to send.
//!
//! Three ways to wait, chosen for the fewest system calls per request:
//! - closed loop, one socket: a blocking `recvmmsg` with `MSG_WAITFORONE` waits
//!   for the first answer and takes whatever else has arrived in the same call,
//!   then one `sendmmsg` carries the ACKs and the new INVITEs: two calls per
//!   round, however many requests the round holds;
//! - closed loop, several sockets: `poll`, then non-blocking `recvmmsg` on the
//!   ready ones;
//! - open loop: sleep until the next request is due (at least one pacing tick),
//!   then read everything that arrived meanwhile. The kernel stamps each
//!   datagram on arrival (`SO_TIMESTAMPNS`), so reading late does not add to
//!   the measured latency, and answers never cost a wake-up of their own.
//!
//! Connected sockets: the kernel routes once per socket instead of once per
//! datagram, and answers from anyone but the target are dropped before sipload
//! sees them.

use crate::batch::{RecvBatch, SendBatch};
use crate::csv::Row;
use crate::message::Templates;
use crate::stats::Stats;
use crate::sys;
use crate::worker::{Plan, Sink, WAKE, Worker};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;
/// Socket buffers: room for bursts of a large window without drops.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Opens `n` sockets connected to `target` (each a distinct source port).
pub fn open_sockets(target: SocketAddr, n: usize) -> io::Result<Vec<UdpSocket>> {
    (0..n)
        .map(|_| {
            let any: SocketAddr = if target.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let s = UdpSocket::bind(any)?;
            s.connect(target)?;
            sys::set_buffers(s.as_raw_fd(), SOCKET_BUFFER);
            sys::enable_rx_timestamps(s.as_raw_fd())?;
            Ok(s)
        })
        .collect()
}

struct Sock {
    fd: RawFd,
    tpl: Templates,
    out: SendBatch,
}

/// Runs one thread's load over `sockets` until its plan is done; returns its
/// counts and the sink.
pub fn run<S: Sink>(
    plan: &Plan,
    tick: Duration,
    run_id: u32,
    rows: &[Row],
    target: SocketAddr,
    sockets: &[UdpSocket],
    sink: S,
) -> io::Result<(Stats, S)> {
    let mut socks = Vec::with_capacity(sockets.len());
    for s in sockets {
        socks.push(Sock {
            fd: s.as_raw_fd(),
            tpl: Templates::new("UDP", target, s.local_addr()?),
            out: SendBatch::new(),
        });
    }
    let open_loop = plan.rate.is_some();
    let blocking = socks.len() == 1 && !open_loop;
    for s in sockets {
        s.set_nonblocking(!blocking)?;
        if blocking {
            sys::set_recv_timeout(s.as_raw_fd(), WAKE)?;
        }
    }
    if open_loop {
        sys::set_timer_slack(1_000);
    }
    let mut rx = RecvBatch::new(BATCH, false, true);
    let mut w = Worker::new(plan, run_id, rows, sink);
    let mut pollfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut next_sock = 0;
    let mut drain_until = None;
    let tick_ns = tick.as_nanos() as u64;

    loop {
        let now = sys::now_ns();
        if !w.sending(now) {
            let until = *drain_until.get_or_insert(now + plan.timeout_ns);
            if w.live() == 0 {
                break;
            }
            if now >= until {
                w.expire_all();
                break;
            }
        }
        w.expire(now);
        for _ in 0..w.budget(now) {
            let n = socks.len();
            let s = &mut socks[next_sock];
            next_sock = (next_sock + 1) % n;
            w.start(now, &s.tpl, s.out.buf());
            s.out.finish();
        }
        for s in &mut socks {
            let (_, failed) = s.out.flush(s.fd);
            w.stats.errors += failed as u64;
        }

        if blocking {
            receive(&mut rx, &mut socks[0], &mut w, libc::MSG_WAITFORONE);
            continue;
        }
        if open_loop {
            let now = sys::now_ns();
            std::thread::sleep(Duration::from_nanos(w.open_loop_sleep_ns(now, tick_ns)));
            for s in &mut socks {
                while receive(&mut rx, s, &mut w, libc::MSG_DONTWAIT) == BATCH {}
            }
            continue;
        }
        if sys::poll(&mut pollfds, WAKE)? > 0 {
            for (p, s) in pollfds.iter().zip(&mut socks) {
                if p.revents != 0 {
                    while receive(&mut rx, s, &mut w, libc::MSG_DONTWAIT) == BATCH {}
                }
            }
        }
    }
    Ok((w.stats, w.sink))
}

/// One `recvmmsg` on `s` and the handling of what it brought (ACKs go into the
/// socket's send batch). Returns the number of datagrams read.
#[inline]
fn receive<S: Sink>(
    rx: &mut RecvBatch,
    s: &mut Sock,
    w: &mut Worker<'_, S>,
    flags: libc::c_int,
) -> usize {
    let n = match rx.recv(s.fd, flags) {
        Ok(n) => n,
        Err(e) => {
            // ECONNREFUSED: an ICMP port-unreachable came back, nothing listens.
            w.stats.errors += 1;
            if e.kind() != io::ErrorKind::ConnectionRefused {
                std::thread::sleep(Duration::from_millis(1));
            }
            return 0;
        }
    };
    let mut fallback = 0;
    for i in 0..n {
        if rx.truncated(i) {
            w.stats.errors += 1;
            continue;
        }
        let ts = match rx.timestamp_ns(i) {
            Some(t) => t,
            None => {
                if fallback == 0 {
                    fallback = sys::now_ns();
                }
                fallback
            }
        };
        w.answer(rx.message(i), ts, &s.tpl, s.out.buf());
        s.out.finish();
    }
    n
}

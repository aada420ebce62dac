//! SIP over UDP (RFC 3261 §18.1.2, §18.2): one socket per worker thread,
//! all bound to the same address with `SO_REUSEPORT` so the kernel spreads
//! datagrams over the workers, each with a 4 MiB receive buffer.
//!
//! Workers are plain threads with blocking sockets, reading and writing in
//! batches (`recvmmsg`/`sendmmsg`): a redirect answer takes a microsecond
//! or two, so system calls, not parsing, are what an event loop or a call
//! per datagram would add.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use super::handler::{Context, Handler, Outcome, Peer, Transport};
use super::metrics::Shard;
use super::mmsg::{BATCH, Batches};
use super::records_tap::{RecordsFeed, RecordsTap};
use super::supervise::{contain, restart_on_panic};
use crate::routing_data::TableReader;
use crate::sip::oversize::readable_head;

/// Receive buffer per socket, as Kamailio's anchor uses.
pub const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// The largest datagram read: any over the message limit is seen as such
/// (the limit is at most 65,535).
const MAX_DATAGRAM: usize = 65_535;
/// How often a blocked worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Opens one UDP socket of a `SO_REUSEPORT` group.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    // The kernel caps this at net.core.rmem_max; a smaller buffer still works.
    if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        warn!(error = %e, "cannot set the UDP receive buffer size");
    }
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    Ok(socket.into())
}

/// The receive buffer the kernel granted `socket`, when it is smaller
/// than asked: Linux caps it at `net.core.rmem_max` without an error.
pub fn short_receive_buffer(socket: &UdpSocket) -> Option<usize> {
    let reported = socket2::SockRef::from(socket).recv_buffer_size().ok()?;
    let granted = granted_from_reported(reported);
    (granted < RECEIVE_BUFFER).then_some(granted)
}

/// Linux reports twice the size it granted (the rest is its bookkeeping
/// allowance, socket(7)); other systems report what they granted.
fn granted_from_reported(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// What a worker serves with, besides its socket.
pub struct Worker {
    pub handler: Arc<Handler>,
    pub table: TableReader,
    /// Datagrams over this many bytes get `513` from their head alone.
    pub max_message: usize,
    pub metrics: Arc<Shard>,
    /// Call records, when on: the worker makes its own tap.
    pub records: Option<RecordsFeed>,
}

/// Starts a worker thread answering on `socket` until `stop` is set.
pub fn spawn_worker(
    name: String,
    socket: UdpSocket,
    worker: Worker,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let thread = name.clone();
    std::thread::Builder::new().name(thread).spawn(move || {
        let mut tap = worker.records.as_ref().map(RecordsFeed::tap);
        restart_on_panic(&name, || {
            serve(
                &socket,
                &worker.handler,
                &worker.table,
                worker.max_message,
                &worker.metrics,
                tap.as_mut(),
                &stop,
            )
        })
    })
}

fn serve(
    socket: &UdpSocket,
    handler: &Handler,
    table: &TableReader,
    max_message: usize,
    metrics: &Shard,
    mut tap: Option<&mut RecordsTap>,
    stop: &AtomicBool,
) {
    let mut batches = Batches::new(MAX_DATAGRAM);
    let mut responses: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(2048)).collect();
    let mut replies: Vec<(SocketAddr, usize)> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        let count = match batches.receive(socket) {
            Ok(count) => count,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here; keep serving.
                debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let received_at = Instant::now();
        // One table for the whole batch: a reload lands between batches.
        let table = table.load();
        if let Some(tap) = tap.as_deref_mut() {
            tap.serving(&table);
        }
        replies.clear();
        for (i, response) in responses.iter_mut().enumerate().take(count) {
            let datagram = batches.received(i);
            let Some(source) = datagram.source else {
                continue;
            };
            let peer = Peer::at(source, Transport::Udp);
            let outcome = if datagram.truncated || datagram.bytes.len() > max_message {
                // Only the head within the limit is read, to say 513.
                debug!(%source, "a datagram larger than {max_message} bytes");
                let head = readable_head(datagram.bytes, max_message);
                contain("a UDP request over the size limit", || {
                    handler.handle_oversize(response, head, peer)
                })
            } else {
                contain("a UDP request", || {
                    let cx = Context::new(&table, response);
                    let mut cx = match tap.as_deref_mut() {
                        Some(tap) => cx.with_tap(tap),
                        None => cx,
                    };
                    handler.handle(&mut cx, datagram.bytes, peer)
                })
            };
            if let Some(Outcome::Reply { to, .. }) = metrics.record_contained(outcome) {
                replies.push((to, i));
            }
        }
        // Proxy mode's datagrams from this batch, in one `sendmmsg`.
        contain("sending relayed datagrams", || handler.send_held());
        if replies.is_empty() {
            continue;
        }
        let outgoing = replies.iter().map(|&(to, i)| (to, responses[i].as_slice()));
        let failures = batches.send(socket, outgoing);
        if failures > 0 {
            debug!(failures, "UDP sends refused");
        }
        metrics.latency(received_at.elapsed(), replies.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_buffer_than_asked_is_reported() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(64 * 1024)
            .unwrap();
        let granted = short_receive_buffer(&socket).expect("64 KiB is short of 4 MiB");
        if cfg!(target_os = "linux") {
            assert_eq!(granted, 64 * 1024);
        }
    }
}

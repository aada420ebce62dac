//! SIP over UDP (RFC 3261 §18.1.2, §18.2): one socket per worker thread,
//! all bound to the same address with `SO_REUSEPORT` so the kernel spreads
//! datagrams over the workers, each with a 4 MiB receive buffer.
//!
//! Workers are plain threads with blocking sockets: a redirect answer takes
//! a microsecond or two, so an event loop would only add work.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use super::handler::{HandlerConfig, Outcome, Peer, handle};
use crate::config::TableReader;
use crate::sip::Framing;

/// Receive buffer per socket, as Kamailio's anchor uses.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// The largest datagram read; larger ones arrive truncated and fail to parse.
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

/// Starts a worker thread answering on `socket` until `stop` is set.
pub fn spawn_worker(
    name: String,
    socket: UdpSocket,
    config: Arc<HandlerConfig>,
    table: TableReader,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(&socket, &config, &table, &stop))
}

fn serve(socket: &UdpSocket, config: &HandlerConfig, table: &TableReader, stop: &AtomicBool) {
    let mut datagram = vec![0u8; MAX_DATAGRAM];
    let mut response = Vec::with_capacity(2048);
    while !stop.load(Ordering::Relaxed) {
        let (len, source) = match socket.recv_from(&mut datagram) {
            Ok(received) => received,
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
        let peer = Peer {
            source,
            framing: Framing::Datagram,
        };
        let outcome = handle(config, &table.load(), &datagram[..len], peer, &mut response);
        if let Outcome::Reply { to, .. } = outcome
            && let Err(e) = socket.send_to(&response, to)
        {
            debug!(error = %e, %to, "UDP send failed");
        }
    }
}

//! SIP over TCP (RFC 3261 §18.3): accepts connections within the
//! connection caps (docs/security.md), in total and per address, and serves
//! each as a stream. The TLS listener accepts through the same loop, so its
//! connections count in the same caps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::connections::{ConnectionLimits, Slot};
use super::handler::{Peer, Transport};
use super::stream::{Connection, Shared};

/// Serves SIP over TCP on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, shared: Shared, shutdown: watch::Receiver<bool>) {
    let connections = Arc::clone(&shared.connections);
    let stop = shutdown.clone();
    accept_loop(
        listener,
        &connections,
        "TCP",
        stop,
        |stream: TcpStream, source, slot| {
            let peer = Peer::at(source, Transport::Tcp);
            let connection = Connection::new(stream, peer, shared.clone(), slot);
            tokio::spawn(connection.serve(shutdown.clone()));
        },
    )
    .await;
}

/// Accepts connections until `shutdown` turns true, handing each that
/// fits in the caps to `serve` with its slot; one that does not is closed
/// at once.
pub async fn accept_loop(
    listener: TcpListener,
    connections: &Arc<ConnectionLimits>,
    transport: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut serve: impl FnMut(TcpStream, SocketAddr, Slot),
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let slot = match connections.take(peer.ip()) {
                    Ok(slot) => slot,
                    Err(full) => {
                        // Closed at once: the peer learns nothing else.
                        let open = connections.open();
                        debug!(%peer, reason = %full, open, "{transport} connection refused");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                serve(stream, peer, slot);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                warn!(error = %e, "{transport} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

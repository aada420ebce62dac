//! Legs over TCP (RFC 3261 §18.1.1, §18.3): one connection per next hop,
//! opened on first use and reused by every leg and call after it, framed
//! by Content-Length on the way back; the responses read off it go to the
//! driver like any other. Closed when idle, or on an error; a message that
//! could not be written is news to its leg (a transport error, §16.9, so
//! the call moves on), told to the driver as `Inbound::LegFailed`.
//!
//! The connections run on a runtime of their own (one thread,
//! `sip-proxy-out`): the driver is synchronous and runs on the workers'
//! threads, and only queues bytes here. Bounded: connections in all, the
//! messages queued per connection, each message's size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use super::driver::Driver;
use super::inbox::Inbound;
use crate::server::peer::{Peer, Transport as PeerTransport};
use crate::sip::framing::{self, Frame};

/// Outbound connections at most; past it, a leg to a new next hop fails.
const MAX_CONNECTIONS: usize = 1024;
/// Messages queued per connection at most.
const QUEUE: usize = 256;
/// How long a connect may take before the legs waiting on it fail.
const CONNECT: Duration = Duration::from_secs(3);
/// A connection with nothing sent or received this long is closed. Longer
/// than Timer C (181 s), so that a ringing leg keeps its connection.
const IDLE: Duration = Duration::from_secs(300);
/// The largest message read back (a response with an SDP answer fits).
const MAX_MESSAGE: usize = 65_535;

/// Whom to tell when a message could not be written: a call's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegRef {
    pub nonce: u64,
    pub leg: usize,
}

/// A message for a connection, and whose it is.
struct Out {
    bytes: Vec<u8>,
    leg: Option<LegRef>,
}

/// The outbound connections and the runtime they run on.
pub struct Outbound {
    runtime: Option<tokio::runtime::Runtime>,
    connections: Mutex<HashMap<SocketAddr, mpsc::Sender<Out>>>,
    /// Where responses go; set once the driver exists.
    driver: Arc<OnceLock<Weak<Driver>>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        // Never blocks, so it may run inside another runtime's task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Outbound {
    pub fn new() -> std::io::Result<Outbound> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sip-proxy-out")
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Outbound {
            runtime: Some(runtime),
            connections: Mutex::new(HashMap::new()),
            driver: Arc::new(OnceLock::new()),
        })
    }

    /// Where responses read off the connections go.
    pub fn deliver_to(&self, driver: &Arc<Driver>) {
        let _ = self.driver.set(Arc::downgrade(driver));
    }

    /// Queues `bytes` for `to` over TCP, opening the connection when there
    /// is none; whether it was queued. A later failure to write it is told
    /// to the driver for `leg`.
    pub fn send(&self, to: SocketAddr, bytes: Vec<u8>, leg: Option<LegRef>) -> bool {
        let Some(runtime) = &self.runtime else {
            return false;
        };
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|_, sender| !sender.is_closed());
        let out = Out { bytes, leg };
        let sender = match connections.get(&to) {
            Some(sender) => sender.clone(),
            None if connections.len() >= MAX_CONNECTIONS => {
                debug!(%to, "proxy mode: too many outbound connections");
                return false;
            }
            None => {
                let (sender, queue) = mpsc::channel(QUEUE);
                runtime.spawn(connection(to, queue, Arc::clone(&self.driver)));
                connections.insert(to, sender.clone());
                sender
            }
        };
        sender.try_send(out).is_ok()
    }

    /// Outbound connections open (or opening) now.
    pub fn open(&self) -> usize {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.values().filter(|s| !s.is_closed()).count()
    }
}

/// One connection: connects, then writes what is queued and reads what
/// comes back until it is idle, fails or the peer closes it.
async fn connection(
    to: SocketAddr,
    mut queue: mpsc::Receiver<Out>,
    driver: Arc<OnceLock<Weak<Driver>>>,
) {
    let tell = |inbound: Inbound| {
        if let Some(driver) = driver.get().and_then(Weak::upgrade) {
            driver.deliver(inbound);
        }
    };
    let fail = |out: Out| {
        if let Some(LegRef { nonce, leg }) = out.leg {
            tell(Inbound::LegFailed { nonce, leg });
        }
    };
    let mut stream = match tokio::time::timeout(CONNECT, TcpStream::connect(to)).await {
        Ok(Ok(stream)) => stream,
        failed => {
            debug!(%to, ?failed, "proxy mode: cannot connect to the next hop");
            queue.close();
            while let Some(out) = queue.recv().await {
                fail(out);
            }
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let peer = Peer::at(to, PeerTransport::Tcp);
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            out = queue.recv() => {
                let Some(out) = out else { return };
                if let Err(e) = stream.write_all(&out.bytes).await {
                    debug!(%to, error = %e, "proxy mode: write to the next hop failed");
                    fail(out);
                    break;
                }
            }
            read = tokio::time::timeout(IDLE, stream.read_buf(&mut buffer)) => {
                match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => break,
                }
                loop {
                    match framing::check(&buffer, MAX_MESSAGE) {
                        Ok(Some(Frame::Message(n))) => {
                            let message = buffer.split_to(n);
                            if message.starts_with(b"SIP/2.0 ") {
                                tell(Inbound::Response { message: message.to_vec(), peer });
                            } else {
                                // A request over our own connection (RFC
                                // 5923 reuse) is not taken: peers open
                                // their own to our listener.
                                debug!(%to, "proxy mode: request on an outbound connection dropped");
                            }
                        }
                        Ok(Some(Frame::Ping(n))) => {
                            buffer.advance(n);
                            // RFC 5626 §3.5.1: a pong. A failure shows at
                            // the next write or read.
                            let _ = stream.write_all(b"\r\n").await;
                        }
                        Ok(Some(Frame::Skip(n))) => buffer.advance(n),
                        Ok(None) => break,
                        Err(e) => {
                            debug!(%to, error = %e, "proxy mode: closing the connection to the next hop");
                            queue.close();
                            while let Some(out) = queue.recv().await {
                                fail(out);
                            }
                            return;
                        }
                    }
                }
            }
        }
    }
    // Closed: what is still queued cannot go.
    queue.close();
    while let Some(out) = queue.recv().await {
        fail(out);
    }
}

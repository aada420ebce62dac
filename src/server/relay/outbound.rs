//! Legs over TCP and TLS (RFC 3261 §18.1.1, §18.3, §26.2.1): one connection per next hop,
//! opened on first use and reused by every leg and call after it, framed
//! by Content-Length on the way back; the responses read off it go to the
//! driver like any other. Closed when idle, or on an error; a message that
//! could not be written is news to its leg (a transport error, §16.9, so
//! the call moves on), told to the driver as `Inbound::LegFailed`. Over
//! TLS, the next hop's certificate must chain to `proxy.tls_ca` and name
//! the next hop's host (`crate::tls::client_config`); a handshake that
//! fails is a connection that fails.
//!
//! The connections run on a runtime of their own (one thread,
//! `sip-proxy-out`): the driver is synchronous and runs on the workers'
//! threads, and only queues bytes here. Bounded: connections in all, the
//! messages queued per connection, each message's size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tracing::debug;

use super::driver::Driver;
use super::inbox::Inbound;
use super::stats::ProxyStats;
use crate::server::peer::{Peer, Transport as PeerTransport};
use crate::sip::framing::{self, Frame};

/// Outbound connections at most; past it, a leg to a new next hop fails.
const MAX_CONNECTIONS: usize = 1024;
/// Messages queued per connection at most.
const QUEUE: usize = 256;
/// How long a connect (and a TLS handshake) may take before the legs
/// waiting on it fail.
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

/// Which connection: its address and whether it is TLS.
type Key = (SocketAddr, bool);

/// The outbound connections and the runtime they run on.
pub struct Outbound {
    runtime: Option<tokio::runtime::Runtime>,
    connections: Mutex<HashMap<Key, mpsc::Sender<Out>>>,
    /// The client side of TLS connections; none: TLS legs fail.
    tls: Option<TlsConnector>,
    /// The name a TLS next hop's certificate must carry, by address (its
    /// URI's host); an address not listed must carry its IP address.
    names: HashMap<SocketAddr, ServerName<'static>>,
    /// Where responses go; set once the driver exists.
    driver: Arc<OnceLock<Weak<Driver>>>,
    stats: Arc<ProxyStats>,
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
    pub fn new(
        tls: Option<Arc<ClientConfig>>,
        names: HashMap<SocketAddr, ServerName<'static>>,
        stats: Arc<ProxyStats>,
    ) -> std::io::Result<Outbound> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sip-proxy-out")
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Outbound {
            runtime: Some(runtime),
            connections: Mutex::new(HashMap::new()),
            tls: tls.map(TlsConnector::from),
            names,
            driver: Arc::new(OnceLock::new()),
            stats,
        })
    }

    /// Where responses read off the connections go.
    pub fn deliver_to(&self, driver: &Arc<Driver>) {
        let _ = self.driver.set(Arc::downgrade(driver));
    }

    /// Runs `task` on the outbound runtime (the DNS lookups).
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(task);
        }
    }

    /// Runs `f` inside the outbound runtime's context (what builds a
    /// resolver may need one).
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.runtime {
            Some(runtime) => {
                let _guard = runtime.enter();
                f()
            }
            None => f(),
        }
    }

    /// Queues `bytes` for `to` over TCP, or TLS when `tls`, opening the
    /// connection when there is none; whether it was queued. A later
    /// failure to write it is told to the driver for `leg`.
    pub fn send(&self, to: SocketAddr, tls: bool, bytes: Vec<u8>, leg: Option<LegRef>) -> bool {
        let Some(runtime) = &self.runtime else {
            return false;
        };
        let secure = match (tls, &self.tls) {
            (false, _) => None,
            (true, Some(connector)) => {
                let name = self
                    .names
                    .get(&to)
                    .cloned()
                    .unwrap_or(ServerName::IpAddress(to.ip().into()));
                Some((connector.clone(), name))
            }
            (true, None) => {
                debug!(%to, "proxy mode: a TLS leg with no TLS client configuration");
                return false;
            }
        };
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|_, sender| !sender.is_closed());
        let out = Out { bytes, leg };
        let sender = match connections.get(&(to, tls)) {
            Some(sender) => sender.clone(),
            None if connections.len() >= MAX_CONNECTIONS => {
                debug!(%to, "proxy mode: too many outbound connections");
                return false;
            }
            None => {
                let (sender, queue) = mpsc::channel(QUEUE);
                runtime.spawn(connection(
                    to,
                    secure,
                    queue,
                    Arc::clone(&self.driver),
                    Arc::clone(&self.stats),
                ));
                connections.insert((to, tls), sender.clone());
                sender
            }
        };
        sender.try_send(out).is_ok()
    }
}

/// One connection: connects (and shakes hands, over TLS), then serves it;
/// what is still queued when it ends cannot go.
async fn connection(
    to: SocketAddr,
    secure: Option<(TlsConnector, ServerName<'static>)>,
    mut queue: mpsc::Receiver<Out>,
    driver: Arc<OnceLock<Weak<Driver>>>,
    stats: Arc<ProxyStats>,
) {
    let opened = tokio::time::timeout(CONNECT, async {
        let tcp = TcpStream::connect(to).await?;
        let _ = tcp.set_nodelay(true);
        Ok::<_, std::io::Error>(match secure {
            Some((connector, name)) => Stream::Tls(Box::new(connector.connect(name, tcp).await?)),
            None => Stream::Tcp(tcp),
        })
    })
    .await;
    let open = &stats.outbound_open;
    match opened {
        Ok(Ok(stream)) => {
            open.fetch_add(1, Ordering::Relaxed);
            match stream {
                Stream::Tcp(stream) => {
                    serve(stream, to, PeerTransport::Tcp, &mut queue, &driver).await;
                }
                Stream::Tls(stream) => {
                    serve(*stream, to, PeerTransport::Tls, &mut queue, &driver).await;
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => {
            stats.outbound_failed.fetch_add(1, Ordering::Relaxed);
            debug!(%to, error = %e, "proxy mode: cannot connect to the next hop");
        }
        Err(_) => {
            stats.outbound_failed.fetch_add(1, Ordering::Relaxed);
            debug!(%to, "proxy mode: connecting to the next hop timed out");
        }
    }
    queue.close();
    while let Some(out) = queue.recv().await {
        fail(&driver, out);
    }
}

/// A connection once open.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Tells the driver that `out` could not be written, when it was a leg's.
fn fail(driver: &OnceLock<Weak<Driver>>, out: Out) {
    if let Some(LegRef { nonce, leg }) = out.leg {
        tell(
            driver,
            Inbound::LegFailed {
                nonce,
                leg,
                bytes: out.bytes,
            },
        );
    }
}

fn tell(driver: &OnceLock<Weak<Driver>>, inbound: Inbound) {
    if let Some(driver) = driver.get().and_then(Weak::upgrade) {
        driver.deliver(inbound);
    }
}

/// Writes what is queued and reads what comes back until the connection
/// is idle, fails, or the peer closes it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    to: SocketAddr,
    transport: PeerTransport,
    queue: &mut mpsc::Receiver<Out>,
    driver: &OnceLock<Weak<Driver>>,
) {
    let peer = Peer::at(to, transport);
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            out = queue.recv() => {
                let Some(out) = out else { return };
                // TLS holds records until flushed.
                let written = match stream.write_all(&out.bytes).await {
                    Ok(()) => stream.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    debug!(%to, error = %e, "proxy mode: write to the next hop failed");
                    fail(driver, out);
                    return;
                }
            }
            read = tokio::time::timeout(IDLE, stream.read_buf(&mut buffer)) => {
                match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
                loop {
                    match framing::check(&buffer, MAX_MESSAGE) {
                        Ok(Some(Frame::Message(n))) => {
                            let message = buffer.split_to(n);
                            if message.starts_with(b"SIP/2.0 ") {
                                tell(driver, Inbound::Response { message: message.to_vec(), peer });
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
                            let _ = stream.flush().await;
                        }
                        Ok(Some(Frame::Skip(n))) => buffer.advance(n),
                        Ok(None) => break,
                        Err(e) => {
                            debug!(%to, error = %e, "proxy mode: closing the connection to the next hop");
                            return;
                        }
                    }
                }
            }
        }
    }
}

//! SIP over TLS (RFC 3261 §26.2.1, RFC 5630; docs/security.md, "TLS"):
//! connections accepted within the TCP caps, a TLS handshake under a
//! deadline, then the same SIP as over TCP on the decrypted stream.
//!
//! A handshake takes a token from its source's flood bucket (docs/security.md):
//! it costs public-key operations, so a peer reconnecting in a loop is
//! limited like one sending messages in a loop.
//!
//! A connection takes the TLS configuration serving when it is accepted
//! (`crate::tls` reloads it from the files), so a rotated certificate
//! reaches new connections while open ones keep theirs. A peer whose
//! client certificate verified, and named a trusted name when those are
//! set, is trusted like an address on the trust list.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::flood::Verdict;
use super::handler::{Peer, Transport};
use super::stream::{Connection, Shared};
use super::tcp::accept_loop;
use crate::tls::{TlsHandle, TrustNames};

/// How a handshake ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Ok,
    /// Not done by the deadline: silent or a byte at a time.
    Timeout,
    /// A client certificate is required and none was offered.
    NoClientCertificate,
    /// The client certificate did not verify against the client CA.
    BadClientCertificate,
    /// The peer refused ours (a TLS alert): it does not trust it, say.
    PeerRefused,
    /// Not TLS, or TLS this server does not speak (old versions, no
    /// common cipher suite).
    Protocol,
    /// The connection closed or failed before the handshake was done.
    Closed,
    /// Its source was over its flood limit: closed before any handshake,
    /// which costs the server far more than a datagram.
    RateLimited,
}

impl Handshake {
    pub const ALL: [Handshake; 8] = [
        Handshake::Ok,
        Handshake::Timeout,
        Handshake::NoClientCertificate,
        Handshake::BadClientCertificate,
        Handshake::PeerRefused,
        Handshake::Protocol,
        Handshake::Closed,
        Handshake::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Ok => "ok",
            Handshake::Timeout => "timeout",
            Handshake::NoClientCertificate => "no_client_certificate",
            Handshake::BadClientCertificate => "bad_client_certificate",
            Handshake::PeerRefused => "peer_refused",
            Handshake::Protocol => "protocol",
            Handshake::Closed => "closed",
            Handshake::RateLimited => "rate_limited",
        }
    }

    /// Why a handshake failed, from the error tokio-rustls gave.
    fn failed(e: &io::Error) -> Handshake {
        let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
            return Handshake::Closed;
        };
        match tls {
            rustls::Error::NoCertificatesPresented => Handshake::NoClientCertificate,
            rustls::Error::InvalidCertificate(_) => Handshake::BadClientCertificate,
            rustls::Error::AlertReceived(_) => Handshake::PeerRefused,
            _ => Handshake::Protocol,
        }
    }
}

/// The TLS listeners' counts, read by the metrics.
#[derive(Debug, Default)]
pub struct TlsStats {
    handshakes: [AtomicU64; Handshake::ALL.len()],
    open: AtomicUsize,
}

impl TlsStats {
    fn count(&self, handshake: Handshake) {
        let i = Handshake::ALL
            .iter()
            .position(|&h| h == handshake)
            .unwrap_or(0);
        self.handshakes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Handshakes that ended as `handshake`, since the start.
    pub fn handshakes(&self, handshake: Handshake) -> u64 {
        Handshake::ALL
            .iter()
            .position(|&h| h == handshake)
            .map_or(0, |i| self.handshakes[i].load(Ordering::Relaxed))
    }

    /// TLS connections open now, past their handshake.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// One open TLS connection in the counts, given back on drop.
struct Open(Arc<TlsStats>);

impl Open {
    fn new(stats: &Arc<TlsStats>) -> Open {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(stats))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every TLS connection shares besides the SIP side.
#[derive(Debug, Clone)]
pub struct TlsShared {
    pub handle: TlsHandle,
    pub trust_names: TrustNames,
    pub handshake_deadline: Duration,
    pub stats: Arc<TlsStats>,
}

/// Serves SIP over TLS on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    tls: TlsShared,
    shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::clone(&shared.connections);
    let stop = shutdown.clone();
    accept_loop(
        listener,
        &connections,
        "TLS",
        stop,
        |stream: TcpStream, source, slot| {
            // A handshake takes a token from the source's bucket, like a
            // message: a peer reconnecting in a loop would otherwise make
            // the server do public-key work unbounded by the flood guard.
            let admitted = shared.handler.flood.admit(source.ip(), Instant::now);
            if admitted != Verdict::Admit {
                tls.stats.count(Handshake::RateLimited);
                debug!(peer = %source, "TLS connection closed: over its flood limit");
                return;
            }
            let (shared, tls, mut shutdown) = (shared.clone(), tls.clone(), shutdown.clone());
            tokio::spawn(async move {
                let acceptor = TlsAcceptor::from(Arc::clone(&tls.handle.serving().config));
                let handshake = tokio::time::timeout(tls.handshake_deadline, acceptor.accept(stream));
                let accepted = tokio::select! {
                    accepted = handshake => accepted,
                    _ = shutdown.changed() => return,
                };
                let stream = match accepted {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        let failed = Handshake::failed(&e);
                        tls.stats.count(failed);
                        debug!(peer = %source, reason = failed.as_str(), error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_elapsed) => {
                        tls.stats.count(Handshake::Timeout);
                        debug!(peer = %source, "TLS handshake not done by its deadline");
                        return;
                    }
                };
                tls.stats.count(Handshake::Ok);
                let trusted_by_certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .is_some_and(|end_entity| tls.trust_names.trusts(end_entity));
                let peer = Peer {
                    trusted_by_certificate,
                    ..Peer::at(source, Transport::Tls)
                };
                let _open = Open::new(&tls.stats);
                Connection::new(stream, peer, shared, slot)
                    .serve(shutdown)
                    .await;
            });
        },
    )
    .await;
}

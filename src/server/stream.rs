//! SIP over a stream, TCP or TLS (RFC 3261 §18.3): messages framed by
//! Content-Length, several per read or one over many reads, answered on
//! the same connection; CRLF CRLF keep-alives answered with CRLF (RFC 5626
//! §3.5.1). The listeners (`tcp`, `tls`) accept a connection and hand its
//! byte stream here.
//!
//! Bounded (docs/security.md): each connection's buffer by the largest
//! message allowed, the time a connection may sit idle, and the time one
//! message may take to arrive once its first byte has (slowloris); the
//! listeners bound the connections in total and per address.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use super::connections::{ConnectionLimits, Slot};
use super::handler::{Context, Handler, Outcome, Peer};
use super::metrics::{Dropped, Shard};
use super::records_tap::{RecordsFeed, RecordsTap};
use super::relay::upstream::Registration;
use super::supervise::contain;
use crate::routing_data::TableReader;
use crate::settings::LimitSettings;
use crate::sip::framing::{self, Frame, FrameError};
use crate::sip::oversize::readable_head;

/// The next response proxy mode queued for this connection; never, when
/// it has no queue.
async fn queued(relayed: &mut Option<Registration>) -> Option<Vec<u8>> {
    match relayed {
        Some(registration) => registration.queue.recv().await,
        None => std::future::pending().await,
    }
}

/// Answers queued for one write are written out early past this size.
const FLUSH_AT: usize = 64 * 1024;

/// Per-connection bounds.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// The largest message; more is answered `513` and closes the
    /// connection.
    pub max_message: usize,
    /// Nothing received for this long closes the connection.
    pub idle: Duration,
    /// A message not complete this long after its first byte closes it.
    pub message_deadline: Duration,
}

impl StreamLimits {
    pub fn from_settings(limits: &LimitSettings) -> StreamLimits {
        StreamLimits {
            max_message: limits.max_message_bytes,
            idle: Duration::from_secs(limits.tcp_idle_seconds),
            message_deadline: Duration::from_millis(limits.tcp_message_ms),
        }
    }
}

/// Everything a connection shares with the others.
#[derive(Clone)]
pub struct Shared {
    pub handler: Arc<Handler>,
    pub table: TableReader,
    pub limits: StreamLimits,
    pub connections: Arc<ConnectionLimits>,
    pub metrics: Arc<Shard>,
    /// Call records, when on: each connection gets its own tap.
    pub records: Option<RecordsFeed>,
}

/// One connection being served.
pub struct Connection<S> {
    stream: S,
    peer: Peer,
    shared: Shared,
    tap: Option<RecordsTap>,
    /// Given back to the connection counts when the connection ends.
    _slot: Slot,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, peer: Peer, shared: Shared, slot: Slot) -> Self {
        let tap = shared.records.as_ref().map(RecordsFeed::tap);
        Connection {
            stream,
            peer,
            shared,
            tap,
            _slot: slot,
        }
    }

    /// Answers what arrives until the peer closes, a limit is crossed, or
    /// `shutdown` turns true.
    pub async fn serve(mut self, mut shutdown: watch::Receiver<bool>) {
        let limits = self.shared.limits;
        let mut buffer = BytesMut::with_capacity(4096);
        let mut response = Vec::with_capacity(2048);
        let mut outgoing = Vec::with_capacity(4096);
        // When the first byte of the message still incomplete in `buffer`
        // arrived.
        let mut partial_since: Option<Instant> = None;
        // Proxy mode answers a relayed call later, from its own thread:
        // through this connection's queue.
        let mut relayed = self
            .shared
            .handler
            .relay
            .as_ref()
            .filter(|relay| relay.relays(self.peer.source.ip()))
            .map(|relay| relay.writers.register());
        self.peer.connection = relayed.as_ref().map(|r| r.id);
        loop {
            let answered = self
                .answer_buffered(&mut buffer, &mut response, &mut outgoing)
                .await;
            let framed = match answered {
                Ok(framed) => framed,
                Err(reason) => {
                    debug!(peer = %self.peer.source, %reason, "closing the connection");
                    return;
                }
            };
            if buffer.is_empty() {
                partial_since = None;
            } else if framed > 0 || partial_since.is_none() {
                partial_since = Some(Instant::now());
            }
            let (deadline, why) = match partial_since {
                None => (Instant::now() + limits.idle, "idle"),
                Some(since) => (
                    since + limits.message_deadline,
                    "message incomplete at its deadline",
                ),
            };
            let read = tokio::select! {
                read = timeout_at(deadline, self.stream.read_buf(&mut buffer)) => read,
                Some(bytes) = queued(&mut relayed) => {
                    if let Err(reason) = self.write(&bytes).await {
                        debug!(peer = %self.peer.source, %reason, "closing the connection");
                        return;
                    }
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            match read {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    debug!(peer = %self.peer.source, error = %e, "read failed");
                    return;
                }
                Err(_elapsed) => {
                    debug!(peer = %self.peer.source, "closing the connection: {why}");
                    return;
                }
            }
        }
    }

    /// Answers every complete frame in `buffer`, leaving a partial one;
    /// how many frames it took. The answers to what one read brought go
    /// out in one write: a pipelining peer costs one system call per read,
    /// not one per request.
    async fn answer_buffered(
        &mut self,
        buffer: &mut BytesMut,
        response: &mut Vec<u8>,
        outgoing: &mut Vec<u8>,
    ) -> Result<usize, String> {
        let started = Instant::now();
        let mut framed = 0;
        let mut answered = 0;
        let closing = loop {
            let max_message = self.shared.limits.max_message;
            let frame = match framing::check(buffer, max_message) {
                Ok(frame) => frame,
                Err(e @ FrameError::TooLarge(_)) => {
                    // Say 513 from the head, then close: the stream cannot
                    // be followed past a message it will not read.
                    if self.answer_oversize(readable_head(buffer, max_message), response) {
                        outgoing.extend_from_slice(response);
                        answered += 1;
                    }
                    break Some(e.to_string());
                }
                Err(e @ FrameError::BadContentLength) => {
                    self.shared.metrics.dropped(Dropped::Malformed);
                    break Some(e.to_string());
                }
            };
            match frame {
                None => break None,
                Some(Frame::Skip(n)) => buffer.advance(n),
                Some(Frame::Ping(n)) => {
                    buffer.advance(n);
                    outgoing.extend_from_slice(b"\r\n");
                }
                Some(Frame::Message(n)) => {
                    let message = buffer.split_to(n);
                    if self.answer(&message, response) {
                        outgoing.extend_from_slice(response);
                        answered += 1;
                    }
                }
            }
            framed += 1;
            if outgoing.len() >= FLUSH_AT {
                self.flush(outgoing).await?;
            }
        };
        // Answers to the requests before a framing error still go out.
        self.flush(outgoing).await?;
        if answered > 0 {
            self.shared.metrics.latency(started.elapsed(), answered);
        }
        match closing {
            Some(reason) => Err(reason),
            None => Ok(framed),
        }
    }

    /// Handles one framed message; whether `response` holds an answer.
    fn answer(&mut self, message: &[u8], response: &mut Vec<u8>) -> bool {
        let peer = self.peer;
        let shared = &self.shared;
        let tap = &mut self.tap;
        let outcome = contain("a TCP or TLS request", || {
            let table = shared.table.load();
            let cx = Context::new(&table, response);
            let mut cx = match tap.as_mut() {
                Some(tap) => {
                    tap.serving(&table);
                    cx.with_tap(tap)
                }
                None => cx,
            };
            shared.handler.handle(&mut cx, message, peer)
        });
        matches!(
            shared.metrics.record_contained(outcome),
            Some(Outcome::Reply { .. })
        )
    }

    /// Handles the readable head of a message over the size limit; whether
    /// `response` holds an answer.
    fn answer_oversize(&self, head: &[u8], response: &mut Vec<u8>) -> bool {
        let peer = self.peer;
        let shared = &self.shared;
        let outcome = contain("a TCP or TLS request over the size limit", || {
            shared.handler.handle_oversize(response, head, peer)
        });
        matches!(
            shared.metrics.record_contained(outcome),
            Some(Outcome::Reply { .. })
        )
    }

    /// Writes out and empties `outgoing`.
    async fn flush(&mut self, outgoing: &mut Vec<u8>) -> Result<(), String> {
        if outgoing.is_empty() {
            return Ok(());
        }
        let written = self.write(outgoing).await;
        outgoing.clear();
        written
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
        // TLS holds records until flushed; TCP's flush does nothing.
        self.stream.flush().await.map_err(|e| e.to_string())
    }
}

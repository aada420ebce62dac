//! SIP over TCP (RFC 3261 §18.3): messages framed by Content-Length,
//! several per read or one over many reads, answered on the same
//! connection; CRLF CRLF keep-alives answered with CRLF (RFC 5626 §3.5.1).
//! Each connection's buffer is bounded by the largest message allowed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::handler::{HandlerConfig, Outcome, Peer, handle};
use crate::config::TableReader;
use crate::sip::Framing;
use crate::sip::framing::{self, Frame};

/// The largest message accepted on a connection; more closes it.
pub const MAX_MESSAGE: usize = 65_535;

/// Accepts connections until `shutdown` turns true.
pub async fn accept_loop(
    listener: TcpListener,
    config: Arc<HandlerConfig>,
    table: TableReader,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    stream,
                    peer,
                    config: Arc::clone(&config),
                    table: table.clone(),
                };
                tokio::spawn(connection.serve(shutdown.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<HandlerConfig>,
    table: TableReader,
}

impl Connection {
    async fn serve(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut buffer = BytesMut::with_capacity(4096);
        let mut response = Vec::with_capacity(2048);
        loop {
            if let Err(reason) = self.answer_buffered(&mut buffer, &mut response).await {
                debug!(peer = %self.peer, %reason, "closing TCP connection");
                return;
            }
            let read = tokio::select! {
                read = self.stream.read_buf(&mut buffer) => read,
                _ = shutdown.changed() => return,
            };
            match read {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "TCP read failed");
                    return;
                }
            }
        }
    }

    /// Answers every complete frame in `buffer`, leaving a partial one.
    async fn answer_buffered(
        &mut self,
        buffer: &mut BytesMut,
        response: &mut Vec<u8>,
    ) -> Result<(), String> {
        loop {
            let frame = framing::check(buffer, MAX_MESSAGE).map_err(|e| e.to_string())?;
            match frame {
                None => return Ok(()),
                Some(Frame::Skip(n)) => buffer.advance(n),
                Some(Frame::Ping(n)) => {
                    buffer.advance(n);
                    self.write(b"\r\n").await?;
                }
                Some(Frame::Message(n)) => {
                    let message = buffer.split_to(n);
                    let peer = Peer {
                        source: self.peer,
                        framing: Framing::Stream,
                    };
                    let outcome =
                        handle(&self.config, &self.table.load(), &message, peer, response);
                    if let Outcome::Reply { .. } = outcome {
                        let bytes = std::mem::take(response);
                        let written = self.write(&bytes).await;
                        *response = bytes;
                        written?;
                    }
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

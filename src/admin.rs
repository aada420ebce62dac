//! The admin HTTP endpoint (docs/operations.md): `/metrics` (OpenMetrics text, which
//! Prometheus scrapes), `/healthz` (the process is up) and `/readyz` (a
//! routing table is loaded and every SIP listener is serving).
//!
//! A deliberately small HTTP/1.1 responder (RFC 9112): one GET or HEAD per
//! connection, answered with `Connection: close`. The request head is
//! bounded (8 KiB, 5 s) and so are the connections served at once: enough
//! for Prometheus, orchestrator probes and curl on a loopback or management
//! address, and nothing an attacker can grow.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::server::metrics::Metrics;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 32;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Serves the admin endpoints until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Arc::clone(&metrics)));
    let registry = Arc::new(registry);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "admin connection refused: too many open");
            continue;
        };
        let registry = Arc::clone(&registry);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &registry, &metrics).await {
                debug!(%peer, error = %e, "admin request failed");
            }
            drop(permit);
        });
    }
}

/// Reads one request head and answers it.
async fn answer(
    mut stream: TcpStream,
    registry: &Registry,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let response = match request_line(&head) {
        Some((method, path)) => respond(method, path, registry, metrics),
        None => Response::text(400, "Bad Request", "bad request\n"),
    };
    stream.write_all(&response.into_bytes(&head)).await?;
    stream.shutdown().await
}

/// The bytes up to the blank line ending the head, at most `MAX_HEAD`.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// Method and path (without a query) of the request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or(target)))
}

struct Response {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(code: u16, reason: &'static str, body: &str) -> Response {
        Response {
            code,
            reason,
            content_type: TEXT,
            body: body.to_owned(),
        }
    }

    /// The response bytes; no body for a HEAD request.
    fn into_bytes(self, head: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.code,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head.starts_with(b"HEAD ") {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn respond(method: &str, path: &str, registry: &Registry, metrics: &Metrics) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "Method Not Allowed", "GET or HEAD only\n");
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => Response {
                    code: 200,
                    reason: "OK",
                    content_type: OPENMETRICS,
                    body,
                },
                Err(_) => Response::text(500, "Internal Server Error", "encoding failed\n"),
            }
        }
        "/healthz" => Response::text(200, "OK", "ok\n"),
        "/readyz" if metrics.is_ready() => Response::text(200, "OK", "ready\n"),
        "/readyz" => Response::text(503, "Service Unavailable", "not ready\n"),
        _ => Response::text(404, "Not Found", "/metrics, /healthz or /readyz\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_read_strictly() {
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"GET /healthz HTTP/1.0\r\n\r\n"),
            Some(("GET", "/healthz"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_line(b"GET  /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe\r\n\r\n"), None);
        assert_eq!(request_line(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}

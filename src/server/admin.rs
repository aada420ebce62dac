//! The admin HTTP endpoint (docs/operations.md): `/metrics` (OpenMetrics text, which
//! Prometheus scrapes), `/healthz` (the process is up) and `/readyz` (a
//! routing table is loaded and every SIP listener is serving).
//!
//! Two more reveal routing data, phone numbers included, and so exist only
//! when an access token is configured (`admin_token_file`, docs/security.md):
//! `/reloads` (the reload audit trail) and `/route?to=&from=` (a decision
//! against the serving table). Each request to them must carry
//! `Authorization: Bearer TOKEN`, compared in constant time.
//!
//! With call records on, `/calls?number=&limit=` (same token) lists the
//! recent records from memory, newest first.
//!
//! A deliberately small HTTP/1.1 responder (RFC 9112): one GET or HEAD per
//! connection, answered with `Connection: close`. The request head is
//! bounded (8 KiB, and 5 s for the whole head, however slowly it trickles)
//! and so are the connections waiting for one, at a cap far above what
//! probes, Prometheus and curl need; past it the longest-waiting one is
//! closed, never the new one. 1,000 idle or trickling connections leave
//! `/healthz` answering at once, and so do more than the cap
//! (tests/records.rs), where the old cap of 32 refused the probe. A
//! connection costs a task and a descriptor until its deadline, nothing
//! more; the cap stays below the unit's `LimitNOFILE`.
//! hyper would bring the same deadlines and caps to configure, not remove
//! them, and a dependency tree for six read-only paths.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use super::metrics::Metrics;
use super::readiness::Readiness;
use crate::records::Recent;
use crate::routing_data::TableReader;
use crate::settings::AdminToken;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections waiting for their request head at once. Far above what
/// probes and scrapes need; below systemd's `LimitNOFILE=8192` with the
/// SIP side's descriptors. At the cap a new connection is not refused:
/// the one that has waited longest is closed instead, so whoever holds
/// connections open cannot keep a probe (which sends its head at once)
/// from being answered.
const MAX_CONNECTIONS: usize = 4096;
/// Records `/calls` lists when no `limit` is given, and at most.
const CALLS_DEFAULT: usize = 20;
const CALLS_MAX: usize = 1000;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// What the endpoints that reveal routing data need: the token that
/// guards them and the serving table with its audit trail.
#[derive(Debug, Clone)]
pub struct RoutingAccess {
    pub token: AdminToken,
    pub table: TableReader,
    /// The recent call records, for `/calls`, when records are on.
    pub recent: Option<Arc<Recent>>,
}

/// Serves the admin endpoints until `shutdown` turns true; `/reloads` and
/// `/route` only with `routing` (else they are 404 like any unknown path).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    routing: Option<RoutingAccess>,
    mut shutdown: watch::Receiver<bool>,
) {
    let routing = routing.map(Arc::new);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Arc::clone(&metrics)));
    let registry = Arc::new(registry);
    let waiting = Arc::new(Waiting::default());
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
        let (registered, evicted) = Waiting::register(&waiting);
        let registry = Arc::clone(&registry);
        let readiness = readiness.clone();
        let routing = routing.clone();
        tokio::spawn(async move {
            let served = answer(
                stream,
                registered,
                &evicted,
                &registry,
                &readiness,
                routing.as_deref(),
            );
            if let Err(e) = served.await {
                debug!(%peer, error = %e, "admin request failed");
            }
        });
    }
}

/// The connections waiting for their request head, oldest first.
#[derive(Default)]
struct Waiting {
    next: AtomicU64,
    connections: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

impl Waiting {
    /// Counts a new connection in, closing the longest-waiting one when at
    /// the cap. Returns its registration (dropped once its head is read)
    /// and what tells it it was evicted.
    fn register(waiting: &Arc<Waiting>) -> (Registered, Arc<Notify>) {
        let id = waiting.next.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut connections = waiting
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connections.len() >= MAX_CONNECTIONS
            && let Some((_, oldest)) = connections.pop_first()
        {
            // A permit is stored if it is not waiting yet: it still sees it.
            oldest.notify_one();
        }
        connections.insert(id, Arc::clone(&evicted));
        let registered = Registered {
            waiting: Arc::clone(waiting),
            id,
        };
        (registered, evicted)
    }
}

/// A connection counted as waiting for its head; counted out when dropped.
struct Registered {
    waiting: Arc<Waiting>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.waiting
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Reads one request head (unless evicted first) and answers it.
async fn answer(
    mut stream: TcpStream,
    registered: Registered,
    evicted: &Notify,
    registry: &Registry,
    readiness: &Readiness,
    routing: Option<&RoutingAccess>,
) -> std::io::Result<()> {
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream));
    let head = tokio::select! {
        head = read => match head {
            Ok(head) => head?,
            Err(_) => return Ok(()),
        },
        () = evicted.notified() => {
            debug!("admin connection closed: the longest waiting at the cap");
            return Ok(());
        }
    };
    drop(registered);
    let response = match request_line(&head) {
        Some((method, target)) => respond(method, target, &head, registry, readiness, routing),
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

/// Method and target (path and query) of the request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    Some((method, target))
}

/// The path and the query (empty when there is none) of a target.
fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The credentials of the first `Authorization: Bearer ...` header.
fn bearer(head: &[u8]) -> Option<&[u8]> {
    let fields = head.split(|&b| b == b'\n').skip(1);
    let value = fields.map(<[u8]>::trim_ascii).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        name.eq_ignore_ascii_case(b"authorization")
            .then(|| value[1..].trim_ascii())
    })?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

struct Response {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    /// One more header line, without its CRLF.
    header: Option<&'static str>,
    body: String,
}

impl Response {
    fn text(code: u16, reason: &'static str, body: &str) -> Response {
        Response {
            code,
            reason,
            content_type: TEXT,
            header: None,
            body: body.to_owned(),
        }
    }

    fn json(body: String) -> Response {
        Response {
            code: 200,
            reason: "OK",
            content_type: JSON,
            header: None,
            body,
        }
    }

    fn bad_request(body: &str) -> Response {
        Response::text(400, "Bad Request", body)
    }

    /// The response bytes; no body for a HEAD request.
    fn into_bytes(self, head: &[u8]) -> Vec<u8> {
        let extra = match self.header {
            Some(header) => format!("{header}\r\n"),
            None => String::new(),
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n",
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

fn respond(
    method: &str,
    target: &str,
    head: &[u8],
    registry: &Registry,
    readiness: &Readiness,
    routing: Option<&RoutingAccess>,
) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "Method Not Allowed", "GET or HEAD only\n");
    }
    let (path, query) = split_target(target);
    if let Some(routing) = routing
        && (matches!(path, "/reloads" | "/route") || (path == "/calls" && routing.recent.is_some()))
    {
        return match authorized(head, &routing.token) {
            Ok(()) if path == "/reloads" => reloads(&routing.table),
            Ok(()) if path == "/calls" => match &routing.recent {
                Some(recent) => calls(query, recent),
                None => Response::text(404, "Not Found", "call records are off\n"),
            },
            Ok(()) => route(query, &routing.table),
            Err(refused) => refused,
        };
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => Response {
                    code: 200,
                    reason: "OK",
                    content_type: OPENMETRICS,
                    header: None,
                    body,
                },
                Err(_) => Response::text(500, "Internal Server Error", "encoding failed\n"),
            }
        }
        "/healthz" => Response::text(200, "OK", "ok\n"),
        "/readyz" if readiness.is_ready() => Response::text(200, "OK", "ready\n"),
        "/readyz" => Response::text(503, "Service Unavailable", "not ready\n"),
        _ => Response::text(404, "Not Found", "/metrics, /healthz or /readyz\n"),
    }
}

/// Nothing, or the 401 to answer: no bearer token, or the wrong one.
fn authorized(head: &[u8], token: &AdminToken) -> Result<(), Response> {
    let (challenge, body) = match bearer(head) {
        Some(presented) if token.matches(presented) => return Ok(()),
        Some(_) => (
            "WWW-Authenticate: Bearer realm=\"switchboard\", error=\"invalid_token\"",
            "wrong token\n",
        ),
        None => (
            "WWW-Authenticate: Bearer realm=\"switchboard\"",
            "send Authorization: Bearer TOKEN\n",
        ),
    };
    debug!("admin request refused: {}", body.trim_end());
    Err(Response {
        code: 401,
        reason: "Unauthorized",
        content_type: TEXT,
        header: Some(challenge),
        body: body.to_owned(),
    })
}

/// `/reloads`: the audit trail, newest first.
fn reloads(table: &TableReader) -> Response {
    match serde_json::to_string(&table.audit().newest_first()) {
        Ok(mut body) => {
            body.push('\n');
            Response::json(body)
        }
        Err(_) => Response::text(500, "Internal Server Error", "encoding failed\n"),
    }
}

/// `/route?to=NUMBER&from=NUMBER`: what `switchboard route --json` says,
/// against the serving table.
fn route(query: &str, table: &TableReader) -> Response {
    let (to, from) = match route_query(query) {
        Ok(numbers) => numbers,
        Err(problem) => return Response::bad_request(&format!("{problem}\n")),
    };
    let table = table.load();
    let summary = super::redirect::summary(&table.decide(&to, from.as_deref()));
    match serde_json::to_string(&summary) {
        Ok(mut body) => {
            body.push('\n');
            Response::json(body)
        }
        Err(_) => Response::text(500, "Internal Server Error", "encoding failed\n"),
    }
}

/// `/calls?number=NUMBER&limit=N`: the recent call records whose dialed
/// or calling number is NUMBER (in any spelling, read as the records read
/// callers), newest first; every recent record without `number`.
fn calls(query: &str, recent: &Recent) -> Response {
    let (mut number, mut limit) = (None, CALLS_DEFAULT);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(mut value) = percent_decode(value) else {
            return Response::bad_request(&format!(
                "{name}=: a % not followed by two hex digits\n"
            ));
        };
        match name {
            "number" => {
                if let Some(first) = value.first_mut().filter(|b| **b == b' ') {
                    *first = b'+';
                }
                number = Some(String::from_utf8_lossy(&value).into_owned());
            }
            "limit" => match std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                Some(n) if n >= 1 => limit = n.min(CALLS_MAX),
                _ => return Response::bad_request("limit=: give a number from 1 to 1000\n"),
            },
            _ => {
                return Response::bad_request(&format!(
                    "unknown parameter {name:?}: give number= and limit=\n"
                ));
            }
        }
    }
    let found = recent.matching(number.as_deref(), limit);
    let found: Vec<&crate::records::CallRecord> = found.iter().map(|r| &**r).collect();
    match serde_json::to_string(&found) {
        Ok(mut body) => {
            body.push('\n');
            Response::json(body)
        }
        Err(_) => Response::text(500, "Internal Server Error", "encoding failed\n"),
    }
}

/// The `to` and `from` of a `/route` query, decoded. In a query string `+`
/// means a space, so `+18005550100` unencoded arrives as ` 18005550100`:
/// a leading space is read as the `+` it was (`%2B` works too).
fn route_query(query: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let (mut to, mut from) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "to" => &mut to,
            "from" => &mut from,
            _ => return Err(format!("unknown parameter {name:?}: give to= and from=")),
        };
        if slot.is_some() {
            return Err(format!("{name}= given twice"));
        }
        let mut value = percent_decode(value)
            .ok_or_else(|| format!("{name}=: a % not followed by two hex digits"))?;
        if let Some(first) = value.first_mut().filter(|b| **b == b' ') {
            *first = b'+';
        }
        *slot = Some(value);
    }
    match to {
        Some(to) if !to.is_empty() => Ok((to, from)),
        _ => Err("give the dialed number: /route?to=NUMBER[&from=NUMBER]".to_owned()),
    }
}

/// A query value decoded (`application/x-www-form-urlencoded`: `+` is a
/// space, `%XX` a byte); `None` when a `%` is not followed by two hex digits.
fn percent_decode(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_read_strictly() {
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics?x=1"))
        );
        assert_eq!(split_target("/metrics?x=1"), ("/metrics", "x=1"));
        assert_eq!(split_target("/metrics"), ("/metrics", ""));
        assert_eq!(
            request_line(b"GET /healthz HTTP/1.0\r\n\r\n"),
            Some(("GET", "/healthz"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_line(b"GET  /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe\r\n\r\n"), None);
        assert_eq!(request_line(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[test]
    fn bearer_credentials_are_read_from_the_head() {
        let head = b"GET /reloads HTTP/1.1\r\nHost: a\r\nauthorization:  bearer  abc \r\n\r\n";
        assert_eq!(bearer(head), Some(&b"abc"[..]));
        let head = b"GET /reloads HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n";
        assert_eq!(bearer(head), None);
        assert_eq!(bearer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), None);
        // The request line is not a header, whatever it holds.
        assert_eq!(bearer(b"Authorization: Bearer x\r\n\r\n"), None);
    }

    #[test]
    fn calls_queries_are_checked() {
        let recent = Recent::new(10, crate::routing::Region::from_code("US").expect("US"));
        let code = |q: &str| calls(q, &recent).code;
        assert_eq!(code(""), 200);
        assert_eq!(code("number=%2B16505550123&limit=5"), 200);
        assert_eq!(code("number=+16505550123"), 200);
        assert_eq!(code("limit=1000"), 200);
        assert_eq!(code("limit=0"), 400);
        assert_eq!(code("limit=x"), 400);
        assert_eq!(code("number=%zz"), 400);
        assert_eq!(code("to=1"), 400);
        assert_eq!(calls("", &recent).body, "[]\n");
    }

    #[test]
    fn route_queries_are_decoded_with_plus_as_a_leading_plus() {
        let decoded = |q: &str| {
            route_query(q).map(|(to, from)| {
                (
                    String::from_utf8(to).unwrap(),
                    from.map(|f| String::from_utf8(f).unwrap()),
                )
            })
        };
        let expected = ("+18005550100".to_owned(), Some("+16505550123".to_owned()));
        assert_eq!(
            decoded("to=%2B18005550100&from=%2b16505550123"),
            Ok(expected.clone())
        );
        assert_eq!(decoded("to=+18005550100&from=+16505550123"), Ok(expected));
        assert_eq!(
            decoded("to=sip%3A%2B18005550100%40pbx&"),
            Ok(("sip:+18005550100@pbx".to_owned(), None))
        );
        assert_eq!(
            decoded("to=(800)+555-0100"),
            Ok(("(800) 555-0100".to_owned(), None))
        );
        assert!(decoded("").is_err());
        assert!(decoded("to=").is_err());
        assert!(decoded("from=%2B1650").is_err());
        assert!(decoded("to=1&to=2").is_err());
        assert!(decoded("to=1&bogus=2").is_err());
        assert!(decoded("to=%2").is_err());
        assert!(decoded("to=%zz1").is_err());
        assert!(decoded("to=%+1").is_err());
    }
}

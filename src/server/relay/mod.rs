//! Proxy mode's socket side (docs/architecture.md, "Proxy mode"): the
//! request path hands routed INVITEs, CANCELs, ACKs and responses to one
//! driver, run on the worker's own thread (a timer thread fires the
//! deadlines no message brings), which drives the sans-IO call state
//! machines of `crate::proxy` against the clock and the sockets. The
//! handler only decides who is relayed and what the legs are.

pub mod driver;
pub mod inbox;
pub mod outbound;
pub mod outbox;
pub mod plan;
pub mod resolve;
pub mod stats;
pub mod upstream;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::SystemTime;

use crate::proxy::call::ProxyConfig;
use crate::proxy::call::Transport;
use crate::proxy::dialog_route::RouteKey;
use crate::proxy::timers::Timers;
use crate::records::RecordSender;
use crate::settings::{Mode, ProxySettings};
use crate::sip::hop::{Hop, HopTransport};
use crate::tls::client_config::{self, ClientFiles};
use driver::{Driver, NextHop, Paths, Route, Transports};
use inbox::{Admission, Inbox};
use outbound::Outbound;
use resolve::Locator;
use rustls::pki_types::ServerName;
use stats::ProxyStats;
use upstream::StreamWriters;

/// What the handler needs to relay: the driver's inbox and who is relayed.
#[derive(Debug)]
pub struct Relay {
    pub inbox: Inbox,
    pub mode: Mode,
    pub settings: ProxySettings,
    /// Where the driver queues responses for callers on TCP or TLS.
    pub writers: Arc<StreamWriters>,
    /// With `proxy.record_route`: what recognises our Route on the
    /// dialog's later requests.
    pub dialogs: Option<DialogRouting>,
}

/// Our Record-Route's host and the key that signs it.
#[derive(Debug, Clone)]
pub struct DialogRouting {
    pub key: RouteKey,
    pub sent_by: Box<[u8]>,
}

impl Relay {
    /// Whether `peer`'s INVITEs are relayed.
    pub fn relays(&self, peer: IpAddr) -> bool {
        self.settings.mode_for(self.mode, peer) == Mode::Proxy
    }

    /// How long each leg rings.
    pub fn ring(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.ring_seconds))
    }
}

/// Why proxy mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("proxy.next_hop {0:?}: not a sip: or sips: URI with a valid host")]
    BadNextHop(String),
    #[error("proxy.next_hop {0:?}: transport must be udp, tcp or tls")]
    UnsupportedTransport(String),
    #[error("proxy.next_hop {0:?}: a sips: URI is reached over TLS only (RFC 3261 §26.2.2)")]
    SipsWithoutTls(String),
    #[error("proxy mode's TLS client: {0}")]
    Tls(#[from] crate::tls::CertificateError),
    #[error("proxy.next_hop {uri:?}: cannot resolve {host}: {source}")]
    Resolve {
        uri: String,
        host: String,
        source: std::io::Error,
    },
    #[error("proxy.record_route_key_file {path}: {problem}")]
    RouteKey { path: PathBuf, problem: String },
    #[error("proxy mode needs a UDP listener to relay from")]
    NoUdpListener,
    #[error("proxy mode: {0}")]
    Io(#[from] std::io::Error),
}

/// The driver's timer thread: stopped and joined when dropped.
pub struct RelayThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RelayThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts proxy mode: the driver and its timer thread, relaying from `socket` (a clone of
/// a UDP listener's, so that next hops answer to the listening port) and
/// the handler's side of it.
pub fn start(
    mode: Mode,
    settings: &ProxySettings,
    socket: &UdpSocket,
    server_header: &str,
    records: Option<RecordSender>,
) -> Result<(Relay, RelayThread, Arc<ProxyStats>), RelayError> {
    let route = match &settings.next_hop {
        Some(uri) => Route::NextHop(resolve_next_hop(uri)?),
        None => Route::TargetHost,
    };
    let socket = socket.try_clone()?;
    let local = socket.local_addr()?;
    let sent_by = via_address(local, route)?;
    let dialogs = match settings.record_route {
        true => Some(DialogRouting {
            key: route_key(settings)?,
            sent_by: sent_by.to_string().into_bytes().into_boxed_slice(),
        }),
        false => None,
    };
    let config = Arc::new(ProxyConfig {
        timers: Timers {
            t1: Duration::from_millis(settings.t1_ms),
            timer_c: Duration::from_secs(settings.timer_c_seconds),
            server_silence: Duration::from_millis(settings.server_silence_ms),
            ..Timers::default()
        },
        via_sent_by: sent_by.to_string().into_bytes().into_boxed_slice(),
        record_route: None,
        server: server_header.into(),
    });
    let stats = Arc::new(ProxyStats::default());
    stats
        .max_calls
        .store(settings.max_calls as u64, Ordering::Relaxed);
    let admission = Arc::new(Admission::new(
        settings.max_calls,
        Arc::clone(&stats.in_flight),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = Arc::new(StreamWriters::default());
    let outbound = Outbound::new(
        tls_client(settings, route)?,
        tls_names(settings, route),
        Arc::clone(&stats),
    )?;
    // Without a next hop, targets named by host go through DNS.
    let locator = match route {
        Route::TargetHost => match outbound.enter(|| Locator::new(&settings.dns_servers)) {
            Ok(locator) => Some(locator),
            // Named servers that cannot be used are a setting to fix.
            Err(e) if !settings.dns_servers.is_empty() => return Err(e.into()),
            // No system resolver configuration: targets must be IP
            // addresses, as before RFC 3263.
            Err(e) => {
                tracing::warn!(error = %e, "proxy mode: no DNS resolver; targets named by host cannot be located");
                None
            }
        },
        Route::NextHop(_) => None,
    };
    let driver = Arc::new(Driver::new(
        Transports {
            socket,
            outbound,
            writers: Arc::clone(&writers),
        },
        records,
        config,
        Paths {
            route,
            dialogs: dialogs.clone(),
            locator,
        },
        Arc::clone(&stats),
        Arc::clone(&stop),
    ));
    driver.connect_outbound();
    let timers = Arc::clone(&driver);
    let thread = std::thread::Builder::new()
        .name("sip-proxy-timers".into())
        .spawn(move || timers.run_timers())?;
    let inbox = Inbox::new(driver, admission);
    let relay = Relay {
        inbox,
        mode,
        settings: settings.clone(),
        writers,
        dialogs,
    };
    let running = RelayThread {
        stop,
        thread: Some(thread),
    };
    Ok((relay, running, stats))
}

/// The key that signs our Record-Route: `proxy.record_route_key_file`'s
/// bytes (at least 16), else 32 random ones for this process.
fn route_key(settings: &ProxySettings) -> Result<RouteKey, RelayError> {
    let Some(path) = &settings.record_route_key_file else {
        let mut bytes = vec![0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
        return Ok(RouteKey::new(bytes));
    };
    let problem = |problem: String| RelayError::RouteKey {
        path: path.clone(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    let key = bytes.trim_ascii();
    if key.len() < 16 {
        return Err(problem(
            "give a key of at least 16 bytes (for example `openssl rand -hex 32`)".to_owned(),
        ));
    }
    Ok(RouteKey::new(key.to_vec()))
}

/// The TLS client configuration for legs over TLS. Required (its files
/// must be good) when the next hop is TLS or a `proxy.tls_*` file is
/// named; otherwise built from the system's CAs when they can be read,
/// for targets whose URI says `transport=tls`.
fn tls_client(
    settings: &ProxySettings,
    route: Route,
) -> Result<Option<Arc<rustls::ClientConfig>>, RelayError> {
    let files = ClientFiles {
        ca: settings.tls_ca.clone(),
        cert: settings.tls_client_cert.clone(),
        key: settings.tls_client_key.clone(),
    };
    let required = matches!(route, Route::NextHop(hop) if hop.transport == Transport::Tls)
        || files.ca.is_some()
        || files.cert.is_some();
    let built = client_config::build(&files, SystemTime::now());
    match built {
        Ok(config) => Ok(Some(config)),
        Err(e) if required => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// The name a TLS next hop's certificate must carry: its URI's host.
fn tls_names(settings: &ProxySettings, route: Route) -> HashMap<SocketAddr, ServerName<'static>> {
    let mut names = HashMap::new();
    if let (Route::NextHop(hop), Some(uri)) = (route, &settings.next_hop)
        && let Some(parsed) = Hop::parse(uri.as_bytes())
        && let Some(host) = parsed.bare_host()
        && let Ok(name) = ServerName::try_from(host.to_owned())
    {
        names.insert(hop.addr, name);
    }
    names
}

/// `proxy.next_hop` as an address and transport: an IP literal as is, a
/// name through the system's resolver, once, at start.
fn resolve_next_hop(uri: &str) -> Result<NextHop, RelayError> {
    let hop = Hop::parse(uri.as_bytes()).ok_or_else(|| RelayError::BadNextHop(uri.to_owned()))?;
    if hop.unsupported_transport {
        return Err(RelayError::UnsupportedTransport(uri.to_owned()));
    }
    if hop.secure && hop.effective_transport() != HopTransport::Tls {
        return Err(RelayError::SipsWithoutTls(uri.to_owned()));
    }
    let transport = Transport::from(hop.effective_transport());
    let host = String::from_utf8_lossy(hop.host);
    let bare = hop
        .bare_host()
        .ok_or_else(|| RelayError::BadNextHop(uri.to_owned()))?;
    (bare, hop.effective_port())
        .to_socket_addrs()
        .and_then(|mut found| {
            found
                .next()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
        })
        .map(|addr| NextHop { addr, transport })
        .map_err(|source| RelayError::Resolve {
            uri: uri.to_owned(),
            host: host.into_owned(),
            source,
        })
}

/// The address next hops answer to: the listener's, or, when it listens
/// on every interface, the one the system would send from.
fn via_address(local: SocketAddr, route: Route) -> Result<SocketAddr, RelayError> {
    if !local.ip().is_unspecified() {
        return Ok(local);
    }
    let toward = match route {
        Route::NextHop(hop) => hop.addr,
        // No next hop to ask about: the loopback of the same family.
        Route::TargetHost if local.is_ipv6() => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 5060)),
        Route::TargetHost => SocketAddr::from(([127, 0, 0, 1], 5060)),
    };
    let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0))?;
    probe.connect(toward)?;
    Ok(SocketAddr::new(probe.local_addr()?.ip(), local.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sips_next_hop_is_tls_and_never_less() {
        let hop = resolve_next_hop("sips:127.0.0.1").expect("a next hop");
        assert_eq!(hop.transport, Transport::Tls);
        assert_eq!(hop.addr.port(), 5061);
        assert!(matches!(
            resolve_next_hop("sips:127.0.0.1:5999;transport=udp"),
            Err(RelayError::SipsWithoutTls(_))
        ));
        assert_eq!(
            resolve_next_hop("sip:127.0.0.1")
                .expect("a next hop")
                .transport,
            Transport::Udp
        );
    }

    #[test]
    fn the_route_key_comes_from_its_file_or_is_random() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("route.key");
        let with = |path: &std::path::Path| ProxySettings {
            record_route: true,
            record_route_key_file: Some(path.to_owned()),
            ..ProxySettings::default()
        };
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            route_key(&with(&path)),
            Err(RelayError::RouteKey { .. })
        ));
        assert!(matches!(
            route_key(&with(&dir.path().join("missing"))),
            Err(RelayError::RouteKey { .. })
        ));
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(route_key(&with(&path)).is_ok());
        assert!(route_key(&ProxySettings::default()).is_ok());
    }
}

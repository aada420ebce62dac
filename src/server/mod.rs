//! The network side (docs/sip.md, docs/operations.md): UDP and TCP listeners on each listen
//! address and TLS listeners on each TLS address, feeding the request
//! handler; hot reload of the routing data and the certificates running
//! beside them; graceful shutdown. It reads as "receive bytes, parse, decide, answer":
//! the deciding is `handler`'s, the rest is plumbing.

mod address;
mod admin;
pub mod call_tap;
mod connections;
pub mod flood;
pub mod handler;
pub mod metrics;
mod mmsg;
mod peer;
mod readiness;
mod receive_drops;
mod records_tap;
pub mod redirect;
pub mod relay;
mod stream;
mod supervise;
mod systemd;
mod tcp;
mod tls_accept;
mod udp;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::records::{Records, RecordsError};
use crate::routing_data::{HotTable, Loader, Rejected, ReloadOptions, Report};
use crate::settings::{Settings, SettingsError};
use crate::tls::{CertificateError, TlsFiles, TlsReloadOptions, TlsReloader, TrustNames};
use connections::ConnectionLimits;
use handler::Handler;
use metrics::Metrics;
use readiness::Readiness;
use receive_drops::ReceiveDrops;

/// How often idle flood buckets are evicted.
const FLOOD_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often the kernel's UDP drop counts are looked at for the log.
const RECEIVE_DROPS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("no routing data: give --routing PATH (or routing: in the config file)")]
    NoRouting,
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Routing(#[from] Rejected),
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot start: {0}")]
    Start(#[from] io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] CertificateError),
    #[error(transparent)]
    Relay(#[from] relay::RelayError),
    #[error("call records: {0}")]
    Records(#[from] RecordsError),
}

/// A socket being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub transport: &'static str,
    pub addr: SocketAddr,
}

/// A bound server, ready to run.
pub struct Server {
    settings: Settings,
    hot: HotTable,
    warnings: Report,
    /// Per listen address: the UDP sockets (one per worker) and the TCP listener.
    sockets: Vec<(Vec<UdpSocket>, StdTcpListener)>,
    /// The admin HTTP listener, when asked for.
    admin: Option<StdTcpListener>,
    /// The token that turns on the admin endpoints revealing routing data.
    admin_token: Option<crate::settings::AdminToken>,
    /// The TLS listeners and their certificates, when TLS is on.
    tls: Option<(Vec<StdTcpListener>, TlsReloader)>,
    /// Proxy mode's driver and the handler's side of it, when any peer is
    /// relayed.
    relay: Option<(
        relay::Relay,
        relay::RelayThread,
        Arc<relay::stats::ProxyStats>,
    )>,
    /// The call records' writer (and webhook), when records are on.
    records: Option<Records>,
}

impl Server {
    /// Loads the routing data and binds every socket; fails with the
    /// routing report when the data has errors.
    pub fn bind(settings: Settings) -> Result<Server, ServerError> {
        let routing = settings.routing.clone().ok_or(ServerError::NoRouting)?;
        let region = settings.region()?;
        settings.template()?;
        settings.check_limits()?;
        let admin_token = settings.admin_token()?;
        let options = ReloadOptions {
            debounce: Duration::from_millis(settings.reload.debounce_ms),
            poll: (settings.reload.poll_seconds > 0)
                .then(|| Duration::from_secs(settings.reload.poll_seconds)),
            sighup: true,
            watch: true,
        };
        let cache = settings
            .cache_dir()
            .map(crate::routing_data::cache::Cache::new);
        let loader = Loader::new(routing, region).with_cache(cache);
        let (hot, warnings) = HotTable::start(loader, options)?;
        let workers = worker_count(&settings);
        let sockets: Vec<(Vec<UdpSocket>, StdTcpListener)> = settings
            .listen
            .iter()
            .map(|&addr| bind_pair(addr, workers))
            .collect::<Result<_, _>>()?;
        let admin = settings
            .admin
            .map(|addr| {
                bind_tcp(addr).map_err(|source| ServerError::Bind {
                    transport: "http",
                    addr,
                    source,
                })
            })
            .transpose()?;
        let tls = start_tls(&settings, options)?;
        let records = Records::start(&settings.records, settings.region()?)?;
        let relay = if settings.proxy.enabled(settings.mode) {
            let socket = sockets
                .first()
                .and_then(|(udp, _)| udp.first())
                .ok_or(relay::RelayError::NoUdpListener)?;
            Some(relay::start(
                settings.mode,
                &settings.proxy,
                socket,
                &settings.server_header,
                records.as_ref().map(Records::sender),
            )?)
        } else {
            None
        };
        Ok(Server {
            settings,
            hot,
            warnings,
            sockets,
            admin,
            admin_token,
            tls,
            relay,
            records,
        })
    }

    /// The routing data's load status: what is serving, reloads so far.
    pub fn routing_status(&self) -> crate::routing_data::ReloadStatus {
        self.hot.status()
    }

    /// Worker threads this server runs.
    pub fn workers(&self) -> usize {
        worker_count(&self.settings)
    }

    /// The routing data's warnings from the first load.
    pub fn warnings(&self) -> &Report {
        &self.warnings
    }

    /// Every bound socket with its real address (port 0 resolved).
    pub fn listening(&self) -> Vec<Listening> {
        let mut all = Vec::new();
        for (udp, tcp) in &self.sockets {
            if let Some(Ok(addr)) = udp.first().map(UdpSocket::local_addr) {
                all.push(Listening {
                    transport: "udp",
                    addr,
                });
            }
            if let Ok(addr) = tcp.local_addr() {
                all.push(Listening {
                    transport: "tcp",
                    addr,
                });
            }
        }
        for listener in self.tls.iter().flat_map(|(listeners, _)| listeners) {
            if let Ok(addr) = listener.local_addr() {
                all.push(Listening {
                    transport: "tls",
                    addr,
                });
            }
        }
        if let Some(Ok(addr)) = self.admin.as_ref().map(StdTcpListener::local_addr) {
            all.push(Listening {
                transport: "http",
                addr,
            });
        }
        all
    }

    /// Serves until `shutdown` completes, then stops every listener.
    pub fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let mut handler = Handler::from_settings(&self.settings)?;
        let (relay_thread, proxy_stats) = match self.relay {
            Some((relay, thread, stats)) => {
                handler = handler.with_relay(relay);
                (Some(thread), Some(stats))
            }
            None => (None, None),
        };
        let handler = Arc::new(handler);
        let workers = worker_count(&self.settings);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("sip-tcp")
            .enable_all()
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (stop_tcp, stopped) = watch::channel(false);
        let limits = &self.settings.limits;
        let connections = ConnectionLimits::new(
            limits.tcp_max_connections,
            limits.tcp_max_connections_per_ip,
        );
        let receive_drops = ReceiveDrops::of(self.sockets.iter().flat_map(|(udp, _)| udp));
        let mut metrics = Metrics::new(
            self.hot.reader(),
            Arc::clone(&connections),
            receive_drops.clone(),
        );
        let records_feed = self
            .records
            .as_ref()
            .map(|records| records_tap::RecordsFeed {
                sender: records.sender(),
                table: self.hot.reader(),
            });
        if let Some(records) = &self.records {
            metrics.with_records(records.stats());
        }
        let recent = self.records.as_ref().map(Records::recent);
        let mut threads = Vec::new();
        let mut listeners = Vec::new();
        for (udp_sockets, tcp) in self.sockets {
            for (i, socket) in udp_sockets.into_iter().enumerate() {
                let name = format!("sip-udp-{i}");
                let worker = udp::Worker {
                    handler: Arc::clone(&handler),
                    table: self.hot.reader(),
                    max_message: limits.max_message_bytes,
                    metrics: metrics.shard(),
                    records: records_feed.clone(),
                };
                threads.push(udp::spawn_worker(name, socket, worker, Arc::clone(&stop))?);
            }
            listeners.push(tcp);
        }
        let shared = stream::Shared {
            handler: Arc::clone(&handler),
            table: self.hot.reader(),
            limits: stream::StreamLimits::from_settings(limits),
            connections,
            metrics: metrics.shard(),
            records: records_feed,
        };
        let (tls_listeners, tls_reloader) = match self.tls {
            Some((listeners, reloader)) => (listeners, Some(reloader)),
            None => (Vec::new(), None),
        };
        let tls_shared = tls_reloader.as_ref().map(|reloader| tls_accept::TlsShared {
            handle: reloader.handle(),
            trust_names: TrustNames::new(&self.settings.tls.trust_names),
            handshake_deadline: Duration::from_millis(self.settings.tls.handshake_ms),
            stats: Arc::default(),
        });
        if let Some(tls) = &tls_shared {
            metrics.with_tls(tls.handle.clone(), Arc::clone(&tls.stats));
        }
        if let Some(stats) = proxy_stats {
            metrics.with_proxy(stats);
        }
        let metrics = Arc::new(metrics);
        let readiness = Readiness::default();
        runtime.block_on(async {
            for listener in listeners {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tokio::spawn(tcp::serve(listener, shared.clone(), stopped.clone()));
            }
            if let Some(tls) = &tls_shared {
                for listener in tls_listeners {
                    listener.set_nonblocking(true)?;
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    tokio::spawn(tls_accept::serve(
                        listener,
                        shared.clone(),
                        tls.clone(),
                        stopped.clone(),
                    ));
                }
            }
            tokio::spawn(sweep_flood_buckets(Arc::clone(&handler)));
            tokio::spawn(warn_of_receive_drops(receive_drops));
            if let Some(admin) = self.admin {
                admin.set_nonblocking(true)?;
                let admin = tokio::net::TcpListener::from_std(admin)?;
                let routing = self.admin_token.map(|token| admin::RoutingAccess {
                    token,
                    table: self.hot.reader(),
                    recent: recent.clone(),
                });
                tokio::spawn(admin::serve(
                    admin,
                    Arc::clone(&metrics),
                    readiness.clone(),
                    routing,
                    stopped.clone(),
                ));
            }
            readiness.set_ready();
            // Every socket is bound and served: systemd may count us started.
            systemd::notify_ready();
            shutdown.await;
            Ok::<_, io::Error>(())
        })?;
        systemd::notify_stopping();
        info!("shutting down");
        stop.store(true, Ordering::Relaxed);
        let _ = stop_tcp.send(true);
        for thread in threads {
            let _ = thread.join();
        }
        // After the workers: nothing hands it calls any more.
        drop(relay_thread);
        runtime.shutdown_timeout(Duration::from_secs(2));
        // Every worker has stopped: what they queued is written out now.
        if let Some(records) = self.records {
            records.shutdown();
        }
        drop(tls_reloader);
        drop(self.hot);
        info!("stopped");
        Ok(())
    }
}

/// Binds the TLS listeners and loads their certificates, when TLS is on.
fn start_tls(
    settings: &Settings,
    options: ReloadOptions,
) -> Result<Option<(Vec<StdTcpListener>, TlsReloader)>, ServerError> {
    let tls = &settings.tls;
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return Ok(None);
    };
    if tls.listen.is_empty() {
        return Ok(None);
    }
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: tls.client_ca.clone(),
        require_client_cert: tls.require_client_cert,
    };
    let reloader = TlsReloader::start(
        files,
        TlsReloadOptions {
            debounce: options.debounce,
            poll: options.poll,
        },
    )?;
    let listeners = tls
        .listen
        .iter()
        .map(|&addr| {
            bind_tcp(addr).map_err(|source| ServerError::Bind {
                transport: "tls",
                addr,
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some((listeners, reloader)))
}

/// Evicts idle flood buckets now and then, so quiet sources cost nothing.
async fn sweep_flood_buckets(handler: Arc<Handler>) {
    let mut every = tokio::time::interval(FLOOD_SWEEP_INTERVAL);
    loop {
        every.tick().await;
        handler.flood.sweep(std::time::Instant::now());
    }
}

/// Logs a warning when the kernel dropped SIP datagrams since the last
/// look: requests nobody answered, which no other log line can show.
async fn warn_of_receive_drops(drops: ReceiveDrops) {
    let Some(mut seen) = drops.total() else {
        return;
    };
    let mut every = tokio::time::interval(RECEIVE_DROPS_INTERVAL);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(now) = drops.total() else {
            return;
        };
        if now > seen {
            warn!(
                dropped = now - seen,
                total = now,
                "the kernel dropped {} SIP datagrams in the last {} s: the UDP receive buffers \
                 were full (the workers did not keep up, or were not run); add cores or \
                 workers, or raise net.core.rmem_max above {} MiB",
                now - seen,
                RECEIVE_DROPS_INTERVAL.as_secs(),
                udp::RECEIVE_BUFFER >> 20
            );
        }
        seen = now;
    }
}

/// Workers: the setting, else one per core this process may run on.
fn worker_count(settings: &Settings) -> usize {
    settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Binds UDP (one socket per worker) and TCP on the same address. With
/// port 0 the UDP port is taken first and TCP asked for the same one,
/// trying again if another program already has it for TCP.
fn bind_pair(
    addr: SocketAddr,
    workers: usize,
) -> Result<(Vec<UdpSocket>, StdTcpListener), ServerError> {
    const ATTEMPTS: usize = 20;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let first = udp::bind(addr).map_err(|source| ServerError::Bind {
            transport: "udp",
            addr,
            source,
        })?;
        let bound = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(udp::bind(bound).map_err(|source| ServerError::Bind {
                transport: "udp",
                addr: bound,
                source,
            })?);
        }
        match bind_tcp(bound) {
            Ok(listener) => {
                warn_if_short_receive_buffer(&sockets[0], bound);
                return Ok((sockets, listener));
            }
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(e)
            }
            Err(source) => {
                return Err(ServerError::Bind {
                    transport: "tcp",
                    addr: bound,
                    source,
                });
            }
        }
    }
    Err(ServerError::Bind {
        transport: "tcp",
        addr,
        source: last_error.unwrap_or_else(|| io::Error::other("no free port")),
    })
}

/// Says at start when the kernel gave the UDP socket less receive buffer
/// than asked: bursts it cannot hold are then lost without a trace.
fn warn_if_short_receive_buffer(socket: &UdpSocket, bound: SocketAddr) {
    if let Some(granted) = udp::short_receive_buffer(socket) {
        warn!(
            "the UDP receive buffer on {bound} is {granted} bytes, not {}: \
             net.core.rmem_max caps it, and bursts longer than it holds are dropped \
             by the kernel (raise it: sysctl -w net.core.rmem_max={})",
            udp::RECEIVE_BUFFER,
            udp::RECEIVE_BUFFER
        );
    }
}

/// The TCP listen backlog asked of the kernel (it clamps to somaxconn).
const TCP_ACCEPT_BACKLOG: i32 = 4096;

fn bind_tcp(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    // The kernel caps the accept queue at net.core.somaxconn (4096 by
    // default). When the queue is full, a handshake's last ACK is dropped
    // and the connection waits for SYN-ACK retransmissions (1 s, 3 s, 7 s):
    // a burst of trunks reconnecting after a failover would be served
    // seconds late. 2,000 connects at once overflowed 1,024 on a loaded
    // machine (tests/attack.rs).
    socket.listen(TCP_ACCEPT_BACKLOG)?;
    Ok(socket.into())
}

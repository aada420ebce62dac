//! Locating a target's server over DNS (RFC 3263 §4): asks what
//! `proxy::locate` says a URI asks (NAPTR, SRV, A/AAAA) with
//! hickory-resolver, and orders the answers into the next hops to try,
//! best first. The system's resolver configuration (`/etc/resolv.conf`)
//! unless `proxy.dns_servers` names others. hickory caches each answer for
//! its TTL, so a busy target costs one lookup per TTL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::driver::NextHop;
use crate::proxy::call::Transport;
use crate::proxy::locate::{
    self, Naptr, Question, Srv, default_port, naptr_services, order_srv, services_without_naptr,
};
use crate::sip::hop::Hop;

/// Next hops kept per target at most: the failover list.
const MAX_HOPS: usize = 8;

/// Asks DNS where targets are.
#[derive(Clone)]
pub struct Locator {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator").finish_non_exhaustive()
    }
}

impl Locator {
    /// A resolver asking `servers` (UDP and TCP), or the system's when
    /// there are none.
    pub fn new(servers: &[SocketAddr]) -> std::io::Result<Locator> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(std::io::Error::other)?
        } else {
            let name_servers = servers
                .iter()
                .map(|server| {
                    let mut config = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut config.connections {
                        connection.port = server.port();
                    }
                    config
                })
                .collect();
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            )
        };
        // A call waits on it: short, and one retry.
        builder.options_mut().timeout = Duration::from_secs(2);
        builder.options_mut().attempts = 1;
        let resolver = builder.build().map_err(std::io::Error::other)?;
        Ok(Locator { resolver })
    }

    /// The next hops of a target URI, best first; empty when it cannot be
    /// located (the leg then fails as a transport error, §16.9).
    pub async fn locate(&self, uri: &[u8]) -> Vec<NextHop> {
        let Some(hop) = Hop::parse(uri) else {
            return Vec::new();
        };
        let Some(host) = hop.bare_host() else {
            return Vec::new();
        };
        let ip: Option<IpAddr> = host.parse().ok();
        let transport = hop.transport.map(Transport::from);
        let mut question = locate::question(host, ip.is_some(), hop.port, transport, hop.secure);
        if let Question::Naptr { host, secure } = &question {
            let services = naptr_services(&self.naptr(host).await, *secure);
            question = if services.is_empty() {
                services_without_naptr(host, *secure)
            } else {
                Question::Services {
                    names: services,
                    host: host.clone(),
                    fallback: if *secure {
                        Transport::Tls
                    } else {
                        Transport::Udp
                    },
                }
            };
        }
        let mut hops = match question {
            Question::Literal { port, transport } => ip
                .map(|ip| NextHop {
                    addr: SocketAddr::new(ip, port),
                    transport,
                })
                .into_iter()
                .collect(),
            Question::Address {
                host,
                port,
                transport,
            } => self.addresses(&host, port, transport).await,
            Question::Services {
                names,
                host,
                fallback,
            } => {
                let mut found = Vec::new();
                // The first name with servers wins (§4.1: in the NAPTR
                // order, or UDP first without NAPTR).
                for (name, transport) in names {
                    for srv in order_srv(self.srv(&name).await, random) {
                        found.extend(self.addresses(&srv.target, srv.port, transport).await);
                    }
                    if !found.is_empty() {
                        break;
                    }
                }
                if found.is_empty() {
                    found = self
                        .addresses(&host, default_port(fallback), fallback)
                        .await;
                }
                found
            }
            Question::Naptr { .. } => Vec::new(),
        };
        hops.truncate(MAX_HOPS);
        hops
    }

    async fn naptr(&self, host: &str) -> Vec<Naptr> {
        let Ok(lookup) = self.resolver.lookup(fqdn(host), RecordType::NAPTR).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::NAPTR(naptr) => Some(Naptr {
                    order: naptr.order,
                    preference: naptr.preference,
                    flags: String::from_utf8_lossy(&naptr.flags).into_owned(),
                    service: String::from_utf8_lossy(&naptr.services).into_owned(),
                    replacement: naptr.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Ok(lookup) = self.resolver.lookup(fqdn(name), RecordType::SRV).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(Srv {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn addresses(&self, host: &str, port: u16, transport: Transport) -> Vec<NextHop> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return vec![NextHop {
                addr: SocketAddr::new(ip, port),
                transport,
            }];
        }
        let Ok(lookup) = self.resolver.lookup_ip(fqdn(host)).await else {
            return Vec::new();
        };
        lookup
            .iter()
            .map(|ip| NextHop {
                addr: SocketAddr::new(ip, port),
                transport,
            })
            .collect()
    }
}

/// A name as asked: absolute, so that no search domain is tried first.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// A draw in `0..=n` for RFC 2782's weighted choice: not for secrets, only
/// to spread calls over equal servers.
fn random(n: u32) -> u32 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let x = STATE.fetch_add(u64::from(nanos) | 1, Ordering::Relaxed);
    let mixed = xxhash_rust::xxh3::xxh3_64(&x.to_le_bytes());
    if n == 0 {
        0
    } else {
        (mixed % (u64::from(n) + 1)) as u32
    }
}

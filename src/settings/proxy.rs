//! Proxy mode's settings (docs/operations.md, "Choosing the mode"): whether
//! an INVITE is answered with a 302 (redirect, the default) or relayed by
//! switchboard itself as a transaction-stateful proxy (RFC 3261 §16), and
//! how relayed calls ring and fail over.
//!
//! One deployment serves a mixed estate: `mode` is the default, and
//! `proxy.peers` / `proxy.redirect_peers` name the peers that get the other
//! one (a carrier trunk that cannot follow 302s, a PBX that can).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

/// How a routed INVITE is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `302 Moved Temporarily` naming the targets: the sender places the call.
    #[default]
    Redirect,
    /// switchboard relays the INVITE to each target in turn and returns the
    /// best answer (RFC 3261 §16.7).
    Proxy,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Redirect => "redirect",
            Mode::Proxy => "proxy",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not `redirect` or `proxy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a mode: use redirect or proxy")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redirect" => Ok(Mode::Redirect),
            "proxy" => Ok(Mode::Proxy),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// The default ring time. Long enough for four or five rings, and shorter
/// than the 25–30 s after which most mobile carriers' own voicemail answers
/// and would take the call away from the forwarding number.
pub const DEFAULT_RING_SECONDS: u32 = 20;

/// How relayed calls are sent, rung and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    /// Peers whose INVITEs are relayed whatever `mode` says.
    pub peers: Vec<IpNet>,
    /// Peers whose INVITEs are redirected whatever `mode` says.
    pub redirect_peers: Vec<IpNet>,
    /// Where every relayed request is sent (`sip:HOST[:PORT][;transport=udp|tcp|tls]`):
    /// an outbound proxy or a carrier's SBC. Without it, each target's own
    /// host is resolved (RFC 3263).
    pub next_hop: Option<String>,
    /// How long a target rings before the next one is tried; accounts and
    /// numbers may say otherwise in the routing data.
    pub ring_seconds: u32,
    /// Calls relayed at once; past it, new INVITEs get `503` with
    /// `Retry-After`.
    pub max_calls: usize,
    /// RFC 3261's T1, the round-trip estimate every UDP retransmission and
    /// transaction timer derives from (Timer B, how long a silent next hop
    /// holds a leg, is 64×T1), in milliseconds.
    pub t1_ms: u64,
    /// How long a leg's server may stay silent (no response at all) before
    /// the target's next server is tried, when DNS gave more than one (RFC
    /// 3263 §4.3), in milliseconds.
    pub server_silence_ms: u64,
    /// Timer C (§16.8): how long the last leg may ring with provisional
    /// answers only, in seconds; more than 180.
    pub timer_c_seconds: u64,
    /// Stay on the dialog's path (§16.6 step 4): relayed INVITEs carry our
    /// Record-Route, and the dialog's ACK, BYE and re-INVITE come through
    /// switchboard. Off: they go end to end.
    pub record_route: bool,
    /// The key (a file of at least 16 bytes) that signs our Record-Route,
    /// so that only the dialog's two ends can route through us. Without
    /// it, a random key per start: the dialogs set up before a restart
    /// then cannot route their BYE through the new process. Give every
    /// server of a cluster the same file.
    pub record_route_key_file: Option<PathBuf>,
    /// CA certificates (PEM) a TLS next hop's certificate must chain to;
    /// the system's bundle when unset.
    pub tls_ca: Option<PathBuf>,
    /// A certificate chain (PEM) to present to TLS next hops (mutual TLS
    /// with a carrier), with `tls_client_key`.
    pub tls_client_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_client_cert`.
    pub tls_client_key: Option<PathBuf>,
    /// DNS servers (`IP:PORT`) that locate targets named by host (RFC
    /// 3263) instead of the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            peers: Vec::new(),
            redirect_peers: Vec::new(),
            next_hop: None,
            ring_seconds: DEFAULT_RING_SECONDS,
            max_calls: 10_000,
            t1_ms: 500,
            server_silence_ms: 4_000,
            timer_c_seconds: 181,
            record_route: false,
            record_route_key_file: None,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            dns_servers: Vec::new(),
        }
    }
}

impl ProxySettings {
    /// The mode a peer's INVITEs get, with `mode` as the default.
    pub fn mode_for(&self, mode: Mode, peer: IpAddr) -> Mode {
        if self.peers.iter().any(|net| net.contains(&peer)) {
            Mode::Proxy
        } else if self.redirect_peers.iter().any(|net| net.contains(&peer)) {
            Mode::Redirect
        } else {
            mode
        }
    }

    /// Whether any peer can be proxied at all.
    pub fn enabled(&self, mode: Mode) -> bool {
        mode == Mode::Proxy || !self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_what_they_write() {
        for mode in [Mode::Redirect, Mode::Proxy] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        assert!("stateful".parse::<Mode>().is_err());
    }

    #[test]
    fn listed_peers_get_the_other_mode() {
        let settings = ProxySettings {
            peers: vec!["192.0.2.0/24".parse().unwrap()],
            redirect_peers: vec!["198.51.100.7/32".parse().unwrap()],
            ..ProxySettings::default()
        };
        let at = |ip: &str| ip.parse::<IpAddr>().unwrap();
        assert_eq!(
            settings.mode_for(Mode::Redirect, at("192.0.2.9")),
            Mode::Proxy
        );
        assert_eq!(
            settings.mode_for(Mode::Redirect, at("203.0.113.1")),
            Mode::Redirect
        );
        assert_eq!(
            settings.mode_for(Mode::Proxy, at("198.51.100.7")),
            Mode::Redirect
        );
        assert_eq!(
            settings.mode_for(Mode::Proxy, at("203.0.113.1")),
            Mode::Proxy
        );
        assert!(settings.enabled(Mode::Redirect));
        assert!(!ProxySettings::default().enabled(Mode::Redirect));
    }
}

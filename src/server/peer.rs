//! Where a message came from, as the transports tell the handler: the
//! source address, the transport (RFC 3261 §18) and whether a TLS client
//! certificate vouched for the peer (docs/security.md).

use std::net::SocketAddr;

use crate::sip::Framing;

/// The transport a request came over (RFC 3261 §18): what a Contact
/// template's `{transport}` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The `transport` URI parameter's value (RFC 3261 §19.1.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// How messages are delimited on it.
    pub fn framing(self) -> Framing {
        match self {
            Transport::Udp => Framing::Datagram,
            Transport::Tcp | Transport::Tls => Framing::Stream,
        }
    }
}

/// Where the message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub source: SocketAddr,
    pub framing: Framing,
    pub transport: Transport,
    /// Its TLS client certificate verified (and named a trusted name):
    /// trusted like an address on the trust list.
    pub trusted_by_certificate: bool,
    /// The stream it came over, when proxy mode may answer on it later.
    pub connection: Option<u64>,
}

impl Peer {
    /// A peer known by its address alone.
    pub fn at(source: SocketAddr, transport: Transport) -> Peer {
        Peer {
            source,
            framing: transport.framing(),
            transport,
            trusted_by_certificate: false,
            connection: None,
        }
    }
}

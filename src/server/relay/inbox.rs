//! What the request path hands the proxy driver (docs/architecture.md,
//! "Proxy mode"): a routed INVITE with the legs to try, a CANCEL, an ACK,
//! or a response from a next hop. A new call is admitted only under
//! `proxy.max_calls` (else 503); the driver then runs the message on the
//! worker's own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::driver::Driver;
use crate::proxy::dialog_route::Direction;
use crate::records::CallEvent;
use crate::server::handler::Transport;
use crate::server::peer::Peer;

/// One target of a relayed call, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegPlan {
    /// The Request-URI: the Contact template's expansion, as in a 302.
    pub uri: Vec<u8>,
    /// How long it rings before the next leg is tried; the last leg rings
    /// until Timer C or the caller hangs up.
    pub ring: Duration,
}

/// How each leg names the dialed number (RFC 5806 `Diversion`, RFC 7044
/// `History-Info`), its reason decided when the leg starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DivertedFrom {
    /// Neither header.
    Off,
    /// `Diversion: <URI>;reason=...;counter=N`.
    Diversion(Vec<u8>),
    /// `History-Info` entries: the dialed number's URI.
    HistoryInfo(Vec<u8>),
}

/// A message for the driver.
#[derive(Debug)]
pub enum Inbound {
    /// A routed INVITE: the bytes as received and the legs to try.
    Invite {
        message: Vec<u8>,
        /// Its server transaction key and Call-ID
        /// ([`super::driver::transaction_keys`]), read where it was parsed.
        keys: (Vec<u8>, Vec<u8>),
        peer: Peer,
        /// Where responses go (the top Via's address, RFC 3261 §18.2.2).
        respond_to: SocketAddr,
        legs: Vec<LegPlan>,
        diverted_from: DivertedFrom,
        /// Why the first leg was chosen (`follow-me` or `unconditional`).
        first_reason: &'static str,
        /// Its call record, when records are on: sent when the call ends,
        /// with the outcome.
        record: Option<Box<CallEvent>>,
    },
    /// A CANCEL (RFC 3261 §9.2, §16.10).
    Cancel {
        message: Vec<u8>,
        peer: Peer,
        respond_to: SocketAddr,
    },
    /// An ACK: for a non-2xx final the server transaction absorbs it; for
    /// a 2xx it goes to the leg that answered.
    Ack { message: Vec<u8>, peer: Peer },
    /// A request of a dialog we record-routed, with our Route on top:
    /// relayed without a transaction to `next` (§16.11, §16.12).
    InDialog {
        message: Vec<u8>,
        peer: Peer,
        respond_to: SocketAddr,
        direction: Direction,
        next: Vec<u8>,
    },
    /// A response from a next hop.
    Response { message: Vec<u8>, peer: Peer },
    /// A leg's message could not be written to its connection: a
    /// transport error for that leg (§16.9).
    LegFailed {
        nonce: u64,
        leg: usize,
        /// What could not be written, for the target's next server.
        bytes: Vec<u8>,
    },
    /// DNS located a target of a parked INVITE (RFC 3263).
    Located {
        /// The INVITE's server transaction key.
        key: Vec<u8>,
        uri: Box<[u8]>,
        hops: Vec<super::driver::NextHop>,
    },
}

impl Inbound {
    /// Whether a UDP worker received it: its datagrams then wait for the
    /// end of the worker's batch (`Driver::send_held`).
    pub fn from_datagram(&self) -> bool {
        match self {
            Inbound::Invite { peer, .. }
            | Inbound::Cancel { peer, .. }
            | Inbound::Ack { peer, .. }
            | Inbound::InDialog { peer, .. }
            | Inbound::Response { peer, .. } => peer.transport == Transport::Udp,
            Inbound::LegFailed { .. } | Inbound::Located { .. } => false,
        }
    }
}

/// Why the driver did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// As many calls as `proxy.max_calls` are in flight.
    AtCapacity,
}

/// The calls in flight against `proxy.max_calls`.
#[derive(Debug)]
pub struct Admission {
    in_flight: Arc<AtomicUsize>,
    max_calls: usize,
}

impl Admission {
    /// `in_flight` is the gauge the driver gives back to when a call ends.
    pub fn new(max_calls: usize, in_flight: Arc<AtomicUsize>) -> Admission {
        Admission {
            in_flight,
            max_calls,
        }
    }

    /// Counts a new call in, unless the cap is reached (counted from the
    /// moment it is admitted, so a burst on several workers cannot
    /// overshoot it).
    pub fn admit(&self) -> Result<(), Refused> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_calls).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| Refused::AtCapacity)
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// The request path's way into the driver, shared by every worker.
#[derive(Clone)]
pub struct Inbox {
    driver: Arc<Driver>,
    admission: Arc<Admission>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("in_flight", &self.admission.in_flight())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    pub fn new(driver: Arc<Driver>, admission: Arc<Admission>) -> Inbox {
        Inbox { driver, admission }
    }

    /// Runs `message` through the driver on this thread; a new call only
    /// when it is admitted.
    pub fn send(&self, message: Inbound) -> Result<(), Refused> {
        if matches!(message, Inbound::Invite { .. }) {
            self.admission.admit()?;
        }
        self.driver.deliver(message);
        Ok(())
    }

    /// Sends the datagrams held from a UDP worker's batch.
    pub fn send_held(&self) {
        self.driver.send_held();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_calls_stop_at_the_cap_until_one_ends() {
        let gauge = Arc::new(AtomicUsize::new(0));
        let admission = Admission::new(2, Arc::clone(&gauge));
        assert_eq!(admission.admit(), Ok(()));
        assert_eq!(admission.admit(), Ok(()));
        assert_eq!(admission.admit(), Err(Refused::AtCapacity));
        assert_eq!(admission.in_flight(), 2);
        // The driver gives a call back when it ends.
        gauge.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(admission.admit(), Ok(()));
    }
}

//! What the request path hands the proxy driver (docs/architecture.md,
//! "Proxy mode"): a routed INVITE with the legs to try, a CANCEL, an ACK,
//! or a response from a next hop. Owned copies, sent over a bounded
//! channel: a worker never waits for the driver, and a full channel is
//! answered (503) or counted, never queued without bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use super::super::peer::Peer;

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
        peer: Peer,
        /// Where responses go (the top Via's address, RFC 3261 §18.2.2).
        respond_to: SocketAddr,
        legs: Vec<LegPlan>,
        diverted_from: DivertedFrom,
        /// Why the first leg was chosen (`follow-me` or `unconditional`).
        first_reason: &'static str,
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
    /// A response from a next hop.
    Response { message: Vec<u8>, peer: Peer },
}

/// Why the driver did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// As many calls as `proxy.max_calls` are in flight.
    AtCapacity,
    /// The driver's queue is full or the driver has stopped.
    Busy,
}

/// The sending side, shared by every worker.
#[derive(Debug, Clone)]
pub struct Inbox {
    sender: SyncSender<Inbound>,
    in_flight: Arc<AtomicUsize>,
    max_calls: usize,
}

/// Messages queued for the driver at most: a second or so of a busy
/// server's INVITEs, responses and ACKs.
const QUEUE: usize = 65_536;

impl Inbox {
    /// The inbox and the driver's end of it; `in_flight` is the gauge the
    /// driver keeps (calls admitted and not yet ended).
    pub fn new(max_calls: usize, in_flight: Arc<AtomicUsize>) -> (Inbox, Receiver<Inbound>) {
        let (sender, receiver) = sync_channel(QUEUE);
        let inbox = Inbox {
            sender,
            in_flight,
            max_calls,
        };
        (inbox, receiver)
    }

    /// Hands a message over without waiting. A new call is refused at the
    /// cap (counted from the moment it is handed over, so a burst cannot
    /// overshoot it).
    pub fn send(&self, message: Inbound) -> Result<(), Refused> {
        let new_call = matches!(message, Inbound::Invite { .. });
        if new_call {
            let admitted = self
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_calls).then_some(n + 1)
                });
            if admitted.is_err() {
                return Err(Refused::AtCapacity);
            }
        }
        match self.sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                if new_call {
                    self.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
                Err(Refused::Busy)
            }
        }
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::handler::Transport;

    fn invite() -> Inbound {
        let peer = Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), Transport::Udp);
        Inbound::Invite {
            message: b"INVITE".to_vec(),
            peer,
            respond_to: peer.source,
            legs: Vec::new(),
            diverted_from: DivertedFrom::Off,
            first_reason: "unconditional",
        }
    }

    #[test]
    fn new_calls_stop_at_the_cap_and_are_counted_once() {
        let gauge = Arc::new(AtomicUsize::new(0));
        let (inbox, receiver) = Inbox::new(2, Arc::clone(&gauge));
        assert_eq!(inbox.send(invite()), Ok(()));
        assert_eq!(inbox.send(invite()), Ok(()));
        assert_eq!(inbox.send(invite()), Err(Refused::AtCapacity));
        assert_eq!(inbox.in_flight(), 2);
        // Not calls: they pass whatever the count.
        let peer = Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), Transport::Udp);
        let ack = Inbound::Ack {
            message: Vec::new(),
            peer,
        };
        assert_eq!(inbox.send(ack), Ok(()));
        assert_eq!(receiver.try_iter().count(), 3);
    }

    #[test]
    fn a_stopped_driver_refuses_and_the_gauge_is_given_back() {
        let gauge = Arc::new(AtomicUsize::new(0));
        let (inbox, receiver) = Inbox::new(5, Arc::clone(&gauge));
        drop(receiver);
        assert_eq!(inbox.send(invite()), Err(Refused::Busy));
        assert_eq!(inbox.in_flight(), 0);
    }
}

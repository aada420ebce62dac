//! The driver's datagrams, held until the worker's receive batch is done and
//! then sent with one `sendmmsg(2)` per [`BATCH`] (RFC 3261 §18.1.1 sends
//! over UDP; nothing about what is sent changes here, only how many system
//! calls carry it).
//!
//! A relayed call sends five datagrams (the 100, the INVITE, the 180, the
//! 200 and the ACK); with one `sendto` each, the system calls were a large
//! part of the driver's kernel time. The UDP worker runs a whole batch
//! through the driver, then drains this; any other thread drains it at
//! the end of what it delivered, so nothing waits longer than the batch
//! it came in with. A datagram the kernel refuses comes back to its leg
//! as a transport error (§16.9), as an immediate `sendto` failure did.

use std::net::{SocketAddr, UdpSocket};

use super::outbound::LegRef;
use crate::server::mmsg::{BATCH, Batches};

/// One datagram waiting.
struct Pending {
    to: SocketAddr,
    bytes: Vec<u8>,
    /// The leg it belongs to, told when the kernel refuses it.
    leg: Option<LegRef>,
}

/// A datagram the kernel refused, with the leg that sent it.
pub struct Refused {
    pub leg: LegRef,
    pub bytes: Vec<u8>,
}

/// Datagrams waiting to be sent.
pub struct Outbox {
    pending: Vec<Pending>,
    batches: Batches,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            pending: Vec::with_capacity(BATCH),
            // Send buffers only: nothing is received through these.
            batches: Batches::new(0),
        }
    }
}

impl Outbox {
    /// Holds `bytes` for `to`.
    pub fn push(&mut self, to: SocketAddr, bytes: Vec<u8>, leg: Option<LegRef>) {
        self.pending.push(Pending { to, bytes, leg });
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends everything held, in order; the legs' datagrams the kernel
    /// refused (the others are only logged).
    pub fn send(&mut self, socket: &UdpSocket) -> Vec<Refused> {
        let mut refused = Vec::new();
        let mut pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks_mut(BATCH) {
            let mut failed: Vec<usize> = Vec::new();
            self.batches.send_each(
                socket,
                chunk.iter().map(|p| (p.to, p.bytes.as_slice())),
                |i| failed.push(i),
            );
            for i in failed {
                let Some(p) = chunk.get_mut(i) else {
                    continue;
                };
                tracing::debug!(to = %p.to, "proxy mode: send refused");
                if let Some(leg) = p.leg {
                    refused.push(Refused {
                        leg,
                        bytes: std::mem::take(&mut p.bytes),
                    });
                }
            }
        }
        // The vector's room is kept for the next batch.
        pending.clear();
        self.pending = pending;
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_datagrams_go_out_in_order_and_refusals_reach_their_leg() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let to = peer.local_addr().expect("addr");
        let mut outbox = Outbox::default();
        for i in 0..(BATCH + 3) {
            outbox.push(to, format!("datagram {i}").into_bytes(), None);
        }
        // An IPv6 destination from an IPv4 socket: refused by the kernel.
        let leg = LegRef { nonce: 7, leg: 1 };
        outbox.push(
            "[::1]:9".parse().expect("addr"),
            b"refused".to_vec(),
            Some(leg),
        );
        assert!(!outbox.is_empty());
        let refused = outbox.send(&socket);
        assert!(outbox.is_empty());
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].leg.nonce, refused[0].leg.leg), (7, 1));
        assert_eq!(refused[0].bytes, b"refused");
        let mut buf = [0u8; 64];
        for i in 0..(BATCH + 3) {
            let n = peer.recv(&mut buf).expect("a datagram");
            assert_eq!(&buf[..n], format!("datagram {i}").as_bytes());
        }
    }
}

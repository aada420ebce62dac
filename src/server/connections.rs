//! Counting open TCP connections, in total and per source address
//! (docs/security.md), so a peer cannot hold every file descriptor. A slot is
//! taken at accept and given back when the connection's task ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    #[error("the server has its most TCP connections open")]
    Total,
    #[error("this address has its most TCP connections open")]
    PerAddress,
}

/// Open connections, shared by every listener.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    per_address: DashMap<IpAddr, usize, FxBuildHasher>,
}

/// One open connection's place in the counts, given back on drop.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_address,
            total: AtomicUsize::new(0),
            per_address: DashMap::with_hasher(FxBuildHasher),
        })
    }

    /// Takes a slot for a connection from `address`, if there is room.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Full> {
        let taken = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(Full::Total);
        }
        let mut count = self.per_address.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            drop(count);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::PerAddress);
        }
        *count += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let limits = &self.limits;
        // The entry goes when its count does, so the map holds only
        // addresses with open connections.
        limits.per_address.remove_if_mut(&self.address, |_, count| {
            *count -= 1;
            *count == 0
        });
        limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_in_total_and_per_address_and_slots_come_back() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limits.take(a).unwrap();
        let a2 = limits.take(a).unwrap();
        assert_eq!(limits.take(a).unwrap_err(), Full::PerAddress);
        let b1 = limits.take(b).unwrap();
        assert_eq!(limits.take(b).unwrap_err(), Full::Total);
        assert_eq!(limits.open(), 3);
        drop(a1);
        let a3 = limits.take(a).unwrap();
        drop((a2, a3, b1));
        assert_eq!(limits.open(), 0);
        assert!(limits.per_address.is_empty());
    }
}

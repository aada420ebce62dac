//! The last records in memory, for the admin endpoint's `/calls`
//! (docs/operations.md): "what happened to the call from X" without
//! reading files. Numbers are kept in full: `/calls` is behind the admin
//! token, like `/route`, which reveals as much.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use super::record::CallRecord;
use crate::routing::Region;

/// A ring of the newest records.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    /// How a number asked for is read, as callers are.
    region: Region,
    records: Mutex<VecDeque<Arc<CallRecord>>>,
}

impl Recent {
    pub fn new(capacity: usize, region: Region) -> Recent {
        Recent {
            capacity,
            region,
            records: Mutex::new(VecDeque::with_capacity(capacity.min(65_536))),
        }
    }

    /// Adds a record, forgetting the oldest past the capacity. Only the
    /// writer thread calls it; the request path never takes this lock.
    pub fn push(&self, record: Arc<CallRecord>) {
        if self.capacity == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Up to `limit` records whose dialed or calling number is `number`
    /// in any spelling (every record when `None`), newest first.
    pub fn matching(&self, number: Option<&str>, limit: usize) -> Vec<Arc<CallRecord>> {
        let number = number.map(|n| super::normalise(n, &self.region));
        let number = number.as_deref();
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .iter()
            .rev()
            .filter(|r| {
                number.is_none_or(|n| {
                    r.dialed.as_deref() == Some(n) || r.caller.as_deref() == Some(n)
                })
            })
            .take(limit)
            .cloned()
            .collect()
    }
}

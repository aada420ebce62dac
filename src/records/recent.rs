//! The last records in memory, for the admin endpoint's `/calls`
//! (docs/operations.md): "what happened to the call from X" without
//! reading files. Numbers are kept in full: `/calls` is behind the admin
//! token, like `/route`, which reveals as much.
//!
//! Kept as the writer was handed them (the boxed [`CallEvent`], its
//! caller already read as E.164) and written out as [`CallRecord`]s only
//! when asked: building every record's strings for a ring that is
//! rarely read cost the writer thread a dozen allocations per call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::record::{CallEvent, CallRecord, Formatted};
use crate::routing::{E164, Region};

/// A ring of the newest records.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    /// How a number asked for is read, as callers are.
    region: Region,
    /// The instance and the run's id prefix, as the writer names records.
    naming: OnceLock<(String, String)>,
    records: Mutex<VecDeque<Kept>>,
}

#[derive(Debug)]
struct Kept {
    event: Box<CallEvent>,
    sequence: u64,
}

impl Recent {
    pub fn new(capacity: usize, region: Region) -> Recent {
        Recent {
            capacity,
            region,
            naming: OnceLock::new(),
            records: Mutex::new(VecDeque::with_capacity(capacity.min(65_536))),
        }
    }

    /// How records are named (`instance` and `id`), told once by the
    /// writer when it starts.
    pub fn name(&self, instance: &str, id_prefix: &str) {
        let _ = self.naming.set((instance.to_owned(), id_prefix.to_owned()));
    }

    /// Keeps the record of `event`, numbered `sequence`, forgetting the
    /// oldest past the capacity: [`Recent::keep_all`] for one, for the
    /// tests. The writer thread keeps records once a round; the request
    /// path never takes this lock.
    #[cfg(test)]
    pub fn keep(&self, event: Box<CallEvent>, sequence: u64) {
        self.keep_all(&mut vec![(event, sequence)], &mut Vec::new());
    }

    /// [`Recent::keep`] for each of `events` (numbered), in order, taking
    /// them, under the lock taken once; the records it forgets are moved
    /// to `forgotten` (for the writer to reuse their boxes: freed here one
    /// by one, long out of the cache, they stalled the writer more than
    /// any of its own work, perf).
    pub fn keep_all(
        &self,
        events: &mut Vec<(Box<CallEvent>, u64)>,
        forgotten: &mut Vec<Box<CallEvent>>,
    ) {
        if self.capacity == 0 {
            forgotten.extend(events.drain(..).map(|(event, _)| event));
            return;
        }
        {
            let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            let over = (records.len() + events.len())
                .saturating_sub(self.capacity)
                .min(records.len());
            forgotten.extend(records.drain(..over).map(|kept| kept.event));
            // More than the capacity at once: only its newest are kept.
            let skip = events.len().saturating_sub(self.capacity);
            forgotten.extend(events.drain(..skip).map(|(event, _)| event));
            records.extend(
                events
                    .drain(..)
                    .map(|(event, sequence)| Kept { event, sequence }),
            );
        }
    }

    /// Up to `limit` records whose dialed or calling number is `number`
    /// in any spelling (every record when `None`), newest first.
    pub fn matching(&self, number: Option<&str>, limit: usize) -> Vec<Arc<CallRecord>> {
        let number = number.map(|n| super::normalise(n, &self.region));
        let e164 = number.as_deref().and_then(E164::parse_plus);
        let (instance, id_prefix) = match self.naming.get() {
            Some((instance, prefix)) => (instance.as_str(), prefix.as_str()),
            None => ("", ""),
        };
        let mut formatted = Formatted::default();
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .iter()
            .rev()
            .filter(|kept| {
                number
                    .as_deref()
                    .is_none_or(|n| kept.event.has_number(n, e164))
            })
            .take(limit)
            .map(|kept| {
                let id = format!("{id_prefix}-{}", kept.sequence);
                Arc::new(CallRecord::of(&kept.event, id, instance, &mut formatted))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(dialed: &str, caller: &str) -> Box<CallEvent> {
        Box::new(CallEvent::unknown_number(dialed, caller))
    }

    #[test]
    fn records_kept_together_keep_the_newest_within_the_capacity() {
        let recent = Recent::new(3, Region::from_code("US").expect("US"));
        recent.name("sb1", "p");
        let ids = || -> Vec<String> {
            recent
                .matching(None, 10)
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        // The boxes of the records forgotten come back, for reuse.
        let mut forgotten = Vec::new();
        let mut events = vec![(event("+18005550100", "+16505550123"), 1)];
        recent.keep_all(&mut events, &mut forgotten);
        assert!(events.is_empty(), "taken");
        let mut events: Vec<_> = (2..=3).map(|i| (event("sales", "anonymous"), i)).collect();
        recent.keep_all(&mut events, &mut forgotten);
        assert_eq!(ids(), ["p-3", "p-2", "p-1"]);
        assert!(forgotten.is_empty());
        let mut events: Vec<_> = (4..=5).map(|i| (event("sales", "anonymous"), i)).collect();
        recent.keep_all(&mut events, &mut forgotten);
        assert_eq!(ids(), ["p-5", "p-4", "p-3"]);
        assert_eq!(forgotten.len(), 2, "p-1 and p-2");
        let mut events: Vec<_> = (6..=10).map(|i| (event("sales", "anonymous"), i)).collect();
        recent.keep_all(&mut events, &mut forgotten);
        assert_eq!(ids(), ["p-10", "p-9", "p-8"]);
        assert_eq!(forgotten.len(), 7, "and p-3 to p-5, and 6 and 7 never kept");
        let none = Recent::new(0, Region::from_code("US").expect("US"));
        let mut events = vec![(event("sales", "anonymous"), 1)];
        none.keep_all(&mut events, &mut forgotten);
        assert!(events.is_empty() && none.matching(None, 10).is_empty());
        assert_eq!(forgotten.len(), 8);
    }

    #[test]
    fn the_newest_records_are_found_by_either_number_in_any_spelling() {
        let recent = Recent::new(2, Region::from_code("US").expect("US"));
        recent.name("sb1", "00c0ffee00c0ffee");
        recent.keep(event("+18005550100", "+16505550123"), 1);
        recent.keep(event("sales", "+16505550123"), 2);
        recent.keep(event("+18005550111", "anonymous"), 3);
        let ids = |number: Option<&str>| -> Vec<String> {
            recent
                .matching(number, 10)
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        // The first was forgotten past the capacity.
        assert_eq!(ids(None), ["00c0ffee00c0ffee-3", "00c0ffee00c0ffee-2"]);
        assert_eq!(ids(Some("+1 (650) 555-0123")), ["00c0ffee00c0ffee-2"]);
        assert_eq!(ids(Some("+18005550111")), ["00c0ffee00c0ffee-3"]);
        assert_eq!(ids(Some("sales")), ["00c0ffee00c0ffee-2"]);
        assert_eq!(ids(Some("anonymous")), ["00c0ffee00c0ffee-3"]);
        assert_eq!(ids(Some("+18005550100")), Vec::<String>::new());
        let found = recent.matching(Some("+16505550123"), 1);
        assert_eq!(found[0].instance, "sb1");
        assert_eq!(found[0].caller.as_deref(), Some("+16505550123"));
        assert_eq!(found[0].dialed.as_deref(), Some("sales"));
    }
}

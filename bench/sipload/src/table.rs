//! The transaction table: one slot per outstanding INVITE, found by index.
//!
//! A slot holds the row sent, the send time and a generation that changes each
//! time the slot is reused, so that a late answer to a slot's earlier request
//! (after its timeout) is told apart from the answer to its current one. Free
//! slots are a stack. Every transaction has the same timeout, so the order of
//! sending is also the order of deadlines: a FIFO of (slot, generation) finds
//! the expired ones from its front, and entries of transactions answered since
//! are dropped when they reach the front. No heap, no timer wheel, and nothing
//! allocated per request once the FIFO has grown to its working size.

use std::collections::VecDeque;

#[derive(Clone, Copy, Default)]
struct Slot {
    generation: u32,
    row: u32,
    sent_ns: u64,
    live: bool,
}

pub struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    fifo: VecDeque<(u32, u32)>,
    live: usize,
}

impl Table {
    /// A table of `capacity` slots (the window).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: vec![Slot::default(); capacity],
            // Reversed, so that slot 0 is used first.
            free: (0..capacity as u32).rev().collect(),
            fifo: VecDeque::with_capacity(capacity * 4),
            live: 0,
        }
    }

    /// Outstanding transactions.
    #[inline]
    pub fn live(&self) -> usize {
        self.live
    }

    /// Takes a free slot for `row` sent at `now_ns`: (slot, generation), or `None`
    /// when the window is full.
    #[inline]
    pub fn open(&mut self, row: u32, now_ns: u64) -> Option<(u32, u32)> {
        let i = self.free.pop()?;
        let s = &mut self.slots[i as usize];
        s.generation = s.generation.wrapping_add(1);
        s.row = row;
        s.sent_ns = now_ns;
        s.live = true;
        self.live += 1;
        self.fifo.push_back((i, s.generation));
        Some((i, s.generation))
    }

    /// Ends the transaction (slot, generation): its (row, send time), or `None`
    /// when it is not outstanding (answered already, timed out, or a foreign id).
    #[inline]
    pub fn close(&mut self, slot: u32, generation: u32) -> Option<(u32, u64)> {
        let s = self.slots.get_mut(slot as usize)?;
        if !s.live || s.generation != generation {
            return None;
        }
        s.live = false;
        self.live -= 1;
        self.free.push(slot);
        Some((s.row, s.sent_ns))
    }

    /// Ends every transaction sent at or before `cutoff_ns`, calling `timed_out`
    /// with each one's row; returns how many.
    pub fn expire(&mut self, cutoff_ns: u64, mut timed_out: impl FnMut(u32)) -> usize {
        let mut n = 0;
        while let Some(&(i, generation)) = self.fifo.front() {
            let s = &mut self.slots[i as usize];
            if s.live && s.generation == generation {
                if s.sent_ns > cutoff_ns {
                    break;
                }
                s.live = false;
                self.live -= 1;
                self.free.push(i);
                n += 1;
                timed_out(s.row);
            }
            self.fifo.pop_front();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_close_and_window() {
        let mut t = Table::new(2);
        let a = t.open(7, 100).unwrap();
        let b = t.open(8, 200).unwrap();
        assert_eq!(t.open(9, 300), None);
        assert_eq!(t.live(), 2);
        assert_eq!(t.close(a.0, a.1), Some((7, 100)));
        assert_eq!(t.close(a.0, a.1), None, "answered twice");
        let c = t.open(9, 300).unwrap();
        assert_eq!(c.0, a.0, "the freed slot is reused");
        assert_ne!(c.1, a.1, "with a new generation");
        assert_eq!(
            t.close(a.0, a.1),
            None,
            "a late answer to the slot's old request"
        );
        assert_eq!(t.close(99, 1), None, "no such slot");
        assert_eq!(t.close(b.0, b.1), Some((8, 200)));
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn expiry_in_send_order_skipping_answered() {
        let mut t = Table::new(4);
        let a = t.open(1, 10).unwrap();
        t.open(2, 20).unwrap();
        t.open(3, 30).unwrap();
        t.close(a.0, a.1);
        let mut rows = Vec::new();
        assert_eq!(t.expire(25, |r| rows.push(r)), 1);
        assert_eq!(rows, [2]);
        assert_eq!(t.live(), 1);
        assert_eq!(t.expire(29, |r| rows.push(r)), 0);
        assert_eq!(t.expire(30, |r| rows.push(r)), 1);
        assert_eq!(rows, [2, 3]);
        assert_eq!(t.live(), 0);
        assert_eq!(t.fifo.len(), 0);
    }
}

//! What one thread counts during a run; the threads' counts are added up at the
//! end (`report`).

use crate::histogram::Histogram;

/// Counters of one thread (then of the whole run, once merged).
#[derive(Clone)]
pub struct Stats {
    /// INVITEs handed to the kernel.
    pub sent: u64,
    /// Transactions ended by a final answer.
    pub answered: u64,
    /// Transactions without a final answer within the timeout.
    pub timeouts: u64,
    /// Send and receive failures, truncated datagrams, lost connections.
    pub errors: u64,
    /// ACKs sent for non-2xx finals.
    pub acks: u64,
    /// Answers that match no outstanding transaction (late, repeated, foreign).
    pub stray: u64,
    /// Messages that are not SIP answers.
    pub unparsable: u64,
    /// 1xx answers (ignored otherwise).
    pub provisional: u64,
    /// Open loop: times the window held back requests that were due.
    pub window_full: u64,
    /// Final answers by status, index `status - 100`.
    pub codes: Vec<u64>,
    /// Time from sending to the answer, ns.
    pub latency: Histogram,
    /// How long this thread was sending, ns.
    pub send_ns: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            sent: 0,
            answered: 0,
            timeouts: 0,
            errors: 0,
            acks: 0,
            stray: 0,
            unparsable: 0,
            provisional: 0,
            window_full: 0,
            codes: vec![0; 600],
            latency: Histogram::new(),
            send_ns: 0,
        }
    }
}

impl Stats {
    /// Adds `other` in; the sending time is the longest of the threads'.
    pub fn merge(&mut self, other: &Stats) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.timeouts += other.timeouts;
        self.errors += other.errors;
        self.acks += other.acks;
        self.stray += other.stray;
        self.unparsable += other.unparsable;
        self.provisional += other.provisional;
        self.window_full += other.window_full;
        for (a, b) in self.codes.iter_mut().zip(&other.codes) {
            *a += b;
        }
        self.latency.merge(&other.latency);
        self.send_ns = self.send_ns.max(other.send_ns);
    }

    /// (status, count) of every status seen, in order.
    pub fn code_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.codes
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (i as u16 + 100, n))
    }
}

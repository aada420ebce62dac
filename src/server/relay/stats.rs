//! Proxy mode's counters (docs/operations.md, "Metrics"): calls relayed and
//! in flight, legs by outcome, failovers, ring time, and the messages the
//! driver could not place. Written under the driver's lock, read at
//! scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::proxy::call::{CallSummary, CancelReason, LegOutcome};

/// How a leg ended, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegResult {
    /// A 2xx.
    Answered,
    /// 486 or 600: the phone is busy.
    Busy,
    /// It rang out: the ring time, Timer C, or no answer at all.
    NoAnswer,
    /// Cancelled by the caller, or because another leg answered.
    Cancelled,
    /// Any other final answer, or a transport error.
    Failed,
}

impl LegResult {
    pub const ALL: [LegResult; 5] = [
        LegResult::Answered,
        LegResult::Busy,
        LegResult::NoAnswer,
        LegResult::Cancelled,
        LegResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LegResult::Answered => "answered",
            LegResult::Busy => "busy",
            LegResult::NoAnswer => "no_answer",
            LegResult::Cancelled => "cancelled",
            LegResult::Failed => "failed",
        }
    }

    pub fn of(outcome: Option<LegOutcome>, cancelled: Option<CancelReason>) -> LegResult {
        match (outcome, cancelled) {
            (Some(LegOutcome::Answered(_)), _) => LegResult::Answered,
            (_, Some(CancelReason::RingTimeout | CancelReason::TimerC)) => LegResult::NoAnswer,
            (_, Some(_)) => LegResult::Cancelled,
            (Some(LegOutcome::Rejected(486 | 600)), None) => LegResult::Busy,
            (Some(LegOutcome::NoAnswer) | None, None) => LegResult::NoAnswer,
            (Some(LegOutcome::Rejected(_) | LegOutcome::TransportError), None) => LegResult::Failed,
        }
    }
}

/// Upper bounds of the ring-time histogram, in seconds.
pub const RING_BOUNDS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0];

/// The counters.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Calls the driver took on.
    pub calls: AtomicU64,
    /// Calls admitted and not yet ended (the inbox's cap counts them).
    pub in_flight: Arc<AtomicUsize>,
    /// `proxy.max_calls`, for alerts on the gauge nearing it.
    pub max_calls: AtomicU64,
    /// Calls by their final status class: 2, 3, 4, 5, 6 (index 0..5),
    /// then none sent.
    pub finals: [AtomicU64; 6],
    pub legs: [AtomicU64; LegResult::ALL.len()],
    /// Legs started after the first: the call moved on.
    pub failovers: AtomicU64,
    /// Observations per ring-time bucket (not cumulative); last is +Inf.
    pub ring: [AtomicU64; RING_BOUNDS.len() + 1],
    pub ring_sum_ns: AtomicU64,
    /// Responses that matched no call and were not a 2xx to relay.
    pub dropped_responses: AtomicU64,
    /// ACKs for a 2xx whose call is gone or never answered.
    pub dropped_acks: AtomicU64,
    /// 2xx relayed statelessly after their call had ended.
    pub late_2xx: AtomicU64,
    /// In-dialog requests relayed through our Record-Route.
    pub in_dialog: AtomicU64,
    /// In-dialog requests that could not be relayed (no address, a send
    /// error, Max-Forwards 0).
    pub in_dialog_failed: AtomicU64,
    /// Answers to in-dialog requests relayed back.
    pub in_dialog_responses: AtomicU64,
    /// Outbound TCP and TLS connections to next hops open now.
    pub outbound_open: AtomicU64,
    /// Outbound connections that could not be opened (refused, timed
    /// out, a failed TLS handshake).
    pub outbound_failed: AtomicU64,
    /// Legs sent on to their target's next server (RFC 3263 §4.3): the
    /// one before refused the connection or stayed silent.
    pub server_failovers: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl ProxyStats {
    /// Counts a call that ended.
    pub fn record(&self, summary: &CallSummary, _lasted: Duration) {
        let class = summary
            .final_status
            .map_or(5, |s| usize::from(s / 100).clamp(2, 6) - 2);
        add(&self.finals[class], 1);
        add(&self.failovers, summary.legs.len().saturating_sub(1) as u64);
        for leg in &summary.legs {
            let result = LegResult::of(leg.outcome, leg.cancelled);
            let index = LegResult::ALL
                .iter()
                .position(|&r| r == result)
                .unwrap_or(0);
            add(&self.legs[index], 1);
            let seconds = leg.ring_time.as_secs_f64();
            let bucket = RING_BOUNDS
                .iter()
                .position(|&bound| seconds <= bound)
                .unwrap_or(RING_BOUNDS.len());
            add(&self.ring[bucket], 1);
            let nanos = u64::try_from(leg.ring_time.as_nanos()).unwrap_or(u64::MAX);
            add(&self.ring_sum_ns, nanos);
        }
    }

    pub fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_are_named_by_how_they_ended() {
        use CancelReason::*;
        use LegOutcome::*;
        assert_eq!(
            LegResult::of(Some(Answered(200)), None),
            LegResult::Answered
        );
        assert_eq!(
            LegResult::of(Some(Answered(200)), Some(RingTimeout)),
            LegResult::Answered
        );
        assert_eq!(
            LegResult::of(Some(Rejected(487)), Some(RingTimeout)),
            LegResult::NoAnswer
        );
        assert_eq!(
            LegResult::of(Some(Rejected(487)), Some(Caller)),
            LegResult::Cancelled
        );
        assert_eq!(LegResult::of(Some(Rejected(486)), None), LegResult::Busy);
        assert_eq!(LegResult::of(Some(Rejected(503)), None), LegResult::Failed);
        assert_eq!(LegResult::of(Some(TransportError), None), LegResult::Failed);
        assert_eq!(LegResult::of(Some(NoAnswer), None), LegResult::NoAnswer);
    }
}

//! Transaction timer values: RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1,
//! §17.2.2 and Table 4 (§A), RFC 6026 §8.11 (Timers L and M), and Timer C
//! of RFC 3261 §16.6 step 11 / §16.8.
//!
//! Over a reliable transport (TCP, TLS) there are no retransmissions: the
//! retransmission timers A, E and G are never armed, and the timers that
//! only wait for retransmissions to drain (D, K, I, J) are zero, so the
//! transaction ends at once (Table 4: "0s for reliable transports").

use std::time::Duration;

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// INVITE request retransmit (client, unreliable only).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Proxy INVITE transaction timeout (§16.8), per branch.
    C,
    /// Wait time for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable only).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable only).
    G,
    /// Wait time for ACK receipt (server INVITE).
    H,
    /// Wait time for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait time for response retransmits (client non-INVITE, Completed).
    K,
    /// Wait time for accepted INVITE retransmits (server, RFC 6026).
    L,
    /// Wait time for retransmission of 2xx (client, RFC 6026).
    M,
}

/// The base values. T1 is the round-trip estimate, T2 the cap on
/// non-INVITE and response retransmission intervals, T4 how long a
/// message may stay in the network (§17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Timer C: "MUST be greater than 3 minutes" (§16.6 step 11).
    pub timer_c: Duration,
    /// How long a leg's server may stay silent (no response at all, not
    /// even 100 Trying) before the target's next server is tried, when
    /// DNS gave it more than one (RFC 3263 §4.3). Timer B (64×T1, 32 s)
    /// is longer than a caller waits; four sends without a word (at 0,
    /// 0.5, 1.5 and 3.5 s over UDP) say the server is down.
    pub server_silence: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            // 3 minutes plus a margin, so that it is strictly greater.
            timer_c: Duration::from_secs(181),
            server_silence: Duration::from_secs(4),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J, L and M, and the wait for a final
    /// response after a CANCEL (§9.1).
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The first interval of Timer A (INVITE, then doubled without cap),
    /// E and G (doubled up to T2): T1; `None` on a reliable transport.
    pub fn first_retransmit(&self, reliable: bool) -> Option<Duration> {
        (!reliable).then_some(self.t1)
    }

    /// Timer A's next interval: doubled each time, no cap (§17.1.1.2).
    pub fn next_a(&self, current: Duration) -> Duration {
        current.saturating_mul(2)
    }

    /// Timer E and G's next interval: doubled, capped at T2 (§17.1.2.2,
    /// §17.2.1).
    pub fn next_capped(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2)
    }

    /// Timer D: at least 32 s over UDP, 0 over reliable transports.
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1x64())
        }
    }

    /// Timers K and I: T4 over UDP, 0 over reliable transports.
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_values() {
        let t = Timers::default();
        assert_eq!(t.t1x64(), Duration::from_secs(32));
        assert_eq!(t.first_retransmit(false), Some(Duration::from_millis(500)));
        assert_eq!(t.first_retransmit(true), None);
        assert_eq!(t.d(false), Duration::from_secs(32));
        assert_eq!(t.d(true), Duration::ZERO);
        assert_eq!(t.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(t.t4_or_zero(true), Duration::ZERO);
        assert!(t.timer_c > Duration::from_secs(180));
    }

    #[test]
    fn a_doubles_without_cap_e_and_g_cap_at_t2() {
        let t = Timers::default();
        let mut a = t.t1;
        let mut e = t.t1;
        let (mut a_seen, mut e_seen) = (vec![], vec![]);
        for _ in 0..6 {
            a_seen.push(a.as_millis());
            e_seen.push(e.as_millis());
            a = t.next_a(a);
            e = t.next_capped(e);
        }
        assert_eq!(a_seen, [500, 1000, 2000, 4000, 8000, 16000]);
        assert_eq!(e_seen, [500, 1000, 2000, 4000, 4000, 4000]);
    }
}

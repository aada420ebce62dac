//! The open loop's schedule: request `n` (from 0) is due `n / rate` seconds after
//! the start, whatever the answers do. Sending late (after a stall, or while the
//! window was full) catches up, so the offered rate stays the one asked for.

/// A fixed-rate schedule.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    start_ns: u64,
    ns_per_request: f64,
}

impl Pacing {
    /// `rate` requests per second from `start_ns` (`rate` > 0).
    pub fn new(start_ns: u64, rate: f64) -> Self {
        Self {
            start_ns,
            ns_per_request: 1e9 / rate,
        }
    }

    /// How many requests are due by `now_ns` (the first is due at the start).
    #[inline]
    pub fn due(&self, now_ns: u64) -> u64 {
        if now_ns < self.start_ns {
            return 0;
        }
        ((now_ns - self.start_ns) as f64 / self.ns_per_request) as u64 + 1
    }

    /// When request `n` is due.
    #[inline]
    pub fn time_of(&self, n: u64) -> u64 {
        self.start_ns + (n as f64 * self.ns_per_request) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let p = Pacing::new(1_000, 1_000.0); // one per ms
        assert_eq!(p.due(999), 0);
        assert_eq!(p.due(1_000), 1);
        assert_eq!(p.due(1_000 + 999_999), 1);
        assert_eq!(p.due(1_000 + 1_000_000), 2);
        assert_eq!(p.due(1_000 + 1_000_000_000), 1_001);
        assert_eq!(p.time_of(0), 1_000);
        assert_eq!(p.time_of(3), 3_001_000);
    }
}

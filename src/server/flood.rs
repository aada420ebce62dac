//! Flood protection (docs/security.md): a token bucket per source address.
//!
//! Each source may send `rate` messages a second, `burst` at once. The
//! first message over the limit is answered `503 Service Unavailable` with
//! `Retry-After` (RFC 3261 §21.5.4, §20.33); the rest are dropped unread
//! until a token is back, so a flood costs one map lookup per datagram and
//! gets no amplification. Exempt networks (trunks, proxies, load
//! generators) skip the map entirely.
//!
//! Memory is bounded: at most `max_sources` buckets. A full bucket holds no
//! information (a new one would start full too), so sweeps evict those;
//! when the map is still full, new sources are dropped untracked rather
//! than let a spoofed flood grow it. IPv6 sources are keyed by their /64,
//! the block one host usually owns, so one host cannot mint fresh buckets.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::address::{canonical, listed};
use crate::settings::FloodSettings;

/// The least time between two sweeps forced by a full map, so a spoofed
/// flood cannot make every datagram pay for a scan.
const FORCED_SWEEP_SPACING: Duration = Duration::from_secs(1);

/// What to do with one message from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within its limit: handle it.
    Admit,
    /// Just went over: answer 503 with this Retry-After, in seconds.
    Refuse { retry_after: u32 },
    /// Over the limit and already told, or not trackable: silence.
    Drop,
}

/// The per-source token buckets, shared by every worker.
#[derive(Debug)]
pub struct FloodGuard {
    /// Tokens per second; 0 means flood protection is off.
    rate: f64,
    burst: f64,
    exempt: Vec<IpNet>,
    max_sources: usize,
    buckets: DashMap<u128, Bucket, FxBuildHasher>,
    last_forced_sweep: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// A 503 was sent: silence until the bucket is full again.
    told: bool,
}

impl FloodGuard {
    pub fn new(settings: &FloodSettings) -> FloodGuard {
        FloodGuard {
            rate: f64::from(settings.rate),
            burst: f64::from(settings.burst.max(1)),
            exempt: settings.exempt.clone(),
            max_sources: settings.max_sources.max(1),
            buckets: DashMap::with_hasher(FxBuildHasher),
            last_forced_sweep: Mutex::new(None),
        }
    }

    /// A guard that admits everything.
    pub fn off() -> FloodGuard {
        FloodGuard::new(&FloodSettings {
            rate: 0,
            ..FloodSettings::default()
        })
    }

    /// Takes one token from the source's bucket. `now` is read only for
    /// sources that have one: exempt peers do not pay for the clock.
    pub fn admit(&self, ip: IpAddr, now: impl FnOnce() -> Instant) -> Verdict {
        if self.rate == 0.0 {
            return Verdict::Admit;
        }
        if listed(&self.exempt, ip) {
            return Verdict::Admit;
        }
        let now = now();
        let key = key(canonical(ip));
        if let Some(mut bucket) = self.buckets.get_mut(&key) {
            return self.take(&mut bucket, now);
        }
        if self.buckets.len() >= self.max_sources && !self.make_room(now) {
            return Verdict::Drop;
        }
        let mut bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
            told: false,
        });
        self.take(&mut bucket, now)
    }

    /// Evicts every bucket that has refilled: it is as if never seen.
    pub fn sweep(&self, now: Instant) {
        self.buckets
            .retain(|_, bucket| self.refilled(bucket, now) < self.burst);
    }

    /// Sources being tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn take(&self, bucket: &mut Bucket, now: Instant) -> Verdict {
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if bucket.told {
            if bucket.tokens < self.burst {
                return Verdict::Drop;
            }
            bucket.told = false;
        }
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Admit;
        }
        bucket.told = true;
        let wait = ((self.burst - bucket.tokens) / self.rate).ceil().max(1.0);
        Verdict::Refuse {
            // At most burst (u32) / 1: the cast cannot truncate.
            retry_after: wait as u32,
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Sweeps when the map is full, at most once per spacing; whether
    /// there is room afterwards.
    fn make_room(&self, now: Instant) -> bool {
        let Ok(mut last) = self.last_forced_sweep.try_lock() else {
            return false; // another worker is sweeping
        };
        let due = last.is_none_or(|at| now.saturating_duration_since(at) >= FORCED_SWEEP_SPACING);
        if due {
            *last = Some(now);
            drop(last);
            self.sweep(now);
        }
        self.buckets.len() < self.max_sources
    }
}

/// The bucket key: the IPv4 address, or the IPv6 /64.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(rate: u32, burst: u32, max_sources: usize) -> FloodGuard {
        FloodGuard::new(&FloodSettings {
            rate,
            burst,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
            max_sources,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_then_one_refusal_then_silence_until_the_bucket_is_full() {
        let guard = guard(10, 3, 100);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let peer = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(guard.admit(peer, || t0), Verdict::Admit);
        }
        assert_eq!(guard.admit(peer, || t0), Verdict::Refuse { retry_after: 1 });
        assert_eq!(guard.admit(peer, || t0), Verdict::Drop);
        // 100 ms at 10/s is one token, but the bucket is not full yet.
        assert_eq!(guard.admit(peer, || at(100)), Verdict::Drop);
        assert_eq!(guard.admit(peer, || at(299)), Verdict::Drop);
        // Dropped messages took nothing: full at 300 ms.
        assert_eq!(guard.admit(peer, || at(300)), Verdict::Admit);
        assert_eq!(guard.admit(peer, || at(300)), Verdict::Admit);
        // Other sources have their own buckets.
        assert_eq!(guard.admit(ip("192.0.2.2"), || at(300)), Verdict::Admit);
    }

    #[test]
    fn retry_after_is_the_time_to_refill() {
        let guard = guard(2, 9, 100);
        let t0 = Instant::now();
        let peer = ip("192.0.2.1");
        for _ in 0..9 {
            assert_eq!(guard.admit(peer, || t0), Verdict::Admit);
        }
        // 9 tokens at 2/s: 4.5 s, rounded up.
        assert_eq!(guard.admit(peer, || t0), Verdict::Refuse { retry_after: 5 });
        assert_eq!(
            guard.admit(peer, || t0 + Duration::from_secs(4)),
            Verdict::Drop
        );
        assert_eq!(
            guard.admit(peer, || t0 + Duration::from_millis(4500)),
            Verdict::Admit
        );
    }

    #[test]
    fn exempt_networks_and_rate_zero_are_never_limited() {
        let guard = guard(1, 1, 100);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(guard.admit(ip("10.1.2.3"), || t0), Verdict::Admit);
            assert_eq!(guard.admit(ip("::ffff:10.1.2.3"), || t0), Verdict::Admit);
        }
        assert_eq!(guard.tracked(), 0);
        let off = FloodGuard::off();
        for _ in 0..1000 {
            assert_eq!(off.admit(ip("192.0.2.1"), || t0), Verdict::Admit);
        }
        assert_eq!(off.tracked(), 0);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let guard = guard(1, 2, 100);
        let t0 = Instant::now();
        assert_eq!(guard.admit(ip("2001:db8::1"), || t0), Verdict::Admit);
        assert_eq!(guard.admit(ip("2001:db8::ffff:2"), || t0), Verdict::Admit);
        assert!(matches!(
            guard.admit(ip("2001:db8::3"), || t0),
            Verdict::Refuse { .. }
        ));
        assert_eq!(guard.admit(ip("2001:db8:0:1::1"), || t0), Verdict::Admit);
    }

    #[test]
    fn memory_stays_bounded_under_spoofed_sources() {
        let guard = guard(10, 10, 1000);
        let t0 = Instant::now();
        for i in 0..50_000u32 {
            let source = IpAddr::V4((0xC000_0000 + i).into());
            let _ = guard.admit(source, || t0);
            assert!(guard.tracked() <= 1000);
        }
        // Once they have refilled, a sweep frees them all and new sources
        // are tracked again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(guard.admit(ip("198.51.100.1"), || later), Verdict::Admit);
        guard.sweep(later + Duration::from_secs(2));
        assert_eq!(guard.tracked(), 0);
    }

    #[test]
    fn a_busy_source_survives_a_sweep() {
        let guard = guard(1, 5, 100);
        let t0 = Instant::now();
        let peer = ip("192.0.2.9");
        for _ in 0..5 {
            guard.admit(peer, || t0);
        }
        guard.sweep(t0);
        assert_eq!(guard.tracked(), 1);
        assert!(matches!(guard.admit(peer, || t0), Verdict::Refuse { .. }));
    }
}

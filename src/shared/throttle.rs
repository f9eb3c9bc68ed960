//! Password-guessing throttle: failed logins and `COM_CHANGE_USER` attempts per client address.
//! The first few failures cost nothing; from then on each refusal waits longer before it is
//! sent (doubling up to a ceiling), so one address cannot try thousands of passwords a second
//! over one connection or many. A success does not clear the count (a valid login of one's
//! own must not reset a guessing run); an address ages out after ten minutes without failures.
//! Refusals are logged for the first failures and then only at powers of two.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failures from one address before refusals are delayed.
const FREE_FAILURES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
/// An address without failures for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Addresses remembered at most (the oldest are forgotten first).
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Refusals that were delayed.
    pub delayed: AtomicU64,
}

impl Throttle {
    /// Records a failed attempt from `ip`; returns how long to wait before answering and
    /// whether this failure should be logged.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> (Duration, bool) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_ADDRESSES && !m.contains_key(&ip) {
            m.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
            if m.len() >= MAX_ADDRESSES
                && let Some(oldest) = m.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k)
            {
                m.remove(&oldest);
            }
        }
        let entry = m.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now;
        let n = entry.0;
        drop(m);
        let log = n <= FREE_FAILURES || n.is_power_of_two();
        if n <= FREE_FAILURES {
            return (Duration::ZERO, log);
        }
        self.delayed.fetch_add(1, Ordering::Relaxed);
        let doublings = (n - FREE_FAILURES - 1).min(16);
        (FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY), log)
    }

    /// Failures currently counted for `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).map_or(0, |e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_slow_down_per_address_and_age_out() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let now = Instant::now();
        let delays: Vec<Duration> = (0..8).map(|_| t.failed(a, now).0).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(0), ms(0), ms(0), ms(100), ms(200), ms(400), ms(800), ms(1600)]);
        assert_eq!(t.failed(b, now).0, Duration::ZERO, "another address is not affected");
        for _ in 0..20 {
            t.failed(a, now);
        }
        assert_eq!(t.failed(a, now).0, MAX_DELAY);
        assert_eq!(t.count(a), 29);
        assert_eq!(t.failed(b, now + FORGET_AFTER).0, Duration::ZERO, "aged out");
        let logged: Vec<bool> = (0..9).map(|_| t.failed("127.0.0.4".parse().unwrap(), now).1).collect();
        assert_eq!(logged, [true, true, true, true, false, false, false, true, false], "1-3, then 4 and 8");
    }
}

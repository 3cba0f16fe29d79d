//! Throttling of failed logins, per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`], every login from that
//! address is refused (without checking the password, so guessing gains
//! nothing) until the window has passed. The table is bounded: at
//! [`MAX_ENTRIES`] the oldest windows are dropped first.
//!
//! No clock of its own: callers pass `now`, so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most addresses remembered.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct Throttle {
    inner: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// Whether a login from `ip` may be tried now.
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((n, since)) => *n < MAX_FAILURES || now.duration_since(*since) >= WINDOW,
            None => true,
        }
    }

    /// Records a failed login.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(&ip) {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_ENTRIES
                && let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets an address's failures after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_an_address_out_for_the_window() {
        let t = Throttle::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(t.allowed(a, t0), "failure {i}");
            t.failed(a, t0);
        }
        assert!(!t.allowed(a, t0 + Duration::from_secs(60)));
        assert!(t.allowed(b, t0), "other addresses are not affected");
        assert!(t.allowed(a, t0 + WINDOW));
        t.failed(a, t0 + WINDOW);
        assert!(
            t.allowed(a, t0 + WINDOW),
            "a new window starts counting afresh"
        );
        t.succeeded(a);
        assert!(t.allowed(a, t0 + WINDOW));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Throttle::new();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            t.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert!(t.inner.lock().unwrap().len() <= MAX_ENTRIES);
    }
}

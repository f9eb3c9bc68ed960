//! One server's pool: capped by a semaphore, idle connections per key, connect backoff.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::ServerId;
use super::health::ServerHealth;

/// A connection slot; giving it back wakes checkouts waiting in the hostgroup.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    notify: Arc<Notify>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.notify.notify_waiters();
    }
}

pub(super) struct Idle<C> {
    pub conn: C,
    pub permit: Permit,
    pub created: Instant,
    pub since: Instant,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last_error: Option<String>,
}

/// Counters for the admin API and metrics.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub checkouts: AtomicU64,
    pub waiters: AtomicU64,
    /// Most connections in use at once.
    pub max_used: AtomicU64,
    /// Statements sent to this server through this entry.
    pub statements: AtomicU64,
}

pub struct ServerPool<C, K> {
    pub id: ServerId,
    weight: AtomicU32,
    max_connections: AtomicU32,
    /// Shared with this address's entries in other hostgroups.
    pub health: Arc<ServerHealth>,
    /// Whether this entry is in its hostgroup now (replication roles move servers).
    pub active: AtomicBool,
    /// Connections checked out right now.
    pub outstanding: Arc<AtomicU32>,
    pub(super) permits: Arc<Semaphore>,
    idle: Mutex<crate::FastMap<K, Vec<Idle<C>>>>,
    backoff: Mutex<Backoff>,
    pub(super) notify: Arc<Notify>,
    pub stats: PoolStats,
}

pub(super) enum Take<C> {
    Idle(Idle<C>),
    Permit(Permit),
    Full,
}

impl<C, K: Hash + Eq + Clone> ServerPool<C, K> {
    pub(super) fn new(
        id: ServerId,
        weight: u32,
        max: u32,
        notify: Arc<Notify>,
        health: Arc<ServerHealth>,
    ) -> Self {
        ServerPool {
            id,
            weight: AtomicU32::new(weight),
            max_connections: AtomicU32::new(max),
            health,
            active: AtomicBool::new(true),
            outstanding: Arc::new(AtomicU32::new(0)),
            permits: Arc::new(Semaphore::new(max as usize)),
            idle: Mutex::new(crate::FastMap::default()),
            backoff: Mutex::new(Backoff::default()),
            notify,
            stats: PoolStats::default(),
        }
    }

    /// An idle connection for `key`: one `prefer` likes, else one `accept` likes (most
    /// recently used first), else a
    /// permit to open one, else a permit freed by closing an idle connection of another key.
    pub(super) fn take(&self, key: &K, prefer: &dyn Fn(&C) -> bool, accept: &dyn Fn(&C) -> bool) -> Take<C> {
        let Ok(mut idle) = self.idle.lock() else { return Take::Full };
        if let Some(list) = idle.get_mut(key) {
            let pick = list
                .iter()
                .rposition(|c| prefer(&c.conn))
                .or_else(|| list.iter().rposition(|c| accept(&c.conn)));
            if let Some(i) = pick {
                return Take::Idle(list.remove(i));
            }
        }
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Take::Permit(Permit { _permit: p, notify: self.notify.clone() });
        }
        // Full: close the oldest idle connection (any key) to make room.
        let victim =
            idle.values_mut().filter(|l| !l.is_empty()).min_by_key(|l| l[0].since).map(|l| l.remove(0));
        match victim {
            Some(v) => Take::Permit(v.permit),
            None => Take::Full,
        }
    }

    pub(super) fn put_idle(&self, key: K, idle: Idle<C>) {
        if let Ok(mut m) = self.idle.lock() {
            m.entry(key).or_default().push(idle);
        }
        self.notify.notify_waiters();
    }

    /// Closes idle connections idle longer than `idle_timeout` or older than `max_lifetime`.
    pub(super) fn reap(&self, now: Instant, idle_timeout: Duration, max_lifetime: Duration) -> usize {
        let Ok(mut m) = self.idle.lock() else { return 0 };
        let mut closed = 0;
        for list in m.values_mut() {
            let before = list.len();
            list.retain(|c| now - c.since < idle_timeout && now - c.created < max_lifetime);
            closed += before - list.len();
        }
        m.retain(|_, l| !l.is_empty());
        closed
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|m| m.values().map(Vec::len).sum()).unwrap_or(0)
    }

    pub fn open_count(&self) -> usize {
        (self.max_connections() as usize).saturating_sub(self.permits.available_permits())
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn max_connections(&self) -> u32 {
        self.max_connections.load(Ordering::Relaxed)
    }

    /// Applies a reloaded weight and connection cap. A lower cap takes free slots away at
    /// once; slots in use are given back to the pool when their connections close (until
    /// then the server may briefly hold more than the new cap).
    pub(super) fn resize(&self, weight: u32, max: u32) {
        self.weight.store(weight, Ordering::Relaxed);
        let old = self.max_connections.swap(max, Ordering::Relaxed);
        if max > old {
            self.permits.add_permits((max - old) as usize);
        } else if max < old {
            self.permits.forget_permits((old - max) as usize);
        }
    }

    /// Takes work now: in its hostgroup, not shunned, not backing off.
    pub fn is_live(&self, now: Instant) -> bool {
        self.active.load(Ordering::Acquire)
            && !self.health.is_shunned()
            && !self.health.is_draining()
            && !self.in_backoff(now)
    }

    /// Closes every idle connection (the server went away or was shunned).
    pub fn clear_idle(&self) {
        if let Ok(mut m) = self.idle.lock() {
            m.clear();
        }
    }

    pub fn in_backoff(&self, now: Instant) -> bool {
        self.backoff.lock().ok().and_then(|b| b.until).is_some_and(|u| now < u)
    }

    pub fn last_error(&self) -> Option<String> {
        self.backoff.lock().ok().and_then(|b| b.last_error.clone())
    }

    pub(super) fn connect_failed(&self, now: Instant, err: String, initial: Duration, max: Duration) {
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut b) = self.backoff.lock() {
            let wait = initial.saturating_mul(1 << b.failures.min(16)).min(max);
            b.failures += 1;
            b.until = Some(now + wait);
            b.last_error = Some(err);
        }
    }

    pub(super) fn clear_backoff(&self) {
        if let Ok(mut b) = self.backoff.lock() {
            b.failures = 0;
            b.until = None;
        }
    }

    pub(super) fn connect_ok(&self) {
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut b) = self.backoff.lock() {
            b.failures = 0;
            b.until = None;
        }
    }
}

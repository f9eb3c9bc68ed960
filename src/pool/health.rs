//! The monitor's view of each server, read lock-free by checkout and the admin API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::positions::{Applied, WriteLog};
use crate::routing::gtid::GtidPos;

/// Why a server gets no new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShunReason {
    /// Connect or probe failed.
    Down,
    /// Replication lag above the server's threshold.
    Lagging,
    /// Replication threads not running (or not a replica at all).
    ReplicationStopped,
    /// Replication stopped with an error.
    ReplicationBroken,
    /// A reader that reports `read_only=OFF` while another server is the writer.
    ReadOnlyOff,
}

impl ShunReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ShunReason::Down => "down",
            ShunReason::Lagging => "lagging",
            ShunReason::ReplicationStopped => "replication_stopped",
            ShunReason::ReplicationBroken => "replication_broken",
            ShunReason::ReadOnlyOff => "read_only_off",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct HealthView {
    /// Why the server is shunned, with the probe's detail.
    pub shunned: Option<(ShunReason, String)>,
    pub read_only: Option<bool>,
    pub lag_seconds: Option<u64>,
    /// Applied GTID position (`@@gtid_current_pos`).
    pub gtid: Option<GtidPos>,
    pub checked_at: Option<SystemTime>,
    /// The last probe failed (no answer, or an error).
    pub probe_failed: bool,
}

/// One server's health, shared by its pool entries in every hostgroup.
#[derive(Debug, Default)]
pub struct ServerHealth {
    shunned: AtomicBool,
    /// Drained by an operator (OFFLINE_SOFT): no new checkouts, running work finishes.
    draining: AtomicBool,
    /// The last probe failed.
    failing: AtomicBool,
    /// How old the last contact (`Applied::seen`) may be while the server is answering, in ms
    /// (0: unknown); set by its probe task from how often it reads the position.
    fresh_within_ms: std::sync::atomic::AtomicU64,
    view: ArcSwap<HealthView>,
    /// What the server has applied, and how far behind it applies.
    applied: ArcSwap<Applied>,
    /// The latest probes, newest last (ProxySQL's monitor log tables).
    probes: std::sync::Mutex<std::collections::VecDeque<ProbeRecord>>,
}

/// One monitor probe as the admin's `monitor.*_log` tables show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    /// Start, µs since the Unix epoch.
    pub start_us: u64,
    /// How long the answer took (µs); 0 when it failed.
    pub took_us: u64,
    pub error: Option<String>,
    pub read_only: Option<bool>,
    pub lag_seconds: Option<u64>,
}

/// Probes kept per server.
const PROBES_KEPT: usize = 100;

impl ServerHealth {
    pub fn is_shunned(&self) -> bool {
        self.shunned.load(Ordering::Acquire)
    }

    /// The monitor cannot reach the server right now: shunned, its last probe failed, or its
    /// last answer is older than its polls allow (a hung server answers nothing at all).
    pub fn unresponsive(&self) -> bool {
        let fresh = self.fresh_within_ms.load(Ordering::Relaxed);
        let silent = fresh > 0
            && self
                .applied
                .load()
                .seen
                .is_some_and(|t| t.elapsed() > std::time::Duration::from_millis(fresh));
        self.is_shunned() || self.failing.load(Ordering::Acquire) || silent
    }

    /// A statement there was cut as hung: tried last until a probe says otherwise.
    pub fn mark_failing(&self) {
        self.failing.store(true, Ordering::Release);
    }

    /// The last probe failed or the server is shunned (two atomic loads: for checkout order).
    pub fn failing(&self) -> bool {
        self.is_shunned() || self.failing.load(Ordering::Acquire)
    }

    /// How recent the last answer must be while the server is answering.
    pub fn set_fresh_within(&self, limit: std::time::Duration) {
        self.fresh_within_ms.store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// Keeps a probe's outcome (the oldest go past `PROBES_KEPT`).
    pub fn record_probe(&self, record: ProbeRecord) {
        if let Ok(mut p) = self.probes.lock() {
            if p.len() == PROBES_KEPT {
                p.pop_front();
            }
            p.push_back(record);
        }
    }

    pub fn probes(&self) -> Vec<ProbeRecord> {
        self.probes.lock().map(|p| p.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Release);
    }

    pub fn view(&self) -> Arc<HealthView> {
        self.view.load_full()
    }

    pub fn publish(&self, view: HealthView) {
        self.shunned.store(view.shunned.is_some(), Ordering::Release);
        self.failing.store(view.probe_failed, Ordering::Release);
        self.view.store(Arc::new(view));
    }

    /// Whether the server is known to have applied `needed`.
    pub fn has_applied(&self, needed: &GtidPos) -> bool {
        self.applied.load().covers(needed)
    }

    pub fn applied(&self) -> Arc<Applied> {
        self.applied.load_full()
    }

    /// A position read from the server now (the monitor's probes and position polls).
    pub fn observe_position(&self, pos: &GtidPos, log: &WriteLog) {
        let now = std::time::Instant::now();
        self.applied.rcu(|a| {
            let mut a = Applied::clone(a);
            a.observe(pos.clone(), now, log);
            a
        });
    }

    /// Records a position learned outside the monitor (a successful `MASTER_GTID_WAIT`).
    pub fn note_applied(&self, pos: &GtidPos) {
        self.applied.rcu(|a| {
            let mut a = Applied::clone(a);
            a.proven(pos);
            a
        });
    }

    /// A wait of `budget` for a write acknowledged at `learned` ran out.
    pub fn note_wait_failed(&self, learned: Option<std::time::Instant>, budget: std::time::Duration) {
        let now = std::time::Instant::now();
        self.applied.rcu(|a| {
            let mut a = Applied::clone(a);
            a.wait_failed(learned, budget, now);
            a
        });
    }
}

//! Counters shared by all sessions: how many are pinned, by reason, and how connections were
//! cleaned before reuse, by kind of state. Updated only when something changes.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::backend::StateKind as PinReason;
use crate::backend::{KindSet, Mechanism, StateKind};

const N: usize = StateKind::COUNT;

#[derive(Debug, Default)]
pub struct SessionStats {
    pinned: [AtomicI64; N],
    pin_events: [AtomicU64; N],
    resets: [AtomicU64; N],
    closes: [AtomicU64; N],
    retries: AtomicU64,
    local_answers: AtomicU64,
    /// Read-your-writes decisions: served by a caught-up reader, by a reader after a GTID
    /// wait, or by the writer (also after a wait that timed out, counted in `ryw_wait_failed`).
    pub ryw_reader: AtomicU64,
    pub ryw_waited: AtomicU64,
    pub ryw_wait_failed: AtomicU64,
    pub ryw_writer: AtomicU64,
}

/// A bit per reason.
pub fn mask(reasons: impl Iterator<Item = PinReason>) -> u64 {
    reasons.fold(0, |m, r| m | 1 << r.index())
}

impl SessionStats {
    /// Applies the change from `old` to `new` reason masks of one session.
    pub fn update(&self, old: u64, new: u64) {
        if old == new {
            return;
        }
        for r in StateKind::pinning() {
            let bit = 1u64 << r.index();
            let (was, is) = (old & bit != 0, new & bit != 0);
            if is && !was {
                self.pinned[r.index()].fetch_add(1, Ordering::Relaxed);
                self.pin_events[r.index()].fetch_add(1, Ordering::Relaxed);
            } else if was && !is {
                self.pinned[r.index()].fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// A connection went back to the pool carrying `residue`, cleaned by `how`.
    pub fn cleaned(&self, residue: KindSet, how: Mechanism) {
        let counters = if how == Mechanism::Close { &self.closes } else { &self.resets };
        for k in residue.iter() {
            counters[k.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (resets, closes) of connections that carried state of kind `k`.
    pub fn cleanups(&self, k: StateKind) -> (u64, u64) {
        (self.resets[k.index()].load(Ordering::Relaxed), self.closes[k.index()].load(Ordering::Relaxed))
    }

    pub fn note_local_answer(&self) {
        self.local_answers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn local_answers(&self) -> u64 {
        self.local_answers.load(Ordering::Relaxed)
    }

    pub fn note_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn pinned_now(&self, r: PinReason) -> i64 {
        self.pinned[r.index()].load(Ordering::Relaxed)
    }

    pub fn pin_events(&self, r: PinReason) -> u64 {
        self.pin_events[r.index()].load(Ordering::Relaxed)
    }
}

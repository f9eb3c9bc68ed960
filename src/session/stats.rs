//! Counters shared by all sessions: how many are pinned, by reason. Updated only when a
//! session's set of reasons changes.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::pins::PinReason;

const N: usize = PinReason::ALL.len();

#[derive(Debug, Default)]
pub struct SessionStats {
    pinned: [AtomicI64; N],
    pin_events: [AtomicU64; N],
    retries: AtomicU64,
    /// Read-your-writes decisions: served by a caught-up reader, by a reader after a GTID
    /// wait, or by the writer.
    pub ryw_reader: AtomicU64,
    pub ryw_waited: AtomicU64,
    pub ryw_writer: AtomicU64,
}

fn index(r: PinReason) -> usize {
    PinReason::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

/// A bit per reason.
pub fn mask(reasons: impl Iterator<Item = PinReason>) -> u32 {
    reasons.fold(0, |m, r| m | 1 << index(r))
}

impl SessionStats {
    /// Applies the change from `old` to `new` reason masks of one session.
    pub fn update(&self, old: u32, new: u32) {
        if old == new {
            return;
        }
        for (i, r) in PinReason::ALL.iter().enumerate() {
            let (was, is) = (old & 1 << i != 0, new & 1 << i != 0);
            if is && !was {
                self.pinned[index(*r)].fetch_add(1, Ordering::Relaxed);
                self.pin_events[index(*r)].fetch_add(1, Ordering::Relaxed);
            } else if was && !is {
                self.pinned[index(*r)].fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub fn note_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn pinned_now(&self, r: PinReason) -> i64 {
        self.pinned[index(r)].load(Ordering::Relaxed)
    }

    pub fn pin_events(&self, r: PinReason) -> u64 {
        self.pin_events[index(r)].load(Ordering::Relaxed)
    }
}

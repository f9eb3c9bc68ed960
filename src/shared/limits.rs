//! Client connection limits, proxy-wide and per user, released by guards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Limits {
    total: AtomicU32,
    per_user: Mutex<HashMap<String, u32>>,
}

/// Holds one slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<Limits>,
    user: Option<String>,
}

impl Limits {
    pub fn current(&self) -> u32 {
        self.total.load(Ordering::Relaxed)
    }

    /// A proxy-wide slot, or `None` when `max` are taken.
    pub fn enter(self: &Arc<Self>, max: u32) -> Option<Slot> {
        let prev = self.total.fetch_add(1, Ordering::AcqRel);
        if prev >= max {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot { limits: self.clone(), user: None })
    }

    /// Moves a slot to `user`, or refuses when that user has `max` connections already.
    pub fn set_user(&self, slot: &mut Slot, user: &str, max: u32) -> bool {
        let Ok(mut m) = self.per_user.lock() else { return false };
        let n = m.get(user).copied().unwrap_or(0);
        if n >= max && slot.user.as_deref() != Some(user) {
            return false;
        }
        if slot.user.as_deref() == Some(user) {
            return true;
        }
        if let Some(old) = slot.user.take() {
            release(&mut m, &old);
        }
        m.insert(user.to_string(), n + 1);
        slot.user = Some(user.to_string());
        true
    }
}

fn release(m: &mut HashMap<String, u32>, user: &str) {
    if let Some(n) = m.get_mut(user) {
        *n -= 1;
        if *n == 0 {
            m.remove(user);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
        if let (Some(u), Ok(mut m)) = (&self.user, self.limits.per_user.lock()) {
            release(&mut m, u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_user_limits_hold_and_release() {
        let l = Arc::new(Limits::default());
        let mut a = l.enter(2).unwrap();
        let mut b = l.enter(2).unwrap();
        assert!(l.enter(2).is_none());
        assert!(l.set_user(&mut a, "app", 1));
        assert!(!l.set_user(&mut b, "app", 1));
        assert!(l.set_user(&mut b, "other", 1));
        assert!(l.set_user(&mut b, "other", 1), "same user again is not a second slot");
        drop(a);
        assert!(l.set_user(&mut b, "app", 1), "moving to a user frees the old one");
        assert!(l.enter(2).is_some());
        drop(b);
        assert_eq!(l.current(), 0);
        assert!(l.per_user.lock().unwrap().is_empty());
    }
}

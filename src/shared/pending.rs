//! Connections that have not logged in yet. Their number is bounded (`proxy.max_pending_logins`)
//! and, at the bound, the oldest is closed to admit the newest: clients that open connections
//! and never finish the handshake cannot lock anyone out (a real login takes milliseconds, so
//! it is never the oldest for long), and what unauthenticated peers can make the proxy hold
//! is bounded by that number times the pre-login packet cap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct PendingLogins {
    queue: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next: AtomicU64,
    /// Handshakes closed to make room for newer ones.
    pub evicted: AtomicU64,
}

/// One connection's place among the pending logins, given back when dropped.
#[derive(Debug)]
pub struct PendingLogin {
    owner: Arc<PendingLogins>,
    id: u64,
    /// Notified when this connection is closed to make room.
    pub evict: Arc<Notify>,
}

impl PendingLogins {
    /// A place for a new connection; the oldest pending ones are told to close while `max`
    /// are pending.
    pub fn enter(self: &Arc<Self>, max: usize) -> PendingLogin {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        while q.len() >= max.max(1) {
            let Some((_, oldest)) = q.pop_front() else { break };
            oldest.notify_one();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        q.push_back((id, evict.clone()));
        PendingLogin { owner: self.clone(), id, evict }
    }

    pub fn current(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        let mut q = self.owner.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = q.iter().position(|(id, _)| *id == self.id) {
            q.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_pending_login_makes_room() {
        let p = Arc::new(PendingLogins::default());
        let first = p.enter(2);
        let second = p.enter(2);
        assert_eq!(p.current(), 2);
        let third = p.enter(2);
        // The first was told to close (the permit waits for it); the others were not.
        tokio::time::timeout(std::time::Duration::from_millis(100), first.evict.notified()).await.unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), second.evict.notified())
                .await
                .is_err()
        );
        assert_eq!(p.evicted.load(Ordering::Relaxed), 1);
        drop(first);
        assert_eq!(p.current(), 2, "an evicted login was already out of the queue");
        drop((second, third));
        assert_eq!(p.current(), 0);
    }
}

//! The live sessions of this proxy by id (the connection id clients got in the greeting), so
//! `KILL` can act on them: which user owns each, which backend thread runs its statement, and
//! a handle on its client socket to close it. Nothing here costs a lock per statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Backend addresses by a small id, so a session can publish where its statement runs with
/// one atomic store. Append-only: an id names the same address for the life of the proxy.
#[derive(Debug, Default)]
pub struct Addresses {
    list: Mutex<Vec<Arc<str>>>,
}

impl Addresses {
    /// The id of `addr` (from 1), adding it if new.
    pub fn intern(&self, addr: &Arc<str>) -> u32 {
        let Ok(mut l) = self.list.lock() else { return 0 };
        match l.iter().position(|a| a == addr) {
            Some(i) => i as u32 + 1,
            None => {
                l.push(addr.clone());
                l.len() as u32
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<str>> {
        let l = self.list.lock().ok()?;
        l.get((id as usize).checked_sub(1)?).cloned()
    }
}

/// One session as others may see it.
#[derive(Debug, Default)]
pub struct Handle {
    user: Mutex<String>,
    /// (address id << 32) | backend thread id of the statement running now; 0: none.
    running: AtomicU64,
    killed: AtomicBool,
    /// The client's socket (its descriptor, not a duplicate: one per session is enough):
    /// shutting it down ends the session wherever it is. The session clears it before the
    /// socket closes (`forget_client`), under this lock, so a shutdown never reaches a
    /// descriptor the kernel gave to someone else.
    client: Mutex<Option<std::os::fd::RawFd>>,
    /// Since when (ms on the registry's clock) the session waits for its client; 0: busy.
    idle_since: AtomicU64,
    /// How long it may wait, in ms.
    idle_limit: AtomicU64,
    /// The sweeper closed it for idling past its limit.
    idle_expired: AtomicBool,
    /// The statement running now, watched by the sweeper.
    watched: Mutex<Option<super::watched::Watched>>,
}

impl Handle {
    pub fn user(&self) -> String {
        self.user.lock().map(|u| u.clone()).unwrap_or_default()
    }

    pub fn set_user(&self, user: &str) {
        if let Ok(mut u) = self.user.lock() {
            *u = user.to_string();
        }
    }

    /// Publishes (or with `None` clears) the backend thread running the session's statement.
    pub fn set_running(&self, running: Option<(u32, u32)>) {
        let v = running.map_or(0, |(addr, thread)| u64::from(addr) << 32 | u64::from(thread));
        self.running.store(v, Ordering::Release);
    }

    /// (address id, backend thread id) of the statement running now.
    pub fn running(&self) -> Option<(u32, u32)> {
        let v = self.running.load(Ordering::Acquire);
        (v != 0).then_some(((v >> 32) as u32, v as u32))
    }

    /// Ends the session: its client connection is shut down (an idle session sees it close
    /// at once, a running one when its reply is written).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.close_client();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// The session starts waiting for its client (`now` on the registry's clock, `limit` ms).
    pub fn set_idle(&self, now: u64, limit: u64) {
        self.idle_limit.store(limit, Ordering::Relaxed);
        self.idle_since.store(now.max(1), Ordering::Release);
    }

    /// How long the session has waited for its client (ms), `None` while it runs a command.
    pub fn idle_for(&self, now: u64) -> Option<u64> {
        let since = self.idle_since.load(Ordering::Acquire);
        (since != 0).then(|| now.saturating_sub(since))
    }

    /// The client sent a command.
    pub fn set_busy(&self) {
        self.idle_since.store(0, Ordering::Release);
    }

    /// Shuts the client's socket down: the session ends wherever it waits.
    fn close_client(&self) {
        if let Ok(c) = self.client.lock()
            && let Some(fd) = *c
        {
            // SAFETY: `fd` is open: the session clears it under this lock before closing it.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    /// The session's socket is about to close: nothing may shut it down any more.
    pub fn forget_client(&self) {
        if let Ok(mut c) = self.client.lock() {
            *c = None;
        }
    }

    /// Puts the statement just sent under the sweeper's watch.
    pub fn watch(&self, w: super::watched::Watched) {
        if let Ok(mut slot) = self.watched.lock() {
            *slot = Some(w);
        }
    }

    /// Ends the watch; true when the sweeper cut the statement as hung.
    pub fn unwatch(&self) -> bool {
        self.watched.lock().ok().and_then(|mut w| w.take()).is_some_and(|w| w.cut)
    }

    /// Whether the sweeper closed the session for idling.
    pub fn idle_expired(&self) -> bool {
        self.idle_expired.load(Ordering::Acquire)
    }

    /// Closes the session if it has waited for its client past its limit at `now`, and
    /// checks the statement it runs.
    fn sweep(&self, now: u64) {
        if let Ok(mut w) = self.watched.lock()
            && let Some(w) = w.as_mut()
        {
            w.check(now);
        }
        let since = self.idle_since.load(Ordering::Acquire);
        if since != 0 && now.saturating_sub(since) > self.idle_limit.load(Ordering::Relaxed) {
            self.idle_expired.store(true, Ordering::Release);
            self.close_client();
        }
    }
}

#[derive(Debug)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<Handle>>>,
    pub addresses: Addresses,
    /// The clock idle times are measured on (ms since the registry was made).
    epoch: std::time::Instant,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            sessions: Mutex::default(),
            addresses: Addresses::default(),
            epoch: std::time::Instant::now(),
        }
    }
}

/// How often idle sessions and running statements are checked against their limits.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Registry {
    pub fn register(&self, id: u32, user: &str, client: Option<std::os::fd::RawFd>) -> Arc<Handle> {
        let h = Arc::new(Handle { client: Mutex::new(client), ..Handle::default() });
        h.set_user(user);
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(id, h.clone());
        }
        h
    }

    /// Forgets a session that ended.
    pub fn remove(&self, id: u32) {
        if let Some(h) = self.sessions.lock().ok().and_then(|mut m| m.remove(&id)) {
            h.forget_client();
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<Handle>> {
        self.sessions.lock().ok()?.get(&id).cloned()
    }

    /// Every live session, by id (a snapshot for the admin's process list).
    pub fn list(&self) -> Vec<(u32, Arc<Handle>)> {
        let mut all: Vec<(u32, Arc<Handle>)> = self
            .sessions
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Now, in ms on the registry's clock.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Closes every session idle past its limit (run every `SWEEP_EVERY`): one task for all
    /// sessions instead of a timer per session.
    pub fn sweep(&self) {
        let now = self.now();
        let handles: Vec<Arc<Handle>> = match self.sessions.lock() {
            Ok(m) => m
                .values()
                .filter(|h| h.idle_since.load(Ordering::Relaxed) != 0 || h.running().is_some())
                .cloned()
                .collect(),
            Err(_) => return,
        };
        for h in handles {
            h.sweep(now);
        }
    }
}

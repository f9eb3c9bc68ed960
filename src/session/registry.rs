//! The live sessions of this proxy by id (the connection id clients got in the greeting), so
//! `KILL` can act on them: which user owns each, and which backend thread runs its statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One session as others may see it.
#[derive(Debug, Default)]
pub struct Handle {
    user: Mutex<String>,
    /// The backend (address, thread id) running the session's statement right now.
    running: Mutex<Option<(Arc<str>, u32)>>,
    killed: AtomicBool,
    wake: Notify,
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

    pub fn set_running(&self, running: Option<(Arc<str>, u32)>) {
        if let Ok(mut r) = self.running.lock() {
            *r = running;
        }
    }

    pub fn running(&self) -> Option<(Arc<str>, u32)> {
        self.running.lock().ok().and_then(|r| r.clone())
    }

    /// Asks the session to close (after its running statement, which the killer interrupts).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Completes when the session is asked to close.
    pub async fn killed(&self) {
        while !self.is_killed() {
            self.wake.notified().await;
        }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<Handle>>>,
}

impl Registry {
    pub fn register(&self, id: u32, user: &str) -> Arc<Handle> {
        let h = Arc::new(Handle::default());
        h.set_user(user);
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(id, h.clone());
        }
        h
    }

    pub fn remove(&self, id: u32) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(&id);
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<Handle>> {
        self.sessions.lock().ok()?.get(&id).cloned()
    }
}

//! A running statement as the sessions' sweeper watches it (`Registry::sweep`, every 100 ms,
//! one task for all sessions, so no timer is armed per statement): once it has run
//! `pool.backend_read_timeout_ms` on a server the monitor cannot reach, its backend socket is
//! shut down (the relay sees the connection end; a read is retried elsewhere when the client
//! has seen nothing); once it outlives its time limit (`routing.max_statement_time_ms` or a
//! `/* rwproxy:timeout_ms=N */` hint) it is cancelled with `KILL QUERY` and the server ends the
//! reply with ERR 1317.

use std::sync::Arc;

use crate::backend::{BackendConnector, ConnKey};
use crate::pool::health::ServerHealth;
use crate::pool::{Connector, ServerId};

/// One statement under watch.
pub struct Watched {
    /// When it was sent, in ms on the registry's clock.
    pub since: u64,
    pub health: Arc<ServerHealth>,
    pub unresponsive_after: u64,
    /// The time limit in ms and how to cancel it (taken when fired).
    pub cancel: Option<(u64, Canceller)>,
    /// The backend socket's duplicate, to cut a hung reply.
    pub backend: Option<Arc<socket2::Socket>>,
    /// It was cut as hung.
    pub cut: bool,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("since", &self.since).field("cut", &self.cut).finish_non_exhaustive()
    }
}

impl Watched {
    /// What the sweeper does at `now`.
    pub fn check(&mut self, now: u64) {
        let ran = now.saturating_sub(self.since);
        if self.cancel.as_ref().is_some_and(|(limit, _)| ran >= *limit)
            && let Some((_, c)) = self.cancel.take()
        {
            c.fire();
        }
        if !self.cut && ran >= self.unresponsive_after && self.health.unresponsive() {
            self.cut = true;
            self.health.mark_failing();
            if let Some(s) = &self.backend {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// `KILL QUERY` of one backend thread, over a connection of its own as the session's user.
pub struct Canceller {
    pub connector: Arc<BackendConnector>,
    pub key: ConnKey,
    pub addr: String,
    pub thread: u32,
}

impl Canceller {
    /// Sends the `KILL QUERY` in the background.
    fn fire(self) {
        tokio::spawn(async move {
            if let Err(why) = kill_query(&self.connector, &self.key, &self.addr, self.thread).await {
                tracing::warn!(server = %self.addr, thread = self.thread, "statement time limit: KILL QUERY failed: {why}");
            }
        });
    }
}

/// `KILL QUERY thread` on `addr` as the user of `key`.
pub async fn kill_query(
    connector: &BackendConnector,
    key: &ConnKey,
    addr: &str,
    thread: u32,
) -> Result<(), String> {
    let server = ServerId { hostgroup: u32::MAX, address: addr.to_string() };
    let mut conn = connector.connect(&server, key).await.map_err(|e| e.to_string())?;
    match conn.query_ok(&format!("KILL QUERY {thread}")).await {
        Ok(Ok(())) => Ok(()),
        // 1094: the statement ended meanwhile, and its connection with it.
        Ok(Err(err)) if err.get(1..3) == Some(&1094u16.to_le_bytes()[..]) => Ok(()),
        Ok(Err(err)) => Err(String::from_utf8_lossy(&err).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

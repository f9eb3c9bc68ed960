//! A statement's reply, relayed under watch: cut as a backend failure once it has run
//! `pool.backend_read_timeout_ms` and the monitor cannot reach the server (so a read is
//! retried elsewhere when the client has seen nothing), and cancelled on the backend
//! (`KILL QUERY`) when it outlives its time limit (`routing.max_statement_time_ms` or a
//! `/* rwproxy:timeout_ms=N */` hint); the server then ends the reply with ERR 1317.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::{RelayError, Retryable, Tracking, relay_reply};
use crate::backend::{BackendConnector, ConnKey};
use crate::pool::health::ServerHealth;
use crate::pool::{Connector, ServerId};
use crate::protocol::{PacketStream, ProtocolError, ReplyEnd, ReplyTracker};

/// How often a long statement checks its backend and its time limit.
const CHECK_EVERY: Duration = Duration::from_millis(100);

pub struct Watch {
    pub health: Arc<ServerHealth>,
    pub unresponsive_after: Duration,
    /// The statement's time limit, and how to cancel it.
    pub cancel: Option<(Duration, Canceller)>,
}

/// `KILL QUERY` of one backend thread, over a connection of its own as the session's user.
pub struct Canceller {
    pub connector: Arc<BackendConnector>,
    pub key: ConnKey,
    pub addr: String,
    pub thread: u32,
}

impl Canceller {
    /// Sends the `KILL QUERY` in the background (the reply keeps being relayed meanwhile).
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

pub async fn relay_watched<B, C>(
    backend: &mut PacketStream<B>,
    client: &mut PacketStream<C>,
    (tracker, retry): (ReplyTracker, Retryable<'_>),
    track: &mut Tracking,
    mut watch: Watch,
) -> Result<ReplyEnd, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let first =
        watch.cancel.as_ref().map_or(watch.unresponsive_after, |(t, _)| (*t).min(watch.unresponsive_after));
    {
        let relay = relay_reply(backend, client, tracker, retry, &mut *track);
        tokio::pin!(relay);
        // One timer in the common case, armed only if the reply is not there at once.
        if let Ok(r) = tokio::time::timeout(first, &mut relay).await {
            return r;
        }
        loop {
            let elapsed = started.elapsed();
            if watch.cancel.as_ref().is_some_and(|(t, _)| elapsed >= *t)
                && let Some((_, c)) = watch.cancel.take()
            {
                c.fire();
            }
            if elapsed >= watch.unresponsive_after && watch.health.unresponsive() {
                break;
            }
            tokio::select! {
                r = &mut relay => return r,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    }
    let source = ProtocolError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "no reply within {} ms and the monitor cannot reach the server",
            watch.unresponsive_after.as_millis()
        ),
    ));
    Err(RelayError::Backend { source, client_saw_bytes: track.sent_bytes > 0 })
}

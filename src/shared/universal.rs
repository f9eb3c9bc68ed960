//! Read-your-writes across proxy instances (`read_consistency = "universal"`): before such a
//! read the proxy learns the primary's current position, and the read goes to a replica at
//! or past it. One fetch is in flight per instance: reads that arrive while one runs wait for
//! the next, which starts as soon as it ends and serves all of them. (A fetch that began
//! before a read arrived may miss a write acknowledged just before the read, so it never
//! serves that read.) The primary thus sees at most one extra query per fetch round trip,
//! whatever the read rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::Context;
use crate::backend::{BackendConn, Credentials};
use crate::config::Secret;
use crate::routing::gtid::GtidPos;

/// Reads waiting for a position beyond this are sent to the writer instead.
const MAX_WAITING: usize = 4096;

type Waiter = oneshot::Sender<Option<GtidPos>>;

/// The coalescing fetcher of the primary's position, started on first use.
#[derive(Debug, Default)]
pub struct PositionFetcher {
    tx: OnceLock<mpsc::Sender<Waiter>>,
    /// Fetches run (extra queries on the primary).
    pub fetches: AtomicU64,
    /// Reads served by those fetches.
    pub reads: AtomicU64,
    /// Microseconds spent in fetches, summed.
    pub fetch_micros: AtomicU64,
}

impl Context {
    /// The primary's position as of some moment after this call began; `None` when it cannot
    /// be learned (no monitor credentials, writer unreachable, too many waiting).
    pub async fn primary_position(self: &Arc<Self>) -> Option<GtidPos> {
        let tx = self.fetcher.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(MAX_WAITING);
            tokio::spawn(fetch_loop(Arc::downgrade(self), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        tx.try_send(done).ok()?;
        answer.await.ok().flatten()
    }
}

async fn fetch_loop(ctx: Weak<Context>, mut rx: mpsc::Receiver<Waiter>) {
    let mut conn: Option<(String, BackendConn)> = None;
    while let Some(first) = rx.recv().await {
        // Everyone queued so far arrived before this fetch starts.
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let Some(ctx) = ctx.upgrade() else { return };
        let started = Instant::now();
        let pos = fetch(&ctx, &mut conn).await;
        let f = &ctx.fetcher;
        f.fetches.fetch_add(1, Ordering::Relaxed);
        f.reads.fetch_add(waiting.len() as u64, Ordering::Relaxed);
        f.fetch_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        for w in waiting {
            let _ = w.send(pos.clone());
        }
    }
}

/// `@@gtid_binlog_pos` (MySQL: `@@gtid_executed`) of the current writer, over the monitor's credentials on a connection
/// of its own (reopened when the writer changes or a query fails).
async fn fetch(ctx: &Context, conn: &mut Option<(String, BackendConn)>) -> Option<GtidPos> {
    let config = ctx.config();
    let monitor = config.monitor.as_ref()?;
    let Secret::Clear(password) = &monitor.password else { return None };
    let writer_hg = config.replication?.writer_hostgroup;
    let pools = ctx.pools();
    let now = Instant::now();
    let writer =
        pools.servers().iter().find(|s| s.id.hostgroup == writer_hg && s.is_live(now))?.id.address.clone();
    if conn.as_ref().is_none_or(|(addr, _)| *addr != writer) {
        let creds = Credentials::Password(password.clone());
        let c = pools.connector().connect_as(&writer, &monitor.username, &creds).await.ok()?;
        *conn = Some((writer, c));
    }
    let (_, c) = conn.as_mut()?;
    let sql = if c.mariadb { "SELECT @@gtid_binlog_pos" } else { "SELECT @@gtid_executed" };
    let read = tokio::time::timeout(monitor.timeout, c.query_rows(sql)).await;
    let Ok(Ok(Ok(rows))) = read else {
        *conn = None;
        return None;
    };
    rows.rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref()).and_then(GtidPos::parse)
}

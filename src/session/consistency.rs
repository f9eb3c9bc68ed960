//! Read-your-writes by GTID: capture the GTID of each write, and pick a reader that has
//! applied what the read must see (session: the session's writes; global: every write through
//! this proxy instance), waiting briefly on one in global mode, else the writer.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Backend, Session};
use crate::config::ReadConsistency;
use crate::pool::health::ServerHealth;
use crate::protocol::ReplyEnd;
use crate::routing::Consistency;
use crate::routing::gtid::GtidPos;

/// What a read must see (`Session::need`).
pub(super) enum Need {
    Nothing,
    Position(GtidPos),
    Writer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn consistency(&self) -> ReadConsistency {
        match self.stmt_consistency {
            Some(Consistency::None) => ReadConsistency::None,
            Some(Consistency::Session) => ReadConsistency::Session,
            Some(Consistency::Global) => ReadConsistency::Global,
            Some(Consistency::Universal) => ReadConsistency::Universal,
            None => self.ctx.config().routing.read_consistency,
        }
    }

    /// After a statement that may have committed a write: its GTID. Connections with session
    /// tracking reported it in the OK packet already (`note_gtid` from the relay); where the
    /// reply ended in an EOF packet that flagged a state change (a write returning rows, such
    /// as `INSERT … RETURNING`, to a client without `CLIENT_DEPRECATE_EOF`), or on connections
    /// that refused tracking, the proxy asks `@@last_gtid`. Without GTIDs (no binary log)
    /// nothing is recorded and the time window applies.
    pub(super) async fn capture_gtid(&mut self, end: &ReplyEnd) {
        if self.gtid_learned || !self.learns_positions() {
            return;
        }
        let Some(b) = self.backend.as_mut() else { return };
        if b.conn().tracks_gtid && !end.eof_state_changed {
            return;
        }
        // MySQL has no @@last_gtid: everything executed there is a superset (safe, stricter).
        let sql = if b.conn().mariadb { "SELECT @@last_gtid" } else { "SELECT @@gtid_executed" };
        let learned = match b.conn().query_rows(sql).await {
            Ok(Ok(rows)) => rows.rows.first().and_then(|r| r.first()).and_then(|v| v.clone()),
            _ => None,
        };
        match learned {
            Some(v) => self.note_gtid(&v),
            // The write may have committed at a position no one knows: the session's reads
            // go to the writer for the session write window.
            None => self.unknown_write = Some(Instant::now()),
        }
    }

    /// Whether writes' positions are wanted at all (some read consistency is on).
    pub(super) fn learns_positions(&self) -> bool {
        self.consistency() != ReadConsistency::None
            || self.ctx.config().routing.read_consistency != ReadConsistency::None
    }

    /// Records a committed GTID reported by the backend.
    pub(super) fn note_gtid(&mut self, text: &str) {
        let Some(pos) = GtidPos::parse(text).filter(|p| !p.is_empty()) else { return };
        self.gtid.get_or_insert_with(GtidPos::default).merge(&pos);
        self.ctx.write_log.record(&pos, Instant::now());
        self.ctx.written.rcu(|w| {
            let mut w = GtidPos::clone(w);
            w.merge(&pos);
            w
        });
    }

    /// What a read must see: nothing, a position, or (when the position cannot be learned)
    /// whatever only the writer has.
    pub(super) async fn need(&self) -> Need {
        if let Some(at) = self.unknown_write
            && at.elapsed() < self.ctx.config().routing.session_write_window
        {
            return Need::Writer;
        }
        let mut need = match self.consistency() {
            ReadConsistency::None => GtidPos::default(),
            ReadConsistency::Session => self.gtid.clone().unwrap_or_default(),
            ReadConsistency::Global => GtidPos::clone(&self.ctx.written.load()),
            ReadConsistency::Universal => match self.ctx.primary_position().await {
                Some(mut p) => {
                    p.merge(&self.ctx.written.load());
                    p
                }
                None => return Need::Writer,
            },
        };
        if self.consistency() != ReadConsistency::None
            && let Some(own) = &self.gtid
        {
            need.merge(own);
        }
        if let Some(hinted) = &self.stmt_min_gtid {
            need.merge(hinted);
        }
        if need.is_empty() { Need::Nothing } else { Need::Position(need) }
    }

    /// A reader connection that has applied `need`: one known to have applied it, else one
    /// expected to apply it within `routing.gtid_wait_ms` (from its measured apply delay),
    /// after a `MASTER_GTID_WAIT` there. `None`: use the writer, at once when no replica is
    /// expected in time.
    pub(super) async fn consistent_reader(&self, hostgroup: u32, need: &GtidPos) -> Option<Backend> {
        let stats = &self.ctx.stats;
        if let Ok(p) = self.checkout(hostgroup, Some(&|h: &ServerHealth| h.has_applied(need))).await {
            stats.ryw_reader.fetch_add(1, Ordering::Relaxed);
            return Some(p);
        }
        let budget = self.ctx.config().routing.gtid_wait;
        if !budget.is_zero() {
            let learned = self.ctx.write_log.learned_at(need);
            let now = Instant::now();
            let soon =
                |h: &ServerHealth| h.applied().expected_wait(need, learned, now).is_some_and(|w| w < budget);
            if let Ok(mut p) = self.checkout(hostgroup, Some(&soon)).await {
                let sql = need.wait_statement(p.conn().mariadb, budget.as_secs_f64());
                let reply = p.conn().query_rows(&sql).await;
                let caught_up = matches!(&reply, Ok(Ok(r)) if r.rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("0"));
                if caught_up {
                    p.health().note_applied(need);
                    stats.ryw_waited.fetch_add(1, Ordering::Relaxed);
                    return Some(p);
                }
                p.health().note_wait_failed(learned, budget);
                stats.ryw_wait_failed.fetch_add(1, Ordering::Relaxed);
                self.ctx.pools().checkin(p);
            }
        }
        stats.ryw_writer.fetch_add(1, Ordering::Relaxed);
        None
    }
}

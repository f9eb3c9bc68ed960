//! What a statement leaves behind that the state model handles after the reply: the previous
//! statement's outcome (`ROW_COUNT()`, `FOUND_ROWS()`, warnings and errors), what else it left
//! on the connection, and session state the server reports changed but the proxy cannot
//! replay.

use tokio::io::{AsyncRead, AsyncWrite};

use super::sync::{Unavailable, proxy_err};
use super::{PinReason, Session};
use crate::backend::{KindSet, StateKind};
use crate::protocol::ReplyEnd;
use crate::routing::{Flags, Kind, Statement};

/// Gives `ROW_COUNT()` -1, `FOUND_ROWS()` 1 (a new session's value) and an empty diagnostics
/// area (it reads a table, so the server clears its warnings; no privilege needed).
const FRESH_OUTCOME: &str = "SELECT 1 FROM (SELECT 1) AS rwproxy_fresh_outcome";

/// Whether a statement's own text accounts for a state change the server reported: a tracked
/// text-protocol `SET`/`USE`, or a statement whose pins cover the change.
fn explains_state_change(stmt: &Statement, binary: bool) -> bool {
    const PINNED: u64 = Flags::USER_VAR_ASSIGN
        | Flags::INTO
        | Flags::CREATE_TEMP
        | Flags::DROP_TEMP
        | Flags::PREPARE_SQL
        | Flags::DEALLOCATE_SQL
        | Flags::STATE_IN_MULTI;
    match stmt.kind {
        Kind::SessionSet | Kind::Use => !binary,
        _ => stmt.flags.has(PINNED),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Before a statement that reads the previous statement's outcome, on a connection where
    /// another session left it: `FRESH_OUTCOME` first, so it reads what a fresh session reads
    /// (never another session's row count, found rows or warnings).
    pub(super) async fn fresh_outcome(&mut self) -> Result<(), Unavailable> {
        let (reads, id) = (self.stmt_reads, self.id);
        let Some(b) = self.backend.as_mut() else { return Ok(()) };
        let o = b.conn().outcome;
        let stale = (reads & Flags::ROW_COUNT != 0 && o.statement != id)
            || (reads & Flags::FOUND_ROWS != 0 && o.select != id)
            || (reads & Flags::SESSION_INFO != 0 && o.diagnostics != 0 && o.diagnostics != id);
        if stale {
            // Rare: kept out of line so every statement's future stays small.
            Box::pin(self.clear_outcome(FRESH_OUTCOME, true)).await?;
        }
        if reads & Flags::ROW_COUNT != 0 && self.local_outcome {
            // The previous statement was a SET the proxy answered: the server's 0 for it.
            Box::pin(self.clear_outcome("DO 0", false)).await?;
        }
        Ok(())
    }

    /// Runs `sql` so the connection's previous-statement outcome is this session's: all of it
    /// (`FRESH_OUTCOME`, `all`) or only the last statement's row count (`DO 0`).
    async fn clear_outcome(&mut self, sql: &str, all: bool) -> Result<(), Unavailable> {
        let id = self.id;
        let Some(b) = self.backend.as_mut() else { return Ok(()) };
        match b.conn().query_rows(sql).await {
            Ok(Ok(_)) => {
                let o = &mut b.conn().outcome;
                o.statement = id;
                if all {
                    *o = crate::backend::OutcomeOwners { statement: id, select: id, diagnostics: 0 };
                }
                Ok(())
            }
            Ok(Err(payload)) => Err(Unavailable(payload)),
            Err(e) => {
                self.discard_backend();
                Err(proxy_err(e.to_string()))
            }
        }
    }

    /// After any command's reply on the held connection: its outcome is this session's.
    pub(super) fn note_outcome(&mut self, end: &ReplyEnd) {
        let id = self.id;
        let Some(b) = self.backend.as_mut() else { return };
        let o = &mut b.conn().outcome;
        o.statement = id;
        if end.warnings > 0 || end.error.is_some() {
            o.diagnostics = id;
        }
    }

    /// After a statement ran on the held connection: pins, and what it left on the
    /// connection.
    pub(super) fn after_reply(&mut self, stmt: &Statement, end: &ReplyEnd, binary: bool) {
        self.pins.after_statement(stmt, end);
        let mut left = KindSet::default();
        let untracked = end.state_changed && !explains_state_change(stmt, binary);
        let on_reader = (untracked || self.pins.has(PinReason::UntrackedState)) && self.holds_reader();
        if untracked {
            if on_reader {
                // A reader must not hold the session (its writes would go there): the change
                // stays on that connection only, which is reset before reuse.
                left.add(StateKind::UntrackedState);
            } else {
                self.untracked_state();
            }
        }
        if on_reader && self.pins.has(PinReason::UntrackedState) {
            self.pins.unset(PinReason::UntrackedState);
            left.add(StateKind::UntrackedState);
        }
        if end.error.is_none() && (stmt.flags.has(Flags::CALL) || matches!(stmt.kind, Kind::Other)) {
            left.add(StateKind::StoredCode);
        }
        let id = self.id;
        let Some(b) = self.backend.as_mut() else { return };
        let conn = b.conn();
        if matches!(stmt.kind, Kind::Read | Kind::LockingRead | Kind::Show) {
            conn.outcome.select = id;
        }
        if !conn.applied.vars.is_empty()
            && super::state::IDLE_TIMEOUTS.iter().any(|n| conn.applied.get(n).is_some())
        {
            left.add(StateKind::IdleTimeout);
        }
        if !conn.tracks_state {
            // The server cannot tell the proxy what changed: assume anything did.
            left.add(StateKind::UntrackedState);
        }
        conn.residue = conn.residue.union(left);
    }

    /// Session state changed in a way the proxy cannot replay: the session keeps this
    /// connection, which is reset when it is given back; statements prepared from now on
    /// belong to the new state.
    pub(super) fn untracked_state(&mut self) {
        self.pins.set(PinReason::UntrackedState);
        self.parse_epoch = self.parse_epoch.wrapping_add(1);
    }

    fn holds_reader(&self) -> bool {
        let Some(b) = self.backend.as_ref() else { return false };
        let reader = self.ctx.config().replication.map(|r| r.reader_hostgroup);
        Some(b.server().hostgroup) == reader
    }
}

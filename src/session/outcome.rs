//! What a statement leaves behind that the state model handles after the reply: the previous
//! statement's outcome (`ROW_COUNT()`, `FOUND_ROWS()`, diagnostics) and session state the
//! server reports changed but the proxy cannot replay.

use tokio::io::{AsyncRead, AsyncWrite};

use super::sync::{Unavailable, proxy_err};
use super::{PinReason, Session};
use crate::backend::StateKind;
use crate::protocol::ReplyEnd;
use crate::routing::{Flags, Kind, Statement};

/// What this session has itself done on the connection it holds (since checkout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Ran a statement: `ROW_COUNT()` is its own.
    pub ran: bool,
    /// Ran a `SELECT`: `FOUND_ROWS()` is its own.
    pub selected: bool,
}

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
    /// Before a statement that reads the previous statement's outcome, on a connection this
    /// session has not set it on: `SELECT 1`, so it reads what a fresh session reads (never
    /// another session's row count; `FOUND_ROWS()` is 1, as on a new connection).
    pub(super) async fn fresh_outcome(&mut self) -> Result<(), Unavailable> {
        let reads = self.stmt_reads;
        let stale = (reads & Flags::ROW_COUNT != 0 && !self.outcome.ran)
            || (reads & Flags::FOUND_ROWS != 0 && !self.outcome.selected);
        if !stale {
            return Ok(());
        }
        // Rare: kept out of line so every statement's future stays small.
        Box::pin(self.clear_outcome()).await
    }

    async fn clear_outcome(&mut self) -> Result<(), Unavailable> {
        let Some(b) = self.backend.as_mut() else { return Ok(()) };
        match b.conn().query_rows("SELECT 1").await {
            Ok(Ok(_)) => {
                self.outcome = Outcome { ran: true, selected: true };
                Ok(())
            }
            Ok(Err(payload)) => Err(Unavailable(payload)),
            Err(e) => {
                self.discard_backend();
                Err(proxy_err(e.to_string()))
            }
        }
    }

    /// After a statement ran on the held connection: its outcome is now this session's, and
    /// what it left is recorded on the connection.
    pub(super) fn after_reply(&mut self, stmt: &Statement, end: &ReplyEnd, binary: bool) {
        self.outcome.ran = true;
        self.outcome.selected |= matches!(stmt.kind, Kind::Read | Kind::LockingRead | Kind::Show);
        self.pins.after_statement(stmt, end);
        if end.state_changed && !explains_state_change(stmt, binary) {
            self.untracked_state();
        }
        let mut left = crate::backend::KindSet::default();
        if end.warnings > 0 || end.error.is_some() {
            left.add(StateKind::Diagnostics);
        }
        if end.error.is_none() && (stmt.flags.has(Flags::CALL) || matches!(stmt.kind, Kind::Other)) {
            left.add(StateKind::StoredCode);
        }
        if self.pins.has(PinReason::UntrackedState) && !self.pins_beyond_untracked() && self.holds_reader() {
            // A reader must not hold the session (its writes would go there): the change
            // stays on that connection only, which is reset before reuse.
            self.pins.unset(PinReason::UntrackedState);
            left.add(StateKind::UntrackedState);
        }
        if let Some(b) = self.backend.as_mut() {
            let conn = b.conn();
            conn.residue = conn.residue.union(left);
        }
    }

    /// Session state changed in a way the proxy cannot replay: the session keeps this
    /// connection, which is reset when it is given back; statements prepared from now on
    /// belong to the new state.
    pub(super) fn untracked_state(&mut self) {
        self.pins.set(PinReason::UntrackedState);
        self.parse_epoch = self.parse_epoch.wrapping_add(1);
    }

    fn holds_reader(&self) -> bool {
        let reader = self.ctx.config().replication.map(|r| r.reader_hostgroup);
        self.backend.as_ref().is_some_and(|b| Some(b.server().hostgroup) == reader)
    }

    /// Whether something besides untracked state pins the session (then it stays pinned).
    fn pins_beyond_untracked(&self) -> bool {
        self.pins.reasons().any(|r| r != PinReason::UntrackedState)
    }
}

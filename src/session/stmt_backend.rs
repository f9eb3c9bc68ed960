//! Backend statements for the session's prepared statements. A statement is bound to the
//! schema, `sql_mode` and character set current when the client prepared it; each backend
//! connection prepares it lazily, under that same state, the first time it runs it there.

use std::hash::{Hash, Hasher};

use tokio::io::{AsyncRead, AsyncWrite};

use super::state::plan;
use super::sync::{SyncFailure, SyncTarget, sync_to};
use super::{Session, SessionError};
use crate::backend::{BackendConn, Schema, SessionVars};
use crate::protocol::com;
use crate::protocol::errcode;

/// The state a statement is parsed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseState {
    pub schema: Option<String>,
    /// `SessionVars::parse_part`: character-set state and `sql_mode`.
    pub vars: SessionVars,
    /// `Session::parse_epoch` at prepare time.
    pub epoch: u32,
    /// Hash of the above: the backend statement cache key part (with the SQL text), computed
    /// once at prepare time since every execute looks it up.
    key: u64,
}

impl ParseState {
    pub fn new(schema: Option<String>, vars: SessionVars, epoch: u32) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&schema, &vars, epoch).hash(&mut h);
        ParseState { schema, vars, epoch, key: h.finish() }
    }

    pub fn key(&self) -> u64 {
        self.key
    }
}

/// Why no backend statement could be had (the client has been answered).
pub(super) struct Answered;

/// Why no backend statement could be had, for a caller that may try another connection.
pub(super) enum StmtFail {
    /// The client has been answered (the server refused the prepare).
    Answered,
    /// The connection broke before anything reached the client (it is discarded).
    Lost(String),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// The state a statement prepared now is bound to.
    pub(super) fn parse_state(&self) -> ParseState {
        ParseState::new(self.login.database.clone(), self.vars.parse_part(), self.parse_epoch)
    }

    /// The held connection's backend id for client statement `client_id`, preparing it there
    /// (under the statement's own state) when needed. On failure the client got an ERR.
    pub(super) async fn backend_stmt(
        &mut self,
        client_id: u32,
    ) -> Result<Result<u32, Answered>, SessionError> {
        match self.backend_stmt_or_lost(client_id).await? {
            Ok(id) => Ok(Ok(id)),
            Err(StmtFail::Answered) => Ok(Err(Answered)),
            Err(StmtFail::Lost(why)) => {
                let msg = format!("rwproxy: lost connection to backend: {why}");
                self.send_err(1, errcode::LOST_BACKEND, &msg).await?;
                Ok(Err(Answered))
            }
        }
    }

    /// Like `backend_stmt`, but a connection lost while preparing is the caller's to handle
    /// (a read retries elsewhere); only the server's refusal is answered here.
    pub(super) async fn backend_stmt_or_lost(
        &mut self,
        client_id: u32,
    ) -> Result<Result<u32, StmtFail>, SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else { return Ok(Err(StmtFail::Answered)) };
        let (sql, parse) = (cs.sql.clone(), cs.parse.clone());
        let keep = self.pins.holds_statement_state();
        let Some(b) = self.backend.as_mut() else { return Ok(Err(StmtFail::Answered)) };
        let conn = b.conn();
        let cached = conn.prepared.get_mut(&sql, parse.key()).map(|s| s.id);
        let result = match cached {
            Some(id) => Ok(Ok(id)),
            None if in_state(conn, &parse) => {
                conn.prepare_cached(&sql, parse.key(), keep).await.map_err(|e| e.to_string())
            }
            None => {
                let back = SyncTarget {
                    vars: &self.vars,
                    schema: self.login.database.as_deref(),
                    multi_statements: self.multi_statements,
                    need_insert_id: false,
                    may_reset: false,
                };
                Box::pin(prepare_elsewhere(conn, (&sql, &parse), &back, keep)).await
            }
        };
        match result {
            Ok(Ok(id)) => Ok(Ok(id)),
            Ok(Err(err)) => {
                if let Some(b) = self.backend.as_mut() {
                    b.conn().outcome.diagnostics = self.id;
                }
                self.client.write_packet(1, &err).await?;
                Ok(Err(StmtFail::Answered))
            }
            Err(why) => {
                self.discard_backend();
                Ok(Err(StmtFail::Lost(why)))
            }
        }
    }

    /// Whether the held connection's statement for `sql` has parameter types bound already.
    pub(super) fn backend_types_known(&mut self, sql: &[u8], key: u64) -> bool {
        let Some(b) = self.backend.as_mut() else { return false };
        b.conn().prepared.get(sql, key).is_some_and(|s| s.types.is_some())
    }

    /// Replaces a backend statement that holds another session's bound parameter types by a
    /// fresh one, for a client that executes without ever having sent types; its new id, or
    /// `None` when the client has been answered with an error.
    pub(super) async fn fresh_backend_stmt(&mut self, client_id: u32) -> Result<Option<u32>, SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else { return Ok(None) };
        let (sql, key) = (cs.sql.clone(), cs.parse.key());
        let Some(b) = self.backend.as_mut() else { return Ok(None) };
        if let Some(old) = b.conn().prepared.remove(&sql, key) {
            let close = [&[com::STMT_CLOSE][..], &old.id.to_le_bytes()].concat();
            if b.conn().stream().write_packet(0, &close).await.is_err() {
                self.discard_backend();
                self.send_err(1, errcode::LOST_BACKEND, "rwproxy: lost connection to backend").await?;
                return Ok(None);
            }
        }
        Ok(self.backend_stmt(client_id).await?.ok())
    }
}

/// Prepares `sql` on a connection that is not in the statement's state: switches schema and
/// variables to `parse`, prepares, and switches back to `back` (the session's state). A
/// statement prepared without a schema on a connection that has one is prepared in that schema
/// (a connection cannot leave its schema).
async fn prepare_elsewhere(
    conn: &mut BackendConn,
    (sql, parse): (&[u8], &ParseState),
    back: &SyncTarget<'_>,
    keep: bool,
) -> Result<Result<u32, bytes::Bytes>, String> {
    let vars = conn.applied.with_parse(&parse.vars);
    // The session may hold state on this connection, so it is never reset here: where going
    // there or back would need one, the statement is prepared in the current state instead.
    let needs_reset = |to: &SessionVars, from: &SessionVars| plan(to, from, false, conn.mariadb).0;
    if needs_reset(&vars, &conn.applied) || needs_reset(back.vars, &vars) {
        return conn.prepare_cached(sql, parse.key(), keep).await.map_err(|e| e.to_string());
    }
    let there = SyncTarget {
        vars: &vars,
        schema: parse.schema.as_deref(),
        multi_statements: conn.multi_statements,
        need_insert_id: false,
        may_reset: false,
    };
    let sync = |r: Result<(), SyncFailure>| match r {
        Ok(()) => Ok(Ok(())),
        Err(SyncFailure::Server(err)) => Ok(Err(err)),
        Err(SyncFailure::Broken(why)) => Err(why),
    };
    if let Err(err) = sync(sync_to(conn, &there).await)? {
        return Ok(Err(err));
    }
    let prepared = conn.prepare_cached(sql, parse.key(), keep).await.map_err(|e| e.to_string())?;
    match sync(sync_to(conn, back).await)? {
        Ok(()) => Ok(prepared),
        Err(err) => Ok(Err(err)),
    }
}

/// Whether the connection's schema and parse-relevant variables are `parse`'s.
fn in_state(conn: &BackendConn, parse: &ParseState) -> bool {
    let schema_ok = match (&conn.schema, &parse.schema) {
        (Schema::Known(have), want) => have == want || want.is_none(),
        (Schema::Unknown, _) => false,
    };
    schema_ok && conn.applied.parse_part() == parse.vars
}

//! Prepared statements under multiplexing: client ids map to SQL and the parse state it was
//! prepared under; each backend connection prepares a statement lazily the first time it runs
//! it (`stmt_backend`); parameter types are re-sent to a backend statement that has not seen
//! them; long data and cursors pin the connection.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::forward::Frames;
use super::stmt_backend::{ParseState, StmtFail};
use super::sync::Unavailable;
use super::{Session, SessionError};
use crate::protocol::packet::encode;
use crate::protocol::{Packet, ReplyKind, errcode, status};
use crate::routing::{Flags, Route, Statement, classify};

/// A statement as the client knows it.
#[derive(Debug, Clone)]
pub struct ClientStmt {
    pub sql: Arc<[u8]>,
    pub stmt: Arc<Statement>,
    /// Schema, `sql_mode` and character set when the client prepared it.
    pub parse: Arc<ParseState>,
    pub params: u16,
    /// Parameter types from the client's last execute that sent them.
    pub types: Option<Vec<u8>>,
}

/// Execute payload layout: where the bound-types flag and the types are.
struct ExecLayout {
    flags: u8,
    bound_at: Option<usize>,
}

fn exec_layout(payload: &[u8], params: u16) -> Option<ExecLayout> {
    let flags = *payload.get(5)?;
    if params == 0 {
        return Some(ExecLayout { flags, bound_at: None });
    }
    let at = 10 + usize::from(params).div_ceil(8);
    payload.get(at)?;
    Some(ExecLayout { flags, bound_at: Some(at) })
}

/// MariaDB clients may send this id to mean "the statement prepared last" (they pipeline
/// COM_STMT_PREPARE and COM_STMT_EXECUTE without waiting for the statement id).
const LAST_PREPARED: u32 = u32::MAX;

/// What a client's execute becomes for one connection.
pub(super) enum ExecFrames {
    /// The frames to send.
    Frames(Vec<u8>),
    /// The client has been answered (an error).
    Answered,
    /// The connection broke while the statement was prepared on it; nothing reached the
    /// client, so a read may go to another one.
    Lost(String),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// The client's statement id, with `0xFFFFFFFF` resolved to the last prepared statement.
    pub(super) fn stmt_id(&self, id: u32) -> u32 {
        if id == LAST_PREPARED { self.next_stmt_id.wrapping_sub(1) } else { id }
    }

    pub(super) async fn unknown_stmt(&mut self, id: u32, command: &str) -> Result<(), SessionError> {
        let msg = format!("Unknown prepared statement handler ({id}) given to {command}");
        self.send_err(1, errcode::UNKNOWN_STMT, &msg).await
    }

    /// Prepares on the routed connection (cached per connection) and answers with the
    /// session's own statement id.
    pub(super) async fn stmt_prepare(&mut self, sql: &[u8], packet: &Packet) -> Result<(), SessionError> {
        let (max_count, max_bytes) = {
            let p = &self.ctx.config().proxy;
            (p.max_prepared_statements_per_session, p.max_prepared_bytes_per_session)
        };
        let held: usize = self.stmts.values().map(|s| s.sql.len()).sum();
        if self.stmts.len() >= max_count as usize || held + sql.len() > max_bytes {
            // The server's own answer when its statement limit is reached.
            let msg = format!(
                "Can't create more than max_prepared_stmt_count statements (current value: {max_count}); \
                 rwproxy allows {max_count} statements and {max_bytes} bytes of statement text per session"
            );
            return self.send_err(1, errcode::MAX_PREPARED, &msg).await;
        }
        let stmt = classify(sql, self.dialect());
        let route = self.route(&stmt, sql);
        let session_id = self.id;
        if let Err(Unavailable(payload)) = self.acquire(&route, false).await {
            self.client.write_packet(packet.last_seq.wrapping_add(1), &payload).await?;
            return Ok(());
        }
        let parse = Arc::new(self.parse_state());
        let key = parse.key();
        let keep = self.pins.holds_statement_state();
        let Some(b) = self.backend.as_mut() else { return Err(SessionError::Refused("no backend")) };
        // A client's prepare is a real one, as directly: its metadata and warnings are today's
        // (after an ALTER TABLE, under this session's character set), not a cached reply.
        let refreshed = if keep { Ok(()) } else { b.conn().close_statement(sql, key).await };
        let prepared = match refreshed {
            Ok(()) => b.conn().prepare_cached(sql, key, keep).await,
            Err(e) => Err(e),
        };
        let prepared = match prepared {
            Ok(r) => r,
            Err(e) => {
                self.discard_backend();
                let msg = format!("rwproxy: lost connection to backend during prepare: {e}");
                return self.send_err(1, errcode::LOST_BACKEND, &msg).await;
            }
        };
        let reply = match prepared {
            Ok(_) => b.conn().prepared.get(sql, key).map(|s| s.reply.clone()).unwrap_or_default(),
            Err(err) => {
                b.conn().outcome.diagnostics = session_id;
                self.client.write_packet(1, &err).await?;
                self.finish_statement();
                return Ok(());
            }
        };
        let Some(head) = reply.first().filter(|h| h.len() >= 9) else {
            self.discard_backend();
            return self
                .send_err(1, errcode::LOST_BACKEND, "rwproxy: malformed prepare reply from the backend")
                .await;
        };
        if head.get(10..12).is_some_and(|w| w != [0, 0]) {
            b.conn().outcome.diagnostics = session_id;
        }
        let id = self.next_stmt_id;
        self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
        let params = u16::from_le_bytes([head[7], head[8]]);
        let mut out = Vec::new();
        let mut seq = 1u8;
        for (i, payload) in reply.iter().enumerate() {
            if i == 0 {
                let mut first = payload.clone();
                first[1..5].copy_from_slice(&id.to_le_bytes());
                seq = encode(&mut out, seq, &first);
            } else {
                seq = encode(&mut out, seq, payload);
            }
        }
        self.client.write_raw(&out).await?;
        self.stmts
            .insert(id, ClientStmt { sql: sql.into(), stmt: Arc::new(stmt), parse, params, types: None });
        self.finish_statement();
        Ok(())
    }

    /// Acquires the statement's route and its backend id, answering the client on failure.
    pub(super) async fn stmt_backend(
        &mut self,
        client_id: u32,
        packet: &Packet,
    ) -> Result<Option<u32>, SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else { return Ok(None) };
        let (stmt, sql) = (cs.stmt.clone(), cs.sql.clone());
        self.drop_soft_pins(stmt.reads_outcome());
        let route = self.route(&stmt, &sql);
        if let Err(Unavailable(payload)) = self.acquire(&route, stmt.flags.has(Flags::LAST_INSERT_ID)).await {
            self.client.write_packet(packet.last_seq.wrapping_add(1), &payload).await?;
            return Ok(None);
        }
        Ok(self.backend_stmt(client_id).await?.ok())
    }

    pub(super) async fn stmt_execute(&mut self, client_id: u32, packet: &Packet) -> Result<(), SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else {
            return self.unknown_stmt(client_id, "mysqld_stmt_execute").await;
        };
        let (stmt, sql) = (cs.stmt.clone(), cs.sql.clone());
        let Some(layout) = exec_layout(packet.payload(), cs.params) else {
            return self.send_err(1, (1210, "HY000"), "Incorrect arguments to mysqld_stmt_execute").await;
        };
        self.drop_soft_pins(stmt.reads_outcome());
        let route = self.route(&stmt, &sql);
        let need_id = stmt.flags.has(Flags::LAST_INSERT_ID);
        self.stmt_reads = stmt.flags.bits();
        self.stmt_may_write = super::commands::may_write(&stmt);
        let started = std::time::Instant::now();
        let frames = Frames::Execute { client_id, packet };
        let end =
            self.forward_bytes(&route, need_id, frames, packet.last_seq, ReplyKind::ResultSets, true).await?;
        self.record_statement(&route, &stmt, started.elapsed(), end.as_ref());
        self.pins.long_data.retain(|&i| i != client_id);
        if let Some(end) = end {
            self.note_insert_id(&end);
            self.after_reply(&stmt, &end, true);
            if self.note_write(&stmt) && end.error.is_none() {
                self.capture_gtid(&end).await;
            }
            let cursor =
                layout.flags & 0x07 != 0 && end.status.is_some_and(|s| s & status::CURSOR_EXISTS != 0);
            if cursor && !self.pins.cursors.contains(&client_id) {
                self.pins.cursors.push(client_id);
            }
        }
        self.finish_statement();
        Ok(())
    }

    /// The frames of a client's execute for a connection serving `route` (acquired here, the
    /// statement prepared on it when needed).
    pub(super) async fn execute_frames(
        &mut self,
        client_id: u32,
        route: &Route,
        need_id: bool,
        packet: &Packet,
    ) -> Result<ExecFrames, SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else {
            self.unknown_stmt(client_id, "mysqld_stmt_execute").await?;
            return Ok(ExecFrames::Answered);
        };
        let (params, sql, key, never_bound) = (cs.params, cs.sql.clone(), cs.parse.key(), cs.types.is_none());
        let Some(layout) = exec_layout(packet.payload(), params) else { return Ok(ExecFrames::Answered) };
        if let Err(Unavailable(payload)) = self.acquire(route, need_id).await {
            self.client.write_packet(packet.last_seq.wrapping_add(1), &payload).await?;
            return Ok(ExecFrames::Answered);
        }
        let mut backend_id = match self.backend_stmt_or_lost(client_id).await? {
            Ok(id) => id,
            Err(StmtFail::Answered) => return Ok(ExecFrames::Answered),
            Err(StmtFail::Lost(why)) => return Ok(ExecFrames::Lost(why)),
        };
        let unbound = never_bound && layout.bound_at.is_some_and(|at| packet.payload()[at] == 0);
        if unbound && self.backend_types_known(&sql, key) {
            // The backend statement holds types another session bound: use a fresh one.
            match Box::pin(self.fresh_backend_stmt(client_id)).await? {
                Some(id) => backend_id = id,
                None => return Ok(ExecFrames::Answered),
            }
        }
        let payload = self.rewrite_execute(client_id, backend_id, (&sql, key), packet.payload(), &layout);
        let mut raw = Vec::with_capacity(payload.len() + 8);
        encode(&mut raw, 0, &payload);
        Ok(ExecFrames::Frames(raw))
    }

    /// The execute payload for the backend: its statement id, and parameter types injected
    /// when the client relies on types the backend statement never received.
    fn rewrite_execute(
        &mut self,
        client_id: u32,
        backend_id: u32,
        (sql, key): (&[u8], u64),
        payload: &[u8],
        layout: &ExecLayout,
    ) -> Vec<u8> {
        let mut out = payload.to_vec();
        out[1..5].copy_from_slice(&backend_id.to_le_bytes());
        let Some(at) = layout.bound_at else { return out };
        let params = self.stmts.get(&client_id).map_or(0, |c| usize::from(c.params));
        let bstmt =
            self.backend.as_mut().and_then(|b| b.conn().prepared.get_mut(sql, key).map(|s| &mut s.types));
        let Some(backend_types) = bstmt else { return out };
        if payload[at] == 1 {
            let types = payload.get(at + 1..at + 1 + 2 * params).map(<[u8]>::to_vec);
            *backend_types = types.clone();
            if let Some(cs) = self.stmts.get_mut(&client_id) {
                cs.types = types;
            }
        } else if let Some(types) = self.stmts.get(&client_id).and_then(|c| c.types.clone())
            && backend_types.as_ref() != Some(&types)
        {
            out[at] = 1;
            out.splice(at + 1..at + 1, types.iter().copied());
            *backend_types = Some(types);
        }
        out
    }

    pub(super) async fn stmt_long_data(
        &mut self,
        client_id: u32,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        if !self.stmts.contains_key(&client_id) {
            return Ok(()); // no reply exists for this command; execute will report the error
        }
        let Some(backend_id) = self.stmt_backend(client_id, packet).await? else { return Ok(()) };
        let mut payload = packet.payload().to_vec();
        payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
        let mut raw = Vec::with_capacity(payload.len() + 8);
        encode(&mut raw, 0, &payload);
        if let Some(b) = self.backend.as_mut()
            && b.conn().stream().write_raw(&raw).await.is_err()
        {
            self.discard_backend();
            return Ok(());
        }
        if !self.pins.long_data.contains(&client_id) {
            self.pins.long_data.push(client_id);
        }
        Ok(())
    }

    pub(super) async fn stmt_reset(&mut self, client_id: u32, packet: &Packet) -> Result<(), SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else {
            return self.unknown_stmt(client_id, "mysqld_stmt_reset").await;
        };
        let (sql, key) = (cs.sql.clone(), cs.parse.key());
        let held_id = self.backend.as_mut().and_then(|b| b.conn().prepared.get(&sql, key).map(|s| s.id));
        self.pins.long_data.retain(|&i| i != client_id);
        self.pins.cursors.retain(|&i| i != client_id);
        match held_id {
            Some(backend_id) => {
                let mut payload = packet.payload().to_vec();
                payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
                let mut raw = Vec::new();
                encode(&mut raw, 0, &payload);
                let route = self.writer_route();
                self.forward_bytes(
                    &route,
                    false,
                    Frames::Raw(&raw),
                    packet.last_seq,
                    ReplyKind::Single,
                    false,
                )
                .await?;
            }
            None => self.send_ok(1).await?,
        }
        self.finish_statement();
        Ok(())
    }

    /// Closed on the connection the session holds, when no other statement of the session is
    /// the same one (that also drops an open cursor or pending long data); statements left on
    /// idle connections are bounded per connection and closed least recently used first.
    pub(super) async fn stmt_close(&mut self, client_id: u32) {
        let Some(cs) = self.stmts.remove(&client_id) else { return };
        let key = cs.parse.key();
        let open = self.pins.cursors.contains(&client_id) || self.pins.long_data.contains(&client_id);
        self.pins.long_data.retain(|&i| i != client_id);
        self.pins.cursors.retain(|&i| i != client_id);
        let shared = self.stmts.values().any(|o| o.sql == cs.sql && o.parse.key() == key);
        if let Some(b) = self.backend.as_mut().filter(|_| !shared) {
            let conn = b.conn();
            let known = conn.prepared.get(&cs.sql, key).is_some();
            if conn.close_statement(&cs.sql, key).await.is_err() {
                self.discard_backend();
            } else if open && !known {
                conn.residue.add(crate::backend::StateKind::Cursors);
            }
        }
        self.finish_statement();
    }

    pub(super) async fn stmt_fetch(&mut self, client_id: u32, packet: &Packet) -> Result<(), SessionError> {
        let Some(cs) = self.stmts.get(&client_id) else {
            return self.unknown_stmt(client_id, "mysqld_stmt_fetch").await;
        };
        let (sql, key) = (cs.sql.clone(), cs.parse.key());
        let held_id = self.backend.as_mut().and_then(|b| b.conn().prepared.get(&sql, key).map(|s| s.id));
        let (true, Some(backend_id)) = (self.pins.cursors.contains(&client_id), held_id) else {
            return self
                .send_err(
                    1,
                    errcode::NO_OPEN_CURSOR,
                    &format!("The statement ({client_id}) has no open cursor"),
                )
                .await;
        };
        let mut payload = packet.payload().to_vec();
        payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
        let mut raw = Vec::new();
        encode(&mut raw, 0, &payload);
        let route = self.writer_route();
        let end = self
            .forward_bytes(&route, false, Frames::Raw(&raw), packet.last_seq, ReplyKind::Rows, true)
            .await?;
        if end.is_none_or(|e| e.error.is_some() || e.status.is_some_and(|s| s & status::LAST_ROW_SENT != 0)) {
            self.pins.cursors.retain(|&i| i != client_id);
        }
        self.finish_statement();
        Ok(())
    }
}

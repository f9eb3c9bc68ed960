//! Per-command handling: route, forward and relay, then track state and pins; or answer
//! locally (ping without a backend, change user, unknown commands).

use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::{RelayError, relay_reply};
use super::state::apply_set;
use super::sync::Unavailable;
use super::{Session, SessionError};
use crate::backend::{Schema, SessionVars};
use crate::protocol::{ClientCommand, Packet, ReplyEnd, ReplyKind, ReplyTracker, caps, errcode, status};
use crate::routing::lexer::{Lexer, Tok};
use crate::routing::set::parse_set;
use crate::routing::{self, Flags, Kind, Route, SessionFacts, Statement, Target, classify};

/// Error for a backend lost before the client saw any byte of the reply.
const LOST_BACKEND: (u16, &str) = (2013, "HY000");
/// Unknown database, table, column: what a lagging replica says after DDL on the primary.
const SCHEMA_LAG_ERRORS: [u16; 3] = [1049, 1146, 1054];
/// ProxySQL answers a rule's `error_msg` with this code.
const RULE_ERROR: (u16, &str) = (1148, "42000");

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn command(
        &mut self,
        cmd: ClientCommand<'_>,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        match cmd {
            ClientCommand::Query(sql) => self.query(sql, packet).await,
            ClientCommand::Ping if self.backend.is_none() => self.send_ok(1).await,
            ClientCommand::ResetConnection => self.reset_connection(packet).await,
            ClientCommand::ChangeUser(body) => self.change_user(body).await,
            ClientCommand::InitDb(db) => {
                let route = self.writer_route();
                if let Some(end) = self.forward(&route, false, packet, ReplyKind::Single, false).await?
                    && end.error.is_none()
                {
                    self.set_schema(String::from_utf8_lossy(db).into_owned());
                }
                self.finish_statement();
                Ok(())
            }
            ClientCommand::SetOption(opt) => {
                let route = self.writer_route();
                if let Some(end) = self.forward(&route, false, packet, ReplyKind::Single, false).await?
                    && end.error.is_none()
                {
                    self.multi_statements = opt == 0;
                    if let Some(b) = self.backend.as_mut() {
                        b.conn().multi_statements = opt == 0;
                    }
                }
                self.finish_statement();
                Ok(())
            }
            ClientCommand::Ping | ClientCommand::Statistics | ClientCommand::FieldList => {
                let route = self.writer_route();
                let kind = cmd.reply_kind().unwrap_or(ReplyKind::Single);
                self.forward(&route, false, packet, kind, false).await?;
                self.finish_statement();
                Ok(())
            }
            ClientCommand::StmtPrepare(sql) => self.stmt_prepare(sql, packet).await,
            ClientCommand::StmtExecute { stmt_id } => self.stmt_execute(stmt_id, packet).await,
            ClientCommand::StmtSendLongData { stmt_id } => self.stmt_long_data(stmt_id, packet).await,
            ClientCommand::StmtClose { stmt_id } => {
                self.stmt_close(stmt_id);
                Ok(())
            }
            ClientCommand::StmtReset { stmt_id } => self.stmt_reset(stmt_id, packet).await,
            ClientCommand::StmtFetch { stmt_id } => self.stmt_fetch(stmt_id, packet).await,
            ClientCommand::Quit => Ok(()),
            ClientCommand::Unsupported(code) => {
                let msg = format!("Unknown command {code:#04x}");
                self.send_err(1, errcode::UNKNOWN_COMMAND, &msg).await
            }
        }
    }

    /// The route for a statement, given what the session holds.
    pub(super) fn route(&self, stmt: &Statement, sql: &[u8]) -> Route {
        let config = self.ctx.config();
        let facts = SessionFacts {
            user: &self.login.user.username,
            schema: self.login.database.as_deref(),
            default_hostgroup: self.login.user.default_hostgroup,
            pinned: self.backend.as_ref().map(|b| b.server().hostgroup),
            recent_write: self.last_write.is_some_and(|t| t.elapsed() < config.routing.session_write_window),
        };
        routing::route(stmt, sql, &facts, &config)
    }

    async fn query(&mut self, sql: &[u8], packet: &Packet) -> Result<(), SessionError> {
        let stmt = classify(sql);
        let route = self.route(&stmt, sql);
        if let Some(msg) = &route.error {
            return self.send_err(packet.last_seq.wrapping_add(1), RULE_ERROR, msg).await;
        }
        let need_id = stmt.flags.has(Flags::LAST_INSERT_ID);
        if let Some(end) = self.forward(&route, need_id, packet, ReplyKind::ResultSets, false).await? {
            self.track_query(&stmt, sql, &end);
            self.pins.after_statement(&stmt, &end);
            self.note_write(&stmt);
        }
        self.finish_statement();
        Ok(())
    }

    /// Remembers what a successful statement changed in the session.
    fn track_query(&mut self, stmt: &Statement, sql: &[u8], end: &ReplyEnd) {
        self.note_insert_id(end);
        if end.error.is_some() {
            return;
        }
        let Some(conn) = self.backend.as_mut().map(|b| b.conn()) else { return };
        match stmt.kind {
            Kind::SessionSet => match parse_set(sql) {
                Some(items) => {
                    let fx = apply_set(&mut self.vars, &items);
                    apply_set(&mut conn.applied, &items);
                    if fx.user_vars {
                        self.pins.set_user_vars();
                    }
                    if fx.next_transaction {
                        self.pins.set_next_transaction();
                    }
                }
                None => self.pins.set_unparseable(),
            },
            Kind::Use => {
                if let Some(db) = use_target(sql) {
                    self.set_schema(db);
                }
            }
            Kind::Other | Kind::Ddl if !stmt.flags.has(Flags::LOCK_TABLES | Flags::UNLOCK_TABLES) => {
                conn.dirty = true
            }
            _ if stmt.flags.has(Flags::CALL) => conn.dirty = true,
            _ => {}
        }
    }

    /// Remembers when the session last changed data, for read-your-writes.
    pub(super) fn note_write(&mut self, stmt: &Statement) {
        let writes = match stmt.kind {
            Kind::Write | Kind::Ddl | Kind::Other | Kind::LockingRead => true,
            Kind::Transaction(tx) => matches!(tx, crate::routing::Tx::Commit | crate::routing::Tx::Xa),
            Kind::Read | Kind::Show => !stmt.is_plain_read(),
            Kind::SessionSet | Kind::Use | Kind::Empty => false,
        };
        if writes || self.pins.has(super::PinReason::Transaction) {
            self.last_write = Some(std::time::Instant::now());
        }
    }

    pub(super) fn note_insert_id(&mut self, end: &ReplyEnd) {
        if end.last_insert_id != 0 {
            self.vars.last_insert_id = end.last_insert_id;
            if let Some(b) = self.backend.as_mut() {
                b.conn().applied.last_insert_id = end.last_insert_id;
            }
        }
    }

    fn set_schema(&mut self, db: String) {
        if let Some(b) = self.backend.as_mut() {
            b.conn().schema = Schema::Known(Some(db.clone()));
        }
        self.login.database = Some(db);
    }

    /// After a command: keep the connection while a pin holds, otherwise give it back.
    pub(super) fn finish_statement(&mut self) {
        self.publish_pins();
        if !self.pins.any() {
            self.release_backend();
        }
    }

    /// Acquires a connection for `route`, sends the client's frames, relays the reply.
    /// `None`: the client already got an error (no backend, or lost before any reply byte).
    pub(super) async fn forward(
        &mut self,
        route: &Route,
        need_insert_id: bool,
        packet: &Packet,
        kind: ReplyKind,
        binary: bool,
    ) -> Result<Option<ReplyEnd>, SessionError> {
        self.forward_bytes(route, need_insert_id, packet.raw(), packet.last_seq, kind, binary).await
    }

    pub(super) async fn forward_bytes(
        &mut self,
        route: &Route,
        need_insert_id: bool,
        raw: &[u8],
        last_seq: u8,
        kind: ReplyKind,
        binary: bool,
    ) -> Result<Option<ReplyEnd>, SessionError> {
        // A replica that does not know a table, schema or column yet (replication lag after
        // DDL) must not answer for the primary: such errors are held and the read retried on
        // the writer, before any byte reached the client.
        let may_retry = route.target == Target::Reader && self.backend.is_none();
        let hold: &[u16] = if may_retry { &SCHEMA_LAG_ERRORS } else { &[] };
        if let Err(Unavailable(payload)) = self.acquire(route, need_insert_id).await {
            self.client.write_packet(last_seq.wrapping_add(1), &payload).await?;
            return Ok(None);
        }
        let deprecate_eof = self.login.capabilities & caps::DEPRECATE_EOF != 0;
        let Some(backend) = self.backend.as_mut() else { return Err(SessionError::Refused("no backend")) };
        if let Err(e) = backend.conn().stream().write_raw(raw).await {
            let msg = format!("rwproxy: lost connection to backend {}: {e}", backend.server().address);
            self.discard_backend();
            self.send_err(last_seq.wrapping_add(1), LOST_BACKEND, &msg).await?;
            return Ok(None);
        }
        let tracker = ReplyTracker::new(kind, deprecate_eof, binary);
        match relay_reply(backend.conn().stream(), &mut self.client, tracker, hold).await {
            Ok(end) => {
                if let Some(st) = end.status {
                    self.status = st;
                }
                Ok(Some(end))
            }
            Err(RelayError::Client(e)) => {
                self.discard_backend();
                Err(SessionError::Protocol(e))
            }
            Err(RelayError::Backend { source, client_saw_bytes }) => {
                let addr = self.backend.as_ref().map(|b| b.server().address.clone()).unwrap_or_default();
                self.discard_backend();
                if client_saw_bytes {
                    return Err(SessionError::BackendMidReply(format!("{addr}: {source}")));
                }
                let msg = format!("rwproxy: lost connection to backend {addr} during query: {source}");
                self.send_err(last_seq.wrapping_add(1), LOST_BACKEND, &msg).await?;
                Ok(None)
            }
            Err(RelayError::Held(code)) => {
                tracing::debug!(id = self.id, code, "replica lacks a schema object; retrying on the writer");
                self.release_backend();
                let writer = Route { target: Target::Writer, ..self.writer_route() };
                Box::pin(self.forward_bytes(&writer, need_insert_id, raw, last_seq, kind, binary)).await
            }
        }
    }

    /// COM_RESET_CONNECTION: the held connection is reset by the server; without one there is
    /// no server-side state, so the proxy answers. Either way the session starts clean.
    async fn reset_connection(&mut self, packet: &Packet) -> Result<(), SessionError> {
        if self.backend.is_some() {
            let route = self.writer_route();
            let end = self.forward(&route, false, packet, ReplyKind::Single, false).await?;
            if end.is_some_and(|e| e.error.is_none())
                && let Some(b) = self.backend.as_mut()
            {
                let conn = b.conn();
                conn.dirty = false;
                conn.applied = SessionVars::default();
                conn.prepared.clear();
                conn.multi_statements = conn.capabilities & caps::MULTI_STATEMENTS != 0;
            }
        } else {
            self.send_ok(1).await?;
        }
        self.vars = SessionVars::default();
        self.pins.clear();
        self.stmts.clear();
        self.multi_statements = self.login.capabilities & caps::MULTI_STATEMENTS != 0;
        self.status = status::AUTOCOMMIT;
        self.release_backend();
        Ok(())
    }
}

/// The schema named by `USE db` / ``USE `db` ``.
fn use_target(sql: &[u8]) -> Option<String> {
    let mut lx = Lexer::new(sql);
    let _use = lx.next_token(&mut |_| {})?;
    let t = lx.next_token(&mut |_| {})?;
    let text = String::from_utf8_lossy(lx.text(&t)).into_owned();
    match t.kind {
        Tok::Ident => Some(text.trim_matches('`').replace("``", "`")),
        Tok::Word => Some(text),
        _ => None,
    }
}

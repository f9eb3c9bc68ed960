//! Per-command handling: route, forward and relay, then track state and pins; or answer
//! locally (ping without a backend, change user, unknown commands).

use tokio::io::{AsyncRead, AsyncWrite};

use super::state::apply_set;
use super::{PinReason, Session, SessionError};
use crate::backend::Schema;
use crate::protocol::{ClientCommand, Packet, ReplyEnd, ReplyKind, errcode};
use crate::routing::lexer::{Lexer, Tok};
use crate::routing::set::parse_set;
use crate::routing::{self, Flags, Kind, Route, SessionFacts, Statement, classify};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn command(
        &mut self,
        cmd: ClientCommand<'_>,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        if ends_soft_pins(&cmd) {
            self.drop_soft_pins(false);
        }
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
                    self.set_schema(Some(String::from_utf8_lossy(db).into_owned()));
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
            ClientCommand::StmtExecute { stmt_id } => self.stmt_execute(self.stmt_id(stmt_id), packet).await,
            ClientCommand::StmtSendLongData { stmt_id } => {
                self.stmt_long_data(self.stmt_id(stmt_id), packet).await
            }
            ClientCommand::StmtClose { stmt_id } => {
                self.stmt_close(self.stmt_id(stmt_id)).await;
                Ok(())
            }
            ClientCommand::StmtReset { stmt_id } => self.stmt_reset(self.stmt_id(stmt_id), packet).await,
            ClientCommand::StmtFetch { stmt_id } => self.stmt_fetch(self.stmt_id(stmt_id), packet).await,
            ClientCommand::StmtBulkExecute { stmt_id } => {
                self.stmt_bulk_execute(self.stmt_id(stmt_id), packet).await
            }
            ClientCommand::Quit => Ok(()),
            ClientCommand::ProcessKill(id) => self.kill(super::kill::Kill::Connection(Some(id)), 1).await,
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
            // With GTIDs, consistency is decided at checkout by replica position instead.
            recent_write: self.gtid.is_none()
                && self.last_write.is_some_and(|t| t.elapsed() < config.routing.session_write_window),
            autocommit_off: self.status & crate::protocol::status::AUTOCOMMIT == 0,
            read_only: self.status & crate::protocol::status::AUTOCOMMIT == 0 && self.vars.read_only(),
        };
        routing::route(stmt, sql, &facts, &config)
    }

    async fn query(&mut self, sql: &[u8], packet: &Packet) -> Result<(), SessionError> {
        let stmt = classify(sql, self.dialect());
        if stmt.flags.has(Flags::KILL | Flags::CONNECTION_ID) && self.answered_locally(&stmt, sql).await? {
            return Ok(());
        }
        self.drop_soft_pins(stmt.reads_outcome());
        let route = self.route(&stmt, sql);
        if let Some(msg) = &route.error {
            return self.send_err(packet.last_seq.wrapping_add(1), errcode::RULE_ERROR, msg).await;
        }
        // A SET a query rule chose a hostgroup for runs there, as the rule says.
        let by_rule = matches!(route.reason, routing::Reason::Rule(_) | routing::Reason::RuleOverridden(_));
        if stmt.kind == Kind::SessionSet && !by_rule && self.answer_set_locally(&stmt, sql).await? {
            let answered = ReplyEnd { status: Some(self.status), ..ReplyEnd::default() };
            self.record_statement(&route, &stmt, std::time::Duration::ZERO, Some(&answered));
            return Ok(());
        }
        let need_id = stmt.flags.has(Flags::LAST_INSERT_ID);
        self.stmt_consistency = stmt.hint.consistency;
        self.stmt_min_gtid = stmt.hint.min_gtid.then(|| routing::gtid::hinted(sql)).flatten();
        self.stmt_timeout = stmt.hint.timeout_ms.map(|ms| std::time::Duration::from_millis(ms.into()));
        self.stmt_reads = stmt.flags.bits();
        self.stmt_may_write = may_write(&stmt);
        let started = std::time::Instant::now();
        let end = self.forward(&route, need_id, packet, ReplyKind::ResultSets, false).await?;
        self.record_statement(&route, &stmt, started.elapsed(), end.as_ref());
        if let Some(end) = end {
            self.track_query(&stmt, sql, &end);
            self.after_reply(&stmt, &end, false);
            if self.note_write(&stmt) && end.error.is_none() {
                self.capture_gtid(&end).await;
            }
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
        let dialect = self.dialect();
        let Some(conn) = self.backend.as_mut().map(|b| b.conn()) else { return };
        match stmt.kind {
            Kind::SessionSet => match parse_set(sql, dialect) {
                Some(items) => {
                    let fx = apply_set(&mut self.vars, &items);
                    apply_set(&mut conn.applied, &items);
                    if fx.replaces_tracking {
                        conn.tracks_gtid = false; // GTIDs are then asked for after each write
                    }
                    if fx.user_vars {
                        self.pins.set(PinReason::UserVariables);
                    }
                    if fx.next_transaction {
                        self.pins.set(PinReason::NextTransaction);
                    }
                    if let Some(on) = fx.tracks_state_change {
                        self.client_keeps.state_change = on;
                    }
                    if let Some(on) = fx.tracks_gtid {
                        self.client_keeps.last_gtid = on;
                    }
                    if fx.timeouts {
                        let secs =
                            self.vars.get("wait_timeout").and_then(|v| v.trim_matches('\'').parse().ok());
                        self.idle_timeout = secs.map(std::time::Duration::from_secs);
                    }
                    if fx.untracked {
                        self.untracked_state();
                    }
                }
                None => self.untracked_state(),
            },
            Kind::Use => {
                if let Some(db) = use_target(sql, dialect) {
                    self.set_schema(Some(db));
                }
            }
            // Unrecognised statements and administrative ones may leave what the server does
            // not report: reset the connection before reuse, to be safe.
            Kind::Ddl if !stmt.flags.has(Flags::LOCK_TABLES | Flags::UNLOCK_TABLES) => {
                conn.residue.add(crate::backend::StateKind::StoredCode);
                if crate::shared::schemas::drops_schema(sql, dialect) {
                    self.ctx.schemas.forget_all();
                }
            }
            _ => {}
        }
    }

    /// Remembers when the session last changed data, for read-your-writes. True when the
    /// statement may have committed a change.
    pub(super) fn note_write(&mut self, stmt: &Statement) -> bool {
        let writes = may_write(stmt);
        if writes || self.pins.has(super::PinReason::Transaction) {
            self.last_write = Some(std::time::Instant::now());
        }
        writes && !self.pins.has(super::PinReason::Transaction)
    }

    pub(super) fn note_insert_id(&mut self, end: &ReplyEnd) {
        if end.last_insert_id != 0 {
            self.vars.last_insert_id = end.last_insert_id;
            if let Some(b) = self.backend.as_mut() {
                b.conn().applied.last_insert_id = end.last_insert_id;
            }
        }
    }

    /// The session's current schema (`None`: no schema selected).
    pub(super) fn set_schema(&mut self, db: Option<String>) {
        if let Some(b) = self.backend.as_mut() {
            b.conn().schema = Schema::Known(db.clone());
        }
        self.login.database = db;
    }

    /// After a command: keep the connection while a pin holds, otherwise give it back.
    pub(super) fn finish_statement(&mut self) {
        self.stmt_consistency = None;
        self.stmt_min_gtid = None;
        self.stmt_timeout = None;
        self.stmt_reads = 0;
        self.local_outcome = false;
        self.stmt_may_write = false;
        self.gtid_learned = false;
        self.ran_on = None;
        self.publish_pins();
        if !self.pins.any() {
            self.release_backend();
        }
    }

    /// `KILL …` and `SELECT CONNECTION_ID()`: answered in the proxy's terms. True when done.
    async fn answered_locally(&mut self, stmt: &Statement, sql: &[u8]) -> Result<bool, SessionError> {
        let dialect = self.dialect();
        if stmt.flags.has(Flags::KILL) && stmt.statements == 1 {
            self.kill(super::kill::parse_kill(sql, dialect), 1).await?;
            return Ok(true);
        }
        match super::kill::connection_id_query(sql, dialect) {
            Some(name) => self.answer_connection_id(&name).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Before a statement: pins that only serve a statement reading the previous one's
    /// outcome (warnings, found rows) end unless this statement is such a reader (`keep`).
    pub(super) fn drop_soft_pins(&mut self, keep: bool) {
        if self.pins.any() && self.pins.release_soft(keep) {
            self.publish_pins();
            self.release_backend();
        }
    }
}

/// Whether a statement may commit a change (its position matters to later reads).
pub(super) fn may_write(stmt: &Statement) -> bool {
    match stmt.kind {
        Kind::Write | Kind::Ddl | Kind::Other | Kind::LockingRead => true,
        Kind::Transaction(tx) => matches!(tx, crate::routing::Tx::Commit | crate::routing::Tx::Xa),
        Kind::Read | Kind::Show => !stmt.is_plain_read(),
        Kind::SessionSet | Kind::Use | Kind::Empty => false,
    }
}

/// Commands after which the previous statement's warnings or found rows are gone (queries and
/// executes decide for themselves: they may read them).
fn ends_soft_pins(cmd: &ClientCommand<'_>) -> bool {
    !matches!(
        cmd,
        ClientCommand::Query(_)
            | ClientCommand::StmtExecute { .. }
            | ClientCommand::Ping
            | ClientCommand::Statistics
            | ClientCommand::StmtClose { .. }
            | ClientCommand::StmtReset { .. }
            | ClientCommand::StmtSendLongData { .. }
            | ClientCommand::StmtFetch { .. }
    )
}

/// The schema named by `USE db` / ``USE `db` ``.
fn use_target(sql: &[u8], dialect: crate::routing::Dialect) -> Option<String> {
    let mut lx = Lexer::new(sql, dialect);
    let _use = lx.next_token(&mut |_| {})?;
    let t = lx.next_token(&mut |_| {})?;
    let text = String::from_utf8_lossy(lx.text(&t)).into_owned();
    match t.kind {
        Tok::Ident => Some(text.trim_matches('`').replace("``", "`")),
        Tok::Word => Some(text),
        _ => None,
    }
}

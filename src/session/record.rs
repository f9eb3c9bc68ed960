//! What is recorded of each statement: `/metrics`, `/digests`, the `debug` routing trace and
//! the query log, all under the hostgroup and server that actually ran it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::protocol::ReplyEnd;
use crate::routing::{self, Kind, Route, Statement};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Counts a statement for `/metrics` and `/digests` under the hostgroup that served it;
    /// traces it at `debug` and writes it to the query log when one is on.
    pub(super) fn record_statement(
        &mut self,
        route: &Route,
        stmt: &Statement,
        took: std::time::Duration,
        end: Option<&ReplyEnd>,
    ) {
        let ran_on = self.ran_on.take();
        let hostgroup = ran_on.map_or(route.hostgroup, |(hg, _)| hg);
        let (error, rows) = end.map_or((true, 0), |e| (e.error.is_some(), e.rows));
        self.ctx.digests.record(stmt.digest.hash, &stmt.digest.text, hostgroup, took, error, rows);
        self.trace_statement(route, stmt, took, end, ran_on);
        let target = match route.target {
            routing::Target::Writer => 0,
            routing::Target::Reader => 1,
            routing::Target::Other => 2,
        };
        self.ctx.metrics.statement(hostgroup, target, kind_index(stmt.kind), took);
    }

    /// The per-statement routing trace (`RUST_LOG=rwproxy=debug`) and the query log line.
    fn trace_statement(
        &self,
        route: &Route,
        stmt: &Statement,
        took: std::time::Duration,
        end: Option<&ReplyEnd>,
        ran_on: Option<(u32, u32)>,
    ) {
        let log = self.ctx.query_log.get();
        if log.is_none() && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let hostgroup = ran_on.map_or(route.hostgroup, |(hg, _)| hg);
        let server = ran_on.and_then(|(_, a)| self.ctx.sessions.addresses.get(a));
        let kind = crate::metrics::KINDS[kind_index(stmt.kind)];
        let error = end.map_or(Some(0), |e| e.error);
        tracing::debug!(
            id = self.id,
            digest = %stmt.digest.text,
            kind = %kind,
            target = %route.target.as_str(),
            reason = %route.reason.describe(),
            hostgroup,
            server = %server.as_deref().unwrap_or("-"),
            pins = ?self.pins.reasons().collect::<Vec<_>>(),
            took_us = took.as_micros() as u64,
            error = error.unwrap_or(0),
            "statement routed"
        );
        let Some(log) = log else { return };
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        log.record(&crate::querylog::Entry {
            time_ms,
            session: self.id,
            user: &self.login.user.username,
            schema: self.login.database.as_deref(),
            digest: format!("0x{:016X}", stmt.digest.hash),
            digest_text: &stmt.digest.text,
            kind,
            target: route.target.as_str(),
            reason: route.reason.describe(),
            hostgroup,
            server: server.as_deref(),
            duration_us: took.as_micros() as u64,
            rows: end.map_or(0, |e| e.rows),
            affected: end.map_or(0, |e| e.affected),
            error,
        });
    }
}

/// A statement kind's position in `metrics::KINDS`.
fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Read => 0,
        Kind::LockingRead => 1,
        Kind::Write => 2,
        Kind::Ddl => 3,
        Kind::Transaction(_) => 4,
        Kind::SessionSet => 5,
        Kind::Use => 6,
        Kind::Show => 7,
        Kind::Other => 8,
        Kind::Empty => 9,
    }
}

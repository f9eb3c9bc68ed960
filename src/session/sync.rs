//! The session's link to a backend: checkout for a route, bring the connection to the
//! session's state (multi-statement mode, schema, one combined SET), hand it back cleaned as
//! the state model says (reset or closed when it carries state another client must not see).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::consistency::Need;
use super::state::plan;
use super::{Backend, Session, SessionError};
use crate::backend::{BackendConn, ConnKey, Mechanism, Schema, SessionVars, collation_name};
use crate::pool::PoolError;
use crate::pool::health::ServerHealth;
use crate::protocol::reply::err_packet;
use crate::protocol::{caps, errcode};
use crate::routing::{Route, Target};

/// Idle connections found closed by the server that one checkout discards before giving up
/// (each costs no round trip).
const MAX_DEAD_IDLE: u32 = 64;

/// Idle time after which a connection checked out for a read is peeked for a server-side
/// close first. One back in the pool for less than this was just used; for a read the peek (a
/// syscall) is skipped, since a read that finds it closed is retried elsewhere. Connections
/// for anything else are always peeked: a write must not go out on a closed one.
const PEEK_AFTER_IDLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Why no backend could be had; carries the ERR payload to send the client.
pub struct Unavailable(pub Bytes);

/// Why a checked-out connection could not be brought to the session's state.
pub(super) enum SyncFailure {
    /// The server refused (e.g. unknown schema): its ERR payload, for the client.
    Server(Bytes),
    /// The connection is broken: nothing of the client's statement was sent; try another.
    Broken(String),
}

impl From<SyncFailure> for Unavailable {
    fn from(f: SyncFailure) -> Self {
        match f {
            SyncFailure::Server(p) => Unavailable(p),
            SyncFailure::Broken(why) => proxy_err(why),
        }
    }
}

pub(super) fn proxy_err(msg: String) -> Unavailable {
    let (code, state) = errcode::PROXY_BACKEND;
    Unavailable(err_packet(code, state, &format!("rwproxy: {msg}")).into())
}

/// The state a connection must be brought to.
pub(super) struct SyncTarget<'a> {
    pub vars: &'a SessionVars,
    pub schema: Option<&'a str>,
    pub multi_statements: bool,
    /// The statement reads `LAST_INSERT_ID()`: sync it too.
    pub need_insert_id: bool,
    /// The connection may be reset on the way (not one the session holds state on).
    pub may_reset: bool,
}

/// Brings `conn` to `t`: a reset first when the plan needs one (to undo a character set the
/// proxy cannot name), COM_SET_OPTION, COM_INIT_DB, then one combined SET. When that SET fails
/// (a variable the server will not take back), the connection is reset and everything is
/// done again from a clean state; a second failure is the client's to see. A connection the
/// session holds state on (`!t.may_reset`) is never reset: the SET's error is returned.
pub(super) async fn sync_to(conn: &mut BackendConn, t: &SyncTarget<'_>) -> Result<(), SyncFailure> {
    let broken = |e: crate::backend::BackendError| SyncFailure::Broken(e.to_string());
    for attempt in 0..2 {
        let (reset, mut sql) = plan(t.vars, &conn.applied, t.need_insert_id, conn.mariadb);
        if reset {
            if !t.may_reset {
                let msg = "rwproxy: cannot restore this character set without a reset".to_string();
                return Err(SyncFailure::Server(proxy_err(msg).0));
            }
            Box::pin(conn.reset()).await.map_err(broken)?;
            sql = plan(t.vars, &conn.applied, t.need_insert_id, conn.mariadb).1;
        }
        if conn.multi_statements != t.multi_statements {
            conn.set_multi_statements(t.multi_statements)
                .await
                .map_err(broken)?
                .map_err(SyncFailure::Server)?;
        }
        if let Some(db) = t.schema
            && !matches!(&conn.schema, Schema::Known(Some(s)) if s == db)
        {
            conn.init_db(db).await.map_err(broken)?.map_err(SyncFailure::Server)?;
        }
        let Some(sql) = sql else { return Ok(()) };
        match conn.query_ok(&sql).await.map_err(broken)? {
            Ok(()) => {
                let last_insert_id =
                    if t.need_insert_id { t.vars.last_insert_id } else { conn.applied.last_insert_id };
                conn.applied = SessionVars { last_insert_id, ..t.vars.clone() };
                return Ok(());
            }
            Err(err) if attempt == 0 && t.may_reset => {
                tracing::debug!(addr = %conn.addr, "state sync failed ({}); resetting the connection", String::from_utf8_lossy(&err));
                Box::pin(conn.reset()).await.map_err(broken)?;
            }
            Err(err) => return Err(SyncFailure::Server(err)),
        }
    }
    Err(SyncFailure::Broken("state sync did not converge".into()))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Pooled connections are shared by sessions of the same user that agree on the flags
    /// the server fixes at login; the handshake collation is part of the key only when the
    /// proxy cannot replay it with `SET NAMES`.
    pub(super) fn conn_key(&self) -> ConnKey {
        let collation = if collation_name(self.login.collation).is_some() { 0 } else { self.login.collation };
        ConnKey {
            user: self.login.user.username.as_str().into(),
            capabilities: self.login.capabilities & caps::POOL_KEY,
            mariadb_caps: self.login.mariadb_caps & crate::protocol::mariadb_caps::POOL_KEY,
            collation,
        }
    }

    fn sync_target(&self, need_insert_id: bool) -> SyncTarget<'_> {
        SyncTarget {
            vars: &self.vars,
            schema: self.login.database.as_deref(),
            multi_statements: self.multi_statements,
            need_insert_id,
            may_reset: true,
        }
    }

    /// Makes sure the session holds a connection for `route`, synced to its state. A held
    /// (pinned) connection is used as it is. A reader hostgroup that cannot serve falls back
    /// to the writer. An idle connection the server closed (its `wait_timeout`, a `KILL`) is
    /// discarded unused, and one found broken while syncing (nothing of the client's statement
    /// was sent yet) is replaced once; neither says anything about the server, whose health
    /// only connects and the monitor decide.
    pub(super) async fn acquire(&mut self, route: &Route, need_insert_id: bool) -> Result<(), Unavailable> {
        if let Some(held) = self.backend.as_mut() {
            if need_insert_id && held.conn().applied.last_insert_id != self.vars.last_insert_id {
                let id = self.vars.last_insert_id;
                match held.conn().query_ok(&format!("SET last_insert_id = {id}")).await {
                    Ok(Ok(())) => held.conn().applied.last_insert_id = id,
                    Ok(Err(payload)) => return Err(Unavailable(payload)),
                    Err(e) => return Err(proxy_err(e.to_string())),
                }
            }
            return Ok(());
        }
        let (mut last, mut broken, mut dead) = (String::new(), 0, 0);
        while broken < 2 && dead < MAX_DEAD_IDLE {
            let mut pooled = self.pick(route).await?;
            self.ctx.metrics.checkout_waited(pooled.waited);
            // A read that finds its connection dead is retried elsewhere anyway; anything else
            // (a write) must not go out on one, however briefly it was idle.
            let peek = route.target != Target::Reader || pooled.idle_for >= PEEK_AFTER_IDLE;
            if peek && pooled.conn().closed_by_peer() {
                dead += 1;
                continue; // dropped: closed, its slot freed
            }
            match self.install(pooled, route, need_insert_id).await {
                Ok(()) => return Ok(()),
                Err(SyncFailure::Server(payload)) => return Err(Unavailable(payload)),
                Err(SyncFailure::Broken(why)) => {
                    broken += 1;
                    last = why;
                }
            }
        }
        Err(proxy_err(last))
    }

    /// A connection for `route` from the pools: a consistent reader, the reader hostgroup,
    /// or the writer when readers cannot serve.
    async fn pick(&self, route: &Route) -> Result<Backend, Unavailable> {
        if route.target == Target::Reader {
            let need = self.need().await;
            if let Need::Position(need) = &need
                && let Some(p) = self.consistent_reader(route.hostgroup, need).await
            {
                return Ok(p);
            }
            if !matches!(need, Need::Nothing) {
                if matches!(need, Need::Writer) {
                    self.ctx.stats.ryw_writer.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let writer = self.writer_route();
                return self.checkout(writer.hostgroup, None).await.map_err(|e| proxy_err(e.to_string()));
            }
        }
        match self.checkout(route.hostgroup, None).await {
            Ok(p) => Ok(p),
            Err(e) if route.target == Target::Reader && reader_unusable(&e) => {
                let writer = self.ctx.config().replication.map(|r| r.writer_hostgroup);
                let Some(writer) = writer else { return Err(proxy_err(e.to_string())) };
                tracing::debug!(id = self.id, "reader hostgroup unavailable ({e}); using the writer");
                self.checkout(writer, None).await.map_err(|e| proxy_err(e.to_string()))
            }
            Err(e) => {
                tracing::warn!(id = self.id, hostgroup = route.hostgroup, "checkout failed: {e}");
                Err(proxy_err(e.to_string()))
            }
        }
    }

    /// Syncs a checked-out connection and makes it the held one.
    async fn install(
        &mut self,
        mut pooled: Backend,
        route: &Route,
        need_insert_id: bool,
    ) -> Result<(), SyncFailure> {
        match sync_to(pooled.conn(), &self.sync_target(need_insert_id)).await {
            Ok(()) => {}
            // A replica that does not have the schema yet (created moments ago on the primary).
            Err(SyncFailure::Server(err))
                if route.target == Target::Reader && err.get(1..3) == Some(&1049u16.to_le_bytes()[..]) =>
            {
                self.ctx.pools().checkin(pooled);
                let writer = Route { target: Target::Writer, ..self.writer_route() };
                return Box::pin(self.acquire(&writer, need_insert_id))
                    .await
                    .map_err(|Unavailable(p)| SyncFailure::Server(p));
            }
            Err(SyncFailure::Server(err)) => {
                if let (Some(db), Some(code)) = (&self.login.database, err.get(1..3))
                    && matches!(u16::from_le_bytes([code[0], code[1]]), 1049 | 1044)
                {
                    self.ctx.schemas.forget(&self.login.user.username, db);
                }
                return Err(SyncFailure::Server(err));
            }
            Err(SyncFailure::Broken(why)) => {
                let s = pooled.server();
                let why = format!("hostgroup {}: backend {} failed: {why}", s.hostgroup, s.address);
                return Err(SyncFailure::Broken(why));
            }
        }
        self.backend = Some(pooled);
        Ok(())
    }

    pub(super) async fn checkout(
        &self,
        hostgroup: u32,
        only: Option<&(dyn Fn(&ServerHealth) -> bool + Sync)>,
    ) -> Result<Backend, PoolError<crate::backend::BackendError>> {
        let key = &self.pool_key;
        let want_schema = self.login.database.as_deref();
        let (vars, multi) = (&self.vars, self.multi_statements);
        // The pool hands out its own connection type (boxed, see `BackendConnector::Conn`).
        #[allow(clippy::borrowed_box)]
        let prefer = |c: &Box<BackendConn>| {
            let same_schema = match (&c.schema, want_schema) {
                (Schema::Known(have), want) => have.as_deref() == want,
                (Schema::Unknown, _) => false,
            };
            same_schema && c.multi_statements == multi && c.applied.same_settings(vars)
        };
        let no_schema = self.login.database.is_none();
        #[allow(clippy::borrowed_box)]
        let accept = |c: &Box<BackendConn>| !no_schema || c.schema == Schema::Known(None);
        self.ctx.pools().checkout_where(hostgroup, key, &prefer, &accept, only).await
    }

    /// Gives the held backend back. What the session's pins and its statements left on the
    /// connection decide how: straight to the idle list, through a reset off the request
    /// path, or closed.
    pub(super) fn release_backend(&mut self) {
        let Some(mut b) = self.backend.take() else { return };
        let residue = b.conn().residue.union(self.pins.residue());
        b.conn().residue = residue;
        match residue.cleanup() {
            None => self.ctx.pools().checkin(b),
            Some(how) => {
                self.ctx.stats.cleaned(residue, how);
                if how == Mechanism::Close {
                    tracing::debug!(id = self.id, "closing a backend connection that no reset can clean");
                    drop(b);
                } else {
                    self.ctx.pools().checkin_dirty(b);
                }
            }
        }
    }

    /// Drops the held backend without reuse (its stream is broken or mid-reply).
    pub(super) fn discard_backend(&mut self) {
        self.backend = None;
        self.pins.clear();
    }

    /// Ends the login: validates the initial schema on a backend unless one confirmed it to
    /// this user lately (`schemas`), then sends OK.
    pub(super) async fn finish_login(&mut self, seq: u8) -> Result<(), SessionError> {
        if let Some(db) = self.login.database.clone()
            && !self.ctx.schemas.known(&self.login.user.username, &db)
        {
            if let Err(Unavailable(payload)) = self.schema_exists(&db).await {
                self.client.write_packet(seq, &payload).await?;
                return Err(SessionError::Refused("initial schema or backend unavailable"));
            }
            self.ctx.schemas.learn(&self.login.user.username, &db);
        }
        self.send_ok(seq).await
    }

    /// Asks a backend whether `db` exists for this user (`COM_INIT_DB` even on a connection
    /// that has it selected: it may have been dropped since). A reader, then the writer when
    /// the reader lacks it (created moments ago) or cannot serve.
    async fn schema_exists(&mut self, db: &str) -> Result<(), Unavailable> {
        let routes = [self.schema_check_route(), self.writer_route()];
        let last = routes.len() - 1;
        for (i, route) in routes.iter().enumerate() {
            self.acquire(route, false).await?;
            let Some(b) = self.backend.as_mut() else { continue };
            let held_by_writer = Some(b.server().hostgroup) == routes.get(last).map(|r| r.hostgroup);
            match b.conn().init_db(db).await {
                Ok(Ok(())) => {
                    self.release_backend();
                    return Ok(());
                }
                Ok(Err(payload)) => {
                    self.release_backend();
                    if i == last || held_by_writer {
                        self.ctx.schemas.forget(&self.login.user.username, db);
                        return Err(Unavailable(payload));
                    }
                }
                Err(e) => {
                    self.discard_backend();
                    return Err(proxy_err(e.to_string()));
                }
            }
        }
        Err(proxy_err("no backend could check the schema".into()))
    }

    /// Where to check that a schema exists: a reader (so logins work while the primary is
    /// down), which falls back to the writer when readers lack it or cannot serve.
    pub(super) fn schema_check_route(&self) -> Route {
        match self.ctx.config().replication {
            Some(r) => Route {
                hostgroup: r.reader_hostgroup,
                target: Target::Reader,
                reason: crate::routing::Reason::SessionState,
                error: None,
            },
            None => self.writer_route(),
        }
    }

    /// A route to the writer (or the user's default hostgroup without replication).
    pub(super) fn writer_route(&self) -> Route {
        let hostgroup =
            self.ctx.config().replication.map_or(self.login.user.default_hostgroup, |r| r.writer_hostgroup);
        Route { hostgroup, target: Target::Writer, reason: crate::routing::Reason::SessionState, error: None }
    }
}

fn reader_unusable(e: &PoolError<crate::backend::BackendError>) -> bool {
    matches!(e, PoolError::EmptyHostgroup { .. } | PoolError::Unreachable { .. } | PoolError::Timeout { .. })
}

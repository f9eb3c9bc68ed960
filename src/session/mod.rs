//! One client connection: handshake, command loop, backend link, reply relay.

mod auth;
mod bulk;
mod change_user;
mod commands;
mod consistency;
mod forward;
mod kill;
mod local_set;
mod outcome;
mod pins;
mod prepared;
mod record;
mod relay;
#[cfg(test)]
mod size_probe;
mod state;
mod stmt_backend;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::backend::{BackendConnector, SessionVars};
use crate::pool::Pooled;
use crate::protocol::reply::{err_packet, ok_packet};
use crate::protocol::{ClientCommand, PacketStream, ProtocolError, errcode, status};
use crate::routing::gtid::GtidPos;
use crate::routing::{Consistency, Dialect};
pub use auth::Login;
pub use pins::{PinReason, Pins};
pub use relay::{RelayError, relay_reply};

use crate::shared::{Context, Slot, registry};

/// Why a session ended early. Logged once; never affects another session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("client closed the connection")]
    ClientGone,
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The login itself failed (wrong password, client gone or broken mid-handshake).
    #[error(transparent)]
    Login(#[from] crate::shared::login::LoginError),
    #[error("backend failed mid-reply: {0}")]
    BackendMidReply(String),
    #[error("idle longer than the session's wait_timeout")]
    IdleTimeout,
    #[error("no login within proxy.connect_timeout_ms")]
    LoginTimeout,
    #[error("closed before login to make room for newer connections (proxy.max_pending_logins)")]
    Evicted,
    #[error("killed")]
    Killed,
}

type Backend = Pooled<BackendConnector>;

/// The largest packet a client may send before it logged in (a handshake response with
/// connection attributes is a few hundred bytes; MariaDB caps attributes at 64 KiB in total,
/// which no real client comes near).
pub const PRE_LOGIN_MAX_PACKET: usize = 16 << 10;

pub struct Session<S> {
    client: PacketStream<S>,
    ctx: Arc<Context>,
    id: u32,
    peer: SocketAddr,
    salt: [u8; 20],
    login: Login,
    backend: Option<Backend>,
    status: u16,
    slot: Slot,
    /// Session state the client set, replayed on every borrowed connection.
    vars: SessionVars,
    pins: Pins,
    multi_statements: bool,
    stmts: crate::FastMap<u32, prepared::ClientStmt>,
    next_stmt_id: u32,
    /// Pin reasons last published to `Context::stats`.
    pin_mask: u64,
    /// When the session last wrote (read-your-writes window).
    last_write: Option<std::time::Instant>,
    /// GTID position of the session's writes (read-your-writes by GTID).
    gtid: Option<GtidPos>,
    /// The current statement's `/* rwproxy:consistency=… */` hint.
    stmt_consistency: Option<Consistency>,
    /// The current statement's `/* rwproxy:min_gtid=… */` hint: a position it must see.
    stmt_min_gtid: Option<GtidPos>,
    /// The current statement's `/* rwproxy:timeout_ms=… */` hint.
    stmt_timeout: Option<std::time::Duration>,
    /// The backend's dialect, once a backend greeting told it.
    dialect: Option<Dialect>,
    /// The current statement's flags, for what must happen between checkout and sending it.
    stmt_reads: u64,
    /// The client turned `session_track_state_change` on: it sees those entries.
    client_keeps: crate::protocol::session_track::Keep,
    /// The session's `wait_timeout`: how long the client may stay idle.
    idle_timeout: Option<std::time::Duration>,
    /// What other sessions' `KILL` sees of this one.
    handle: std::sync::Arc<registry::Handle>,
    /// The pool key of the session's backend connections (user, flags, collation).
    pool_key: crate::backend::ConnKey,
    /// Counts changes of session state the proxy could not follow; part of every prepared
    /// statement's parse key, so statements prepared before and after do not mix.
    parse_epoch: u32,
    /// The session's last statement was answered by the proxy (`local_set`): what
    /// `ROW_COUNT()` reads next must be that statement's 0, not the connection's.
    local_outcome: bool,
    /// The current statement may commit a write (`commands::may_write`).
    stmt_may_write: bool,
    /// The current statement's position was already learned (before its reply's end).
    gtid_learned: bool,
    /// When a write's position could not be learned (its reads then go to the writer).
    unknown_write: Option<std::time::Instant>,
    /// (hostgroup, interned address) of the connection the current statement went to.
    ran_on: Option<(u32, u32)>,
}

impl<S> Drop for Session<S> {
    /// Before the client socket closes (the fields drop after this): no `KILL` or idle sweep
    /// may shut its descriptor down once the kernel can hand the number to another socket.
    fn drop(&mut self) {
        self.handle.forget_client();
    }
}

/// Serves one client connection until it quits, fails, or shutdown is signalled.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    kill_switch: Option<std::os::fd::RawFd>,
) where
    S: AsyncRead + AsyncWrite + Unpin + crate::tls::StartTls,
{
    let (max_packet, connect_timeout, max_pending) = {
        let c = ctx.config();
        (c.proxy.max_allowed_packet, c.proxy.connect_timeout, c.proxy.max_pending_logins as usize)
    };
    // Until the login is done, packets are small: what an unauthenticated peer can make the
    // proxy hold stays within PRE_LOGIN_MAX_PACKET per pending login.
    let mut client = PacketStream::with_read_chunk(
        stream,
        PRE_LOGIN_MAX_PACKET,
        crate::protocol::packet::CLIENT_READ_CHUNK,
    );
    client.set_write_timeout(ctx.config().proxy.net_write_timeout);
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
    let pending = ctx.pending.enter(max_pending);
    let logged_in = tokio::select! {
        r = Box::pin(login(client, &ctx, (id, peer), kill_switch)) => r,
        _ = tokio::time::sleep(connect_timeout) => Err(SessionError::LoginTimeout),
        _ = pending.evict.notified() => Err(SessionError::Evicted),
    };
    drop(pending);
    let result = match logged_in {
        Ok(mut session) => {
            session.client.set_max_payload(max_packet);
            let r = session.run(shutdown).await;
            if let Err(SessionError::Protocol(ProtocolError::TooLarge { .. })) = &r {
                let (code, state) = errcode::NET_PACKET_TOO_LARGE;
                let msg = "Got a packet bigger than 'max_allowed_packet' bytes";
                let _sent = session.client.write_packet(1, &err_packet(code, state, msg)).await;
            }
            session.release_backend();
            session.pins.clear();
            session.publish_pins();
            r
        }
        Err(e) => Err(e),
    };
    ctx.sessions.remove(id);
    match result {
        Ok(())
        | Err(
            SessionError::ClientGone
            | SessionError::Login(crate::shared::login::LoginError::ClientGone)
            | SessionError::IdleTimeout
            | SessionError::Killed
            | SessionError::LoginTimeout
            | SessionError::Evicted,
        ) => {
            tracing::debug!(id, %peer, "session closed")
        }
        Err(e @ SessionError::Login(crate::shared::login::LoginError::AccessDenied(_))) => {
            // Logged (rate-limited) by the throttle.
            ctx.metrics.refused(2);
            tracing::debug!(id, %peer, "login failed: {e}")
        }
        Err(e) => tracing::warn!(id, %peer, "session ended: {e}"),
    }
}

/// Handshake, limits, initial schema; the session is ready for commands when this returns.
async fn login<S: AsyncRead + AsyncWrite + Unpin + crate::tls::StartTls>(
    mut client: PacketStream<S>,
    ctx: &Arc<Context>,
    (id, peer): (u32, SocketAddr),
    kill_switch: Option<std::os::fd::RawFd>,
) -> Result<Session<S>, SessionError> {
    let salt = crate::protocol::auth::new_salt();
    let greeting = auth::greeting(ctx, id, &salt);
    let login = auth::handshake(&mut client, ctx, &greeting, peer).await?;
    let seq = login.next_seq;
    // Slots count logged-in sessions: half-open connections never take one.
    let Some(mut slot) = ctx.limits.enter(ctx.config().proxy.max_connections) else {
        tracing::warn!(%peer, "refused: proxy max_connections reached");
        ctx.metrics.refused(0);
        let (code, state) = errcode::TOO_MANY_CONNECTIONS;
        client.write_packet(seq, &err_packet(code, state, "Too many connections")).await?;
        return Err(SessionError::Refused("proxy max_connections reached"));
    };
    if !ctx.limits.set_user(&mut slot, &login.user.username, login.user.max_connections) {
        let (code, state) = errcode::TOO_MANY_CONNECTIONS;
        let msg = format!("Too many connections for user '{}'", login.user.username);
        ctx.metrics.refused(1);
        client.write_packet(seq, &err_packet(code, state, &msg)).await?;
        return Err(SessionError::Refused("user max_connections reached"));
    }
    let handle = ctx.sessions.register(id, &login.user.username, kill_switch);
    let mut session = Session {
        client,
        ctx: ctx.clone(),
        id,
        peer,
        salt,
        login,
        backend: None,
        status: status::AUTOCOMMIT,
        slot,
        vars: SessionVars::default(),
        pins: Pins::default(),
        multi_statements: false,
        stmts: crate::FastMap::default(),
        next_stmt_id: 1,
        pin_mask: 0,
        last_write: None,
        gtid: None,
        stmt_consistency: None,
        stmt_min_gtid: None,
        stmt_timeout: None,
        dialect: None,
        stmt_reads: 0,
        client_keeps: Default::default(),
        parse_epoch: 0,
        local_outcome: false,
        stmt_may_write: false,
        gtid_learned: false,
        unknown_write: None,
        ran_on: None,
        idle_timeout: None,
        handle,
        pool_key: crate::backend::ConnKey { user: "".into(), capabilities: 0, mariadb_caps: 0, collation: 0 },
    };
    session.pool_key = session.conn_key();
    session.vars = SessionVars::with_collation(session.login.collation);
    session.multi_statements = session.login.capabilities & crate::protocol::caps::MULTI_STATEMENTS != 0;
    session.finish_login(seq).await?;
    if session.login.capabilities & crate::protocol::caps::COMPRESS != 0 {
        // From the login's OK on, both ways (the client sends nothing before it).
        if !session.client.buffered().is_empty() {
            return Err(SessionError::Refused("client sent a command before the login's OK"));
        }
        session.client.stream_mut().start_compression().map_err(ProtocolError::Io)?;
        session.client.renumber();
    }
    let compressed = session.login.capabilities & crate::protocol::caps::COMPRESS != 0;
    ctx.metrics.logged_in(session.login.tls, compressed);
    Ok(session)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Serves commands until the client quits. Once shutdown is signalled an idle session
    /// closes at once; one inside a transaction keeps serving until the transaction ends (the
    /// server stops waiting after `proxy.shutdown_timeout`).
    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), SessionError> {
        // An idle client is closed, as the server would: after the session's own
        // `wait_timeout` or the proxy's, sooner inside a transaction. The registry's sweeper
        // does it (one task for all sessions, no timer per session or per command).
        loop {
            let stopping = *shutdown.borrow();
            if stopping && !self.pins.has(PinReason::Transaction) {
                return Ok(());
            }
            self.handle.set_idle(self.ctx.sessions.now(), self.idle_limit().as_millis() as u64);
            let packet = tokio::select! {
                p = self.client.read_packet(Some(0)) => p,
                _ = shutdown.changed(), if !stopping => continue,
            };
            self.handle.set_busy();
            if self.handle.idle_expired() {
                return Err(SessionError::IdleTimeout);
            }
            let packet = packet?;
            let Some(packet) = packet else {
                return Err(if self.handle.is_killed() {
                    SessionError::Killed
                } else {
                    SessionError::ClientGone
                });
            };
            self.ctx.metrics.bytes_from_clients.fetch_add(packet.raw().len() as u64, Ordering::Relaxed);
            let cmd = ClientCommand::parse(packet.payload())?;
            if cmd == ClientCommand::Quit {
                return Ok(());
            }
            // Boxed: the statement path's state lives on the heap while a command runs, so
            // an idle session's task stays small (`size_probe`).
            Box::pin(self.command(cmd, &packet)).await?;
            if self.handle.is_killed() {
                return Err(SessionError::Killed);
            }
        }
    }

    /// How long the client may stay idle now.
    fn idle_limit(&self) -> std::time::Duration {
        let cfg = self.ctx.config();
        let limit = self.idle_timeout.unwrap_or(cfg.proxy.wait_timeout);
        let in_tx = cfg.proxy.idle_transaction_timeout;
        if self.pins.has(PinReason::Transaction) && !in_tx.is_zero() { limit.min(in_tx) } else { limit }
    }

    /// Publishes a change in this session's pin reasons to the shared counters.
    fn publish_pins(&mut self) {
        let now = if self.pins.any() { crate::shared::stats::mask(self.pins.reasons()) } else { 0 };
        self.ctx.stats.update(self.pin_mask, now);
        self.pin_mask = now;
    }

    /// How the backend reads SQL (version-conditional comments): its real version, learned
    /// from the first backend greeting; until then the configured fallback version.
    pub(super) fn dialect(&mut self) -> Dialect {
        if let Some(d) = self.dialect {
            return d;
        }
        match self.ctx.pools().connector().version() {
            Some(v) => *self.dialect.insert(v.dialect),
            None => Dialect::from_server_version(self.ctx.config().proxy.fallback_server_version.as_bytes()),
        }
    }

    async fn send_err(&mut self, seq: u8, (code, state): (u16, &str), msg: &str) -> Result<(), SessionError> {
        self.ctx.metrics.error_sent(code);
        self.client.write_packet(seq, &err_packet(code, state, msg)).await?;
        Ok(())
    }

    async fn send_ok(&mut self, seq: u8) -> Result<(), SessionError> {
        // Only flags that describe the session; per-reply flags (cursor, last row) do not carry.
        self.client.write_packet(seq, &ok_packet(0, 0, self.status & status::SESSION, 0)).await?;
        Ok(())
    }
}

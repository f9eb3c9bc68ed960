//! Sending a command to a backend and relaying its reply, with transparent retries for
//! autocommit reads that failed on a reader before any byte reached the client.

use tokio::io::{AsyncRead, AsyncWrite};

use super::prepared::ExecFrames;
use super::relay::{RelayError, Retryable, Tracking, relay_reply};
use super::sync::Unavailable;
use super::{Session, SessionError};
use crate::protocol::{Packet, ReplyEnd, ReplyKind, ReplyTracker, caps, errcode};
use crate::routing::{Route, Target};
use crate::shared::watched::{Canceller, Watched};

/// Unknown database, table, column: what a lagging replica says after DDL on the primary.
const SCHEMA_LAG_ERRORS: [u16; 3] = [1049, 1146, 1054];
/// Held on reads too: the replica is shutting down or killed the connection; try another.
const GOING_AWAY_ERRORS: [u16; 2] = [SERVER_SHUTDOWN, 1927];
/// ER_SERVER_SHUTDOWN: the whole server is going away (1927 is one connection killed).
const SERVER_SHUTDOWN: u16 = 1053;
/// Errors a retryable read's reply is held back for.
const HOLD: [u16; 5] = [
    SCHEMA_LAG_ERRORS[0],
    SCHEMA_LAG_ERRORS[1],
    SCHEMA_LAG_ERRORS[2],
    GOING_AWAY_ERRORS[0],
    GOING_AWAY_ERRORS[1],
];
/// Replies to retryable reads are held back until complete or this large.
const HOLD_BYTES: usize = 64 * 1024;
/// Further attempts for a read after the first failed.
const READ_RETRIES: u32 = 2;

/// What goes to the backend for one statement.
#[derive(Clone, Copy)]
pub(super) enum Frames<'a> {
    /// These frames, on whichever connection serves the statement.
    Raw(&'a [u8]),
    /// A client's COM_STMT_EXECUTE of its statement `client_id`: rebuilt for each connection
    /// tried (it carries that connection's statement id), so binary-protocol reads are
    /// retried like text ones.
    Execute { client_id: u32, packet: &'a Packet },
}

enum Attempt {
    Done(Option<ReplyEnd>),
    /// Nothing reached the client; try again (on the writer when `writer`).
    Retry {
        writer: bool,
        why: String,
    },
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
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
        self.forward_bytes(route, need_insert_id, Frames::Raw(packet.raw()), packet.last_seq, kind, binary)
            .await
    }

    /// Like `forward` for frames the proxy built (rewritten statement ids). Reads routed to a
    /// reader outside any pin are retried on another backend when the attempt failed before
    /// any byte reached the client; writes and statements in transactions never are.
    pub(super) async fn forward_bytes(
        &mut self,
        route: &Route,
        need_insert_id: bool,
        frames: Frames<'_>,
        last_seq: u8,
        kind: ReplyKind,
        binary: bool,
    ) -> Result<Option<ReplyEnd>, SessionError> {
        let retryable = route.target == Target::Reader && self.backend.is_none();
        let mut route = route.clone();
        let mut last_failure = String::new();
        for attempt in 0..=READ_RETRIES {
            let retry_here = retryable && route.target == Target::Reader;
            let built;
            let raw = match frames {
                Frames::Raw(raw) => raw,
                Frames::Execute { client_id, packet } => {
                    match Box::pin(self.execute_frames(client_id, &route, need_insert_id, packet)).await? {
                        ExecFrames::Frames(frames) => {
                            built = frames;
                            &built[..]
                        }
                        ExecFrames::Answered => return Ok(None),
                        ExecFrames::Lost(why) if retry_here => {
                            tracing::debug!(id = self.id, attempt, "read retried: {why}");
                            self.ctx.stats.note_retry();
                            last_failure = why;
                            continue;
                        }
                        ExecFrames::Lost(why) => {
                            let msg = format!("rwproxy: lost connection to backend: {why}");
                            self.send_err(last_seq.wrapping_add(1), errcode::LOST_BACKEND, &msg).await?;
                            return Ok(None);
                        }
                    }
                }
            };
            match self.attempt(&route, need_insert_id, raw, last_seq, kind, binary, retry_here).await? {
                Attempt::Done(end) => return Ok(end),
                Attempt::Retry { writer, why } => {
                    tracing::debug!(id = self.id, attempt, "read retried: {why}");
                    self.ctx.stats.note_retry();
                    last_failure = why;
                    if writer {
                        route = Route { target: Target::Writer, ..self.writer_route() };
                    }
                }
            }
        }
        let msg = format!("rwproxy: read failed on {} backends: {last_failure}", READ_RETRIES + 1);
        self.send_err(last_seq.wrapping_add(1), errcode::LOST_BACKEND, &msg).await?;
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        route: &Route,
        need_insert_id: bool,
        raw: &[u8],
        last_seq: u8,
        kind: ReplyKind,
        binary: bool,
        retryable: bool,
    ) -> Result<Attempt, SessionError> {
        let retry =
            if retryable { Retryable { errors: &HOLD, bytes: HOLD_BYTES } } else { Retryable::default() };
        let held_before = self.backend.is_some();
        let acquired = match self.acquire(route, need_insert_id).await {
            Ok(()) => self.fresh_outcome().await,
            Err(e) => Err(e),
        };
        if let Err(Unavailable(payload)) = acquired {
            if let Some(code) = payload.get(1..3) {
                self.ctx.metrics.error_sent(u16::from_le_bytes([code[0], code[1]]));
            }
            self.client.write_packet(last_seq.wrapping_add(1), &payload).await?;
            return Ok(Attempt::Done(None));
        }
        let deprecate_eof = self.login.capabilities & caps::DEPRECATE_EOF != 0;
        let hold_unlearned_end = self.stmt_may_write && self.learns_positions();
        let Some(backend) = self.backend.as_mut() else { return Err(SessionError::Refused("no backend")) };
        let fresh = !held_before;
        let addr = backend.server().address.clone();
        let hostgroup = backend.server().hostgroup;
        let conn = backend.conn();
        if conn.peer_id == 0 {
            conn.peer_id = self.ctx.sessions.addresses.intern(&conn.peer);
        }
        self.ran_on = Some((hostgroup, conn.peer_id));
        self.handle.set_running(Some((conn.peer_id, conn.greeting.connection_id)));
        if let Err(e) = backend.conn().stream().write_raw(raw).await {
            self.handle.set_running(None);
            // Nothing reached the server: any statement may go out again on a fresh connection,
            // unless the session had state on this one.
            let again = retryable || (fresh && self.pins.residue().is_empty());
            return self.backend_lost((&addr, hostgroup), &e.to_string(), again, last_seq).await;
        }
        backend.count_statement();
        let tracker = ReplyTracker::new(kind, deprecate_eof, binary);
        let mut track = Tracking {
            backend_tracks: backend.conn().capabilities & caps::SESSION_TRACK != 0,
            client_tracks: self.login.capabilities & caps::SESSION_TRACK != 0,
            lenenc_info: backend.conn().mariadb,
            keep: self.client_keeps,
            hold_unlearned_end,
            gtid_tracked: backend.conn().tracks_gtid,
            ..Tracking::default()
        };
        self.handle.watch({
            let cfg = self.ctx.config();
            let limit = self.stmt_timeout.or(cfg.routing.max_statement_time);
            let cancel = limit.map(|after| {
                let connector = self.ctx.pools().connector().clone();
                let thread = backend.conn().greeting.connection_id;
                let c = Canceller { connector, key: self.pool_key.clone(), addr: addr.clone(), thread };
                (after.as_millis() as u64, c)
            });
            Watched {
                since: self.ctx.sessions.now(),
                health: backend.health().clone(),
                unresponsive_after: cfg.pool.backend_read_timeout.as_millis() as u64,
                cancel,
                backend: backend.conn().cut_handle.clone(),
                cut: false,
            }
        });
        let result = relay_reply(backend.conn().stream(), &mut self.client, tracker, retry, &mut track).await;
        if let Ok(end) = &result
            && !track.held.is_empty()
        {
            // The write's position first, still under the sweeper's watch (a hung backend is
            // cut as during the statement), then the end of its reply.
            self.capture_gtid(end).await;
            self.gtid_learned = true;
        }
        if self.handle.unwatch() && matches!(result, Err(RelayError::Backend { .. })) {
            let limit = self.ctx.config().pool.backend_read_timeout.as_millis();
            tracing::warn!(id = self.id, server = %addr, "statement cut: no reply within {limit} ms and the monitor cannot reach the server");
        }
        self.handle.set_running(None);
        self.ctx.metrics.bytes_to_clients.fetch_add(track.sent_bytes, std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(end) => {
                let held = std::mem::take(&mut track.held);
                let end = self.reply_done(end, track);
                if !held.is_empty() {
                    self.client.write_raw(&held).await?;
                    self.ctx
                        .metrics
                        .bytes_to_clients
                        .fetch_add(held.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Attempt::Done(Some(end)))
            }
            Err(RelayError::Client(e)) => {
                self.discard_backend();
                Err(SessionError::Protocol(e))
            }
            Err(RelayError::Backend { source, client_saw_bytes: true }) => {
                self.discard_backend();
                Err(SessionError::BackendMidReply(format!("{addr}: {source}")))
            }
            Err(RelayError::Backend { source, client_saw_bytes: false }) => {
                self.backend_lost((&addr, hostgroup), &source.to_string(), retryable, last_seq).await
            }
            Err(RelayError::Held(code)) => {
                let schema_lag = SCHEMA_LAG_ERRORS.contains(&code);
                if schema_lag {
                    self.release_backend();
                } else {
                    debug_assert!(GOING_AWAY_ERRORS.contains(&code));
                    self.discard_backend();
                    if code == SERVER_SHUTDOWN {
                        self.ctx.pools().server_failed(&addr, &format!("ERR {code}"));
                    }
                }
                Ok(Attempt::Retry { writer: schema_lag, why: format!("{addr} answered ERR {code}") })
            }
        }
    }

    /// A complete reply: what it says about the session (status, GTID, outcome).
    fn reply_done(&mut self, mut end: ReplyEnd, track: Tracking) -> ReplyEnd {
        end.state_changed |= track.state_changed;
        self.note_outcome(&end);
        if let Some(code) = end.error {
            self.ctx.metrics.error_sent(code);
        }
        if let Some(st) = end.status {
            self.status = st;
            // The server's word on autocommit, however the session changed it: replayed on
            // the connections that serve the session from now on.
            let off = st & crate::protocol::status::AUTOCOMMIT == 0;
            self.vars.follow_autocommit(off);
            if let Some(b) = self.backend.as_mut() {
                b.conn().applied.follow_autocommit(off);
            }
        }
        if let Some(gtid) = track.last_gtid {
            self.note_gtid(&gtid);
        }
        if let Some(schema) = track.schema {
            // The server's word on the current schema (USE, COM_INIT_DB, DROP DATABASE of it).
            self.set_schema((!schema.is_empty()).then_some(schema));
        }
        end
    }

    /// The backend connection broke before any reply byte: retry a read elsewhere, or tell
    /// the client (the session stays usable with a new connection next time).
    async fn backend_lost(
        &mut self,
        (addr, hostgroup): (&str, u32),
        why: &str,
        retryable: bool,
        last_seq: u8,
    ) -> Result<Attempt, SessionError> {
        self.discard_backend();
        if retryable {
            return Ok(Attempt::Retry { writer: false, why: format!("{addr}: {why}") });
        }
        let msg =
            format!("rwproxy: lost connection to backend {addr} (hostgroup {hostgroup}) during query: {why}");
        self.send_err(last_seq.wrapping_add(1), errcode::LOST_BACKEND, &msg).await?;
        Ok(Attempt::Done(None))
    }
}

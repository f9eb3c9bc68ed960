//! One real MySQL connection to a backend: connect, authenticate, reset, run proxy commands.

mod collations;
mod connector;
pub mod kinds;
mod login;
mod query;
pub mod state;
mod statements;
pub mod tls;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::protocol::handshake::{HandshakeResponse, HandshakeV10};
use crate::protocol::reply::parse_err;
use crate::protocol::{PacketStream, ProtocolError, caps, com, mariadb_caps};

pub use collations::{collation_name, known_collations};
pub use connector::{BackendConnector, ConnKey, Credentials, VersionInfo};
pub use kinds::{KindSet, Mechanism, Pin, StateKind};
pub use query::Rows;
pub use state::{BackendStmt, OutcomeOwners, PreparedCache, SessionVars};

/// Why a backend connection could not be made or used. `Rejected` means the server answered
/// (it is up); the others mean it could not be reached or spoke nonsense.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connect to {addr} timed out after {} ms", after.as_millis())]
    Timeout { addr: String, after: Duration },
    #[error("{addr} refused: ERR {code}: {message}")]
    Rejected { addr: String, code: u16, message: String },
    #[error("{addr}: {source}")]
    Protocol { addr: String, source: ProtocolError },
    #[error("{addr}: {what}")]
    Unsupported { addr: String, what: String },
}

impl BackendError {
    /// True when the server itself is fine and only this request was refused.
    pub fn server_answered(&self) -> bool {
        matches!(self, BackendError::Rejected { .. })
    }
}

/// What the session knows of the connection's current database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    Known(Option<String>),
    Unknown,
}

/// An authenticated backend connection.
#[derive(Debug)]
pub struct BackendConn {
    stream: PacketStream<tls::BackendStream>,
    pub addr: String,
    /// `addr`, shared cheaply (what `KILL` needs to reach the thread running a statement).
    pub peer: std::sync::Arc<str>,
    /// `peer`'s id in the sessions' address table (0: not looked up yet).
    pub peer_id: u32,
    pub greeting: HandshakeV10,
    /// Capabilities in force on this connection.
    pub capabilities: u32,
    pub schema: Schema,
    pub created: Instant,
    /// State left on the connection that only a reset (or closing it) clears: decides what
    /// happens when it goes back to the pool.
    pub residue: KindSet,
    /// The handshake collation the connection logged in with; a reset returns to it.
    pub collation: u8,
    /// Whose statements the previous-statement state (`ROW_COUNT()`, `FOUND_ROWS()`,
    /// warnings) comes from.
    pub outcome: OutcomeOwners,
    /// Session state applied on this connection.
    pub applied: SessionVars,
    /// Multi-statement mode currently on (handshake flag, then COM_SET_OPTION).
    pub multi_statements: bool,
    pub prepared: PreparedCache,
    /// True for MariaDB servers (variable spellings differ from MySQL 8).
    pub mariadb: bool,
    /// OK packets on this connection report `last_gtid` (session tracking).
    pub tracks_gtid: bool,
    /// The server reports session-state changes (`session_track_state_change`).
    pub tracks_state: bool,
    /// A duplicate of the socket: shutting it down cuts a reply that hangs (the sessions'
    /// sweeper does, for a server the monitor cannot reach).
    pub cut_handle: Option<std::sync::Arc<socket2::Socket>>,
}

impl BackendConn {
    pub async fn connect(
        addr: &str,
        username: &str,
        secret: &Credentials,
        (capabilities, mariadb_caps): (u32, u32),
        collation: u8,
        (max_packet, tls): (usize, &tls::BackendTls),
    ) -> Result<BackendConn, BackendError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| BackendError::Connect { addr: addr.to_string(), source })?;
        // Latency matters more than packet count for a proxy; failure here is harmless.
        let _nodelay = tcp.set_nodelay(true);
        let cut_handle = socket2::SockRef::from(&tcp).try_clone().ok().map(std::sync::Arc::new);
        let mut stream = PacketStream::new(tls::BackendStream::Plain(tcp), max_packet.max(64 << 20));
        let perr = |source| BackendError::Protocol { addr: addr.to_string(), source };
        let greeting = stream.read_packet(Some(0)).await.map_err(perr)?;
        let greeting = greeting.ok_or_else(|| perr(ProtocolError::Truncated("greeting")))?;
        if let Some((code, message)) = parse_err(greeting.payload()) {
            return Err(BackendError::Rejected { addr: addr.into(), code, message });
        }
        let greeting = HandshakeV10::decode(greeting.payload()).map_err(perr)?;
        // Session tracking is always asked for: OK packets then report each write's GTID; the
        // relay removes what the client did not negotiate.
        let capabilities = (capabilities | caps::BACKEND_BASE | caps::SESSION_TRACK) & greeting.capabilities;
        // MariaDB's extended ones go with the server's `CLIENT_MYSQL` unset (also unset here).
        let mariadb_caps = (mariadb_caps | mariadb_caps::BACKEND_BASE) & greeting.mariadb_caps;
        // Collation 0: the server's own default (from its greeting); sessions replay theirs.
        let collation = if collation == 0 { greeting.collation } else { collation };
        let seq =
            tls::upgrade(&mut stream, addr, tls, (capabilities, collation, mariadb_caps), &greeting).await?;
        let capabilities = if seq == 2 { capabilities | caps::SSL } else { capabilities };
        let response = HandshakeResponse {
            capabilities,
            max_packet: 1 << 30,
            collation,
            username: username.as_bytes().to_vec(),
            auth_response: secret.answer(&greeting.auth_plugin, &greeting.salt).1,
            database: None,
            auth_plugin: Some(secret.answer(&greeting.auth_plugin, &greeting.salt).0.as_bytes().to_vec()),
            mariadb_caps,
        };
        stream.write_packet(seq, &response.encode()).await.map_err(perr)?;
        let mut conn = BackendConn {
            stream,
            addr: addr.to_string(),
            peer: addr.into(),
            peer_id: 0,
            greeting,
            capabilities,
            schema: Schema::Known(None),
            created: Instant::now(),
            residue: KindSet::default(),
            collation,
            outcome: OutcomeOwners::default(),
            applied: SessionVars::with_collation(collation),
            multi_statements: capabilities & caps::MULTI_STATEMENTS != 0,
            prepared: PreparedCache::default(),
            mariadb: false,
            tracks_gtid: false,
            tracks_state: false,
            cut_handle,
        };
        conn.mariadb = conn.greeting.server_version.windows(7).any(|w| w == b"MariaDB");
        conn.finish_auth(secret, seq + 1, tls).await?;
        if conn.wants_tracking() {
            conn.stream.write_packet(0, &conn.tracking_command()).await.map_err(|e| conn.perr(e))?;
        }
        conn.finish_tracking().await?;
        Ok(conn)
    }

    fn perr(&self, source: ProtocolError) -> BackendError {
        BackendError::Protocol { addr: self.addr.clone(), source }
    }

    async fn read(&mut self, seq: u8) -> Result<crate::protocol::Packet, BackendError> {
        match self.stream.read_packet(Some(seq)).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(self.perr(ProtocolError::Truncated("reply (connection closed)"))),
            Err(e) => Err(self.perr(e)),
        }
    }

    fn expect_ok(&self, payload: &[u8]) -> Result<(), BackendError> {
        match parse_err(payload) {
            Some((code, message)) => Err(BackendError::Rejected { addr: self.addr.clone(), code, message }),
            None if payload.first() == Some(&0x00) => Ok(()),
            None => Err(self.perr(ProtocolError::Unexpected("reply to a proxy command"))),
        }
    }

    /// Runs a command whose reply is one OK or ERR packet. An ERR leaves the connection usable;
    /// its raw payload is returned so it can be relayed to the client unchanged.
    pub async fn simple_command(
        &mut self,
        command: u8,
        arg: &[u8],
    ) -> Result<Result<(), Bytes>, BackendError> {
        let mut payload = Vec::with_capacity(1 + arg.len());
        payload.push(command);
        payload.extend_from_slice(arg);
        self.stream.write_packet(0, &payload).await.map_err(|e| self.perr(e))?;
        let reply = self.read(1).await?;
        match reply.payload().first() {
            Some(0x00) => Ok(Ok(())),
            Some(0xff) => Ok(Err(Bytes::copy_from_slice(reply.payload()))),
            _ => Err(self.perr(ProtocolError::Unexpected("reply to a proxy command"))),
        }
    }

    /// Switches the current database; ERR (e.g. 1049) comes back for the client.
    pub async fn init_db(&mut self, schema: &str) -> Result<Result<(), Bytes>, BackendError> {
        let r = self.simple_command(com::INIT_DB, schema.as_bytes()).await?;
        if r.is_ok() {
            self.schema = Schema::Known(Some(schema.to_string()));
        }
        Ok(r)
    }

    /// The proxy's own session tracking, sent after login and after every reset:
    /// `session_track_state_change` (the server flags any change of session state, whatever
    /// statement made it: stored code, triggers, prepared `SET`s) and each commit's GTID in its
    /// OK packet: on MariaDB `last_gtid` among the tracked variables, on MySQL
    /// `session_track_gtids = OWN_GTID`.
    fn tracking_command(&self) -> Vec<u8> {
        let mut p = vec![com::QUERY];
        if self.mariadb {
            p.extend_from_slice(
                b"SET SESSION session_track_system_variables = CONCAT(@@session_track_system_variables, ',last_gtid'), \
                  session_track_state_change = ON",
            );
        } else {
            p.extend_from_slice(
                b"SET SESSION session_track_gtids = OWN_GTID, session_track_state_change = ON",
            );
        }
        p
    }

    fn wants_tracking(&self) -> bool {
        self.capabilities & caps::SESSION_TRACK != 0
    }

    /// Reads the reply to `tracking_command` (which was sent only if `wants_tracking`).
    async fn finish_tracking(&mut self) -> Result<(), BackendError> {
        self.tracks_gtid = false;
        self.tracks_state = false;
        if !self.wants_tracking() {
            return Ok(());
        }
        let reply = self.read(1).await?;
        let ok = reply.payload().first() == Some(&0x00);
        self.tracks_gtid = ok;
        self.tracks_state = ok;
        Ok(())
    }

    /// Restores a just-opened session state (variables, temporary tables, transaction, locks,
    /// handlers, prepared statements, warnings) and the proxy's tracking, in one round trip:
    /// `COM_RESET_CONNECTION` and the tracking `SET` are sent together. MariaDB keeps the
    /// current schema and the multi-statement option across a reset.
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        let mut out = Vec::with_capacity(160);
        crate::protocol::packet::encode(&mut out, 0, &[com::RESET_CONNECTION]);
        if self.wants_tracking() {
            crate::protocol::packet::encode(&mut out, 0, &self.tracking_command());
        }
        self.stream.write_raw(&out).await.map_err(|e| self.perr(e))?;
        let reply = self.read(1).await?;
        if let Some((code, message)) = parse_err(reply.payload()) {
            return Err(BackendError::Rejected { addr: self.addr.clone(), code, message });
        }
        self.finish_tracking().await?;
        self.residue = KindSet::default();
        self.outcome.diagnostics = 0; // FOUND_ROWS() and ROW_COUNT() survive a reset
        self.applied = SessionVars::with_collation(self.collation);
        self.prepared.clear();
        if !self.mariadb {
            self.schema = Schema::Unknown;
        }
        Ok(())
    }

    /// Runs a statement whose reply is OK or ERR (the proxy's state-sync `SET`).
    pub async fn query_ok(&mut self, sql: &str) -> Result<Result<(), Bytes>, BackendError> {
        self.simple_command(com::QUERY, sql.as_bytes()).await
    }

    /// COM_SET_OPTION: multi-statements on (0) or off (1). The reply is EOF, OK or ERR.
    pub async fn set_multi_statements(&mut self, on: bool) -> Result<Result<(), Bytes>, BackendError> {
        let opt: u16 = if on { 0 } else { 1 };
        self.stream
            .write_packet(0, &[&[com::SET_OPTION][..], &opt.to_le_bytes()].concat())
            .await
            .map_err(|e| self.perr(e))?;
        let reply = self.read(1).await?;
        match reply.payload().first() {
            Some(0x00 | 0xfe) => {
                self.multi_statements = on;
                Ok(Ok(()))
            }
            Some(0xff) => Ok(Err(Bytes::copy_from_slice(reply.payload()))),
            _ => Err(self.perr(ProtocolError::Unexpected("reply to COM_SET_OPTION"))),
        }
    }

    pub fn stream(&mut self) -> &mut PacketStream<tls::BackendStream> {
        &mut self.stream
    }

    /// Whether an idle connection was closed by the server (its `wait_timeout`, a `KILL`, a
    /// restart) or sent something unasked (MySQL's timeout error): a non-blocking peek, no
    /// round trip. Such a connection is discarded before anything is sent on it.
    pub fn closed_by_peer(&mut self) -> bool {
        if !self.stream.buffered().is_empty() {
            return true;
        }
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        let Some(tcp) = self.stream.get_ref().tcp() else { return true };
        match socket2::SockRef::from(tcp).peek(&mut probe) {
            Ok(_) => true, // 0: EOF; more: bytes nobody asked for
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

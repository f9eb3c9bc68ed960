//! One real MySQL connection to a backend: connect, authenticate, reset, run proxy commands.

mod connector;
mod query;
pub mod state;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::protocol::auth::{self, NATIVE_PLUGIN, Stage1};
use crate::protocol::handshake::{HandshakeResponse, HandshakeV10, parse_auth_switch};
use crate::protocol::reply::HEAD_LEN;
use crate::protocol::reply::parse_err;
use crate::protocol::{MAX_PAYLOAD, PacketStream, ProtocolError, ReplyKind, ReplyTracker, Step, caps, com};

pub use connector::{BackendConnector, ConnKey, Credentials, VersionInfo};
pub use query::Rows;
pub use state::{BackendStmt, PreparedCache, SessionVars};

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
    stream: PacketStream<TcpStream>,
    pub addr: String,
    pub greeting: HandshakeV10,
    /// Capabilities in force on this connection.
    pub capabilities: u32,
    pub schema: Schema,
    pub created: Instant,
    /// Set when the connection's state can no longer be restored by a reset.
    pub tainted: bool,
    /// Holds state the proxy cannot replay (user variables, temporary tables, locks …):
    /// reset before anyone else uses it.
    pub dirty: bool,
    /// Session state applied on this connection.
    pub applied: SessionVars,
    /// Multi-statement mode currently on (handshake flag, then COM_SET_OPTION).
    pub multi_statements: bool,
    pub prepared: PreparedCache,
    /// True for MariaDB servers (variable spellings differ from MySQL 8).
    pub mariadb: bool,
    /// OK packets on this connection report `last_gtid` (session tracking).
    pub tracks_gtid: bool,
}

impl BackendConn {
    pub async fn connect(
        addr: &str,
        username: &str,
        secret: &Credentials,
        capabilities: u32,
        collation: u8,
        max_packet: usize,
    ) -> Result<BackendConn, BackendError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| BackendError::Connect { addr: addr.to_string(), source })?;
        // Latency matters more than packet count for a proxy; failure here is harmless.
        let _nodelay = tcp.set_nodelay(true);
        let mut stream = PacketStream::new(tcp, max_packet.max(64 << 20));
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
        let response = HandshakeResponse {
            capabilities,
            max_packet: 1 << 30,
            collation,
            username: username.as_bytes().to_vec(),
            auth_response: secret.scramble(&greeting.salt),
            database: None,
            auth_plugin: Some(NATIVE_PLUGIN.as_bytes().to_vec()),
        };
        stream.write_packet(1, &response.encode()).await.map_err(perr)?;
        let mut conn = BackendConn {
            stream,
            addr: addr.to_string(),
            greeting,
            capabilities,
            schema: Schema::Known(None),
            created: Instant::now(),
            tainted: false,
            dirty: false,
            applied: SessionVars::default(),
            multi_statements: capabilities & caps::MULTI_STATEMENTS != 0,
            prepared: PreparedCache::default(),
            mariadb: false,
            tracks_gtid: false,
        };
        conn.mariadb = conn.greeting.server_version.windows(7).any(|w| w == b"MariaDB");
        conn.finish_auth(secret).await?;
        conn.enable_gtid_tracking().await?;
        Ok(conn)
    }

    async fn finish_auth(&mut self, secret: &Credentials) -> Result<(), BackendError> {
        let reply = self.read(2).await?;
        match reply.payload().first() {
            Some(0x00) => Ok(()),
            Some(0xfe) => {
                let (plugin, salt) = parse_auth_switch(reply.payload()).map_err(|e| self.perr(e))?;
                if plugin != NATIVE_PLUGIN.as_bytes() {
                    return Err(self.unsupported(&plugin));
                }
                self.stream.write_packet(3, &secret.scramble(&salt)).await.map_err(|e| self.perr(e))?;
                let reply = self.read(4).await?;
                self.expect_ok(reply.payload())
            }
            Some(0x01) => Err(self.unsupported(b"caching_sha2_password (full authentication)")),
            _ => self.expect_ok(reply.payload()),
        }
    }

    fn unsupported(&self, plugin: &[u8]) -> BackendError {
        BackendError::Unsupported {
            addr: self.addr.clone(),
            what: format!(
                "server asks for auth plugin {:?}; rwproxy logs in to backends with mysql_native_password",
                String::from_utf8_lossy(plugin)
            ),
        }
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

    /// Adds `last_gtid` to the tracked session variables (MariaDB with session tracking), so
    /// every commit's GTID arrives in its OK packet at no extra cost.
    pub async fn enable_gtid_tracking(&mut self) -> Result<(), BackendError> {
        self.tracks_gtid = false;
        if !self.mariadb || self.capabilities & caps::SESSION_TRACK == 0 {
            return Ok(());
        }
        let sql = "SET SESSION session_track_system_variables = CONCAT(@@session_track_system_variables, ',last_gtid')";
        self.tracks_gtid = self.query_ok(sql).await?.is_ok();
        Ok(())
    }

    /// Restores a just-opened session state (variables, temp tables, transaction, locks,
    /// prepared statements); the current schema is then unknown.
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        match self.simple_command(com::RESET_CONNECTION, &[]).await? {
            Ok(()) => {
                self.dirty = false;
                self.applied = SessionVars::default();
                self.prepared.clear();
                // No schema stays no schema; otherwise the server may keep or drop it.
                if self.schema != Schema::Known(None) {
                    self.schema = Schema::Unknown;
                }
                self.enable_gtid_tracking().await
            }
            Err(err) => {
                let (code, message) = parse_err(&err).unwrap_or((0, String::new()));
                Err(BackendError::Rejected { addr: self.addr.clone(), code, message })
            }
        }
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

    /// The backend id of `sql` prepared on this connection, preparing it now if needed.
    /// ERR from the server comes back as its payload for the client.
    pub async fn prepare_cached(&mut self, sql: &[u8]) -> Result<Result<u32, Bytes>, BackendError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(Ok(s.id));
        }
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(com::STMT_PREPARE);
        payload.extend_from_slice(sql);
        self.stream.write_packet(0, &payload).await.map_err(|e| self.perr(e))?;
        let deprecate_eof = self.capabilities & caps::DEPRECATE_EOF != 0;
        let mut tracker = ReplyTracker::new(ReplyKind::Prepare, deprecate_eof, false);
        let mut reply = Vec::new();
        loop {
            let p = self.stream.read_packet(None).await.map_err(|e| self.perr(e))?;
            let p =
                p.ok_or_else(|| self.perr(ProtocolError::Truncated("prepare reply (connection closed)")))?;
            let payload = p.payload();
            let step =
                tracker.on_frame(payload.len().min(MAX_PAYLOAD - 1), &payload[..payload.len().min(HEAD_LEN)]);
            let step = step.map_err(|e| self.perr(e))?;
            reply.push(payload.to_vec());
            if let Step::Done(end) = step {
                if end.error.is_some() {
                    return Ok(Err(Bytes::from(reply.swap_remove(0))));
                }
                break;
            }
        }
        let id = reply[0].get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let id = id.ok_or_else(|| self.perr(ProtocolError::Truncated("statement id")))?;
        let evicted = self.prepared.insert(sql.to_vec(), BackendStmt { id, reply, types: None });
        if let Some(old) = evicted {
            // COM_STMT_CLOSE has no reply.
            let close = [&[com::STMT_CLOSE][..], &old.to_le_bytes()].concat();
            self.stream.write_packet(0, &close).await.map_err(|e| self.perr(e))?;
        }
        Ok(Ok(id))
    }

    pub fn stream(&mut self) -> &mut PacketStream<TcpStream> {
        &mut self.stream
    }
}

impl Credentials {
    /// The native-password reply to `salt`.
    pub fn scramble(&self, salt: &[u8]) -> Vec<u8> {
        match self {
            Credentials::Password(p) => auth::scramble(salt, p.as_bytes()),
            Credentials::Stage1(s) => auth::scramble_stage1(salt, s).to_vec(),
        }
    }

    pub fn from_stage1(s: Stage1) -> Self {
        Credentials::Stage1(s)
    }
}

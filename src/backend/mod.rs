//! One real MySQL connection to a backend: connect, authenticate, reset, run proxy commands.

mod connector;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::protocol::auth::{self, NATIVE_PLUGIN, Stage1};
use crate::protocol::handshake::{HandshakeResponse, HandshakeV10, parse_auth_switch};
use crate::protocol::reply::parse_err;
use crate::protocol::{PacketStream, ProtocolError, caps, com};

pub use connector::{BackendConnector, ConnKey, Credentials, VersionInfo};

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
        let capabilities = (capabilities | caps::BACKEND_BASE) & greeting.capabilities;
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
        };
        conn.finish_auth(secret).await?;
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

    /// Restores a just-opened session state (variables, temp tables, transaction, locks).
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        match self.simple_command(com::RESET_CONNECTION, &[]).await? {
            Ok(()) => Ok(()),
            Err(err) => {
                let (code, message) = parse_err(&err).unwrap_or((0, String::new()));
                Err(BackendError::Rejected { addr: self.addr.clone(), code, message })
            }
        }
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

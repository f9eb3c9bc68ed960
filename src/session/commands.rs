//! Per-command handling: forward and relay, or answer locally (ping, change user, unknown).

use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::{RelayError, relay_reply};
use super::sync::Unavailable;
use super::{Session, SessionError, auth};
use crate::backend::Schema;
use crate::protocol::auth::{NATIVE_PLUGIN, new_salt};
use crate::protocol::handshake::{ChangeUser, auth_switch_request};
use crate::protocol::{ClientCommand, Packet, ReplyEnd, ReplyTracker, caps, errcode, status};
use crate::routing::{self, SessionFacts};

/// Error for a backend lost before the client saw any byte of the reply.
const LOST_BACKEND: (u16, &str) = (2013, "HY000");

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn command(
        &mut self,
        cmd: ClientCommand<'_>,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        match cmd {
            ClientCommand::Ping if self.backend.is_none() => self.send_ok(1).await,
            ClientCommand::ResetConnection if self.backend.is_none() => {
                self.status = status::AUTOCOMMIT;
                self.send_ok(1).await
            }
            ClientCommand::ChangeUser(body) => self.change_user(body).await,
            ClientCommand::Unsupported(code) => {
                let msg = format!("Unknown command {code:#04x}");
                self.send_err(1, errcode::UNKNOWN_COMMAND, &msg).await
            }
            _ => self.forward(cmd, packet).await,
        }
    }

    /// Sends the command to a backend and streams its reply back.
    async fn forward(&mut self, cmd: ClientCommand<'_>, packet: &Packet) -> Result<(), SessionError> {
        let sql = match cmd {
            ClientCommand::Query(sql) | ClientCommand::StmtPrepare(sql) => sql,
            _ => &[],
        };
        let facts = SessionFacts { default_hostgroup: self.login.user.default_hostgroup };
        let route = routing::route(sql, &facts);
        let deprecate_eof = self.login.capabilities & caps::DEPRECATE_EOF != 0;
        if let Err(Unavailable(payload)) = self.acquire(route.hostgroup).await {
            self.client.write_packet(packet.last_seq.wrapping_add(1), &payload).await?;
            return Ok(());
        }
        let Some(backend) = self.backend.as_mut() else { return Err(SessionError::Refused("no backend")) };
        if let Err(e) = backend.conn().stream().write_raw(packet.raw()).await {
            let msg = format!("rwproxy: lost connection to backend {}: {e}", backend.server().address);
            self.discard_backend();
            return self.send_err(packet.last_seq.wrapping_add(1), LOST_BACKEND, &msg).await;
        }
        let Some(kind) = cmd.reply_kind() else { return Ok(()) };
        let tracker = ReplyTracker::new(kind, deprecate_eof, cmd.is_binary());
        let result = relay_reply(backend.conn().stream(), &mut self.client, tracker).await;
        match result {
            Ok(end) => {
                self.after_reply(cmd, end);
                Ok(())
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
                self.send_err(packet.last_seq.wrapping_add(1), LOST_BACKEND, &msg).await
            }
        }
    }

    /// Updates session state from a finished reply.
    fn after_reply(&mut self, cmd: ClientCommand<'_>, end: ReplyEnd) {
        if let Some(st) = end.status {
            self.status = st;
        }
        let ok = end.error.is_none();
        match cmd {
            ClientCommand::InitDb(db) if ok => {
                let db = String::from_utf8_lossy(db).into_owned();
                if let Some(b) = self.backend.as_mut() {
                    b.conn().schema = Schema::Known(Some(db.clone()));
                }
                self.login.database = Some(db);
            }
            ClientCommand::SetOption(_) => {
                // Multi-statement mode now differs from the connection's handshake flags.
                if let Some(b) = self.backend.as_mut() {
                    b.conn().tainted = true;
                }
            }
            _ => {}
        }
    }

    /// COM_CHANGE_USER: verified against the config, never faked; on success the session
    /// starts over as the new user on a clean backend connection.
    async fn change_user(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let req = ChangeUser::decode(body, self.login.capabilities)?;
        let native = req.auth_plugin.as_deref().is_none_or(|p| p == NATIVE_PLUGIN.as_bytes());
        let plain = req.auth_response.is_empty() || req.auth_response.len() == 20;
        let (reply, seq) = if native && plain {
            (req.auth_response.clone(), 1)
        } else {
            self.salt = new_salt();
            self.client.write_packet(1, &auth_switch_request(NATIVE_PLUGIN, &self.salt)).await?;
            let p = self.client.read_packet(Some(2)).await?.ok_or(SessionError::ClientGone)?;
            (p.payload().to_vec(), 3)
        };
        let username = String::from_utf8_lossy(&req.username).into_owned();
        let Some(user) = auth::verify(&self.ctx, &username, &self.salt, &reply) else {
            let using = if reply.is_empty() { "NO" } else { "YES" };
            let msg =
                format!("Access denied for user '{username}'@'{}' (using password: {using})", self.peer.ip());
            tracing::info!(id = self.id, "change user to {username:?} refused");
            return self.send_err(seq, errcode::ACCESS_DENIED, &msg).await;
        };
        let ctx = self.ctx.clone();
        if !ctx.limits.set_user(&mut self._slot, &user.username, user.max_connections) {
            let msg = format!("Too many connections for user '{}'", user.username);
            return self.send_err(seq, errcode::TOO_MANY_CONNECTIONS, &msg).await;
        }
        self.release_backend();
        self.login.database = req
            .database
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .or_else(|| user.default_schema.clone());
        if let Some(c) = req.collation {
            self.login.collation = c as u8;
        }
        self.login.user = user;
        self.status = status::AUTOCOMMIT;
        if self.login.database.is_some() {
            let hostgroup = self.login.user.default_hostgroup;
            if let Err(Unavailable(payload)) = self.acquire(hostgroup).await {
                self.client.write_packet(seq, &payload).await?;
                return Ok(());
            }
        }
        self.send_ok(seq).await
    }
}

//! COM_CHANGE_USER: verified against the config, never faked; on success the session starts
//! over as the new user (clean state, no pins, no prepared statements).

use tokio::io::{AsyncRead, AsyncWrite};

use super::sync::Unavailable;
use super::{Session, SessionError, auth};
use crate::backend::SessionVars;
use crate::protocol::auth::{NATIVE_PLUGIN, new_salt};
use crate::protocol::handshake::{ChangeUser, auth_switch_request};
use crate::protocol::{caps, errcode, status};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn change_user(&mut self, body: &[u8]) -> Result<(), SessionError> {
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
        if !ctx.limits.set_user(&mut self.slot, &user.username, user.max_connections) {
            let msg = format!("Too many connections for user '{}'", user.username);
            return self.send_err(seq, errcode::TOO_MANY_CONNECTIONS, &msg).await;
        }
        self.pins.clear();
        if let Some(b) = self.backend.as_mut() {
            b.conn().dirty = true;
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
        self.vars = SessionVars::default();
        self.stmts.clear();
        self.multi_statements = self.login.capabilities & caps::MULTI_STATEMENTS != 0;
        self.status = status::AUTOCOMMIT;
        if self.login.database.is_some() {
            let route = self.schema_check_route();
            if let Err(Unavailable(payload)) = self.acquire(&route, false).await {
                self.client.write_packet(seq, &payload).await?;
                return Ok(());
            }
            self.release_backend();
        }
        self.send_ok(seq).await
    }
}

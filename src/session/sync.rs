//! The session's link to a backend: checkout for a route, bring the connection to the
//! session's state (schema), hand it back.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Backend, Session, SessionError};
use crate::backend::{ConnKey, Schema};
use crate::protocol::reply::err_packet;
use crate::protocol::{caps, errcode};

/// Why no backend could be had; carries the ERR payload to send the client.
pub struct Unavailable(pub Bytes);

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn conn_key(&self) -> ConnKey {
        ConnKey {
            user: self.login.user.username.as_str().into(),
            capabilities: self.login.capabilities & caps::BEHAVIOUR,
            collation: self.login.collation,
        }
    }

    /// The backend for `hostgroup`, checked out and synced if the session holds none.
    pub(super) async fn acquire(&mut self, hostgroup: u32) -> Result<(), Unavailable> {
        let held = self.backend.as_ref().is_some_and(|b| b.server().hostgroup == hostgroup);
        if !held {
            self.release_backend();
            let want = self.login.database.clone();
            let accept = move |c: &crate::backend::BackendConn| match &want {
                Some(_) => true,
                None => c.schema == Schema::Known(None),
            };
            let key = self.conn_key();
            let mut pooled = self.ctx.pools.checkout(hostgroup, &key, &accept).await.map_err(|e| {
                tracing::warn!(id = self.id, hostgroup, "checkout failed: {e}");
                let (code, state) = errcode::PROXY_BACKEND;
                Unavailable(err_packet(code, state, &format!("rwproxy: {e}")).into())
            })?;
            self.sync_state(&mut pooled).await?;
            self.backend = Some(pooled);
        }
        Ok(())
    }

    /// Brings a freshly checked-out connection to the session's schema.
    async fn sync_state(&self, pooled: &mut Backend) -> Result<(), Unavailable> {
        let Some(db) = &self.login.database else { return Ok(()) };
        if pooled.conn().schema == Schema::Known(Some(db.clone())) {
            return Ok(());
        }
        match pooled.conn().init_db(db).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err_payload)) => Err(Unavailable(err_payload)),
            Err(e) => {
                let (code, state) = errcode::PROXY_BACKEND;
                Err(Unavailable(err_packet(code, state, &format!("rwproxy: {e}")).into()))
            }
        }
    }

    /// Gives the held backend back to its pool, reset off the request path.
    pub(super) fn release_backend(&mut self) {
        if let Some(b) = self.backend.take() {
            self.ctx.pools.checkin_dirty(b);
        }
    }

    /// Drops the held backend without reuse (its stream is broken or mid-reply).
    pub(super) fn discard_backend(&mut self) {
        self.backend = None;
    }

    /// Ends the login: validates the initial schema on a backend, then sends OK.
    pub(super) async fn finish_login(&mut self, seq: u8) -> Result<(), SessionError> {
        if self.login.database.is_some() {
            let hostgroup = self.login.user.default_hostgroup;
            if let Err(Unavailable(payload)) = self.acquire(hostgroup).await {
                self.client.write_packet(seq, &payload).await?;
                return Err(SessionError::Refused("initial schema or backend unavailable"));
            }
        }
        self.send_ok(seq).await
    }
}

//! COM_CHANGE_USER and COM_RESET_CONNECTION: the session starts over with clean state. The
//! connection it held goes back through the state model (reset or closed); nothing is faked:
//! a new user is verified against the config.

use tokio::io::{AsyncRead, AsyncWrite};

use super::sync::Unavailable;
use super::{Session, SessionError, auth};
use crate::backend::SessionVars;
use crate::config::Secret;
use crate::protocol::auth::new_salt;
use crate::protocol::handshake::ChangeUser;
use crate::protocol::{Packet, caps, errcode, status};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Forgets every piece of session state, as a fresh connection would have it, with
    /// `collation` as the handshake collation. The held backend is cleaned off the request
    /// path (a reset rolls back an open transaction).
    fn start_over(&mut self, collation: u8) {
        self.release_backend();
        self.pins.clear();
        self.publish_pins();
        self.login.collation = collation;
        self.vars = SessionVars::with_collation(collation);
        self.stmts.clear();
        self.multi_statements = self.login.capabilities & caps::MULTI_STATEMENTS != 0;
        self.status = status::AUTOCOMMIT;
        self.client_keeps = Default::default();
        self.idle_timeout = None;
        self.pool_key = self.conn_key();
    }

    /// COM_RESET_CONNECTION: the session's state is dropped and its connection reset (or
    /// closed) on the way back to the pool; the next statement gets a clean one.
    pub(super) async fn reset_connection(&mut self, _packet: &Packet) -> Result<(), SessionError> {
        self.start_over(self.login.collation);
        self.send_ok(1).await
    }

    /// Like MariaDB, the proxy always answers with an AuthSwitchRequest (here with a fresh
    /// scramble, so a captured reply cannot be replayed), and resets the session before it
    /// checks the password: a failed change of user leaves the old user and schema in place,
    /// with variables, transaction and temporary tables gone.
    pub(super) async fn change_user(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let req = ChangeUser::decode(body, self.login.capabilities)?;
        self.salt = new_salt();
        let username = String::from_utf8_lossy(&req.username).into_owned();
        let tls = self.login.tls;
        let fits = auth::names_fit(&req.username, req.database.as_deref());
        let ctx = self.ctx.clone();
        let sha2 = ctx.config().user(&req.username).is_some_and(|u| matches!(u.secret, Secret::Sha2(_)));
        let salt = self.salt;
        let check = |proof: auth::Proof<'_>| auth::verify(&ctx, &username, &salt, proof);
        let (verdict, seq, given) =
            auth::change_user_proof(&mut self.client, &ctx, (&salt, tls, fits, sha2), check)
                .await
                .map_err(SessionError::from)?;
        self.start_over(req.collation.map_or(self.login.collation, |c| c as u8));
        let verified = match verdict {
            auth::Verdict::Valid(u) if tls || !u.require_tls => Some(u),
            _ => None,
        };
        let Some(user) = verified else {
            let username = auth::shorten(&username);
            let using = if given { "YES" } else { "NO" };
            let msg =
                format!("Access denied for user '{username}'@'{}' (using password: {using})", self.peer.ip());
            auth::refusal_pause(&self.ctx, self.peer, &username).await;
            return self.send_err(seq, errcode::ACCESS_DENIED, &msg).await;
        };
        if !ctx.limits.set_user(&mut self.slot, &user.username, user.max_connections) {
            let msg = format!("Too many connections for user '{}'", user.username);
            return self.send_err(seq, errcode::TOO_MANY_CONNECTIONS, &msg).await;
        }
        self.login.database = req
            .database
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .or_else(|| user.default_schema.clone());
        self.login.user = user;
        self.pool_key = self.conn_key();
        self.handle.set_user(&self.login.user.username);
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

//! The connection phase shared by the data port and the SQL admin: greeting, capability
//! negotiation, the switch to `mysql_native_password`, and refusals (throttled per client
//! address, names shortened in messages and logs). Who may log in is the caller's `check`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Context;
use crate::config::UserConfig;
use crate::protocol::auth::NATIVE_PLUGIN;
use crate::protocol::handshake::{HandshakeResponse, HandshakeV10, auth_switch_request};
use crate::protocol::reply::err_packet;
use crate::protocol::{PacketStream, ProtocolError, caps, errcode};
use crate::tls::StartTls;

/// Why a login ended without a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("client protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("client closed the connection")]
    ClientGone,
    #[error("access denied for user {0:?}")]
    AccessDenied(String),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

/// A client that proved who it is (`U`: what the check returned for it).
#[derive(Debug, Clone)]
pub struct Login<U = UserConfig> {
    pub user: U,
    pub database: Option<String>,
    pub capabilities: u32,
    /// MariaDB extended capabilities both sides announced (`mariadb_caps`).
    pub mariadb_caps: u32,
    pub collation: u8,
    /// Sequence id for the proxy's reply (OK or ERR) to the login.
    pub next_seq: u8,
    /// The connection was upgraded to TLS.
    pub tls: bool,
}

/// The connection phase with `check(user, salt, reply, tls)` deciding who may log in (the SQL
/// admin's login shares it): the in-band TLS upgrade after an `SSLRequest` when the greeting
/// offered it, the auth switch to native password, refusals throttled.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + StartTls, U>(
    stream: &mut PacketStream<S>,
    ctx: &Context,
    greeting: &HandshakeV10,
    peer: std::net::SocketAddr,
    check: impl FnOnce(&str, &[u8], &[u8], bool) -> Option<U>,
) -> Result<Login<U>, LoginError> {
    stream.write_packet(0, &greeting.encode()).await?;
    let mut packet = stream.read_packet(Some(1)).await?.ok_or(LoginError::ClientGone)?;
    let mut seq = 1u8;
    if HandshakeResponse::is_ssl_request(packet.payload()) {
        let acceptor = if greeting.capabilities & caps::SSL != 0 { ctx.tls.load_full() } else { None };
        let Some(acceptor) = acceptor else {
            let (code, state) = errcode::HANDSHAKE;
            let msg = "rwproxy: SSL is not configured on this listener (tls.cert_file); connect without TLS";
            stream.write_packet(2, &err_packet(code, state, msg)).await?;
            return Err(LoginError::Refused("client asked for TLS"));
        };
        // The ClientHello may already sit in the read buffer, behind the SSLRequest.
        let buffered = stream.buffered().split();
        stream
            .stream_mut()
            .start_tls(buffered, &acceptor)
            .await
            .map_err(|e| LoginError::Tls(e.to_string()))?;
        packet = stream.read_packet(Some(2)).await?.ok_or(LoginError::ClientGone)?;
        seq = 2;
    }
    let tls = stream.get_ref().is_secure();
    let resp = HandshakeResponse::decode(packet.payload())?;
    let capabilities = resp.capabilities & greeting.capabilities;
    let mariadb_caps = resp.mariadb_caps & greeting.mariadb_caps;
    let wants_switch = resp.auth_plugin.as_deref().is_some_and(|p| p != NATIVE_PLUGIN.as_bytes())
        || !(resp.auth_response.is_empty() || resp.auth_response.len() == 20);
    let (auth_response, next_seq) = if wants_switch && capabilities & caps::PLUGIN_AUTH != 0 {
        stream.write_packet(seq + 1, &auth_switch_request(NATIVE_PLUGIN, &greeting.salt)).await?;
        let p = stream.read_packet(Some(seq + 2)).await?.ok_or(LoginError::ClientGone)?;
        (p.payload().to_vec(), seq + 3)
    } else {
        (resp.auth_response.clone(), seq + 1)
    };
    let username = String::from_utf8_lossy(&resp.username).into_owned();
    let user = names_fit(&resp.username, resp.database.as_deref())
        .then(|| check(&username, &greeting.salt, &auth_response, tls))
        .flatten();
    let Some(user) = user else {
        let (code, state) = errcode::ACCESS_DENIED;
        let using = if auth_response.is_empty() { "NO" } else { "YES" };
        let shown = shorten(&username);
        let msg = format!("Access denied for user '{shown}'@'{}' (using password: {using})", peer.ip());
        refusal_pause(ctx, peer, &shown).await;
        stream.write_packet(next_seq, &err_packet(code, state, &msg)).await?;
        return Err(LoginError::AccessDenied(shown));
    };
    let database =
        resp.database.as_ref().filter(|d| !d.is_empty()).map(|d| String::from_utf8_lossy(d).into_owned());
    Ok(Login { user, database, capabilities, mariadb_caps, collation: resp.collation, next_seq, tls })
}

/// Longest user name accepted (MariaDB: 128 characters, up to 4 bytes each).
const MAX_USER_BYTES: usize = 512;
/// Longest schema name accepted (64 characters, up to 4 bytes each).
const MAX_SCHEMA_BYTES: usize = 256;
/// Names in error messages and logs are cut to this many characters.
const SHOWN_CHARS: usize = 64;

/// Before a refusal: the throttle's pause for this address (growing with its failures), and
/// a log line for the first failures and then at powers of two.
pub async fn refusal_pause(ctx: &Context, peer: std::net::SocketAddr, shown_user: &str) {
    let (wait, log) = ctx.throttle.failed(peer.ip(), std::time::Instant::now());
    if log {
        let failures = ctx.throttle.count(peer.ip());
        tracing::info!(%peer, user = shown_user, failures, "login refused: wrong user or password");
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Whether a login's user and schema names are within what a server accepts (longer ones
/// are refused like a wrong password, before any lookup).
pub fn names_fit(user: &[u8], schema: Option<&[u8]>) -> bool {
    user.len() <= MAX_USER_BYTES && schema.is_none_or(|d| d.len() <= MAX_SCHEMA_BYTES)
}

/// A client-chosen name as it may appear in a message or a log line: at most `SHOWN_CHARS`
/// characters, control characters escaped.
pub fn shorten(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().take(SHOWN_CHARS) {
        if c.is_control() { out.extend(c.escape_default()) } else { out.push(c) }
    }
    if name.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

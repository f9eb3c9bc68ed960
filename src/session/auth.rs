//! Client handshake: greeting, capability negotiation, auth switch and password verification.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Context, SessionError};
use crate::config::UserConfig;
use crate::protocol::handshake::HandshakeV10;
use crate::protocol::{PacketStream, caps, mariadb_caps, status};
pub use crate::shared::login::{
    Login, Proof, Verdict, authenticate, change_user_proof, check_secret, names_fit, refusal_pause, shorten,
};

pub fn greeting(ctx: &Context, connection_id: u32, salt: &[u8]) -> HandshakeV10 {
    let cfg = ctx.config();
    let version = ctx.pools().connector().version();
    let server_version = match (&cfg.proxy.server_version, &version) {
        (Some(v), _) => v.as_bytes().to_vec(),
        (None, Some(v)) => v.server_version.clone(),
        (None, None) => cfg.proxy.fallback_server_version.as_bytes().to_vec(),
    };
    let backend_caps = version.as_ref().map_or(u32::MAX, |v| v.capabilities);
    let mut capabilities = caps::SUPPORTED & (backend_caps | caps::PLUGIN_AUTH | caps::SECURE_CONNECTION);
    if ctx.tls.load().is_some() {
        capabilities |= caps::SSL;
    }
    if cfg.proxy.compression {
        capabilities |= caps::COMPRESS;
    }
    // MariaDB's extensions only when the backends speak them (and so leave CLIENT_MYSQL unset).
    let mariadb_caps = match &version {
        Some(v) if capabilities & caps::LONG_PASSWORD == 0 => v.mariadb_caps & mariadb_caps::SUPPORTED,
        _ => 0,
    };
    HandshakeV10 {
        server_version,
        connection_id,
        salt: salt.to_vec(),
        capabilities,
        collation: version.as_ref().map_or(45, |v| v.collation),
        status: status::AUTOCOMMIT,
        auth_plugin: cfg.proxy.default_auth_plugin.as_bytes().to_vec(),
        mariadb_caps,
    }
}

/// Runs the connection phase up to (not including) the final OK.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin + crate::tls::StartTls>(
    stream: &mut PacketStream<S>,
    ctx: &Context,
    greeting: &HandshakeV10,
    peer: std::net::SocketAddr,
) -> Result<Login, SessionError> {
    // A user who must use TLS is refused without it, as MariaDB refuses a `REQUIRE SSL` user.
    let check = |name: &str, salt: &[u8], proof: Proof<'_>, tls: bool| match verify(ctx, name, salt, proof) {
        Verdict::Valid(u) if !tls && u.require_tls => Verdict::Wrong,
        v => v,
    };
    let mut login = authenticate(stream, ctx, greeting, peer, check).await.map_err(SessionError::from)?;
    if login.database.is_none() {
        login.database.clone_from(&login.user.default_schema);
    }
    Ok(login)
}

/// Checks a client's proof against the configured user; learns SHA1(password) for users
/// configured by hash so the proxy can log in to backends as them.
pub fn verify(ctx: &Context, username: &str, salt: &[u8], proof: Proof<'_>) -> Verdict<UserConfig> {
    let cfg = ctx.config();
    let Some(user) = cfg.user(username.as_bytes()) else { return Verdict::Wrong };
    match check_secret(&user.secret, salt, proof) {
        Verdict::Valid(learned) => {
            if let Some(creds) = learned {
                ctx.pools().connector().learn(username, creds);
            }
            Verdict::Valid(user.clone())
        }
        Verdict::Wrong => Verdict::Wrong,
        Verdict::Unverifiable => Verdict::Unverifiable,
        Verdict::FullAuthOnly => Verdict::FullAuthOnly,
    }
}

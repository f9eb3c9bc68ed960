//! The connection phase shared by the data port and the SQL admin: greeting, capability
//! negotiation, the switch to `mysql_native_password`, and refusals (throttled per client
//! address, names shortened in messages and logs). Who may log in is the caller's `check`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Context;
use crate::backend::Credentials;
use crate::config::{Secret, UserConfig};
use crate::protocol::auth::{self, NATIVE_PLUGIN, SHA2_FAST_AUTH_OK, SHA2_FULL_AUTH, SHA2_PLUGIN};
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

/// What a client offered as proof that it knows the password of the salt's greeting.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// A `mysql_native_password` scramble.
    Native(&'a [u8]),
    /// A `caching_sha2_password` scramble (fast authentication).
    Sha2(&'a [u8]),
    /// The password itself (`caching_sha2_password`'s full authentication: over TLS, or
    /// decrypted from the RSA exchange).
    Clear(&'a [u8]),
}

/// What a check made of a proof.
#[derive(Debug)]
pub enum Verdict<U> {
    Valid(U),
    Wrong,
    /// The proof cannot be checked against what is configured (a `caching_sha2_password`
    /// scramble for a user known only by a native hash): ask for another kind.
    Unverifiable,
    /// Only caching_sha2's full authentication can check it (a user known by a caching_sha2
    /// hash, nothing cached yet): no native proof ever will.
    FullAuthOnly,
}

/// Runs milliseconds of CPU a client can ask for before it has logged in (SHA-256 crypt's
/// 5000 rounds, an RSA decryption) without holding up the sessions of its runtime worker: on
/// a multi-threaded runtime the worker hands its other tasks on first (`block_in_place`).
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// What a password the client sent lets the proxy log in to backends with: the password
/// itself (any backend plugin, caching_sha2's full authentication included), or SHA1 of it
/// when it is not UTF-8 (native password only).
fn learned(given: &[u8]) -> Credentials {
    match std::str::from_utf8(given) {
        Ok(p) => Credentials::Password(p.to_string()),
        Err(_) => Credentials::Stage1(auth::stage1(given)),
    }
}

/// Checks a proof against a configured secret; `Valid` carries what a hash-only user's proof
/// revealed (SHA1(password) from a native scramble, the password from a full
/// authentication), which lets the proxy log in to backends as it.
pub fn check_secret(secret: &Secret, salt: &[u8], proof: Proof<'_>) -> Verdict<Option<Credentials>> {
    let valid = |ok: bool| if ok { Verdict::Valid(None) } else { Verdict::Wrong };
    match (secret, proof) {
        (Secret::Clear(pw), Proof::Native(r)) => {
            valid(auth::constant_time_eq(&auth::scramble(salt, pw.as_bytes()), r))
        }
        (Secret::Clear(pw), Proof::Sha2(r)) => valid(auth::sha2_verify(salt, r, pw.as_bytes())),
        (Secret::Clear(pw), Proof::Clear(given)) => valid(auth::constant_time_eq(pw.as_bytes(), given)),
        (Secret::Hash(h), Proof::Native(r)) => {
            auth::verify(salt, r, h).map_or(Verdict::Wrong, |s| Verdict::Valid(Some(Credentials::Stage1(s))))
        }
        (Secret::Hash(_), Proof::Sha2(_)) => Verdict::Unverifiable,
        (Secret::Hash(h), Proof::Clear(given)) if auth::constant_time_eq(&auth::native_hash(given), h) => {
            Verdict::Valid(Some(learned(given)))
        }
        (Secret::Hash(_), Proof::Clear(_)) => Verdict::Wrong,
        // A caching_sha2 hash: no native proof can match it (the client is asked for
        // caching_sha2's), the fast path once a full authentication filled the cache.
        (Secret::Sha2(_), Proof::Native(_)) => Verdict::FullAuthOnly,
        (Secret::Sha2(s), Proof::Sha2(r)) => match s.fast.get() {
            Some(double) => valid(auth::sha2_verify_double(salt, r, double)),
            None => Verdict::FullAuthOnly,
        },
        (Secret::Sha2(s), Proof::Clear(given)) if off_the_workers(|| s.crypt.matches(given)) => {
            let _ = s.fast.set(auth::sha2_double(given));
            Verdict::Valid(Some(learned(given)))
        }
        (Secret::Sha2(_), Proof::Clear(_)) => Verdict::Wrong,
    }
}

/// The connection phase with `check(user, salt, proof, tls)` deciding who may log in (the SQL
/// admin's login shares it): the in-band TLS upgrade after an `SSLRequest` when the greeting
/// offered it; `caching_sha2_password` when the client answers with it (fast authentication,
/// full authentication over TLS), else `mysql_native_password` (switched to when needed);
/// refusals throttled.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + StartTls, U>(
    stream: &mut PacketStream<S>,
    ctx: &Context,
    greeting: &HandshakeV10,
    peer: std::net::SocketAddr,
    check: impl Fn(&str, &[u8], Proof<'_>, bool) -> Verdict<U>,
) -> Result<Login<U>, LoginError> {
    let (packet, seq) = response(stream, ctx, greeting).await?;
    let tls = stream.get_ref().is_secure();
    let resp = HandshakeResponse::decode(packet.payload())?;
    let capabilities = resp.capabilities & greeting.capabilities;
    let mariadb_caps = resp.mariadb_caps & greeting.mariadb_caps;
    let username = String::from_utf8_lossy(&resp.username).into_owned();
    let fits = names_fit(&resp.username, resp.database.as_deref());
    let plugin_auth = capabilities & caps::PLUGIN_AUTH != 0;
    let rsa = if tls { None } else { ctx.rsa.load_full() };
    let exchange = Exchange { seq, tls, fits, plugin_auth, salt: &greeting.salt, rsa };
    let check =
        |proof: Proof<'_>| if fits { check(&username, &greeting.salt, proof, tls) } else { Verdict::Wrong };
    let (verdict, next_seq, proof_given) = exchange.prove(stream, &resp, check).await?;
    let Verdict::Valid(user) = verdict else {
        let (code, state) = errcode::ACCESS_DENIED;
        let using = if proof_given { "YES" } else { "NO" };
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

/// COM_CHANGE_USER's proof: an AuthSwitchRequest at sequence id 1 to the user's plugin
/// (`caching_sha2_password` for a user known by a caching_sha2 hash: fast authentication once
/// cached, else full authentication over TLS or RSA; native password otherwise), then the
/// check of the reply. Returns the verdict, the sequence id of the proxy's answer and whether
/// a password was given.
pub async fn change_user_proof<S: AsyncRead + AsyncWrite + Unpin, U>(
    stream: &mut PacketStream<S>,
    ctx: &Context,
    (salt, tls, fits, sha2): (&[u8], bool, bool, bool),
    check: impl Fn(Proof<'_>) -> Verdict<U>,
) -> Result<(Verdict<U>, u8, bool), LoginError> {
    let rsa = if tls { None } else { ctx.rsa.load_full() };
    let exchange = Exchange { seq: 2, tls, fits, plugin_auth: true, salt, rsa };
    let check = |proof: Proof<'_>| if fits { check(proof) } else { Verdict::Wrong };
    let plugin = if sha2 { SHA2_PLUGIN } else { NATIVE_PLUGIN };
    stream.write_packet(1, &auth_switch_request(plugin, salt)).await?;
    let p = stream.read_packet(Some(2)).await?.ok_or(LoginError::ClientGone)?;
    if sha2 {
        return exchange.sha2_answer(stream, 3, p.payload(), &check).await;
    }
    Ok((check(Proof::Native(p.payload())), 3, !p.payload().is_empty()))
}

/// Sends the greeting and reads the handshake response, upgrading to TLS first when the client
/// asks (`SSLRequest`) and the greeting offered it; returns the response and its sequence id.
async fn response<S: AsyncRead + AsyncWrite + Unpin + StartTls>(
    stream: &mut PacketStream<S>,
    ctx: &Context,
    greeting: &HandshakeV10,
) -> Result<(crate::protocol::Packet, u8), LoginError> {
    stream.write_packet(0, &greeting.encode()).await?;
    let packet = stream.read_packet(Some(1)).await?.ok_or(LoginError::ClientGone)?;
    if !HandshakeResponse::is_ssl_request(packet.payload()) {
        return Ok((packet, 1));
    }
    let acceptor = if greeting.capabilities & caps::SSL != 0 { ctx.tls.load_full() } else { None };
    let Some(acceptor) = acceptor else {
        let (code, state) = errcode::HANDSHAKE;
        let msg = "rwproxy: SSL is not configured on this listener (tls.cert_file); connect without TLS";
        stream.write_packet(2, &err_packet(code, state, msg)).await?;
        return Err(LoginError::Refused("client asked for TLS"));
    };
    // The ClientHello may already sit in the read buffer, behind the SSLRequest.
    let buffered = stream.buffered().split();
    stream.stream_mut().start_tls(buffered, &acceptor).await.map_err(|e| LoginError::Tls(e.to_string()))?;
    let packet = stream.read_packet(Some(2)).await?.ok_or(LoginError::ClientGone)?;
    Ok((packet, 2))
}

/// Where the password exchange stands after the handshake response.
struct Exchange<'a> {
    /// The response's sequence id.
    seq: u8,
    tls: bool,
    fits: bool,
    plugin_auth: bool,
    salt: &'a [u8],
    /// The RSA key for full authentication without TLS, when configured.
    rsa: Option<std::sync::Arc<super::rsa::RsaKey>>,
}

impl Exchange<'_> {
    /// Checks the response's proof and asks for another when it cannot be checked:
    /// `caching_sha2_password`'s fast path, its full authentication over TLS, or a switch to
    /// `mysql_native_password`. Returns the verdict, the sequence id of the proxy's answer and
    /// whether the client gave a password.
    async fn prove<S: AsyncRead + AsyncWrite + Unpin, U>(
        &self,
        stream: &mut PacketStream<S>,
        resp: &HandshakeResponse,
        check: impl Fn(Proof<'_>) -> Verdict<U>,
    ) -> Result<(Verdict<U>, u8, bool), LoginError> {
        let plugin = resp.auth_plugin.as_deref();
        let reply = &resp.auth_response;
        let next = self.seq + 1;
        if self.plugin_auth && plugin == Some(SHA2_PLUGIN.as_bytes()) {
            return self.sha2_answer(stream, next, reply, &check).await;
        }
        let wants_switch =
            plugin.is_some_and(|p| p != NATIVE_PLUGIN.as_bytes()) || !(reply.is_empty() || reply.len() == 20);
        match check(Proof::Native(reply)) {
            // A user known only by a caching_sha2 hash: ask for that plugin's proof.
            Verdict::FullAuthOnly if self.plugin_auth => {
                stream.write_packet(next, &auth_switch_request(SHA2_PLUGIN, self.salt)).await?;
                let p = stream.read_packet(Some(next + 1)).await?.ok_or(LoginError::ClientGone)?;
                self.sha2_answer(stream, next + 2, p.payload(), &check).await
            }
            Verdict::FullAuthOnly => Ok((Verdict::Wrong, next, !reply.is_empty())),
            Verdict::Wrong | Verdict::Valid(_) if self.plugin_auth && wants_switch => {
                self.switch_to_native(stream, next, &check).await
            }
            v => Ok((v, next, !reply.is_empty())),
        }
    }

    /// The client's `caching_sha2_password` scramble; `next` is the sequence id of the
    /// proxy's answer. Fast authentication, else full authentication over TLS or with RSA,
    /// else a switch to native password when a native proof can be checked.
    async fn sha2_answer<S: AsyncRead + AsyncWrite + Unpin, U>(
        &self,
        stream: &mut PacketStream<S>,
        next: u8,
        reply: &[u8],
        check: &impl Fn(Proof<'_>) -> Verdict<U>,
    ) -> Result<(Verdict<U>, u8, bool), LoginError> {
        match check(Proof::Sha2(reply)) {
            Verdict::Valid(u) => {
                stream.write_packet(next, &SHA2_FAST_AUTH_OK).await?;
                Ok((Verdict::Valid(u), next + 1, !reply.is_empty()))
            }
            Verdict::Unverifiable | Verdict::FullAuthOnly if self.tls => {
                // Full authentication: over TLS the client sends the password itself.
                stream.write_packet(next, &SHA2_FULL_AUTH).await?;
                let p = stream.read_packet(Some(next + 1)).await?.ok_or(LoginError::ClientGone)?;
                let password = p.payload().strip_suffix(&[0]).unwrap_or(p.payload());
                Ok((check(Proof::Clear(password)), next + 2, !password.is_empty()))
            }
            Verdict::Unverifiable | Verdict::FullAuthOnly if self.rsa.is_some() => {
                self.rsa_full_auth(stream, next, check).await
            }
            Verdict::Unverifiable if self.plugin_auth => self.switch_to_native(stream, next, check).await,
            Verdict::FullAuthOnly => Ok((Verdict::Wrong, next, !reply.is_empty())),
            v => Ok((v, next, !reply.is_empty())),
        }
    }

    async fn switch_to_native<S: AsyncRead + AsyncWrite + Unpin, U>(
        &self,
        stream: &mut PacketStream<S>,
        next: u8,
        check: &impl Fn(Proof<'_>) -> Verdict<U>,
    ) -> Result<(Verdict<U>, u8, bool), LoginError> {
        stream.write_packet(next, &auth_switch_request(NATIVE_PLUGIN, self.salt)).await?;
        let p = stream.read_packet(Some(next + 1)).await?.ok_or(LoginError::ClientGone)?;
        let given = !p.payload().is_empty();
        let v = if self.fits { check(Proof::Native(p.payload())) } else { Verdict::Wrong };
        Ok((v, next + 2, given))
    }
}

impl Exchange<'_> {
    /// caching_sha2's full authentication without TLS: the client may ask for the public key
    /// (`0x02`), then sends its password encrypted with it.
    async fn rsa_full_auth<S: AsyncRead + AsyncWrite + Unpin, U>(
        &self,
        stream: &mut PacketStream<S>,
        next: u8,
        check: impl Fn(Proof<'_>) -> Verdict<U>,
    ) -> Result<(Verdict<U>, u8, bool), LoginError> {
        let Some(key) = self.rsa.as_deref() else { return Ok((Verdict::Wrong, next, true)) };
        stream.write_packet(next, &SHA2_FULL_AUTH).await?;
        let mut seq = next.wrapping_add(1);
        let mut p = stream.read_packet(Some(seq)).await?.ok_or(LoginError::ClientGone)?;
        if p.payload() == [0x02] {
            let mut more = Vec::with_capacity(key.public_pem().len() + 1);
            more.push(0x01);
            more.extend_from_slice(key.public_pem());
            stream.write_packet(seq.wrapping_add(1), &more).await?;
            seq = seq.wrapping_add(2);
            p = stream.read_packet(Some(seq)).await?.ok_or(LoginError::ClientGone)?;
        }
        let verdict = match off_the_workers(|| key.password(p.payload(), self.salt)) {
            Some(password) if self.fits => check(Proof::Clear(&password)),
            _ => Verdict::Wrong,
        };
        Ok((verdict, seq.wrapping_add(1), true))
    }
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

//! TLS to backends (and the monitor, which connects the same way): per server a mode —
//! `off`, `preferred` (TLS when the server offers it, certificate not checked), `required`
//! (TLS or no connection, not checked), `verify_ca` (the chain against `backend_tls.ca_file`),
//! `verify_identity` (and the name or IP the address holds) — and the stream, plain or TLS.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::config::{BackendTlsMode, Config};

/// What each server's connections do about TLS, with the client configs they use.
#[derive(Clone, Default)]
pub struct BackendTls {
    modes: HashMap<String, BackendTlsMode>,
    unchecked: Option<Arc<ClientConfig>>,
    chain_only: Option<Arc<ClientConfig>>,
    identity: Option<Arc<ClientConfig>>,
    /// The servers' RSA public key (PEM) for caching_sha2 full authentication without TLS.
    public_key: Option<Arc<[u8]>>,
    /// Ask a server for its RSA public key when none is configured (MySQL's
    /// `--get-server-public-key`: open to a man in the middle, so off unless configured).
    pub get_public_key: bool,
}

impl BackendTls {
    /// Builds the configs the servers' modes need; the error names the key and the problem.
    pub fn from_config(config: &Config) -> Result<BackendTls, String> {
        let modes: HashMap<String, BackendTlsMode> =
            config.servers.iter().map(|s| (s.address.clone(), s.tls)).collect();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let builder =
            || ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions);
        let mut tls =
            BackendTls { modes, get_public_key: config.backend_get_public_key, ..BackendTls::default() };
        if let Some(path) = &config.backend_public_key_file {
            let key = "backend_tls.server_public_key_file";
            let pem = std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
            openssl::rsa::Rsa::public_key_from_pem(&pem)
                .map_err(|_| format!("{key} {}: not a PEM RSA public key", path.display()))?;
            tls.public_key = Some(pem.into());
        }
        let wanted = |m: BackendTlsMode| tls.modes.values().any(|v| *v == m);
        if wanted(BackendTlsMode::Preferred) || wanted(BackendTlsMode::Required) {
            let verifier = Arc::new(Verifier { provider: provider.clone(), chain: None });
            let c =
                builder().map_err(|e| e.to_string())?.dangerous().with_custom_certificate_verifier(verifier);
            tls.unchecked = Some(Arc::new(c.with_no_client_auth()));
        }
        if wanted(BackendTlsMode::VerifyCa) || wanted(BackendTlsMode::VerifyIdentity) {
            let ca = config
                .backend_ca_file
                .as_ref()
                .ok_or("backend_tls.ca_file is required by verify_ca / verify_identity")?;
            let mut roots = rustls::RootCertStore::empty();
            let shown = ca.display();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("backend_tls.ca_file {shown}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("backend_tls.ca_file {shown}: {e}"))?;
                roots.add(cert).map_err(|e| format!("backend_tls.ca_file {shown}: {e}"))?;
            }
            let roots = Arc::new(roots);
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| format!("backend_tls.ca_file {shown}: {e}"))?;
            let chain = Arc::new(Verifier { provider: provider.clone(), chain: Some(webpki) });
            let c = builder().map_err(|e| e.to_string())?.dangerous().with_custom_certificate_verifier(chain);
            tls.chain_only = Some(Arc::new(c.with_no_client_auth()));
            let c = builder().map_err(|e| e.to_string())?.with_root_certificates(roots);
            tls.identity = Some(Arc::new(c.with_no_client_auth()));
        }
        Ok(tls)
    }

    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    pub fn mode(&self, address: &str) -> BackendTlsMode {
        self.modes.get(address).copied().unwrap_or_default()
    }

    fn config_for(&self, mode: BackendTlsMode) -> Option<Arc<ClientConfig>> {
        match mode {
            BackendTlsMode::Off => None,
            BackendTlsMode::Preferred | BackendTlsMode::Required => self.unchecked.clone(),
            BackendTlsMode::VerifyCa => self.chain_only.clone(),
            BackendTlsMode::VerifyIdentity => self.identity.clone(),
        }
    }

    /// The TLS client side over `tcp`, for a server at `address` in `mode`.
    pub async fn connect(
        &self,
        address: &str,
        mode: BackendTlsMode,
        tcp: TcpStream,
    ) -> io::Result<BackendStream> {
        let config = self.config_for(mode).ok_or_else(|| io::Error::other("no TLS config for this mode"))?;
        let host = address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| io::Error::other(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
        Ok(BackendStream::Tls(Box::new(tls)))
    }
}

/// TLS before the handshake response, as the server's mode says: an `SSLRequest`, then the
/// client side of TLS. Returns the sequence id the response goes with (2 after TLS, else 1).
pub(super) async fn upgrade(
    stream: &mut crate::protocol::PacketStream<BackendStream>,
    addr: &str,
    tls: &BackendTls,
    (capabilities, collation, mariadb_caps): (u32, u8, u32),
    greeting: &crate::protocol::handshake::HandshakeV10,
) -> Result<u8, super::BackendError> {
    use crate::config::BackendTlsMode;
    let mode = tls.mode(addr);
    let offered = greeting.capabilities & crate::protocol::caps::SSL != 0;
    match mode {
        BackendTlsMode::Off => return Ok(1),
        BackendTlsMode::Preferred if !offered => return Ok(1),
        _ if !offered => {
            let what = format!("the server offers no TLS (tls = {mode:?} requires it)");
            return Err(super::BackendError::Unsupported { addr: addr.into(), what });
        }
        _ => {}
    }
    let mut request = (capabilities | crate::protocol::caps::SSL).to_le_bytes().to_vec();
    request.extend_from_slice(&(1u32 << 30).to_le_bytes());
    request.push(collation);
    request.extend_from_slice(&[0; 19]);
    request.extend_from_slice(&mariadb_caps.to_le_bytes());
    let perr = |source| super::BackendError::Protocol { addr: addr.to_string(), source };
    stream.write_packet(1, &request).await.map_err(perr)?;
    let tls_err =
        |e: std::io::Error| super::BackendError::Unsupported { addr: addr.into(), what: format!("TLS: {e}") };
    let BackendStream::Plain(tcp) = std::mem::replace(stream.stream_mut(), BackendStream::Detached) else {
        return Err(tls_err(std::io::Error::other("not a plain stream")));
    };
    *stream.stream_mut() = tls.connect(addr, mode, tcp).await.map_err(tls_err)?;
    Ok(2)
}

/// The certificate check of `preferred`/`required` (`chain: None`: any certificate, as MySQL's
/// `--ssl-mode=REQUIRED`) and of `verify_ca` (the chain must lead to the CA, the name is not
/// compared); the handshake's signatures are checked either way.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls").field("modes", &self.modes).finish_non_exhaustive()
    }
}

/// A backend connection's stream: plain TCP or TLS over it.
pub enum BackendStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while an upgrade runs.
    Detached,
}

impl std::fmt::Debug for BackendStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendStream::Plain(_) => "BackendStream::Plain",
            BackendStream::Tls(_) => "BackendStream::Tls",
            BackendStream::Detached => "BackendStream::Detached",
        })
    }
}

impl BackendStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, BackendStream::Tls(_))
    }

    /// The TCP socket underneath (non-blocking peeks for a closed peer).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            BackendStream::Plain(t) => Some(t),
            BackendStream::Tls(t) => Some(t.get_ref().0),
            BackendStream::Detached => None,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            BackendStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            BackendStream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            BackendStream::Detached => Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected))),
        }
    };
}

impl AsyncRead for BackendStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for BackendStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

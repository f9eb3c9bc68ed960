//! TLS towards clients (rustls, TLS 1.2 and 1.3 only): the acceptor built from the configured
//! certificate and key, and the client stream, plain or upgraded in band after the client's
//! `SSLRequest`. Relay and routing see only `AsyncRead + AsyncWrite`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::TlsConfig;
use crate::protocol::compress::Compressed;

/// Builds the acceptor; the error names the file and what is wrong with it.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .map_err(|e| format!("tls.cert_file {}: {e}", cfg.cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert_file {}: {e}", cfg.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert_file {}: no certificate in it", cfg.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| format!("tls.key_file {}: {e}", cfg.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls.cert_file / tls.key_file: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client connection: plain TCP, or TLS after an in-band upgrade.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<Rewind<TcpStream>>>),
    /// The compressed protocol over either, from the login's OK on.
    Compressed(Box<Compressed<ClientStream>>),
    /// Only while an upgrade runs.
    Detached,
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Tls(_) => true,
            ClientStream::Compressed(c) => c.get_ref().is_tls(),
            ClientStream::Plain(_) | ClientStream::Detached => false,
        }
    }
}

/// A stream that first yields bytes already read from it (a TLS ClientHello that arrived with
/// the `SSLRequest` and sits in the packet reader's buffer).
pub struct Rewind<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            ClientStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            ClientStream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            ClientStream::Compressed($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            ClientStream::Detached => Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected))),
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
            ClientStream::Compressed(_) | ClientStream::Detached => false,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// A client stream that can be upgraded to TLS in place.
pub trait StartTls {
    /// The server side of the TLS handshake; `buffered` are bytes already read past the
    /// `SSLRequest`. Streams that cannot (test pipes) answer `Unsupported`.
    fn start_tls<'a>(
        &'a mut self,
        buffered: BytesMut,
        acceptor: &'a TlsAcceptor,
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

    fn is_secure(&self) -> bool {
        false
    }

    /// Switches to the compressed protocol (after the login's OK). Streams that cannot answer
    /// `Unsupported`.
    fn start_compression(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl StartTls for ClientStream {
    fn start_tls<'a>(
        &'a mut self,
        buffered: BytesMut,
        acceptor: &'a TlsAcceptor,
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let ClientStream::Plain(tcp) = std::mem::replace(self, ClientStream::Detached) else {
                return Err(io::Error::other("TLS requested twice"));
            };
            let tls = acceptor.accept(Rewind { prefix: buffered, inner: tcp }).await?;
            *self = ClientStream::Tls(Box::new(tls));
            Ok(())
        })
    }

    fn is_secure(&self) -> bool {
        self.is_tls()
    }

    fn start_compression(&mut self) -> io::Result<()> {
        if matches!(self, ClientStream::Compressed(_) | ClientStream::Detached) {
            return Err(io::Error::other("compression started twice"));
        }
        let plain = std::mem::replace(self, ClientStream::Detached);
        *self = ClientStream::Compressed(Box::new(Compressed::new(plain)));
        Ok(())
    }
}

impl StartTls for tokio::io::DuplexStream {
    fn start_tls<'a>(
        &'a mut self,
        _: BytesMut,
        _: &'a TlsAcceptor,
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>> {
        Box::pin(async { Err(io::Error::from(io::ErrorKind::Unsupported)) })
    }
}

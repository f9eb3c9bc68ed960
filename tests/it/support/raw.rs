//! A minimal raw protocol client for byte-level comparisons and malformed input.

use rwproxy::protocol::auth::{NATIVE_PLUGIN, scramble};
use rwproxy::protocol::handshake::{HandshakeResponse, HandshakeV10};
use rwproxy::protocol::{MAX_PAYLOAD, PacketStream, ReplyKind, ReplyTracker, Step, caps};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The raw client's byte stream: TCP, or TLS over it with `RWPROXY_TEST_TLS=1`.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

pub const BASE_CAPS: u32 = caps::LONG_PASSWORD
    | caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::TRANSACTIONS
    | caps::MULTI_RESULTS
    | caps::MULTI_STATEMENTS
    | caps::PS_MULTI_RESULTS;

/// Not a real capability (it is `CLIENT_REMEMBER_OPTIONS`, never sent): asks `connect_with`
/// to leave `CLIENT_MULTI_STATEMENTS` out of the handshake.
pub const NO_MULTI: u32 = 1 << 31;

pub struct Raw {
    pub stream: PacketStream<Stream>,
    pub greeting: HandshakeV10,
    pub caps: u32,
    /// The MariaDB extended capabilities negotiated (0 for a MySQL-mode login).
    pub mariadb_caps: u32,
}

/// Logs in; `Err` carries the server's reply payload (an ERR) when login fails.
pub async fn connect(port: u16, user: &str, pw: &str, db: Option<&str>, caps: u32) -> Result<Raw, Vec<u8>> {
    connect_with(port, user, pw, db, caps, 45).await
}

/// Like `connect`, with the handshake collation id.
pub async fn connect_with(
    port: u16,
    user: &str,
    pw: &str,
    db: Option<&str>,
    caps: u32,
    collation: u8,
) -> Result<Raw, Vec<u8>> {
    login(port, (user, pw), db, caps, collation, None).await
}

/// Like `connect`, as a MariaDB client (`CLIENT_MYSQL` unset) asking for these extended
/// capabilities (`mariadb_caps`); the server's answer is in `Raw::mariadb_caps`.
pub async fn connect_mariadb(port: u16, db: Option<&str>, caps: u32, ext: u32) -> Result<Raw, Vec<u8>> {
    login(port, (super::cluster::APP_USER, super::cluster::APP_PASSWORD), db, caps, 45, Some(ext)).await
}

async fn login(
    port: u16,
    (user, pw): (&str, &str),
    db: Option<&str>,
    caps: u32,
    collation: u8,
    ext: Option<u32>,
) -> Result<Raw, Vec<u8>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp connect");
    let mut stream = PacketStream::new(Box::new(tcp) as Stream, 1 << 30);
    let g = stream.read_packet(Some(0)).await.expect("greeting").expect("greeting packet");
    if g.payload()[0] == 0xff {
        return Err(g.payload().to_vec());
    }
    let greeting = HandshakeV10::decode(g.payload()).expect("decode greeting");
    let no_multi = caps & NO_MULTI != 0;
    let mut caps = (caps | BASE_CAPS) & greeting.capabilities;
    if no_multi {
        caps &= !caps::MULTI_STATEMENTS;
    }
    if db.is_some() {
        caps |= caps::CONNECT_WITH_DB;
    }
    if ext.is_some() {
        caps &= !caps::LONG_PASSWORD;
    }
    let mariadb_caps = ext.unwrap_or(0) & greeting.mariadb_caps;
    let mut seq = 1;
    if super::tls_on()
        && greeting.capabilities & caps::SSL != 0
        && !super::cluster().nodes().any(|n| n.port == port)
    {
        caps |= caps::SSL;
        stream = start_tls(stream, caps, collation, mariadb_caps).await;
        seq = 2;
    }
    let resp = HandshakeResponse {
        capabilities: caps,
        max_packet: 1 << 30,
        collation,
        username: user.as_bytes().to_vec(),
        auth_response: scramble(&greeting.salt, pw.as_bytes()),
        database: db.map(|d| d.as_bytes().to_vec()),
        auth_plugin: Some(NATIVE_PLUGIN.as_bytes().to_vec()),
        mariadb_caps,
    };
    stream.write_packet(seq, &resp.encode()).await.expect("send response");
    let reply = stream.read_packet(Some(seq + 1)).await.expect("login reply").expect("login reply packet");
    if reply.payload()[0] != 0 {
        return Err(reply.payload().to_vec());
    }
    Ok(Raw { stream, greeting, caps, mariadb_caps })
}

/// Sends an `SSLRequest` and runs the client side of TLS, verifying the harness's CA.
async fn start_tls(
    mut stream: PacketStream<Stream>,
    caps: u32,
    collation: u8,
    ext: u32,
) -> PacketStream<Stream> {
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
    let mut request = caps.to_le_bytes().to_vec();
    request.extend_from_slice(&(1u32 << 30).to_le_bytes());
    request.push(collation);
    request.extend_from_slice(&[0; 19]);
    request.extend_from_slice(&ext.to_le_bytes());
    stream.write_packet(1, &request).await.expect("send SSLRequest");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&super::harness_certificates().0).expect("the harness CA") {
        roots.add(cert.expect("a CA certificate")).expect("a usable CA");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tls = connector.connect(name, stream.into_inner()).await.expect("TLS handshake with the proxy");
    PacketStream::new(Box::new(tls) as Stream, 1 << 30)
}

impl Raw {
    /// Sends one command and returns every reply packet payload, in order.
    pub async fn command(&mut self, payload: &[u8], kind: ReplyKind) -> Vec<Vec<u8>> {
        self.stream.write_packet(0, payload).await.expect("send command");
        self.read_reply(kind, matches!(payload.first(), Some(&0x17) | Some(&0xfa))).await
    }

    pub async fn read_reply(&mut self, kind: ReplyKind, binary: bool) -> Vec<Vec<u8>> {
        let mut t = ReplyTracker::new(kind, self.caps & caps::DEPRECATE_EOF != 0, binary);
        let mut out = Vec::new();
        loop {
            let p = self.stream.read_packet(None).await.expect("reply").expect("reply packet");
            let len = p.payload().len().min(MAX_PAYLOAD - 1);
            let step = t.on_frame(len, &p.payload()[..p.payload().len().min(32)]).expect("reply shape");
            out.push(p.payload().to_vec());
            match step {
                Step::Done(_) => return out,
                Step::LocalInfile => panic!("unexpected LOCAL INFILE request"),
                Step::More => {}
            }
        }
    }

    pub async fn query(&mut self, sql: &str) -> Vec<Vec<u8>> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p, ReplyKind::ResultSets).await
    }

    /// COM_STMT_PREPARE; returns the statement id (panics on ERR).
    pub async fn prepare(&mut self, sql: &str) -> u32 {
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        let reply = self.command(&p, ReplyKind::Prepare).await;
        assert_eq!(reply[0][0], 0, "prepare {sql:?} failed: {:?}", String::from_utf8_lossy(&reply[0]));
        u32::from_le_bytes([reply[0][1], reply[0][2], reply[0][3], reply[0][4]])
    }

    /// COM_STMT_SEND_LONG_DATA (no reply).
    pub async fn send_long_data(&mut self, stmt: u32, param: u16, data: &[u8]) {
        let mut p = vec![0x18];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.extend_from_slice(&param.to_le_bytes());
        p.extend_from_slice(data);
        self.stream.write_packet(0, &p).await.expect("send long data");
    }

    /// COM_STMT_EXECUTE with string parameters (`None`: the value comes from long data).
    pub async fn execute(&mut self, stmt: u32, cursor: u8, params: &[Option<&str>]) -> Vec<Vec<u8>> {
        let mut p = vec![0x17];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.push(cursor);
        p.extend_from_slice(&1u32.to_le_bytes());
        if !params.is_empty() {
            p.extend(std::iter::repeat_n(0u8, params.len().div_ceil(8)));
            p.push(1);
            for _ in params {
                p.extend_from_slice(&[0xfe, 0]); // MYSQL_TYPE_STRING
            }
            for v in params.iter().flatten() {
                p.push(v.len() as u8);
                p.extend_from_slice(v.as_bytes());
            }
        }
        self.command(&p, ReplyKind::ResultSets).await
    }

    /// Ends the session politely (COM_QUIT).
    pub async fn quit(mut self) {
        let _ = self.stream.write_packet(0, &[0x01]).await;
    }
}

/// The error code of a reply that is an ERR packet.
pub fn err_code(reply: &[Vec<u8>]) -> Option<u16> {
    let p = reply.first()?;
    (p.first() == Some(&0xff)).then(|| u16::from_le_bytes([p[1], p[2]]))
}

/// The text values of a text-protocol result set's rows (`None` = NULL).
pub fn text_rows(reply: &[Vec<u8>], deprecate_eof: bool) -> Vec<Vec<Option<String>>> {
    use rwproxy::protocol::wire::Reader;
    let Some(first) = reply.first().filter(|p| !matches!(p[0], 0x00 | 0xff)) else { return Vec::new() };
    let cols = Reader::new(first).lenenc_int("count").expect("column count") as usize;
    let start = 1 + cols + usize::from(!deprecate_eof);
    let mut rows = Vec::new();
    for p in &reply[start..] {
        if p[0] == 0xfe && (p.len() < 9 || deprecate_eof) {
            break;
        }
        let mut r = Reader::new(p);
        let row = (0..cols)
            .map(|_| {
                if r.remaining().first() == Some(&0xfb) {
                    r.u8("null").ok();
                    None
                } else {
                    r.lenenc_bytes("value").ok().map(|v| String::from_utf8_lossy(v).into_owned())
                }
            })
            .collect();
        rows.push(row);
    }
    rows
}

/// Status flags of the last packet of a reply (OK or EOF), as the client sees them.
pub fn last_status(reply: &[Vec<u8>], deprecate_eof: bool) -> u16 {
    let last = reply.last().expect("non-empty reply");
    if last[0] == 0xfe && !deprecate_eof && last.len() < 9 {
        return u16::from_le_bytes([last[3], last[4]]);
    }
    rwproxy::protocol::reply::ok_status(last).expect("OK status")
}

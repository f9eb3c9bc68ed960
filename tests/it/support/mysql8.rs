//! A scripted MySQL 8.4 server (no MySQL server can be installed here). Its exchanges follow
//! the protocol documentation's connection phase and the byte sequences go-sql-driver/mysql's
//! `auth_test.go` checks against real servers: the greeting names `caching_sha2_password`
//! and offers MySQL 8.4's capability word (query attributes included); a right scramble gets
//! `0x01 0x03` then OK (fast authentication), or `0x01 0x04` (full authentication), after which
//! the password must come over TLS, or RSA-encrypted — `0x02` asks for the public key, sent
//! back as `0x01` + PEM. Commands: the monitor's probes get MySQL 8.4's answers (`SHOW SLAVE
//! STATUS` is a syntax error there, `SHOW REPLICA STATUS` has `Replica_*`/`*_Source` columns);
//! anything else gets OK. Every statement is recorded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rwproxy::protocol::handshake::{HandshakeResponse, HandshakeV10};
use rwproxy::protocol::reply::{err_packet, ok_packet};
use rwproxy::protocol::resultset::{Column, ColumnType, encode_result_set};
use rwproxy::protocol::{PacketStream, auth, caps};
use rwproxy::tls::{ClientStream, StartTls};
use tokio::net::TcpListener;

/// MySQL 8.4's capability word (the greeting's lower and upper halves): everything up to
/// `CLIENT_QUERY_ATTRIBUTES` (bit 27) and `MULTI_FACTOR_AUTHENTICATION` (bit 28), minus
/// `CLIENT_SSL` when the server has no certificate.
pub const MYSQL84_CAPS: u32 = 0xdfff_ffff;
pub const QUERY_ATTRIBUTES: u32 = 1 << 27;

#[derive(Debug, Clone)]
pub enum Auth {
    /// The password's scramble is cached: `0x01 0x03`, OK.
    Fast,
    /// A cold cache: `0x01 0x04`; the password must then arrive over TLS or RSA-encrypted with
    /// the key in this file (PEM private key).
    Full { rsa_key: Option<PathBuf> },
}

#[derive(Default)]
pub struct Seen {
    pub logins: AtomicU32,
    /// The clear password arrived on a plain connection.
    pub leaks: AtomicU32,
    /// Public-key requests (`0x02`).
    pub key_requests: AtomicU32,
    /// Capabilities of the last handshake response.
    pub capabilities: AtomicU32,
    pub statements: Mutex<Vec<String>>,
}

pub struct Mysql8 {
    pub addr: String,
    pub seen: Arc<Seen>,
}

/// Starts the server; with `tls` (certificate, key) the greeting offers TLS.
pub async fn start(passwords: &'static [&'static str], how: Auth, tls: Option<(PathBuf, PathBuf)>) -> Mysql8 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind scripted MySQL 8");
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let acceptor = tls.map(|(cert_file, key_file)| {
        rwproxy::tls::acceptor(&rwproxy::config::TlsConfig { cert_file, key_file })
            .expect("harness certificate")
    });
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (seen, how, acceptor) = (shared.clone(), how.clone(), acceptor.clone());
            tokio::spawn(async move {
                let mut p = PacketStream::new(ClientStream::Plain(s), 1 << 24);
                if login(&mut p, passwords, &how, acceptor.as_ref(), &seen).await.is_some() {
                    seen.logins.fetch_add(1, Ordering::Relaxed);
                    commands(&mut p, &seen).await;
                }
            });
        }
    });
    Mysql8 { addr, seen }
}

async fn login(
    p: &mut PacketStream<ClientStream>,
    passwords: &[&str],
    how: &Auth,
    acceptor: Option<&tokio_rustls::TlsAcceptor>,
    seen: &Seen,
) -> Option<()> {
    let salt = b"\x06\x51\x60\x72\x0e\x2a\x32\x1e\x4c\x2f\x01\x5f\x7e\x51\x3e\x5e\x53\x50\x34\x55".to_vec();
    let capabilities = if acceptor.is_some() { MYSQL84_CAPS } else { MYSQL84_CAPS & !caps::SSL };
    let greeting = HandshakeV10 {
        server_version: b"8.4.3".to_vec(),
        connection_id: 7,
        salt: salt.clone(),
        capabilities,
        collation: 255,
        status: 2,
        auth_plugin: b"caching_sha2_password".to_vec(),
        mariadb_caps: 0,
    };
    p.write_packet(0, &greeting.encode()).await.ok()?;
    let mut packet = p.read_packet(Some(1)).await.ok()??;
    let mut seq = 2;
    if HandshakeResponse::is_ssl_request(packet.payload()) {
        let buffered = p.buffered().split();
        p.stream_mut().start_tls(buffered, acceptor?).await.ok()?;
        packet = p.read_packet(Some(2)).await.ok()??;
        seq = 3;
    }
    let resp = HandshakeResponse::decode(packet.payload()).ok()?;
    seen.capabilities.store(resp.capabilities, Ordering::Relaxed);
    let sha2 = resp.auth_plugin.as_deref() == Some(b"caching_sha2_password".as_slice());
    let password =
        passwords.iter().find(|pw| resp.auth_response == auth::sha2_scramble(&salt, pw.as_bytes()));
    let (true, Some(password)) = (sha2, password) else {
        let _ = p.write_packet(seq, &err_packet(1045, "28000", "Access denied (scripted MySQL 8)")).await;
        return None;
    };
    let Auth::Full { rsa_key } = how else {
        p.write_packet(seq, &[0x01, 0x03]).await.ok()?;
        return p.write_packet(seq + 1, &ok_packet(0, 0, 2, 0)).await.ok().map(drop);
    };
    p.write_packet(seq, &[0x01, 0x04]).await.ok()?;
    let mut answer = p.read_packet(Some(seq + 1)).await.ok()??;
    seq += 2;
    let secure = p.get_ref().is_tls();
    let given = if secure {
        answer.payload().strip_suffix(&[0]).map(<[u8]>::to_vec)
    } else {
        if answer.payload().starts_with(password.as_bytes()) {
            seen.leaks.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let key = rwproxy::shared::rsa::RsaKey::load(rsa_key.as_ref()?).expect("the test's RSA key");
        if answer.payload() == [0x02] {
            seen.key_requests.fetch_add(1, Ordering::Relaxed);
            let mut more = vec![0x01];
            more.extend_from_slice(key.public_pem());
            p.write_packet(seq, &more).await.ok()?;
            answer = p.read_packet(Some(seq + 1)).await.ok()??;
            seq += 2;
        }
        key.password(answer.payload(), &salt)
    };
    if given.as_deref() != Some(password.as_bytes()) {
        let _ = p.write_packet(seq, &err_packet(1045, "28000", "Access denied (scripted MySQL 8)")).await;
        return None;
    }
    p.write_packet(seq, &ok_packet(0, 0, 2, 0)).await.ok().map(drop)
}

async fn commands(p: &mut PacketStream<ClientStream>, seen: &Seen) {
    while let Ok(Some(cmd)) = p.read_packet(Some(0)).await {
        let payload = cmd.payload();
        if payload.first() == Some(&0x01) {
            return;
        }
        let sql = if payload.first() == Some(&0x03) {
            String::from_utf8_lossy(&payload[1..]).into_owned()
        } else {
            String::new()
        };
        if !sql.is_empty() {
            seen.statements.lock().unwrap().push(sql.clone());
        }
        if p.write_raw(&answer(&sql)).await.is_err() {
            return;
        }
    }
}

/// MySQL 8.4's answer to what the proxy's monitor asks; OK to the rest.
fn answer(sql: &str) -> Vec<u8> {
    let text = |name: &str| Column { name: name.into(), kind: ColumnType::Text };
    let mut out = Vec::new();
    if sql.starts_with("SELECT @@read_only") {
        // A replica with super_read_only = ON: read_only reads 1 as well.
        let columns = [text("@@read_only"), text("@@gtid_executed")];
        let mut row = vec![Some("1".into()), Some("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5".into())];
        let n = sql.matches("@@").count().clamp(1, 2);
        row.truncate(n);
        encode_result_set(&mut out, "", &columns[..n], &[row], 2);
    } else if sql.starts_with("SHOW SLAVE STATUS") {
        let msg = "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'SLAVE STATUS' at line 1";
        rwproxy::protocol::packet::encode(&mut out, 1, &err_packet(1064, "42000", msg));
    } else if sql.starts_with("SHOW REPLICA STATUS") {
        let names = [
            "Replica_IO_Running",
            "Replica_SQL_Running",
            "Seconds_Behind_Source",
            "Last_IO_Error",
            "Last_SQL_Error",
        ];
        let columns: Vec<Column> = names.iter().map(|n| text(n)).collect();
        let row = ["Yes", "Yes", "3", "", ""].map(|v| Some(v.to_string())).to_vec();
        encode_result_set(&mut out, "", &columns, &[row], 2);
    } else {
        rwproxy::protocol::packet::encode(&mut out, 1, &ok_packet(0, 0, 2, 0));
    }
    out
}

//! MySQL 8.4 backends, against the scripted server of `support::mysql8` (no MySQL server can
//! be installed here; README says which parts were verified only this way): caching_sha2 login
//! by every path (fast; full over TLS; full with the server's RSA key, pinned or asked for;
//! never the password in clear), the monitor reading MySQL 8.4's replica status, session
//! state replayed with MySQL's variable names, and query attributes never negotiated.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use mysql_async::prelude::*;

use crate::support::cluster::{APP_PASSWORD, MONITOR_PASSWORD, MONITOR_USER};
use crate::support::fake::config_with_reader;
use crate::support::mysql8::{self, Auth, QUERY_ATTRIBUTES};
use crate::support::{Proxy, cluster};

const PASSWORDS: &[&str] = &[APP_PASSWORD, MONITOR_PASSWORD];

/// An RSA key pair for the scripted server: (private key file, public key file).
fn rsa_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (key, public) = (dir.join("mysql8-rsa.pem"), dir.join("mysql8-rsa-public.pem"));
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            key.to_str().unwrap(),
        ],
        vec!["pkey", "-in", key.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()],
    ] {
        let out = Command::new("openssl").args(&args).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (key, public)
}

/// Runs one read on the scripted reader through a proxy with `extra` config; the server's
/// `last_connect_error` as /servers shows it.
async fn read_through(reader: &str, extra: &str) -> String {
    let proxy = Proxy::start(&config_with_reader(reader, extra)).await;
    let mut c = crate::support::connect(proxy.port()).await;
    c.query_drop("SELECT 1").await.expect("a read (on the scripted server, or another)");
    drop(c);
    let (_, servers) = proxy.admin_get("/servers").await;
    let list = servers["servers"].as_array().cloned().unwrap_or_default();
    let error = list.iter().find(|s| s["address"] == reader).map(|s| s["last_connect_error"].to_string());
    proxy.shutdown().await;
    error.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_logins_to_mysql8_take_every_path_and_never_send_the_password_in_clear() {
    let dir = std::env::temp_dir().join(format!("rwproxy-mysql8-{}", std::process::id()));
    // Fast authentication.
    let fast = mysql8::start(PASSWORDS, Auth::Fast, None).await;
    read_through(&fast.addr, "").await;
    assert!(fast.seen.logins.load(Ordering::Relaxed) >= 1, "logged in by fast authentication");

    // Full authentication on a plain connection, no key: refused with the reason, nothing sent.
    let plain = mysql8::start(PASSWORDS, Auth::Full { rsa_key: None }, None).await;
    let error = read_through(&plain.addr, "").await;
    assert!(error.contains("without TLS"), "the reason is kept: {error}");
    assert_eq!(plain.seen.leaks.load(Ordering::Relaxed), 0, "no password in clear");

    // With RSA: the key asked for (get_server_public_key), then a pinned key file.
    let (key, public) = rsa_pair(&dir);
    let rsa = mysql8::start(PASSWORDS, Auth::Full { rsa_key: Some(key.clone()) }, None).await;
    let error = read_through(&rsa.addr, "[backend_tls]\nget_server_public_key = true\n").await;
    assert!(rsa.seen.logins.load(Ordering::Relaxed) >= 1, "full authentication with RSA: {error}");
    assert!(rsa.seen.key_requests.load(Ordering::Relaxed) >= 1, "the key was asked for");
    let pinned = mysql8::start(PASSWORDS, Auth::Full { rsa_key: Some(key) }, None).await;
    let section = format!("[backend_tls]\nserver_public_key_file = {:?}\n", public.display().to_string());
    let error = read_through(&pinned.addr, &section).await;
    assert!(pinned.seen.logins.load(Ordering::Relaxed) >= 1, "with the pinned key: {error}");
    assert_eq!(pinned.seen.key_requests.load(Ordering::Relaxed), 0, "a pinned key is never asked for");

    // Over TLS: the password itself, inside TLS.
    let (_, cert, key) = cluster().tls_files();
    let tls = mysql8::start(PASSWORDS, Auth::Full { rsa_key: None }, Some((cert, key))).await;
    let config = config_with_reader(&tls.addr, "").replace(
        &format!("address = \"{}\"\n", tls.addr),
        &format!("address = \"{}\"\ntls = \"required\"\n", tls.addr),
    );
    let proxy = Proxy::start(&config).await;
    let mut c = crate::support::connect(proxy.port()).await;
    c.query_drop("SELECT 1").await.unwrap();
    drop(c);
    proxy.shutdown().await;
    assert!(tls.seen.logins.load(Ordering::Relaxed) >= 1, "full authentication over TLS");
    for s in [&plain, &rsa, &pinned, &tls] {
        assert_eq!(s.seen.leaks.load(Ordering::Relaxed), 0, "no password in clear on a plain connection");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql8_replica_is_monitored_and_replayed_to_in_its_own_dialect() {
    let replica = mysql8::start(PASSWORDS, Auth::Fast, None).await;
    let monitor = format!(
        "[monitor]\nusername = \"{MONITOR_USER}\"\npassword = \"{MONITOR_PASSWORD}\"\ninterval_ms = 200\nmax_replication_lag = 30\n"
    );
    let proxy = Proxy::start(&config_with_reader(&replica.addr, &monitor)).await;
    // The monitor: MySQL 8.4's SHOW REPLICA STATUS (its Replica_*/*_Source columns), never
    // the SHOW SLAVE STATUS it no longer knows; the lag it reports.
    let mut lag = None;
    for _ in 0..50 {
        let (_, servers) = proxy.admin_get("/servers").await;
        let list = servers["servers"].as_array().cloned().unwrap_or_default();
        lag = list
            .iter()
            .find(|s| s["address"] == replica.addr.as_str())
            .and_then(|s| s["replication_lag_seconds"].as_u64());
        if lag.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(lag, Some(3), "Seconds_Behind_Source read");
    // A session's isolation level reaches MySQL as transaction_isolation (tx_isolation is gone
    // from MySQL 8); the read runs there.
    let mut c = crate::support::connect(proxy.port()).await;
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await.unwrap();
    c.query_drop("SELECT 'on the replica'").await.unwrap();
    drop(c);
    proxy.shutdown().await;
    let statements = replica.seen.statements.lock().unwrap().clone();
    assert!(statements.iter().any(|s| s.starts_with("SHOW REPLICA STATUS")), "{statements:?}");
    assert!(!statements.iter().any(|s| s.contains("SLAVE")), "never SHOW SLAVE STATUS: {statements:?}");
    assert!(statements.iter().any(|s| s.contains("transaction_isolation")), "{statements:?}");
    assert!(!statements.iter().any(|s| s.contains("tx_isolation")), "{statements:?}");
    assert!(statements.iter().any(|s| s.contains("on the replica")), "{statements:?}");
    // Query attributes: offered by MySQL 8.4, never asked for (the relay does not track them).
    let asked = replica.seen.capabilities.load(Ordering::Relaxed);
    assert_ne!(asked, 0, "a handshake response was seen");
    assert_eq!(asked & QUERY_ATTRIBUTES, 0, "CLIENT_QUERY_ATTRIBUTES asked of a backend");
}

/// With a MySQL 8.4 primary, the proxy announces its version and capabilities, minus query
/// attributes (which change `COM_QUERY`'s layout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql8_primarys_greeting_reaches_clients_without_query_attributes() {
    use tokio::io::AsyncReadExt;
    let primary = mysql8::start(PASSWORDS, Auth::Fast, None).await;
    let config = config_with_reader(&primary.addr, "").replacen(
        &format!("address = \"{}\"", cluster().primary.addr()),
        &format!("address = \"{}\"", primary.addr),
        1,
    );
    let proxy = Proxy::start(&config).await;
    let mut c = crate::support::connect(proxy.port()).await;
    c.query_drop("SELECT 1").await.expect("a statement on the MySQL 8.4 primary");
    drop(c);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    let mut body = vec![0u8; usize::from(head[0]) | usize::from(head[1]) << 8];
    s.read_exact(&mut body).await.unwrap();
    let greeting = rwproxy::protocol::handshake::HandshakeV10::decode(&body).unwrap();
    assert_eq!(greeting.server_version, b"8.4.3", "the primary's version");
    assert_eq!(greeting.capabilities & QUERY_ATTRIBUTES, 0, "query attributes not offered");
    assert_ne!(
        greeting.capabilities & rwproxy::protocol::caps::DEPRECATE_EOF,
        0,
        "what the relay handles is"
    );
    drop(s);
    proxy.shutdown().await;
}

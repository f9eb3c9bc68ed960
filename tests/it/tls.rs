//! TLS from clients: the in-band upgrade after `SSLRequest` with the `mariadb` CLI (verifying
//! the certificate against a CA the test makes), mysqlclient, PyMySQL and Node's two drivers;
//! `require_tls` users; certificates read again on reload.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::DATABASE;
use crate::support::cluster::certificates;
use crate::support::{Proxy, cli, cluster, config_text, run_bounded};

/// The shared config with TLS on and the `load` user required to use it.
fn config(cert: &Path, key: &Path) -> String {
    let text = config_text(cluster(), &crate::support::tls_section(cert, key));
    let marked = text.replace(
        "username = \"load\"\npassword = \"load\"\n",
        "username = \"load\"\npassword = \"load\"\nrequire_tls = true\n",
    );
    assert_ne!(marked, text, "the shared config has the load user");
    marked
}

fn verified_cli(port: u16, ca: &Path, user: &str, sql: &str) -> (bool, String, String) {
    let ca = format!("--ssl-ca={}", ca.display());
    cli(
        port,
        &[
            &format!("-u{user}"),
            &format!("-p{user}"),
            "--ssl",
            &ca,
            "--ssl-verify-server-cert",
            "-e",
            sql,
            DATABASE,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_upgrade_to_tls_and_require_tls_users_need_it() {
    let dir = std::env::temp_dir().join(format!("rwproxy-tls-{}", std::process::id()));
    let (ca, cert, key) = certificates(&dir, "a");
    let proxy = Proxy::start(&config(&cert, &key)).await;
    let port = proxy.port();

    let (ok, out, err) = verified_cli(port, &ca, "load", "status");
    assert!(ok, "{err}");
    assert!(out.contains("Cipher in use is TLS"), "the CLI verified the certificate and uses TLS: {out}");
    let (ok, out, err) = verified_cli(port, &ca, "app", "SELECT @@server_id IS NOT NULL");
    assert!(ok && out.contains('1'), "{err}");
    // Plain connections still work for users that may use them ...
    let (ok, _, err) = cli(port, &["-uapp", "-papp", "--skip-ssl", "-e", "SELECT 1"]);
    assert!(ok, "{err}");
    // ... and a require_tls user without TLS is refused as MariaDB refuses a REQUIRE SSL user.
    let (ok, _, err) = cli(port, &["-uload", "-pload", "--skip-ssl", "-e", "SELECT 1"]);
    assert!(!ok && err.contains("1045") && err.contains("Access denied"), "{err}");
    // A client that verifies against another CA refuses the proxy's certificate.
    let (other_ca, _, _) = certificates(&dir, "other");
    let (ok, _, err) = verified_cli(port, &other_ca, "load", "SELECT 1");
    assert!(!ok, "a certificate from an unknown CA must not verify: {err}");

    // mysqlclient and PyMySQL verify against the test CA; the load user proves TLS was used.
    let script = format!(
        r#"
import MySQLdb, pymysql, ssl
a = MySQLdb.connect(host="127.0.0.1", port={port}, user="load", password="load", database="{DATABASE}", ssl={{"ca": "{ca}"}})
c = a.cursor(); c.execute("SELECT 7"); print("mysqlclient", c.fetchone()[0])
ctx = ssl.create_default_context(cafile="{ca}")
b = pymysql.connect(host="127.0.0.1", port={port}, user="load", password="load", database="{DATABASE}", ssl=ctx)
with b.cursor() as c: c.execute("SELECT 8"); print("pymysql", c.fetchone()[0], b._sock.version())
"#,
        ca = ca.display()
    );
    let out = run_bounded(
        Command::new("python3").args(["-c", &script]),
        Duration::from_secs(60),
        "python TLS clients",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("mysqlclient 7") && stdout.contains("pymysql 8 TLSv1."), "{stdout}");

    // Node's mariadb and mysql2 connectors, certificate verified.
    let node = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    let out = run_bounded(
        Command::new("node")
            .args(["tls.mjs", &port.to_string(), "load", "load", DATABASE, ca.to_str().unwrap()])
            .current_dir(&node),
        Duration::from_secs(60),
        "node TLS clients",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((v["mariadb"].as_i64(), v["mysql2"].as_i64()), (Some(2), Some(4)), "{v}");
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Renewed certificate files take effect on reload, for new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_renewed_certificates() {
    let dir = std::env::temp_dir().join(format!("rwproxy-tls-reload-{}", std::process::id()));
    let (ca_a, cert_a, key_a) = certificates(&dir, "a");
    let (ca_b, cert_b, key_b) = certificates(&dir, "b");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let file = dir.join("rwproxy.toml");
    std::fs::write(&file, config(&cert, &key)).unwrap();
    let proxy = Proxy::start_file(&file).await;
    assert!(verified_cli(proxy.port(), &ca_a, "load", "SELECT 1").0);
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    let (status, v) = proxy.admin_request("POST", "/reload").await;
    assert_eq!(status, 200, "{v}");
    assert!(verified_cli(proxy.port(), &ca_b, "load", "SELECT 1").0, "the renewed certificate is served");
    assert!(!verified_cli(proxy.port(), &ca_a, "load", "SELECT 1").0, "the old one is not");
    // A broken key refuses the reload and keeps serving the last good certificate.
    std::fs::write(&key, "not a key").unwrap();
    let (status, v) = proxy.admin_request("POST", "/reload").await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("tls.key_file"), "{v}");
    assert!(verified_cli(proxy.port(), &ca_b, "load", "SELECT 1").0);
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `caching_sha2_password` (what MySQL 8.4/9 clients speak): fast authentication for users
/// with a clear password, full authentication over TLS for a user known only by its native
/// hash (the proxy then logs in to the backends as it), a switch to native password without
/// TLS; wrong passwords refused. Clients: PyMySQL, mysql-connector-python's newest release,
/// Node's mysql2 and the `mariadb` CLI (its caching_sha2 plugin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_password_clients_log_in() {
    let dir = std::env::temp_dir().join(format!("rwproxy-sha2-{}", std::process::id()));
    let (ca, cert, key) = certificates(&dir, "a");
    let text = config(&cert, &key).replacen(
        "[proxy]\n",
        "[proxy]\ndefault_auth_plugin = \"caching_sha2_password\"\n",
        1,
    );
    let proxy = Proxy::start(&text).await;
    let port = proxy.port();
    let script = format!(
        r#"
import pymysql, ssl, mysql.connector
ctx = ssl.create_default_context(cafile="{ca}")
def py(user, pw, tls):
    c = pymysql.connect(host="127.0.0.1", port={port}, user=user, password=pw, database="{DATABASE}", ssl=ctx if tls else None)
    with c.cursor() as cur: cur.execute("SELECT CURRENT_USER()"); return c._auth_plugin_name, cur.fetchone()[0].split("@")[0]
print("fast", *py("app", "app", False))
print("full", *py("hashed", "secret", True))
print("switch", *py("hashed", "secret", False))
try:
    py("app", "wrong", False); print("wrong accepted")
except pymysql.err.OperationalError as e:
    print("wrong", e.args[0])
m = mysql.connector.connect(host="127.0.0.1", port={port}, user="app", password="app", database="{DATABASE}", ssl_disabled=True)
cur = m.cursor(); cur.execute("SELECT 41 + 1"); print("connector", mysql.connector.__version__, cur.fetchone()[0])
"#,
        ca = ca.display()
    );
    let out = run_bounded(
        Command::new("python3").args(["-c", &script]),
        Duration::from_secs(60),
        "caching_sha2 clients",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    for line in
        ["fast caching_sha2_password app", "full caching_sha2_password hashed", "switch", "wrong 1045", "42"]
    {
        assert!(stdout.contains(line), "{line:?} missing in:\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("switch") && l.ends_with("hashed")), "{stdout}");
    let (ok, _, err) = cli(port, &["-uapp", "-papp", "--skip-ssl", "-e", "SELECT 1"]);
    assert!(ok, "the mariadb CLI with the caching_sha2 greeting: {err}");
    let node = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    let out = run_bounded(
        Command::new("node")
            .args(["tls.mjs", &port.to_string(), "hashed", "secret", DATABASE, ca.to_str().unwrap()])
            .current_dir(&node),
        Duration::from_secs(60),
        "node caching_sha2 clients",
    );
    assert!(
        out.status.success(),
        "full authentication over TLS from Node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// TLS to the backends: the harness's servers offer it with the harness's certificate; in
/// `verify_identity` mode every connection (the monitor's included) is TLS, which the server
/// itself reports (`Ssl_version` of the session that ran the statement); a wrong CA makes
/// every connect fail with the reason and no statement goes out in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_use_tls_as_configured() {
    use mysql_async::prelude::*;
    let c = cluster();
    let (ca, _, _) = c.tls_files();
    let tls =
        format!("[backend_tls]\nmode = \"verify_identity\"\nca_file = {:?}\n", ca.display().to_string());
    let proxy = Proxy::start(&config_text(c, &tls)).await;
    let mut conn = crate::support::connect(proxy.port()).await;
    for sql in [
        "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'",
        "/* rwproxy:writer */ SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'",
    ] {
        let v: Option<String> = conn.query_first(sql).await.unwrap();
        assert!(v.as_deref().is_some_and(|v| v.starts_with("TLSv1.")), "{sql}: {v:?}");
    }
    drop(conn);
    let (_, servers) = proxy.admin_get("/servers").await;
    assert!(
        servers["servers"].as_array().unwrap().iter().all(|s| s["health"] == "up"),
        "the monitor connects over TLS: {servers}"
    );
    proxy.shutdown().await;

    // `required` (no CA): encrypted, the certificate not checked; `off` on one server stays plain.
    let plain = c.replicas[0].addr();
    let text = config_text(c, "[backend_tls]\nmode = \"required\"\n").replacen(
        &format!("address = \"{plain}\"\n"),
        &format!("address = \"{plain}\"\ntls = \"off\"\n"),
        1,
    );
    let proxy = Proxy::start(&text).await;
    let mut conn = crate::support::connect(proxy.port()).await;
    let sql = "/* rwproxy:writer */ SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'";
    let v: Option<String> = conn.query_first(sql).await.unwrap();
    assert!(v.as_deref().is_some_and(|v| v.starts_with("TLSv1.")), "required: {v:?}");
    drop(conn);
    proxy.shutdown().await;
    assert!(
        rwproxy::config::Config::parse(
            &config_text(c, "[backend_tls]\nmode = \"verify_ca\"\n"),
            "t",
            &|_| None
        )
        .unwrap_err()
        .to_string()
        .contains("backend_tls.ca_file")
    );

    // Another CA: connections fail (certificate not trusted), nothing runs unencrypted.
    let dir = std::env::temp_dir().join(format!("rwproxy-backend-tls-{}", std::process::id()));
    let (other, _, _) = certificates(&dir, "other");
    let bad = format!(
        "[backend_tls]\nmode = \"verify_ca\"\nca_file = {:?}\n[pool]\ncheckout_timeout_ms = 500\n",
        other.display().to_string()
    );
    let text = config_text(c, "")
        .replace("[pool]\nconnect_timeout_ms = 2000\ncheckout_timeout_ms = 3000\n", "")
        + &bad;
    let proxy = Proxy::start(&text).await;
    let opts = mysql_async::Opts::from(crate::support::opts(proxy.port(), "app", "app", Some(DATABASE)));
    let err = mysql_async::Conn::new(opts).await.map(drop);
    let mut failed = err.is_err();
    if !failed {
        let mut conn = crate::support::connect(proxy.port()).await;
        failed = conn.query_drop("SELECT 1").await.is_err();
    }
    assert!(failed, "a backend whose certificate does not chain to the CA is not used");
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TLS stream's `write_all` can return with its last records still in the TLS buffer when
/// the transport is full; the packet writer must flush them, or they wait for a next write
/// that an idle session never makes (what once hung the 17 MiB blob round trip over TLS). The
/// transport here is a 16 KiB pipe the client empties slowly, so the server's last write
/// always meets a full one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_bytes_of_a_reply_reach_a_slow_tls_client() {
    use rwproxy::protocol::packet::PacketStream;
    use tokio::io::AsyncReadExt;
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
    let dir = std::env::temp_dir().join(format!("rwproxy-tls-flush-{}", std::process::id()));
    let (ca, cert_file, key_file) = certificates(&dir, "flush");
    let acceptor = rwproxy::tls::acceptor(&rwproxy::config::TlsConfig { cert_file, key_file }).unwrap();
    let (client, server) = tokio::io::duplex(16 << 10);
    let (big, tail) = (vec![7u8; 1 << 20], b"\xfe\x00\x00\x02\x00".to_vec());
    let want = big.len() + 4 + tail.len() + 4;
    let server = tokio::spawn(async move {
        let mut s = PacketStream::new(acceptor.accept(server).await.unwrap(), 1 << 30);
        s.write_packet(1, &big).await.unwrap();
        s.write_packet(2, &tail).await.unwrap();
        // Idle, as a session waiting for the client's next command.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::pem_file_iter(&ca).unwrap().next().unwrap().unwrap()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let mut tls = connector.connect(name, client).await.unwrap();
    let (mut got, mut buf) = (0, vec![0u8; 1 << 16]);
    let read_all = async {
        while got < want {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server closed after {got} of {want} bytes");
            got += n;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(20), read_all).await.is_ok();
    assert!(finished, "only {got} of {want} bytes arrived: the last TLS records were never flushed");
    server.abort();
}

//! `caching_sha2_password` with clients that insist on it: Go's go-sql-driver/mysql with
//! `allowNativePasswords=false` (fast authentication, full authentication over TLS, and with
//! the proxy's RSA key without TLS), PyMySQL (with `cryptography`) and Node's two drivers over
//! the RSA exchange; wrong passwords refused on every path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::cluster::{DATABASE, certificates};
use crate::support::{Proxy, cluster, config_text, run_bounded, tls_section};

/// The Go client (`tests/go/clients.go`), built once per test run in GOPATH mode against
/// Debian's driver package (`scripts/ensure-go.sh`).
fn go_clients() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = root.join("target/go/clients");
        let built = run_bounded(
            Command::new("go")
                .args(["build", "-o", out.to_str().unwrap(), "./tests/go/clients.go"])
                .current_dir(&root)
                .env("GO111MODULE", "off")
                .env("GOPATH", "/usr/share/gocode")
                .env("GOCACHE", root.join("target/go/cache")),
            Duration::from_secs(300),
            "go build (run `source scripts/ensure-go.sh` first)",
        );
        assert!(built.status.success(), "go build: {}", String::from_utf8_lossy(&built.stderr));
        out
    })
}

/// Runs the Go client; Ok(JSON it printed) or Err(what it said on stderr).
fn go(port: u16, user: &str, password: &str, ca: Option<&Path>) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new(go_clients());
    cmd.args([&port.to_string(), user, password, DATABASE]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(60), "the Go client");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the Go client prints JSON"))
}

/// A proxy naming caching_sha2 in its greeting, with TLS, an RSA key, and `load` a user
/// that must use TLS.
async fn sha2_proxy(dir: &Path) -> (Proxy, PathBuf) {
    let (ca, cert, key) = certificates(dir, "sha2");
    let rsa = dir.join("rsa.pem");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&rsa)
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&made.stderr));
    let proxy_section = format!(
        "[proxy]\ndefault_auth_plugin = \"caching_sha2_password\"\ncaching_sha2_private_key_file = {:?}\n",
        rsa.display().to_string()
    );
    let text =
        config_text(cluster(), &tls_section(&cert, &key)).replacen("[proxy]\n", &proxy_section, 1).replace(
            "username = \"load\"\npassword = \"load\"\n",
            "username = \"load\"\npassword = \"load\"\nrequire_tls = true\n",
        );
    (Proxy::start(&text).await, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_logs_in_with_caching_sha2_only_over_every_path() {
    let dir = std::env::temp_dir().join(format!("rwproxy-go-{}", std::process::id()));
    let (proxy, ca) = sha2_proxy(&dir).await;
    let port = proxy.port();
    let (go_fast, tls_user, tls_full, rsa_full) = tokio::task::spawn_blocking(move || {
        (
            go(port, "app", "app", None),
            go(port, "load", "load", Some(&ca)),
            go(port, "hashed", "secret", Some(&ca)),
            go(port, "hashed", "secret", None),
        )
    })
    .await
    .unwrap();
    // Fast authentication (a clear password configured), no TLS: the whole workload.
    let v = go_fast.expect("fast authentication");
    assert_eq!((v["user"].as_str(), v["prepared"].as_str()), (Some("app"), Some("42 go!")), "{v}");
    assert_eq!((v["rows"].as_i64(), v["inside"].as_i64()), (Some(20_000), Some(2)), "{v}");
    // Over TLS, the certificate verified: a require_tls user, and full authentication for a
    // user known only by its hash (the client sends the password inside TLS).
    assert_eq!(tls_user.expect("TLS, require_tls user")["user"], "load");
    assert_eq!(tls_full.expect("full authentication over TLS")["user"], "hashed");
    // Without TLS: full authentication with the proxy's RSA key.
    assert_eq!(rsa_full.expect("full authentication with RSA")["user"], "hashed");
    let refused = tokio::task::spawn_blocking(move || {
        [go(port, "hashed", "wrong", None), go(port, "app", "wrong", None), go(port, "load", "load", None)]
    })
    .await
    .unwrap();
    for r in refused {
        let e = r.expect_err("refused");
        assert!(e.contains("1045"), "ERR 1045: {e}");
    }
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_and_node_use_the_rsa_exchange_without_tls() {
    let dir = std::env::temp_dir().join(format!("rwproxy-rsa-{}", std::process::id()));
    let (proxy, _ca) = sha2_proxy(&dir).await;
    let port = proxy.port();
    let script = format!(
        r#"
import pymysql
def login(pw):
    c = pymysql.connect(host="127.0.0.1", port={port}, user="hashed", password=pw, database="{DATABASE}")
    with c.cursor() as cur: cur.execute("SELECT CURRENT_USER()"); return c._auth_plugin_name, cur.fetchone()[0].split("@")[0]
print("rsa", *login("secret"))
try:
    login("wrong"); print("wrong accepted")
except pymysql.err.OperationalError as e:
    print("wrong", e.args[0])
"#
    );
    let out = run_bounded(Command::new("python3").args(["-c", &script]), Duration::from_secs(60), "PyMySQL");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rsa caching_sha2_password hashed") && stdout.contains("wrong 1045"), "{stdout}");
    let node = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    let out = run_bounded(
        Command::new("node")
            .args(["rsa.mjs", &port.to_string(), "hashed", "secret", DATABASE])
            .current_dir(&node),
        Duration::from_secs(60),
        "node rsa.mjs",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((v["mysql2"].as_str(), v["mariadb"].as_str()), (Some("hashed"), Some("hashed")), "{v}");
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user configured by a MySQL `caching_sha2_password` hash (`$A$005$…`): full
/// authentication (over TLS, or with the RSA key) checks the password against it and fills the
/// fast-path cache, after which a plain connection logs in by fast authentication alone; a
/// client that answers with native password (mysqlclient) is switched to caching_sha2; the
/// backends are logged in to as that user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_sha2_hash_in_the_config_logs_in_by_full_then_fast_authentication() {
    let dir = std::env::temp_dir().join(format!("rwproxy-crypt-{}", std::process::id()));
    let (ca, cert, key) = certificates(&dir, "crypt");
    let hash =
        rwproxy::protocol::sha2_crypt::Sha2Crypt::new(b"secret", *b"abcdefghijklmnopqrst").unwrap().text();
    let text = config_text(cluster(), &tls_section(&cert, &key))
        .replacen("[proxy]\n", "[proxy]\ndefault_auth_plugin = \"caching_sha2_password\"\n", 1)
        .replace(
            "password_hash = \"*14E65567ABDB5135D0CFD9A70B3032C179A49EE7\"",
            &format!("password_hash = {hash:?}"),
        );
    assert!(text.contains("$A$005$abcdefghijklmnopqrst"), "the hashed user now has a caching_sha2 hash");
    let proxy = Proxy::start(&text).await;
    let port = proxy.port();
    let ca2 = ca.clone();
    let (before, full, fast, wrong) = tokio::task::spawn_blocking(move || {
        (
            go(port, "hashed", "secret", None),
            go(port, "hashed", "secret", Some(&ca2)),
            go(port, "hashed", "secret", None),
            go(port, "hashed", "wrong", Some(&ca2)),
        )
    })
    .await
    .unwrap();
    // No TLS, no RSA key, nothing cached: nothing can check the password.
    assert!(before.expect_err("refused before any full authentication").contains("1045"));
    assert_eq!(full.expect("full authentication over TLS")["user"], "hashed");
    let v = fast.expect("fast authentication from the cache, no TLS");
    assert_eq!((v["user"].as_str(), v["rows"].as_i64()), (Some("hashed"), Some(20_000)), "{v}");
    assert!(wrong.expect_err("wrong password").contains("1045"));
    // mysqlclient answers with native password: switched to caching_sha2 (its plugin), over TLS.
    let script = format!(
        r#"
import MySQLdb
c = MySQLdb.connect(host="127.0.0.1", port={port}, user="hashed", password="secret", database="{DATABASE}", ssl={{"ca": "{ca}"}})
cur = c.cursor(); cur.execute("SELECT CURRENT_USER()"); print("mysqlclient", cur.fetchone()[0].split("@")[0])
"#,
        ca = ca.display()
    );
    let out =
        run_bounded(Command::new("python3").args(["-c", &script]), Duration::from_secs(60), "mysqlclient");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("mysqlclient hashed"), "{stdout}");
    // COM_CHANGE_USER to that user: switched to caching_sha2, answered from the cache.
    use mysql_async::prelude::*;
    let mut c = crate::support::connect(port).await;
    let to = |pw: &str| {
        mysql_async::ChangeUserOpts::default().with_user(Some("hashed".into())).with_pass(Some(pw.into()))
    };
    let e = c.change_user(to("wrong")).await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Server(ref s) if s.code == 1045), "{e}");
    let mut c = crate::support::connect(port).await;
    c.change_user(to("secret")).await.expect("change to a caching_sha2-hash user");
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(who.is_some_and(|w| w.starts_with("hashed@")), "the backends see the new user");
    drop(c);
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `mariadb` CLI (libmariadb's caching_sha2 plugin) and mysql-connector-python's newest
/// release (no native-password fallback) over TLS, certificate verified: full authentication
/// for a user known only by its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_mysql_connector_authenticate_with_caching_sha2_over_tls() {
    let dir = std::env::temp_dir().join(format!("rwproxy-sha2-cli-{}", std::process::id()));
    let (proxy, ca) = sha2_proxy(&dir).await;
    let port = proxy.port();
    let ca_flag = format!("--ssl-ca={}", ca.display());
    let args = ["-uhashed", "-psecret", "--ssl", &ca_flag, "--ssl-verify-server-cert", "-e"];
    let sql = "SELECT CURRENT_USER(), @@version_comment";
    let (ok, out, err) =
        crate::support::cli(port, &[&args[..], &[sql, "--default-auth=caching_sha2_password"]].concat());
    assert!(ok && out.contains("hashed@"), "the CLI with caching_sha2 over TLS: {out}{err}");
    let script = format!(
        r#"
import mysql.connector
m = mysql.connector.connect(host="127.0.0.1", port={port}, user="hashed", password="secret", database="{DATABASE}",
                            auth_plugin="caching_sha2_password", ssl_ca="{ca}", ssl_verify_cert=True)
cur = m.cursor(); cur.execute("SELECT CURRENT_USER()"); print("connector", mysql.connector.__version__, cur.fetchone()[0])
"#,
        ca = ca.display()
    );
    let out = run_bounded(
        Command::new("python3").args(["-c", &script]),
        Duration::from_secs(60),
        "mysql-connector",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hashed@"), "{stdout}");
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

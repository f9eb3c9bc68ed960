//! Login: passwords, hashes, auth switch, limits, initial schema.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use rwproxy::protocol::auth::{NATIVE_PLUGIN, scramble};
use rwproxy::protocol::handshake::{HandshakeResponse, HandshakeV10, parse_auth_switch};
use rwproxy::protocol::reply::parse_err;
use rwproxy::protocol::{PacketStream, caps};

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, BASE_CAPS};
use crate::support::{Proxy, cli, cluster, config_text, opts};

fn server_error(e: mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.message),
        other => panic!("expected a server error, got {other}"),
    }
}

async fn login(port: u16, user: &str, pw: &str, db: Option<&str>) -> Result<Conn, (u16, String)> {
    Conn::new(Opts::from(opts(port, user, pw, db))).await.map_err(server_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_1045_like_the_server() {
    let proxy = Proxy::default().await;
    let direct = cluster().primary.port;
    for (user, pw) in [(APP_USER, "wrong"), ("nobody", "x")] {
        let p = login(proxy.port(), user, pw, None).await.err().unwrap();
        let d = login(direct, user, pw, None).await.err().unwrap();
        assert_eq!(p.0, 1045);
        assert_eq!(p, d, "same code and message as MariaDB");
    }
    let (ok, _, err) = cli(proxy.port(), &["-uapp", "--password=", "-e", "SELECT 1"]);
    assert!(!ok);
    assert!(err.contains("Access denied for user 'app'@'127.0.0.1' (using password: NO)"), "{err}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schema_gets_1049() {
    let proxy = Proxy::default().await;
    let p = login(proxy.port(), APP_USER, APP_PASSWORD, Some("no_such_db")).await.err().unwrap();
    let d = login(cluster().primary.port, APP_USER, APP_PASSWORD, Some("no_such_db")).await.err().unwrap();
    assert_eq!(p.0, 1049);
    assert_eq!(p, d);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_configured_only_by_hash_logs_in_to_the_backend() {
    let proxy = Proxy::default().await;
    let mut c = login(proxy.port(), "hashed", "secret", Some(DATABASE)).await.unwrap();
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("hashed@%"));
    assert_eq!(login(proxy.port(), "hashed", "Secret", None).await.err().unwrap().0, 1045);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_and_proxy_connection_limits_give_1040() {
    let proxy = Proxy::default().await;
    let a = login(proxy.port(), "other", "other", None).await.unwrap();
    let b = login(proxy.port(), "other", "other", None).await.unwrap();
    let e = login(proxy.port(), "other", "other", None).await.err().unwrap();
    assert_eq!(e.0, 1040, "{e:?}");
    drop((a, b));
    proxy.shutdown().await;

    let proxy =
        Proxy::start(&config_text(cluster(), "").replace("[proxy]\n", "[proxy]\nmax_connections = 1\n"))
            .await;
    let _first = login(proxy.port(), APP_USER, APP_PASSWORD, None).await.unwrap();
    let e = login(proxy.port(), APP_USER, APP_PASSWORD, None).await.err().unwrap();
    assert_eq!(e, (1040, "Too many connections".into()));
    drop(_first);
    proxy.shutdown().await;
}

/// A MySQL 8/9 client library answers with caching_sha2_password: a user with a clear
/// password gets its fast authentication (AuthMoreData 0x03, then OK); a user known only by its
/// native hash, without TLS, is switched to mysql_native_password with the greeting's salt; a
/// wrong scramble is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_clients_get_fast_auth_or_a_switch_to_native_password() {
    use rwproxy::protocol::auth::sha2_scramble;
    let proxy = Proxy::default().await;
    let start = |user: &'static str| async move {
        let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let mut s = PacketStream::new(tcp, 1 << 20);
        let g = s.read_packet(Some(0)).await.unwrap().unwrap();
        (s, HandshakeV10::decode(g.payload()).unwrap(), user)
    };
    let response = |user: &str, auth_response: Vec<u8>| HandshakeResponse {
        capabilities: BASE_CAPS | caps::PLUGIN_AUTH_LENENC_DATA,
        max_packet: 1 << 24,
        collation: 45,
        username: user.as_bytes().to_vec(),
        auth_response,
        database: None,
        auth_plugin: Some(b"caching_sha2_password".to_vec()),
        mariadb_caps: 0,
    };
    let (mut s, g, user) = start(APP_USER).await;
    s.write_packet(1, &response(user, sha2_scramble(&g.salt, APP_PASSWORD.as_bytes())).encode())
        .await
        .unwrap();
    let more = s.read_packet(Some(2)).await.unwrap().unwrap();
    assert_eq!(more.payload(), [0x01, 0x03], "fast authentication succeeded");
    let ok = s.read_packet(Some(3)).await.unwrap().unwrap();
    assert_eq!(ok.payload()[0], 0x00, "{:?}", parse_err(ok.payload()));

    let (mut s, g, user) = start("hashed").await;
    s.write_packet(1, &response(user, sha2_scramble(&g.salt, b"secret")).encode()).await.unwrap();
    let switch = s.read_packet(Some(2)).await.unwrap().unwrap();
    let (plugin, salt) = parse_auth_switch(switch.payload()).unwrap();
    assert_eq!(plugin, NATIVE_PLUGIN.as_bytes());
    assert_eq!(salt, g.salt, "the switch reuses the greeting's salt");
    s.write_packet(3, &scramble(&salt, b"secret")).await.unwrap();
    let ok = s.read_packet(Some(4)).await.unwrap().unwrap();
    assert_eq!(ok.payload()[0], 0x00, "{:?}", parse_err(ok.payload()));

    let (mut s, g, user) = start(APP_USER).await;
    s.write_packet(1, &response(user, sha2_scramble(&g.salt, b"wrong")).encode()).await.unwrap();
    let err = s.read_packet(Some(2)).await.unwrap().unwrap();
    assert_eq!(parse_err(err.payload()).map(|e| e.0), Some(1045));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_request_gets_a_clear_error() {
    let proxy = Proxy::default().await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut s = PacketStream::new(tcp, 1 << 20);
    s.read_packet(Some(0)).await.unwrap().unwrap();
    let mut ssl_request = (BASE_CAPS | caps::SSL).to_le_bytes().to_vec();
    ssl_request.extend_from_slice(&[0, 0, 0, 1, 45]);
    ssl_request.extend_from_slice(&[0; 23]);
    s.write_packet(1, &ssl_request).await.unwrap();
    let err = s.read_packet(Some(2)).await.unwrap().unwrap();
    let (code, msg) = parse_err(err.payload()).unwrap();
    assert_eq!(code, 1043);
    assert!(msg.contains("SSL is not configured"), "{msg}");
    // Without TLS the same client works.
    let (ok, out, err) = cli(proxy.port(), &["-uapp", "-papp", "--skip-ssl", "-N", "-e", "SELECT 1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1");
    assert!(raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.is_ok());
    proxy.shutdown().await;
}

//! The admin and metrics listeners (issue 11, item 6): a token by default, `/metrics` under
//! the token on the admin listener, and idle or oversized HTTP clients that cannot stop the
//! listeners, let alone MySQL logins.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Proxy, cluster, config_text, connect};

async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await;
    out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Without a token and without `allow_without_token`, the admin API answers only the probes;
/// with a token, `/metrics` on the admin listener needs it too (the metrics listener does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_a_token_unless_told_otherwise() {
    let closed = config_text(cluster(), "").replace("allow_without_token = true\n", "");
    let proxy = Proxy::start(&closed).await;
    assert_eq!(get(proxy.admin, "/status", None).await, 401, "no token configured: closed");
    assert_eq!(get(proxy.admin, "/live", None).await, 200);
    assert_eq!(get(proxy.admin, "/ready", None).await, 200);
    assert_eq!(get(proxy.admin, "/metrics", None).await, 401, "metrics on the admin port: the token applies");
    assert_eq!(get(proxy.metrics, "/metrics", None).await, 200, "the metrics listener needs none");
    proxy.shutdown().await;
    let with_token = closed.replace("[admin]\n", "[admin]\ntoken = \"t0k3n\"\n");
    let proxy = Proxy::start(&with_token).await;
    assert_eq!(get(proxy.admin, "/metrics", None).await, 401);
    assert_eq!(get(proxy.admin, "/metrics", Some("t0k3n")).await, 200);
    assert_eq!(get(proxy.admin, "/status", Some("t0k3n")).await, 200);
    proxy.shutdown().await;
    let open = config_text(cluster(), "").replace(
        "listen = \"127.0.0.1:0\"\nallow_without_token",
        "listen = \"0.0.0.0:0\"\ntoken = \"x\"\nallow_without_token",
    );
    let e = rwproxy::config::Config::parse(&open, "t", &|_| None).unwrap_err().to_string();
    assert!(e.starts_with("admin.allow_without_token: is only allowed on a loopback"), "{e}");
}

/// 1100 idle connections to the metrics listener, and a request announcing a 10 MiB body: MySQL
/// logins go on, the idle connections are closed (header timeout), the listener serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_oversized_http_clients_cannot_stop_anything() {
    let proxy = Proxy::default().await;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(TcpStream::connect(proxy.metrics).await.unwrap());
    }
    let started = Instant::now();
    let mut c = connect(proxy.port()).await;
    let login = started.elapsed();
    mysql_async::prelude::Queryable::query_drop(&mut c, "DO 1").await.unwrap();
    let mut big = TcpStream::connect(proxy.admin).await.unwrap();
    big.write_all(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n").await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), big.read_to_string(&mut out)).await;
    assert!(out.starts_with("HTTP/1.1 413"), "an oversized body is refused unread: {out:?}");
    // The idle ones are closed within the header timeout (5 s); then the listener serves.
    let mut closed = 0;
    for s in &mut idle {
        let mut b = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_secs(8), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, idle.len(), "every idle HTTP connection was closed");
    drop(idle);
    assert_eq!(get(proxy.metrics, "/metrics", None).await, 200);
    eprintln!("with 1100 idle HTTP connections a MySQL login took {login:?}");
    proxy.shutdown().await;
}

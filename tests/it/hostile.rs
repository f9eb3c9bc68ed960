//! Hostile and clumsy clients (issue 11): half-open and stalled handshakes, huge headers and
//! names before login, idle clients inside transactions, client-chosen error codes, huge
//! statements in the digest table, backends lost mid-statement. An innocent session runs
//! through each and must see no error and no wrong result.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Proxy, cluster, config_text, connect, opts, table};

/// A session that must keep working whatever the others do.
struct Innocent(mysql_async::Conn);

impl Innocent {
    async fn new(port: u16) -> Innocent {
        Innocent(connect(port).await)
    }

    async fn still_fine(&mut self) {
        let v: u32 = self.0.query_first("SELECT 41 + 1").await.expect("innocent session").unwrap();
        assert_eq!(v, 42);
    }
}

/// Waits (bounded) until the peer closes `s`; true when it did.
async fn closed_by_peer(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            return true;
        }
    }
    false
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// 3000 connections that never answer the greeting: a real client still logs in (the oldest
/// pending handshakes make room; they never hold a `max_connections` slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_never_lock_out_a_login() {
    let proxy = Proxy::start(&config_text(cluster(), "")).await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let mut idle = Vec::new();
    for _ in 0..3000 {
        idle.push(TcpStream::connect(proxy.addr).await.expect("half-open connection"));
    }
    let started = Instant::now();
    let mut c = connect(proxy.port()).await;
    let took = started.elapsed();
    let v: u32 = c.query_first("SELECT 7").await.unwrap().unwrap();
    assert_eq!(v, 7);
    let (_, status) = proxy.admin_get("/status").await;
    eprintln!("with 3000 half-open connections a login took {took:?}; {}", status["logins"]);
    innocent.still_fine().await;
    drop(idle);
    proxy.shutdown().await;
}

/// A client that stops in the middle of the handshake is closed after `connect_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_after_the_connect_timeout() {
    let proxy =
        Proxy::start(&config_text(cluster(), "").replace("[proxy]\n", "[proxy]\nconnect_timeout_ms = 300\n"))
            .await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    // Half a handshake response: a header announcing 100 bytes, then 10 of them.
    s.write_all(&[100, 0, 0, 1, 0x85, 0xa6, 0xff, 0x01, 0, 0, 0, 1, 0x21, 0]).await.unwrap();
    assert!(closed_by_peer(&mut s, Duration::from_secs(10)).await, "the proxy closed the stalled client");
    innocent.still_fine().await;
    proxy.shutdown().await;
}

/// Before login, packets are capped at a few KiB: 50 connections announcing 16 MiB packets
/// are closed and cost (almost) no memory; a 10 KB user name is answered with a short message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_clients_cannot_make_the_proxy_hold_memory() {
    let proxy = Proxy::default().await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let before = rss_kib();
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 1]).await.unwrap();
        s.write_all(&vec![b'x'; 1 << 16]).await.unwrap_or(());
        conns.push(s);
    }
    for s in &mut conns {
        assert!(
            closed_by_peer(s, Duration::from_secs(10)).await,
            "an oversized pre-login packet closes the connection"
        );
    }
    let raised = rss_kib().saturating_sub(before);
    eprintln!("50 unauthenticated 16 MiB headers raised the test process's RSS by {raised} KiB");
    let long_name = "u".repeat(10_000);
    let err = mysql_async::Conn::new(opts(proxy.port(), &long_name, "x", None)).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("1045") || msg.contains("Access denied"), "{msg}");
    assert!(msg.len() < 400, "the refusal does not echo the whole name: {} bytes", msg.len());
    innocent.still_fine().await;
    proxy.shutdown().await;
}

/// A client idle inside a transaction is closed after `idle_transaction_timeout_ms`; its locks
/// go with it. An idle client outside one is closed after `wait_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_and_their_transactions_rolled_back() {
    let extra = "[proxy]\nidle_transaction_timeout_ms = 400\nwait_timeout_ms = 1500\n";
    let cfg = config_text(cluster(), "").replace("[proxy]\n", extra);
    let proxy = Proxy::start(&cfg).await;
    let t = table("hostile_idle_tx");
    cluster()
        .primary
        .sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT); INSERT INTO {t} VALUES (1, 0)"));
    let mut holder = connect(proxy.port()).await;
    holder.query_drop("BEGIN").await.unwrap();
    holder.query_drop(format!("UPDATE {t} SET v = 1 WHERE id = 1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(holder.query_drop("SELECT 1").await.is_err(), "the idle transaction's client was closed");
    let mut other = connect(proxy.port()).await;
    other.query_drop("SET SESSION innodb_lock_wait_timeout = 2").await.unwrap();
    other.query_drop(format!("UPDATE {t} SET v = 2 WHERE id = 1")).await.expect("the lock was released");
    let v: u32 = other
        .query_first(format!("SELECT /* rwproxy:writer */ v FROM {t} WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 2, "the idle transaction was rolled back, the other write stands");
    // The sweeper checks every 100 ms: idle 3 s against a 1.5 s limit leaves it ample room.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(other.query_drop("SELECT 1").await.is_err(), "idle past wait_timeout_ms: closed");
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

/// Error codes a client picks (`SIGNAL … MYSQL_ERRNO`) label at most 100 series; digest texts
/// of huge statements are capped at 2048 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_chosen_codes_and_huge_statements_stay_bounded() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    for code in 1001..1200u32 {
        let sql = format!("SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = {code}");
        assert!(c.query_drop(sql).await.is_err());
    }
    let metrics = proxy.metrics_text().await;
    let labels = metrics.lines().filter(|l| l.starts_with("rwproxy_client_errors_total{")).count();
    assert!(labels <= 101, "{labels} error-code series");
    let huge = format!("SELECT {}", vec!["1"; 30_000].join(" + "));
    let _ = c.query_drop(&huge).await;
    let (_, d) = proxy.admin_get("/digests?top=500&order=count").await;
    let longest =
        d["digests"].as_array().unwrap().iter().map(|x| x["digest_text"].as_str().unwrap_or("").len()).max();
    assert!(longest.unwrap_or(0) <= 2048, "digest text of {longest:?} bytes");
    proxy.shutdown().await;
}

/// A read whose backend connection dies without a reply, on every attempt: the client gets a
/// server-range error (1927, not the client-range 2013 that libmariadb reports as a malformed
/// packet), and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_lost_under_a_statement_is_a_server_range_error() {
    let reader = crate::support::fake::start(crate::support::fake::Misbehave::Close).await;
    let proxy = Proxy::start(&crate::support::fake::config_with_reader(&reader, "")).await;
    let mut c = connect(proxy.port()).await;
    let sql = format!("SELECT '{}'", crate::support::fake::FAIL_MARK);
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1927, "{e:?}"),
        other => panic!("expected ERR 1927, got {other:?}"),
    }
    c.query_drop("DO 1").await.expect("the session goes on");
    proxy.shutdown().await;
}

/// The process's descriptor limit: too low a hard limit for the config refuses to start with
/// what to set; a low soft limit is raised (the proxy then runs).
#[test]
fn a_descriptor_limit_too_low_for_the_config_is_refused_or_raised() {
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    let cfg = std::env::temp_dir().join(format!("rwproxy-fds-{}.toml", std::process::id()));
    std::fs::write(&cfg, config_text(cluster(), "")).unwrap();
    let run = |ulimit: &str| {
        let script = format!("ulimit {ulimit} 100; exec {bin} --config {}", cfg.display());
        std::process::Command::new("sh")
            .args(["-c", &script])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let hard = run("-n").wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&hard.stderr);
    assert!(!hard.status.success(), "refused to start: {err}");
    assert!(err.contains("file descriptors") && err.contains("ulimit -Hn"), "{err}");
    let mut soft = run("-Sn");
    std::thread::sleep(Duration::from_millis(1500));
    let still_running = soft.try_wait().unwrap().is_none();
    let _ = soft.kill();
    let out = soft.wait_with_output().unwrap();
    assert!(still_running, "a low soft limit is raised: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(cfg);
}

/// Password guessing from one address: after three free failures each refusal waits longer
/// (100 ms, doubling), counted in `/status`; an innocent session is not slowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_slowed_per_address() {
    let proxy = Proxy::default().await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let started = Instant::now();
    for i in 0..7 {
        let guess = format!("guess{i}");
        let e = mysql_async::Conn::new(opts(proxy.port(), "app", &guess, None)).await.unwrap_err();
        assert!(e.to_string().contains("Access denied"), "{e}");
        innocent.still_fine().await;
    }
    let took = started.elapsed();
    let (_, status) = proxy.admin_get("/status").await;
    eprintln!(
        "7 wrong passwords from one address took {took:?} ({:.1} guesses/s); {}",
        7.0 / took.as_secs_f64(),
        status["logins"]
    );
    assert_eq!(status["logins"]["refusals_delayed_total"], 4, "the 4th to 7th refusals were delayed");
    proxy.shutdown().await;
}

/// Prepared statements per session are bounded in count and bytes (ERR 1461, as the server
/// answers at its own limit); closing one makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_per_session_are_bounded() {
    use crate::support::raw;
    use rwproxy::protocol::ReplyKind;
    let extra = "[proxy]\nmax_prepared_statements_per_session = 5\nmax_prepared_bytes_per_session = 2048\n";
    let proxy = Proxy::start(&config_text(cluster(), "").replace("[proxy]\n", extra)).await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let mut c = raw::connect(proxy.port(), "app", "app", None, 0).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(c.prepare(&format!("SELECT {i}")).await);
    }
    let prepare = |sql: String| {
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        p
    };
    let refused = c.command(&prepare("SELECT 5".into()), ReplyKind::Prepare).await;
    assert_eq!(raw::err_code(&refused), Some(1461), "the sixth is refused");
    let mut close = vec![0x19];
    close.extend_from_slice(&ids[0].to_le_bytes());
    c.stream.write_packet(0, &close).await.unwrap();
    c.prepare("SELECT 6").await;
    let mut fresh = raw::connect(proxy.port(), "app", "app", None, 0).await.unwrap();
    let long = fresh.command(&prepare(format!("SELECT '{}'", "x".repeat(3000))), ReplyKind::Prepare).await;
    assert_eq!(raw::err_code(&long), Some(1461), "more statement text than the session may hold");
    innocent.still_fine().await;
    proxy.shutdown().await;
}

/// A client that asks for a large result and stops reading: after `net_write_timeout_ms`
/// its session is closed and the writer connection it held goes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    use crate::support::raw;
    let extra = "[proxy]\nnet_write_timeout_ms = 500\n";
    let proxy = Proxy::start(&config_text(cluster(), "").replace("[proxy]\n", extra)).await;
    let mut innocent = Innocent::new(proxy.port()).await;
    let db = Some(crate::support::cluster::DATABASE);
    let mut stalled = raw::connect(proxy.port(), "app", "app", db, 0).await.unwrap();
    let sql = b"\x03SELECT /* rwproxy:writer */ REPEAT('x', 1000000) FROM seq_1_to_200";
    stalled.stream.write_packet(0, sql).await.unwrap();
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, status) = proxy.admin_get("/status").await;
        if status["client_connections"] == 1 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the stalled reader's session was closed");
    let (_, servers) = proxy.admin_get("/servers").await;
    let in_use: u64 = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pool"]["in_use"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(in_use, 0, "no backend connection is held for it");
    innocent.still_fine().await;
    drop(stalled);
    proxy.shutdown().await;
}

/// A statement time limit (`routing.max_statement_time_ms`, or a `/* rwproxy:timeout_ms=N */`
/// hint) cancels the statement on its backend (`KILL QUERY`): the client gets ERR 1317 (or,
/// for `SLEEP()`, its interrupted answer 1, as directly) and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_over_their_time_limit_are_cancelled_on_the_backend() {
    let interrupted = |r: Result<Option<u32>, mysql_async::Error>| match r {
        Err(mysql_async::Error::Server(e)) => e.code == 1317,
        Ok(Some(1)) => true,
        _ => false,
    };
    let cfg = config_text(cluster(), "[routing]\nmax_statement_time_ms = 300\n");
    let proxy = Proxy::start(&cfg).await;
    let mut c = connect(proxy.port()).await;
    let started = Instant::now();
    assert!(
        interrupted(c.query_first("SELECT /* rwproxy:writer */ SLEEP(20)").await),
        "the limit cancelled it"
    );
    let cancelled_after = started.elapsed();
    let v: u32 = c.query_first("SELECT /* rwproxy:timeout_ms=5000 */ 7").await.unwrap().unwrap();
    assert_eq!(v, 7, "the session goes on; a hint's longer limit lets a statement finish");
    assert!(
        interrupted(c.query_first("SELECT /* rwproxy:timeout_ms=200 */ SLEEP(20)").await),
        "so does a hint"
    );
    eprintln!("a 20 s statement with a 300 ms limit ended after {cancelled_after:?}");
    proxy.shutdown().await;
}

/// Out of descriptors at run time (the limit lowered under a running proxy with `prlimit`):
/// new clients get ERR 1040 at once instead of waiting in the backlog; with descriptors back,
/// logins work again.
#[test]
fn at_descriptor_exhaustion_new_clients_get_1040() {
    use std::io::Read;
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    let port = crate::support::cluster::free_port();
    let cfg = std::env::temp_dir().join(format!("rwproxy-emfile-{}.toml", std::process::id()));
    let text = config_text(cluster(), "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the proxy listens");
    std::thread::sleep(Duration::from_millis(500));
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let lowered = format!("--nofile={}:{}", open + 2, open + 2);
    assert!(
        std::process::Command::new("prlimit").args(["--pid", &pid, &lowered]).status().unwrap().success()
    );
    let mut refused = 0;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut head = [0u8; 7];
        if s.read_exact(&mut head).is_ok()
            && head[4] == 0xff
            && u16::from_le_bytes([head[5], head[6]]) == 1040
        {
            refused += 1;
        }
        held.push(s);
    }
    let _ = std::process::Command::new("prlimit").args(["--pid", &pid, "--nofile=20000:20000"]).status();
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(cfg);
    assert!(refused > 0, "clients past the limit were told 1040");
}

//! Bad input, dead backends, disconnects and shutdown never harm other sessions.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use rwproxy::protocol::reply::parse_err;
use rwproxy::protocol::{ReplyKind, errcode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE, free_port};
use crate::support::raw;
use crate::support::{Proxy, cluster, config_text, connect};

/// Sends `bytes` and reads until the proxy closes (bounded); returns what came back.
async fn send_garbage(port: u16, after_login: bool, bytes: Vec<u8>) -> Vec<u8> {
    let mut s = if after_login {
        let r = raw::connect(port, APP_USER, APP_PASSWORD, None, 0).await.unwrap();
        r.stream.into_inner()
    } else {
        Box::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap()) as raw::Stream
    };
    let _ = s.write_all(&bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_malformed_packets_harms_no_other_session() {
    let proxy = Proxy::default().await;
    let mut good = connect(proxy.port()).await;
    let garbage: Vec<(bool, Vec<u8>)> = vec![
        (false, vec![0xff; 64]),                       // nonsense handshake response
        (false, vec![5, 0, 0, 1, 1, 2, 3, 4, 5]),      // truncated handshake response
        (false, vec![1, 0, 0, 9, 0]),                  // wrong sequence id
        (true, vec![1, 0, 0, 7, 0x03]),                // command with sequence 7
        (true, vec![0xff, 0xff, 0xff, 0, 0x03, b'S']), // 16 MiB header, then nothing
        (true, vec![0, 0, 0, 0]),                      // empty command packet
        (true, vec![3, 0, 0, 0, 0x17, 1, 0]),          // COM_STMT_EXECUTE too short
        (true, vec![2, 0, 0, 0, 0x11, 0xff]),          // COM_CHANGE_USER garbage
        (true, (0..2000u32).map(|i| (i * 7919 % 256) as u8).collect()),
    ];
    let mut tasks = Vec::new();
    for round in 0..5 {
        for (after_login, bytes) in &garbage {
            tasks.push(tokio::spawn(send_garbage(proxy.port(), *after_login, bytes.clone())));
        }
        let n: Option<u32> = good.query_first(format!("SELECT {round} + 1")).await.unwrap();
        assert_eq!(n, Some(round + 1));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: Option<u32> = good.query_first("SELECT COUNT(*) FROM seq_1_to_1000").await.unwrap();
    assert_eq!(n, Some(1000));
    let mut fresh = connect(proxy.port()).await;
    assert_eq!(fresh.query_first::<u8, _>("SELECT 7").await.unwrap(), Some(7));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packet_gets_1153_and_unknown_command_1047() {
    let cfg = config_text(cluster(), "").replace("[proxy]\n", "[proxy]\nmax_allowed_packet = 4096\n");
    let proxy = Proxy::start(&cfg).await;
    let mut r = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.unwrap();
    let reply = r.command(&[0x05, b'x'], ReplyKind::Single).await;
    let (code, msg) = parse_err(&reply[0]).unwrap();
    assert_eq!((code, msg.as_str()), (errcode::UNKNOWN_COMMAND.0, "Unknown command 0x05"));
    assert_eq!(r.query("SELECT 1").await.len(), 5, "session still usable");
    let big = format!("SELECT '{}'", "x".repeat(5000));
    let mut p = vec![0x03];
    p.extend_from_slice(big.as_bytes());
    r.stream.write_packet(0, &p).await.unwrap();
    let err = r.stream.read_packet(None).await.unwrap().unwrap();
    assert_eq!(parse_err(err.payload()).unwrap().0, 1153);
    assert!(r.stream.read_packet(None).await.map(|p| p.is_none()).unwrap_or(true), "then closed");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_mid_reply_leaves_the_proxy_healthy() {
    let proxy = Proxy::default().await;
    for _ in 0..5 {
        let mut r = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.unwrap();
        r.stream.write_packet(0, b"\x03SELECT seq, REPEAT('x', 200) FROM seq_1_to_500000").await.unwrap();
        let _first = r.stream.read_packet(None).await.unwrap();
        drop(r); // vanish with megabytes still to come
    }
    let mut c = connect(proxy.port()).await;
    let n: Option<u64> = c.query_first("SELECT COUNT(*) FROM seq_1_to_100000").await.unwrap();
    assert_eq!(n, Some(100_000));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_gives_an_error_naming_the_hostgroup_not_a_hang() {
    let dead = free_port();
    let cfg = config_text(cluster(), "").replacen(
        &format!("address = \"{}\"", cluster().primary.addr()),
        &format!("address = \"127.0.0.1:{dead}\""),
        1,
    );
    let proxy = Proxy::start(&cfg).await;
    let start = Instant::now();
    // Login succeeds without a backend; a write gets the error, reads still go to replicas.
    let mut r = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.unwrap();
    let reply = r.query("DO 1").await;
    let (code, msg) = parse_err(&reply[0]).unwrap();
    assert_eq!(code, 9001);
    assert!(msg.contains("hostgroup 0"), "{msg}");
    assert_eq!(r.query("SELECT 1").await.len(), 5, "reads are served by the replicas");
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from(crate::support::opts(
        proxy.port(),
        APP_USER,
        APP_PASSWORD,
        None,
    )))
    .await
    .unwrap();
    let e = c.query_drop("SELECT 1 FOR UPDATE").await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("hostgroup 0"), "{msg}");
    assert!(matches!(e, mysql_async::Error::Server(ref s) if s.code == 9001), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10), "answered, did not hang");
    // Logging in with a schema still works (checked on a replica); writes still fail.
    let mut with_db = mysql_async::Conn::new(mysql_async::Opts::from(crate::support::opts(
        proxy.port(),
        APP_USER,
        APP_PASSWORD,
        Some(DATABASE),
    )))
    .await
    .unwrap();
    let e = with_db.query_drop("DO 1").await.unwrap_err();
    assert!(e.to_string().contains("hostgroup 0"), "{e}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_statement_finish_then_closes() {
    let proxy = Proxy::default().await;
    let port = proxy.port();
    let mut busy = connect(port).await;
    let mut idle = connect(port).await;
    idle.query_drop("SELECT 1").await.unwrap();
    let running = tokio::spawn(async move {
        let r: Option<u8> = busy.query_first("SELECT SLEEP(1) + 5").await.unwrap();
        r
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(proxy.shutdown());
    assert_eq!(running.await.unwrap(), Some(5), "the running statement completed");
    stopping.await.unwrap();
    assert!(idle.query_drop("SELECT 1").await.is_err(), "idle session was closed");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "listener closed");
}

/// Runs the real binary with debug logging through failed and successful logins, a change of
/// user and a backend error; no password may appear in its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_appears_in_logs() {
    let port = free_port();
    let cfg = config_text(cluster(), "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
        1,
    );
    let path = std::env::temp_dir().join(format!("rwproxy-logs-{}.toml", std::process::id()));
    std::fs::write(&path, cfg).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .arg("-c")
        .arg(&path)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "proxy binary did not start");
    let secret_attempt = "Tr0ub4dor&3-wrong";
    let _ = raw::connect(port, APP_USER, secret_attempt, None, 0).await;
    let _ = raw::connect(port, "hashed", secret_attempt, None, 0).await;
    let mut ok = raw::connect(port, "hashed", "secret", Some(DATABASE), 0).await.unwrap();
    ok.query("SELECT * FROM no_such_table").await;
    let mut c = connect(port).await;
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("other".into()))
        .with_pass(Some(secret_attempt.into()));
    let _ = c.change_user(opts).await;
    drop((ok, c));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(logs.contains("login failed"), "logs were captured: {logs}");
    // (The test users "app", "other" and "monitor" use their names as passwords, so only
    // distinct secrets can be checked.)
    for secret in [secret_attempt, "secret", "14E65567ABDB5135"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs:\n{logs}");
    }
    let _ = std::fs::remove_file(path);
}

/// SIGTERM with a transaction open: `/ready` turns 503 first, the listener stays open for the
/// configured delay, then idle sessions close while the transaction may still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_open_transaction_commit_within_the_timeout() {
    let cfg = config_text(cluster(), "").replace("[proxy]\n", "[proxy]\nshutdown_delay_ms = 400\n");
    let proxy = Proxy::start(&cfg).await;
    let (port, admin) = (proxy.port(), proxy.admin);
    let t = crate::support::table("shutdown_tx");
    let mut tx = connect(port).await;
    tx.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
    let mut idle = connect(port).await;
    let stopping = tokio::spawn(proxy.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(admin).await.unwrap();
        s.write_all(b"GET /ready HTTP/1.1\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_ok(), "still accepting during the delay");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(idle.query_drop("SELECT 1").await.is_err(), "idle session closed after the delay");
    tx.query_drop(format!("INSERT INTO {t} VALUES (2)")).await.unwrap();
    tx.query_drop("COMMIT").await.unwrap();
    assert!(tx.query_drop("SELECT 1").await.is_err(), "closed once the transaction ended");
    stopping.await.unwrap();
    assert_eq!(cluster().primary.sql(&format!("SELECT COUNT(*) FROM {t}")), "2", "the transaction committed");
    cluster().primary.sql(&format!("DROP TABLE {t}"));
}

//! Routing you can see: the query log, the `debug` routing trace, per-server statement counts
//! and digests per hostgroup actually used.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, config_text, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_log_and_stats_name_the_server_that_ran_each_statement() {
    let c = cluster();
    let dir = std::env::temp_dir().join(format!("rwproxy-qlog-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("queries.jsonl");
    let proxy =
        Proxy::start(&config_text(c, &format!("[query_log]\npath = {:?}\n", log.display().to_string())))
            .await;
    let t = crate::support::table("qlog");
    let mut conn = connect(proxy.port()).await;
    conn.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    conn.query_drop(format!("INSERT INTO {t} VALUES (1), (2)")).await.unwrap();
    let read: Option<u32> = conn.query_first("SELECT @@server_id AS visibility_read").await.unwrap();
    let _ = conn.query_drop("SELECT * FROM no_such_table_visibility").await;
    // The same digest inside a transaction runs on the writer: a second digest row.
    conn.query_drop("BEGIN").await.unwrap();
    let in_tx: Option<u32> = conn.query_first("SELECT @@server_id AS visibility_read").await.unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(in_tx, Some(c.primary.server_id));
    conn.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    drop(conn);

    let reader = c.nodes().find(|n| Some(n.server_id) == read).expect("the read ran on a cluster node");
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect();
        if lines.iter().any(|l| l.contains("DROP TABLE")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entries: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |text: &str| {
        entries
            .iter()
            .filter(|e| e["digest_text"].as_str().unwrap_or("").contains(text))
            .cloned()
            .collect::<Vec<_>>()
    };
    let insert = &find("INSERT INTO")[0];
    assert_eq!(
        (insert["server"].as_str(), insert["affected"].as_u64()),
        (Some(c.primary.addr().as_str()), Some(2)),
        "{insert}"
    );
    assert_eq!((insert["user"].as_str(), insert["error"].as_u64()), (Some("app"), None));
    let reads = find("visibility_read");
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(
        (reads[0]["server"].as_str(), reads[0]["rows"].as_u64()),
        (Some(reader.addr().as_str()), Some(1))
    );
    assert_eq!(reads[1]["server"].as_str(), Some(c.primary.addr().as_str()));
    assert_eq!(find("no_such_table_visibility")[0]["error"], 1146);

    let (_, digests) = proxy.admin_get("/digests?top=500&order=count").await;
    let hostgroups: Vec<u64> = digests["digests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["digest_text"].as_str().unwrap_or("").contains("visibility_read"))
        .map(|d| d["hostgroup"].as_u64().unwrap())
        .collect();
    let mut sorted = hostgroups.clone();
    sorted.sort();
    let expect_reader = if reader.server_id == c.primary.server_id { 0 } else { 1 };
    assert!(
        sorted.contains(&0) && sorted.contains(&expect_reader),
        "one row per hostgroup that ran it: {digests}"
    );

    let metrics = proxy.metrics_text().await;
    let line =
        format!("rwproxy_backend_statements_total{{hostgroup=\"0\",server=\"{}\"}} ", c.primary.addr());
    let n: u64 =
        metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(n >= 5, "statements counted on the primary: {n}");
    proxy.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `RUST_LOG=rwproxy=debug`: one "statement routed" line per statement with its digest, kind,
/// target, reason and the server chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_trace_says_where_each_statement_went_and_why() {
    let c = cluster();
    let cfg = std::env::temp_dir().join(format!("rwproxy-trace-{}.toml", std::process::id()));
    std::fs::write(&cfg, config_text(c, "")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "rwproxy=debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let port = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the proxy logs its listener");
        if let Some(addr) =
            line.contains("accepting connections").then(|| line.rsplit("listen=").next()).flatten()
        {
            break addr.trim().trim_end_matches('"').rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    };
    let mut conn = connect(port).await;
    conn.query_drop("SELECT 1 FROM DUAL WHERE 1 = 2 FOR UPDATE").await.unwrap();
    drop(conn);
    let mut found = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        if line.contains("statement routed") && line.contains("FOR UPDATE") {
            found = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&cfg);
    let line = found.expect("a trace line for the statement");
    for part in
        ["kind=locking_read", "target=writer", "reason=locking read", &format!("server={}", c.primary.addr())]
    {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

/// `rwproxy explain`: the route of a statement, and with session facts which of them applied.
#[test]
fn explain_cli_prints_the_route() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .args(["explain", "--config", "config/local.toml", "SELECT * FROM t WHERE id = 1 FOR UPDATE"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "writer");
    assert_eq!(v["reason"], "locking read (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE)");
    assert_eq!(v["digest"], "SELECT * FROM t WHERE id = ? FOR UPDATE");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .args(["explain", "--config", "config/local.toml", "--in-transaction", "SELECT 1 FROM t"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["target"].as_str(), v["applied"][0].as_str()), (Some("writer"), Some("pinned")), "{v}");
}

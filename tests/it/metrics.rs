//! `/metrics`: valid exposition (promtool), every documented family present, no secrets.

use std::io::Write as _;
use std::process::{Command, Stdio};

use mysql_async::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Proxy, connect};

pub const FAMILIES: [&str; 26] = [
    "rwproxy_config_reloads_total",
    "rwproxy_config_last_reload_success_timestamp_seconds",
    "rwproxy_client_connections",
    "rwproxy_client_connections_accepted_total",
    "rwproxy_client_connections_refused_total",
    "rwproxy_statements_total",
    "rwproxy_statement_duration_seconds",
    "rwproxy_pool_checkout_wait_seconds",
    "rwproxy_client_received_bytes_total",
    "rwproxy_client_sent_bytes_total",
    "rwproxy_client_errors_total",
    "rwproxy_pool_connections",
    "rwproxy_pool_waiters",
    "rwproxy_backend_connects_total",
    "rwproxy_backend_connect_failures_total",
    "rwproxy_backend_up",
    "rwproxy_backend_shunned",
    "rwproxy_backend_replication_lag_seconds",
    "rwproxy_backend_read_only",
    "rwproxy_sessions_pinned",
    "rwproxy_pin_events_total",
    "rwproxy_backend_cleanups_total",
    "rwproxy_read_your_writes_total",
    "rwproxy_read_retries_total",
    "rwproxy_local_answers_total",
    "rwproxy_statement_duration_seconds_bucket",
];

async fn scrape(proxy: &Proxy) -> String {
    let mut s = tokio::net::TcpStream::connect(proxy.metrics).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_cover_every_family() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    let t = crate::support::table("metrics");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
    for _ in 0..5 {
        c.query_drop(format!("SELECT * FROM {t}")).await.unwrap();
    }
    c.query_drop("BEGIN").await.unwrap();
    let _ = c.query_drop("SELECT * FROM no_such_table").await;
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await; // one monitor round
    let body = scrape(&proxy).await;
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let promtool =
        promtool.expect("promtool is required (Debian package prometheus; scripts/test.sh installs it)");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in FAMILIES {
        assert!(body.lines().any(|l| l.starts_with(f)), "{f} missing from /metrics");
    }
    assert!(body.contains("rwproxy_statements_total{hostgroup=\"1\",target=\"reader\",kind=\"read\"} "));
    assert!(body.contains("rwproxy_client_errors_total{code=\"1146\"} 1"), "{body}");
    assert!(body.contains("rwproxy_pin_events_total{reason=\"transaction\"} 1"));
    for secret in ["password", "secret", "monitor\""] {
        assert!(!body.contains(secret), "{secret} in /metrics");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_show_normalised_statements_with_figures() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    for i in 0..7 {
        c.query_drop(format!("SELECT {i} + 1, 'x{i}'")).await.unwrap();
    }
    let _ = c.query_drop("SELECT * FROM no_such_digest_table").await;
    let (status, v) = proxy.admin_get("/digests?top=50&order=count").await;
    assert_eq!(status, 200, "{v}");
    let rows = v["digests"].as_array().unwrap();
    let row = rows.iter().find(|r| r["digest_text"] == "SELECT ? + ?,?").expect("the normalised statement");
    assert_eq!(row["count"], 7);
    assert_eq!(row["rows_sent"], 7);
    assert_eq!(row["hostgroup"], 1);
    assert!(row["p99_us"].as_u64().unwrap() >= row["p50_us"].as_u64().unwrap());
    let err = rows.iter().find(|r| r["digest_text"] == "SELECT * FROM no_such_digest_table").unwrap();
    assert_eq!(err["errors"], 1);
    assert_eq!(proxy.admin_get("/digests?order=nonsense").await.0, 400);
    proxy.shutdown().await;
}

/// README's metrics table names every family the proxy describes, with the type and labels
/// `/metrics` serves it with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_metrics_table_matches_what_metrics_serves() {
    use std::collections::{BTreeMap, BTreeSet};
    let ticked =
        |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let readme = include_str!("../../README.md");
    let table = readme.split("| metric | type | labels |").nth(1).expect("README has the metrics table");
    let mut documented: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let labels: BTreeSet<String> = ticked(cells[3]).into_iter().collect();
        for name in ticked(cells[1]) {
            documented.insert(name, (cells[2].to_string(), labels.clone()));
        }
    }
    let described: BTreeSet<String> = rwproxy::metrics::FAMILIES.iter().map(|f| f.0.to_string()).collect();
    assert_eq!(
        documented.keys().cloned().collect::<BTreeSet<_>>(),
        described,
        "README vs the families described"
    );

    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    c.query_drop("SELECT 1").await.unwrap();
    let _ = c.query_drop("SELECT * FROM no_such_table").await;
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let body = scrape(&proxy).await;
    let mut served: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for l in body.lines() {
        if let Some(t) = l.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            served.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        }
    }
    for l in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = l.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| served.get(*f).is_some_and(|v| v.0 == "histogram")))
            .unwrap_or(name);
        let labels = l.split_once('{').map(|(_, rest)| rest.split('}').next().unwrap_or("")).unwrap_or("");
        let entry = served.get_mut(family).unwrap_or_else(|| panic!("{family} has no TYPE line"));
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let key = pair.split('=').next().unwrap();
            if key != "le" {
                entry.1.insert(key.to_string());
            }
        }
    }
    for (name, (kind, labels)) in &served {
        let (doc_kind, doc_labels) =
            documented.get(name).unwrap_or_else(|| panic!("{name} is served but not in README"));
        assert_eq!((kind, labels), (doc_kind, doc_labels), "{name}: served vs README");
    }
    assert!(served.len() >= 24, "most families are served after a little traffic: {:?}", served.keys());
    proxy.shutdown().await;
}

//! The example Django project's own test suite, run through the proxy with mysqlclient, with
//! Django's default `CONN_MAX_AGE = 0` (a new connection per request): twice in the default
//! config and twice with every statement sent to the writer, alternating, for comparison. Run with
//! `RWPROXY_TEST_REPLICA_DELAY=1` it shows read-your-writes under replicas 1 s behind.

use std::time::{Duration, Instant};

use crate::support::{Proxy, cluster, config_text};

/// Everything to the writer: what the split is measured against.
const WRITER_ONLY: &str =
    "[[query_rules]]\nrule_id = 1\nmatch_pattern = \".\"\ndestination_hostgroup = 0\napply = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_example_test_suite_passes_through_the_proxy() {
    let _ = cluster();
    let probe = std::process::Command::new("python3").args(["-c", "import django, MySQLdb"]).output();
    let ok = probe.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 with Django and mysqlclient is required (pip install -r examples/django/requirements.txt): {probe:?}"
    );
    let delay = crate::support::cluster::replica_delay();
    let configs = [("everything to the writer", WRITER_ONLY), ("default config", "")];
    for (name, extra) in configs.into_iter().cycle().take(4) {
        let proxy = Proxy::start(&config_text(cluster(), extra)).await;
        let took = run_suite(proxy.port()).await;
        let (replica, all) = reads_by_replicas(&proxy).await;
        let (_, status) = proxy.admin_get("/status").await;
        eprintln!(
            "Django suite, replicas {delay} s behind, {name}: {:.1} s; reads served by replicas {replica} of {all}; read-your-writes {}",
            took.as_secs_f64(),
            status["read_your_writes"]
        );
        proxy.shutdown().await;
    }
}

/// Runs `manage.py test` through the proxy on `port`; panics with its log when it fails.
async fn run_suite(port: u16) -> Duration {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/django");
    let port = port.to_string();
    let test_db = format!("test_rwproxy_example_{}", std::process::id());
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        // Bounded: a hang fails the test (exit 124) instead of stalling CI.
        std::process::Command::new("timeout")
            .args(["300", "python3", "manage.py", "test", "notes", "--noinput", "-v", "2"])
            .current_dir(dir)
            .env("DB_HOST", "127.0.0.1")
            .env("DB_PORT", &port)
            .env("DB_TEST_NAME", &test_db)
            .env("DB_CONN_MAX_AGE", "0")
            .output()
            .expect("run manage.py test")
    })
    .await
    .unwrap();
    let took = start.elapsed();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "Django's test suite failed through the proxy:\n{log}");
    assert!(log.contains("OK"), "{log}");
    took
}

/// Reads (`SELECT`, `SHOW`) the replicas served, and all reads, from `/metrics`.
async fn reads_by_replicas(proxy: &Proxy) -> (u64, u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy.metrics).await.expect("connect metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("read metrics");
    let (mut replica, mut all) = (0, 0);
    for line in text.lines().filter(|l| l.starts_with("rwproxy_statements_total{")) {
        let is_read = line.contains("kind=\"read\"") || line.contains("kind=\"show\"");
        let v: u64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if is_read {
            all += v;
            if line.contains("hostgroup=\"1\"") {
                replica += v;
            }
        }
    }
    (replica, all)
}

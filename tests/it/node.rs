//! Node's drivers, unmodified from npm (`tests/node`, installed by
//! `scripts/ensure-node-deps.sh`): the MariaDB connector's `batch` and mysql2's JSON columns
//! give the same results through the proxy as directly, with bulk execution and extended
//! metadata negotiated.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::{Proxy, cluster, run_bounded};

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    assert!(
        dir.join("node_modules/mariadb").exists() && dir.join("node_modules/mysql2").exists(),
        "the Node drivers are missing: run `source scripts/ensure-node-deps.sh`"
    );
    dir
}

/// Runs `tests/node/<script>` against `port`; its JSON output.
fn run_node(script: &str, port: u16, table: &str) -> serde_json::Value {
    let port = port.to_string();
    let mut cmd = Command::new("node");
    cmd.arg(script).args([port.as_str(), APP_USER, APP_PASSWORD, DATABASE, table]).current_dir(node_dir());
    let out = run_bounded(&mut cmd, Duration::from_secs(120), &format!("node {script} against port {port}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} on port {port}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script} printed {stdout:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_drivers_batch_and_read_json_through_the_proxy_as_directly() {
    let proxy = Proxy::default().await;
    let n = std::process::id();
    let tables = [format!("node_ext_direct_{n}"), format!("node_ext_proxy_{n}")];
    for t in &tables {
        cluster().primary.sql(&format!(
            "CREATE TABLE {DATABASE}.{t} (id INT PRIMARY KEY, name VARCHAR(20), doc JSON, geo POINT)"
        ));
    }
    cluster().sync_replicas();
    let ports = [cluster().primary.port, proxy.port()];
    let jobs = tables.clone();
    let results = tokio::task::spawn_blocking(move || {
        [run_node("extended.mjs", ports[0], &jobs[0]), run_node("extended.mjs", ports[1], &jobs[1])]
    })
    .await
    .expect("node runs");
    let [direct, through] = results;
    assert_eq!(direct["bulk_negotiated"], true, "the server offers bulk: {direct}");
    assert_eq!(direct["mysql2_fields"][0]["extendedFormat"], "json", "{direct}");
    assert_eq!(direct["mysql2_docs"][0]["k"], 1, "mysql2 parses JSON columns: {direct}");
    assert_eq!(through, direct, "the same through the proxy");
    // One COM_STMT_BULK_EXECUTE for the three rows (a driver without bulk sends three executes).
    let (status, v) = proxy.admin_get("/digests?top=100&order=count").await;
    assert_eq!(status, 200, "{v}");
    let insert = v["digests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["digest_text"].as_str().is_some_and(|s| s.starts_with("INSERT") && s.contains(&tables[1]))
        })
        .unwrap_or_else(|| panic!("the batch's INSERT in {v}"));
    assert_eq!(insert["count"], 1, "{insert}");
    proxy.shutdown().await;
}

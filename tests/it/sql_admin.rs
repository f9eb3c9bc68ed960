//! The ProxySQL-compatible SQL admin, driven by the `mariadb` CLI and by an Orchestrator-style
//! hook script, against the harness's cluster.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::support::{Proxy, cli, cluster, config_text, connect};

const ADMIN: &str = "[admin.sql]\nusername = \"radmin\"\npassword = \"radmin-pw\"\n";

/// Runs `sql` with the `mariadb` CLI on the SQL admin port (batch mode, no headers).
fn admin_sql(proxy: &Proxy, sql: &str) -> String {
    let (ok, out, err) = cli(proxy.sql_admin.port(), &["-uradmin", "-pradmin-pw", "-N", "-B", "-e", sql]);
    assert!(ok, "{sql}: {err}");
    out
}

fn lines(out: &str) -> Vec<Vec<String>> {
    out.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_cli_reads_proxysql_tables_and_stats() {
    let c = cluster();
    let proxy = Proxy::start(&config_text(c, ADMIN)).await;
    let tables = admin_sql(&proxy, "SHOW TABLES");
    for t in
        ["mysql_servers", "runtime_mysql_servers", "mysql_users", "mysql_query_rules", "global_variables"]
    {
        assert!(tables.lines().any(|l| l == t), "{t} missing from {tables}");
    }
    let servers = lines(&admin_sql(
        &proxy,
        "SELECT hostgroup_id, port, status FROM runtime_mysql_servers ORDER BY port",
    ));
    let mut nodes: Vec<_> = c.nodes().collect();
    nodes.sort_by_key(|n| n.port);
    let expect: Vec<Vec<String>> = nodes
        .into_iter()
        .map(|n| {
            vec![
                if n.port == c.primary.port { "0" } else { "1" }.to_string(),
                n.port.to_string(),
                "ONLINE".into(),
            ]
        })
        .collect();
    assert_eq!(servers, expect);
    let mut conn = connect(proxy.port()).await;
    for _ in 0..20 {
        conn.query_drop("SELECT @@server_id").await.unwrap();
    }
    drop(conn);
    let digest = admin_sql(
        &proxy,
        "SELECT count_star FROM stats_mysql_query_digest WHERE digest_text LIKE 'SELECT @@server_id%'",
    );
    assert!(digest.trim().parse::<u64>().unwrap() >= 20, "{digest}");
    let (ok, _, err) =
        cli(proxy.sql_admin.port(), &["-uradmin", "-pradmin-pw", "-e", "SELECT nope FROM mysql_servers"]);
    assert!(!ok && err.contains("1054"), "{err}");
    let used = admin_sql(
        &proxy,
        "SELECT COUNT(*) FROM stats_mysql_connection_pool WHERE hostgroup = 1 AND ConnOK > 0",
    );
    assert_ne!(used.trim(), "0");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pings =
        admin_sql(&proxy, "SELECT COUNT(*) FROM monitor.mysql_server_ping_log WHERE ping_error IS NULL");
    assert!(pings.trim().parse::<u64>().unwrap() >= 3, "{pings}");
    let users = admin_sql(&proxy, "SELECT username, password FROM mysql_users WHERE username = 'app'");
    assert!(users.contains("\t*") && !users.contains("app\tapp"), "passwords show as hashes: {users}");
    let (ok, _, err) = cli(proxy.sql_admin.port(), &["-uradmin", "-pwrong", "-e", "SELECT 1"]);
    assert!(!ok && err.contains("Access denied"), "{err}");
    let (ok, _, err) = cli(proxy.sql_admin.port(), &["-uapp", "-papp", "-e", "SELECT 1"]);
    assert!(!ok && err.contains("Access denied"), "application users are not admins: {err}");
    proxy.shutdown().await;
}

/// `UPDATE mysql_servers SET status = 'OFFLINE_SOFT'` + `LOAD MYSQL SERVERS TO RUNTIME` while
/// 8 clients read: no client error, no new reads on the drained replica, and it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_replica_through_the_sql_admin_under_load_costs_no_errors() {
    let c = cluster();
    let proxy = Proxy::start(&config_text(c, ADMIN)).await;
    let drained = &c.replicas[0];
    let (stop, errors, reads) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let seen_after = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let drained_flag = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, errors, reads, seen, flag, port) = (
            stop.clone(),
            errors.clone(),
            reads.clone(),
            seen_after.clone(),
            drained_flag.clone(),
            proxy.port(),
        );
        clients.push(tokio::spawn(async move {
            let mut conn = connect(port).await;
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let after = flag.load(Ordering::Acquire);
                match conn.query_first::<u32, _>("SELECT @@server_id").await {
                    Ok(Some(id)) if after => {
                        seen.lock().unwrap().insert(id);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sql = format!(
        "UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE port = {}; LOAD MYSQL SERVERS TO RUNTIME;",
        drained.port
    );
    admin_sql(&proxy, &sql);
    // Reads already running may finish there; what starts from now on must not.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drained_flag.store(true, Ordering::Release);
    let status =
        admin_sql(&proxy, &format!("SELECT status FROM runtime_mysql_servers WHERE port = {}", drained.port));
    assert_eq!(status.trim(), "OFFLINE_SOFT");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for cl in clients {
        cl.await.unwrap();
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0, "client errors while draining");
    let seen = seen_after.lock().unwrap().clone();
    assert!(!seen.contains(&drained.server_id), "drained replica still served reads: {seen:?}");
    assert!(reads.load(Ordering::Relaxed) > 100);

    admin_sql(
        &proxy,
        &format!(
            "UPDATE mysql_servers SET status = 'ONLINE' WHERE port = {}; LOAD MYSQL SERVERS TO RUNTIME",
            drained.port
        ),
    );
    let mut conn = connect(proxy.port()).await;
    let mut back = false;
    for _ in 0..200 {
        back |= conn.query_first::<u32, _>("SELECT @@server_id").await.unwrap() == Some(drained.server_id);
        if back {
            break;
        }
    }
    assert!(back, "the undrained replica serves reads again");
    proxy.shutdown().await;
}

/// An Orchestrator-style hook (a shell script of `mariadb` calls) moves a replica to a
/// reporting hostgroup, adds a rule for it, applies and saves both; the proxy routes by the
/// change at once, the stats show it, and the file on disk holds it with its comments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_script_moves_a_server_and_changes_a_rule_through_the_sql_admin() {
    let c = cluster();
    let dir = std::env::temp_dir().join(format!("rwproxy-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rwproxy.toml");
    std::fs::write(&path, format!("# managed by the hook\n{}", config_text(c, ADMIN))).unwrap();
    let proxy = Proxy::start_file(&path).await;
    let moved = &c.replicas[1];
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
set -e
admin() { "$MARIADB" --no-defaults -h127.0.0.1 -P"$ADMIN_PORT" --protocol=TCP -uradmin -pradmin-pw -N -B -e "$1"; }
admin "UPDATE mysql_servers SET hostgroup_id = 2, comment = 'reporting' WHERE port = $MOVED_PORT AND hostgroup_id = 1"
admin "INSERT INTO mysql_query_rules (rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (100, 1, 'AS reporting', 2, 1)"
admin "LOAD MYSQL SERVERS TO RUNTIME; LOAD MYSQL QUERY RULES TO RUNTIME"
admin "SAVE MYSQL SERVERS TO DISK; SAVE MYSQL QUERY RULES TO DISK"
admin "SELECT hostgroup_id FROM runtime_mysql_servers WHERE port = $MOVED_PORT"
"#,
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("MARIADB", crate::support::cluster::binary(&["mariadb", "mysql"]))
        .env("ADMIN_PORT", proxy.sql_admin.port().to_string())
        .env("MOVED_PORT", moved.port.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");

    let mut conn = connect(proxy.port()).await;
    for _ in 0..10 {
        let id: Option<u32> = conn.query_first("SELECT @@server_id AS reporting").await.unwrap();
        assert_eq!(id, Some(moved.server_id), "the rule sends reporting reads to the moved server");
    }
    for _ in 0..30 {
        let id: Option<u32> = conn.query_first("SELECT @@server_id").await.unwrap();
        assert_ne!(id, Some(moved.server_id), "plain reads no longer go to the moved server");
    }
    drop(conn);
    let pool = admin_sql(
        &proxy,
        &format!("SELECT hostgroup, ConnOK FROM stats_mysql_connection_pool WHERE srv_port = {}", moved.port),
    );
    let row = lines(&pool);
    assert!(row.iter().any(|r| r[0] == "2" && r[1] != "0"), "{pool}");
    let digest = admin_sql(
        &proxy,
        "SELECT hostgroup FROM stats_mysql_query_digest WHERE digest_text LIKE '%reporting%'",
    );
    assert_eq!(digest.trim(), "2");

    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.starts_with("# managed by the hook\n"), "{saved}");
    assert!(saved.contains("comment = \"reporting\"") && saved.contains("rule_id = 100"), "{saved}");
    assert!(dir.join("rwproxy.toml.bak").exists());
    let reread = rwproxy::config::Config::load(&path).expect("the saved file is valid");
    assert!(reread.servers.iter().any(|s| s.hostgroup == 2 && s.address == moved.addr()));
    proxy.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

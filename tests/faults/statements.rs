//! Backend prepared statements under a lowered server-wide `max_prepared_stmt_count` (as
//! mysql2's test suite sets it): the proxy's cached statements never make a client's prepare
//! fail, and what it keeps stays within the limit.

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, Raw};
use crate::support::{Proxy, cluster};
use crate::{fault_config, serial};

const LIMIT: u32 = 10;

fn prepared_counts() -> Vec<u32> {
    cluster()
        .nodes()
        .map(|n| {
            n.sql("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
                .split('\t')
                .nth(1)
                .unwrap_or("0")
                .parse()
                .unwrap_or(0)
        })
        .collect()
}

async fn close(c: &mut Raw, stmt: u32) {
    let mut p = vec![0x19];
    p.extend_from_slice(&stmt.to_le_bytes());
    c.stream.write_packet(0, &p).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_and_close_cycles_stay_within_max_prepared_stmt_count() {
    let _serial = serial().await;
    let set = |n: u32| {
        for node in cluster().nodes() {
            node.sql(&format!("SET GLOBAL max_prepared_stmt_count = {n}"));
        }
    };
    set(LIMIT);
    let proxy = Proxy::start(&fault_config("interval_ms = 200\ntimeout_ms = 1000\n", "")).await;
    let mut errors = Vec::new();
    let mut c = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
    for i in 0..50 {
        // Distinct texts: nothing to share; reads and writes, so readers and the writer fill up.
        let sql = if i % 2 == 0 { format!("SELECT ? + {i}") } else { format!("DO ? + {i}") };
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        let reply = c.command(&p, rwproxy::protocol::ReplyKind::Prepare).await;
        if let Some(code) = raw::err_code(&reply) {
            errors.push(format!("cycle {i}: prepare failed with {code}"));
            continue;
        }
        let stmt = u32::from_le_bytes([reply[0][1], reply[0][2], reply[0][3], reply[0][4]]);
        let done = c.execute(stmt, 0, &[Some("1")]).await;
        if let Some(code) = raw::err_code(&done) {
            errors.push(format!("cycle {i}: execute failed with {code}"));
        }
        close(&mut c, stmt).await;
    }
    let counts = prepared_counts();
    c.quit().await;
    proxy.shutdown().await;
    set(16382);
    eprintln!("statements open on the servers at the end: {counts:?} (limit {LIMIT})");
    assert!(errors.is_empty(), "{errors:?}");
}

/// `pool.max_prepared_statements_per_server` divided by a server's `max_connections` bounds
/// each connection: a session holding many statements open leaves at most that share on the
/// server, and every statement still executes (prepared again where it was closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_prepared_statements_stay_within_its_share() {
    let _serial = serial().await;
    let config = fault_config("interval_ms = 200\ntimeout_ms = 1000\n", "")
        .replace("[pool]\n", "[pool]\nmax_prepared_statements_per_server = 6\n")
        .replace("address = ", "max_connections = 2\naddress = ");
    let proxy = Proxy::start(&config).await;
    let before = prepared_counts()[0];
    let mut c = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
    let mut stmts = Vec::new();
    for i in 0..20 {
        // Writes: all on the primary, one connection (held only per statement).
        stmts.push(c.prepare(&format!("DO ? + {i}")).await);
    }
    let held = prepared_counts()[0].saturating_sub(before);
    let mut errors = Vec::new();
    for (i, stmt) in stmts.iter().enumerate().rev() {
        if let Some(code) = raw::err_code(&c.execute(*stmt, 0, &[Some("1")]).await) {
            errors.push(format!("statement {i}: execute failed with {code}"));
        }
    }
    let after = prepared_counts()[0].saturating_sub(before);
    c.quit().await;
    proxy.shutdown().await;
    eprintln!("primary holds {held} statements after 20 prepares, {after} after executing them all");
    assert!(errors.is_empty(), "{errors:?}");
    // 6 per server over 2 connections: 3 per connection, 6 at most whichever was used.
    assert!(held <= 6 && after <= 6, "held {held}, then {after}");
}

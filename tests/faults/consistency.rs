//! Read-your-writes with replication stopped on both replicas, in each consistency mode, and
//! the replica share of reads under a mixed load in global mode.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, connect, table};
use crate::{Restore, fault_config, serial};

/// Replicas do not shun for stopped replication here, so stale reads are possible.
const LENIENT: &str = "interval_ms = 200\ntimeout_ms = 500\nshun_after = 1000\nrecover_after = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_replication_session_global_and_none() {
    let _serial = serial().await;
    let _restore = Restore;
    let t = table("stale");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY)"));
    cluster().sync_replicas();
    for r in &cluster().replicas {
        r.sql("STOP SLAVE SQL_THREAD");
    }
    let mut results = BTreeMap::new();
    for (i, mode) in ["session", "global", "none"].into_iter().enumerate() {
        let cfg = fault_config(LENIENT, &format!("[routing]\nread_consistency = \"{mode}\"\n"));
        let proxy = Proxy::start(&cfg).await;
        tokio::time::sleep(Duration::from_millis(500)).await; // monitor has seen the replicas
        let (same, other) = (i * 10 + 1, i * 10 + 2);
        let mut a = connect(proxy.port()).await;
        a.query_drop(format!("INSERT INTO {t} VALUES ({same})")).await.unwrap();
        let own: Option<u32> = a.query_first(format!("SELECT id FROM {t} WHERE id = {same}")).await.unwrap();
        a.query_drop(format!("INSERT INTO {t} VALUES ({other})")).await.unwrap();
        let mut b = connect(proxy.port()).await;
        let cross: Option<u32> =
            b.query_first(format!("SELECT id FROM {t} WHERE id = {other}")).await.unwrap();
        results.insert(mode, (own.is_some(), cross.is_some()));
        proxy.shutdown().await;
    }
    eprintln!("with replication stopped (same session, other connection): {results:?}");
    assert!(results["session"].0, "session: a write then a read on the same connection sees it");
    assert_eq!(results["global"], (true, true), "global: a read on another connection sees it too");
    assert_eq!(
        results["none"],
        (false, false),
        "none: reads go to the stale replicas (the test detects staleness)"
    );
    for r in &cluster().replicas {
        r.sql("START SLAVE SQL_THREAD");
    }
    cluster().sync_replicas();
    cluster().primary.sql(&format!("DROP TABLE {t}"));
}

/// Mixed load in global mode: every read must see every earlier write through this proxy;
/// report how many reads replicas still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_mode_replica_share_under_mixed_load() {
    let _serial = serial().await;
    let cfg = fault_config(
        "interval_ms = 100\ntimeout_ms = 500\n",
        "[routing]\nread_consistency = \"global\"\ngtid_wait_ms = 50\n",
    );
    let proxy = Proxy::start(&cfg).await;
    let t = table("mixed");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"));
    cluster().sync_replicas();
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let (port, t) = (proxy.port(), t.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            let (mut replica_reads, mut reads, mut stale) = (0u32, 0u32, 0u32);
            for i in 0..40u32 {
                if i % 10 == 0 {
                    c.query_drop(format!("INSERT INTO {t} (v) VALUES ({w})")).await.unwrap();
                }
                let (n, sid): (u32, u32) = c
                    .query_first(format!("SELECT COUNT(*), @@server_id FROM {t} WHERE v = {w}"))
                    .await
                    .unwrap()
                    .unwrap();
                reads += 1;
                if n < i / 10 + 1 {
                    stale += 1;
                }
                if sid != 1 {
                    replica_reads += 1;
                }
            }
            (reads, replica_reads, stale)
        }));
    }
    let (mut reads, mut replica, mut stale) = (0, 0, 0);
    for task in tasks {
        let (r, rr, s) = task.await.unwrap();
        reads += r;
        replica += rr;
        stale += s;
    }
    let (_, status) = proxy.admin_get("/status").await;
    eprintln!(
        "global mode, 8 clients x 40 statements (1 write per 10): {replica}/{reads} reads served by replicas ({:.0}%), {stale} stale; {}",
        100.0 * f64::from(replica) / f64::from(reads),
        status["read_your_writes"]
    );
    assert_eq!(stale, 0, "no read missed an earlier write");
    assert!(replica > 0, "replicas still served reads");
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

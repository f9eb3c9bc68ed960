//! Killed replica, lagging replica, killed primary, switchover.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::support::cluster::DATABASE;
use crate::support::{Proxy, cluster, connect, table};
use crate::{Restore, fault_config, serial, server_state, wait_until};

const FAST: &str = "interval_ms = 200\ntimeout_ms = 500\nshun_after = 2\nrecover_after = 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_causes_no_read_errors_and_is_readmitted() {
    let _serial = serial().await;
    let _restore = Restore;
    let proxy = Proxy::start(&fault_config(FAST, "")).await;
    let victim = &cluster().replicas[0];
    let (stop, errors, reads) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    // Half the clients read with the text protocol, half with prepared statements (binary
    // protocol): both kinds of read are retried elsewhere when their replica dies.
    for i in 0..16 {
        let (stop, errors, reads, port) = (stop.clone(), errors.clone(), reads.clone(), proxy.port());
        clients.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                let read = if i % 2 == 0 {
                    c.query_first::<u32, _>("SELECT @@server_id").await
                } else {
                    c.exec_first::<u32, _, _>("SELECT @@server_id + ?", (0,)).await
                };
                match read {
                    Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("client {i} error: {e}");
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    victim.kill();
    let killed = Instant::now();
    let shunned = wait_until(Duration::from_secs(10), async || {
        server_state(&proxy, 1, &victim.addr()).await["shunned_reason"] == "down"
    })
    .await;
    eprintln!("replica shunned {:?} after SIGKILL", shunned);
    assert!(shunned.is_some(), "the killed replica was shunned");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(killed.elapsed())).await;
    tokio::task::spawn_blocking(|| cluster().replicas[0].start()).await.unwrap();
    let revived = Instant::now();
    let back = wait_until(Duration::from_secs(15), async || {
        server_state(&proxy, 1, &victim.addr()).await["health"] == "up"
    })
    .await;
    eprintln!("replica readmitted {:?} after restart", back);
    assert!(back.is_some(), "the revived replica was readmitted");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(killed.elapsed() + Duration::from_secs(2)))
        .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let _ = revived;
    let (errors, reads) = (errors.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    eprintln!(
        "16 clients: {reads} reads, {errors} errors; retries: {}",
        proxy.admin_get("/status").await.1["read_retries_total"]
    );
    assert_eq!(errors, 0, "no client saw an error");
    assert!(reads > 1000);
    let mut c = connect(proxy.port()).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(c.query_first::<u32, _>("SELECT @@server_id").await.unwrap().unwrap());
    }
    assert!(seen.contains(&victim.server_id), "the readmitted replica serves reads again: {seen:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_replica_is_shunned_and_readmitted() {
    let _serial = serial().await;
    let _restore = Restore;
    let monitor = format!("{FAST}max_replication_lag = 1\n");
    let proxy = Proxy::start(&fault_config(&monitor, "")).await;
    let t = table("lag");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6))"));
    cluster().sync_replicas();
    let lagging = &cluster().replicas[0];
    // Hold a table lock on the replica: its SQL thread blocks on the next event for `t`.
    let mut locker = mysql_async::Conn::new(mysql_async::Opts::from(crate::support::opts(
        lagging.port,
        crate::support::cluster::APP_USER,
        crate::support::cluster::APP_PASSWORD,
        Some(DATABASE),
    )))
    .await
    .unwrap();
    locker.query_drop(format!("LOCK TABLES {t} WRITE")).await.unwrap();
    let writer = tokio::spawn({
        let t = t.clone();
        async move {
            for _ in 0..80 {
                cluster().primary.sql(&format!("INSERT INTO {t} (at) VALUES (NOW(6))"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let shunned = wait_until(Duration::from_secs(8), async || {
        server_state(&proxy, 1, &lagging.addr()).await["shunned_reason"] == "lagging"
    })
    .await;
    let state = server_state(&proxy, 1, &lagging.addr()).await;
    eprintln!("lagging replica shunned after {shunned:?}: {state}");
    assert!(shunned.is_some(), "shunned for lag: {state}");
    let mut c = connect(proxy.port()).await;
    for _ in 0..20 {
        let id: u32 =
            c.query_first("SELECT /* rwproxy:consistency=none */ @@server_id").await.unwrap().unwrap();
        assert_ne!(id, lagging.server_id, "no reads on the lagging replica");
    }
    locker.query_drop("UNLOCK TABLES").await.unwrap();
    writer.await.unwrap();
    let back = wait_until(Duration::from_secs(15), async || {
        server_state(&proxy, 1, &lagging.addr()).await["health"] == "up"
    })
    .await;
    eprintln!("caught-up replica readmitted after {back:?}");
    assert!(back.is_some(), "readmitted after catching up");
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_fails_writes_fast_keeps_reads_and_recovers() {
    let _serial = serial().await;
    let _restore = Restore;
    let proxy = Proxy::start(&fault_config(FAST, "")).await;
    let t = table("primary_kill");
    let mut c = connect(proxy.port()).await;
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    cluster().sync_replicas();
    cluster().primary.kill();
    let mut write_errors = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let e = c.query_drop(format!("INSERT INTO {t} VALUES ({i})")).await.unwrap_err();
        write_errors.push((started.elapsed(), e.to_string()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("writes with the primary dead: {write_errors:?}");
    for (took, msg) in &write_errors {
        assert!(*took < Duration::from_secs(2), "write failed fast: {took:?}");
        assert!(msg.contains("hostgroup 0"), "the error names the writer hostgroup: {msg}");
    }
    let mut fresh = connect(proxy.port()).await;
    for _ in 0..20 {
        let id: u32 = fresh.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_ne!(id, 1, "reads served by replicas");
    }
    tokio::task::spawn_blocking(|| cluster().primary.start()).await.unwrap();
    let resumed = wait_until(Duration::from_secs(15), async || {
        c.query_drop(format!("INSERT INTO {t} VALUES (100)")).await.is_ok()
    })
    .await;
    eprintln!("writes resumed {resumed:?} after the primary restarted");
    assert!(resumed.is_some(), "writes resume without restarting the proxy");
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_moves_the_writer() {
    let _serial = serial().await;
    let _restore = Restore;
    let proxy = Proxy::start(&fault_config(FAST, "")).await;
    let (old, new) = (&cluster().primary, &cluster().replicas[0]);
    let t = table("switch");
    old.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY, sid INT)"));
    cluster().sync_replicas();
    // Switchover by hand, as an operator or an orchestrator would.
    crate::switchover(false);
    let switched = Instant::now();
    let moved = wait_until(Duration::from_secs(10), async || {
        server_state(&proxy, 0, &new.addr()).await["active"] == true
            && server_state(&proxy, 0, &old.addr()).await["active"] == false
    })
    .await;
    eprintln!("writer hostgroup followed the switchover after {moved:?}");
    assert!(moved.is_some(), "writer hostgroup follows read_only");
    let mut c = connect(proxy.port()).await;
    c.query_drop(format!("INSERT INTO {t} VALUES (1, @@server_id)")).await.unwrap();
    let sid: u32 = c
        .query_first(format!("SELECT /* rwproxy:writer */ sid FROM {t} WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sid, new.server_id, "the write ran on the new primary");
    let _ = switched;
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    drop(c);
    proxy.shutdown().await;
}

//! Pooled backend connections killed under a working session (issue 11, item 3; the fix came
//! with the fidelity work): one of the proxy's backend connections idle in the pool (asleep
//! 50 ms or more) is killed every second for 20 s, on the primary and the replicas alike,
//! while an innocent session reads and writes; its reads must see no error, nothing may be
//! lost or wrong. The server picks and kills the connection in one request; still, a write
//! sent on a connection in the instant the kill lands (the server may or may not have run
//! it) cannot be told from a server dying mid-statement and is reported to the client as
//! such, ERR 1927 (it happened twice in about ten runs of this test: a write checked out the
//! primary's connection that had idled across a pause). So writes may see at most two such
//! errors; a regression that costs every kill an error (19 or so) still fails the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, connect, table};
use crate::{fault_config, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_pooled_connection_every_second_costs_the_innocent_nothing() {
    let _serial = serial().await;
    let proxy = Proxy::start(&fault_config("interval_ms = 200\ntimeout_ms = 500\n", "")).await;
    let t = table("churn");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"));
    cluster().sync_replicas();
    let stop = Arc::new(AtomicBool::new(false));
    let (port, tt, stop2) = (proxy.port(), t.clone(), stop.clone());
    let innocent = tokio::spawn(async move {
        let (mut ops, mut errors, mut wrong) = (0u32, Vec::new(), 0u32);
        let mut write_errors = Vec::new();
        let mut c = connect(port).await;
        let mut written = 0u32;
        while !stop2.load(Ordering::Relaxed) && ops < 200_000 {
            ops += 1;
            let r = if ops % 4 == 0 {
                match c.query_drop(format!("INSERT INTO {tt} (v) VALUES ({ops})")).await {
                    Ok(()) => written += 1,
                    Err(e) => write_errors.push(e.to_string()),
                }
                Ok(())
            } else {
                match c.query_first::<u32, _>(format!("SELECT COUNT(*) FROM {tt}")).await {
                    Ok(Some(n)) if n < written => {
                        wrong += 1;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = r {
                errors.push(e.to_string());
            }
            // Mostly busy, with pauses in which its connections sit in the pool long enough
            // (50 ms or more) to be the ones killed.
            let pause = if ops % 10 == 0 { 120 } else { 2 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        (ops, errors, write_errors, wrong)
    });
    let started = Instant::now();
    let mut killed = 0;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for node in cluster().nodes() {
            // Chosen and killed by the server in one go: a kill decided by the test and sent
            // milliseconds later could land on a connection the proxy had just taken out of
            // the pool for a write, which no one can tell from the server dying mid-statement.
            let sql = "SET @i = (SELECT id FROM information_schema.processlist WHERE user = 'app' \
                       AND command = 'Sleep' AND time_ms >= 50 ORDER BY id LIMIT 1); \
                       SET @k = IF(@i IS NULL, 'DO 0', CONCAT('KILL ', @i)); \
                       PREPARE k FROM @k; EXECUTE k; SELECT IFNULL(@i, '')";
            if let Ok(id) = node.try_sql(sql)
                && !id.is_empty()
            {
                killed += 1;
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (ops, errors, write_errors, wrong) = innocent.await.unwrap();
    eprintln!(
        "{killed} pooled backend connections killed in 20 s; the innocent session ran {ops} statements, {} read errors, {} write errors, {wrong} wrong results",
        errors.len(),
        write_errors.len()
    );
    assert!(killed >= 10, "the churn happened ({killed} kills)");
    assert!(errors.is_empty(), "reads are never failed by a killed pooled connection: {errors:#?}");
    assert!(write_errors.len() <= 2, "{write_errors:#?}");
    assert!(write_errors.iter().all(|e| e.contains("1927")), "{write_errors:#?}");
    assert_eq!(wrong, 0);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

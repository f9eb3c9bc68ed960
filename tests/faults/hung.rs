//! A replica hung by SIGSTOP (issue 11, item 3): reads already running there are cut after
//! `pool.backend_read_timeout_ms` once the monitor cannot reach it, and retried elsewhere,
//! while the replica is still stopped.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, connect};
use crate::{Restore, fault_config, serial};

const FAST: &str = "interval_ms = 200\ntimeout_ms = 500\nshun_after = 2\nrecover_after = 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_flight_on_a_hung_replica_finish_elsewhere_before_it_wakes() {
    let _serial = serial().await;
    let _restore = Restore;
    let cfg = fault_config(FAST, "[routing]\nread_consistency = \"none\"\n")
        .replace("[pool]\n", "[pool]\nbackend_read_timeout_ms = 1000\n");
    let proxy = Proxy::start(&cfg).await;
    let hung = &cluster().replicas[0];
    let mut readers = Vec::new();
    for _ in 0..8 {
        let port = proxy.port();
        readers.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            let started = Instant::now();
            let r: Result<Option<(u32, u32)>, _> = c.query_first("SELECT SLEEP(1), @@server_id").await;
            (r.map(|row| row.map(|(_, sid)| sid)), started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the reads are running
    hung.signal("STOP");
    let stopped = Instant::now();
    let mut results = Vec::new();
    for r in readers {
        // Bounded: a read that waited for the replica to wake would still be running at 8 s.
        match tokio::time::timeout(Duration::from_secs(8).saturating_sub(stopped.elapsed()), r).await {
            Ok(joined) => results.push(joined.unwrap()),
            Err(_) => {
                hung.signal("CONT");
                panic!("a read was still waiting for the stopped replica after 8 s");
            }
        }
    }
    let woke_after = stopped.elapsed();
    hung.signal("CONT");
    let slowest = results.iter().map(|(_, t)| *t).max().unwrap();
    eprintln!(
        "8 reads with one replica SIGSTOPped: slowest {slowest:?}, all done {woke_after:?} after the stop"
    );
    for (r, _) in &results {
        let sid = r.as_ref().expect("no read failed").expect("a row");
        assert_ne!(sid, hung.server_id, "no read was answered by the stopped replica");
    }
    proxy.shutdown().await;
}

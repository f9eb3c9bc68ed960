//! `autocommit = 0` pins nothing by itself (issue 12, item 2): an idle session with autocommit
//! off that is not inside a transaction holds no backend connection, while the transaction its
//! statements open stays on one connection until it ends. mysqlclient (and so every Python
//! client built on it) turns autocommit off at connect, so this is what decides whether
//! thousands of idle clients fit in a small backend pool.

use std::collections::BTreeSet;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::{Proxy, cluster, config_text, opts, table};

/// Backend connections the proxy may open per server in these tests.
const CAP: usize = 3;
/// Client sessions, far more than the pool can hold pinned.
const SESSIONS: usize = 120;

fn backend_connections() -> Vec<usize> {
    let count = format!("SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{APP_USER}'");
    cluster().nodes().map(|n| n.sql(&count).parse().unwrap_or(usize::MAX)).collect()
}

/// Sessions holding a backend connection, over all reasons.
async fn pinned(proxy: &Proxy) -> u64 {
    let (_, v) = proxy.admin_get("/sessions").await;
    v["pinned_by_reason"].as_object().expect("pinned_by_reason").values().filter_map(|n| n.as_u64()).sum()
}

async fn session(port: u16, autocommit_off: bool) -> Conn {
    let mut c = Conn::new(Opts::from(opts(port, APP_USER, APP_PASSWORD, Some(DATABASE)))).await.unwrap();
    if autocommit_off {
        c.query_drop("SET autocommit = 0").await.unwrap();
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_with_autocommit_off_hold_no_backend_connection() {
    let cfg = config_text(cluster(), "")
        .replace("address = ", &format!("max_connections = {CAP}\naddress = "))
        .replace("checkout_timeout_ms = 3000", "checkout_timeout_ms = 10000");
    let proxy = Proxy::start(&cfg).await;
    let t = table("autocommit_idle");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"));
    cluster().primary.sql(&format!("INSERT INTO {t} VALUES (1, 0)"));
    cluster().sync_replicas();
    // Half the sessions with autocommit off, half on, interleaved: each ran a read of a table
    // (which opens a transaction when autocommit is off), committed, and sits idle.
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let off = i % 2 == 0;
        let mut c = session(proxy.port(), off).await;
        let v: u32 = c.query_first(format!("SELECT v FROM {t} WHERE id = 1")).await.unwrap().unwrap();
        assert_eq!(v, 0);
        if off {
            c.query_drop("COMMIT").await.unwrap();
        }
        sessions.push((off, c));
    }
    let held = backend_connections();
    assert!(held.iter().all(|&n| n <= CAP), "{SESSIONS} idle sessions, backend connections {held:?}");
    assert_eq!(pinned(&proxy).await, 0, "no idle session is pinned");
    // Each still has its own setting, whichever pooled connection serves it now.
    for (i, (off, c)) in sessions.iter_mut().enumerate() {
        let ac: u32 = c.query_first("SELECT @@autocommit").await.unwrap().unwrap();
        assert_eq!(ac, u32::from(!*off), "session {i}");
        if *off {
            c.query_drop("COMMIT").await.unwrap();
        }
    }
    for (_, c) in sessions {
        c.disconnect().await.unwrap();
    }
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_opened_with_autocommit_off_stays_on_one_connection() {
    let cfg =
        config_text(cluster(), "").replace("address = ", &format!("max_connections = {CAP}\naddress = "));
    let proxy = Proxy::start(&cfg).await;
    let t = table("autocommit_tx");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"));
    cluster().sync_replicas();
    let mut a = session(proxy.port(), true).await;
    let mut other = session(proxy.port(), false).await;
    for round in 0..5u32 {
        // Another session's statements in between take whatever connection is free: the
        // transaction's must not be one of them.
        a.query_drop(format!("INSERT INTO {t} VALUES ({round}, {round})")).await.unwrap();
        let threads: BTreeSet<u64> = {
            let mut seen = BTreeSet::new();
            for _ in 0..5 {
                let _: Option<u32> = other.query_first("SELECT @@server_id").await.unwrap();
                seen.insert(a.query_first("SELECT @@pseudo_thread_id").await.unwrap().unwrap());
            }
            seen
        };
        assert_eq!(threads.len(), 1, "round {round}: one backend connection for the transaction");
        let mine: u32 = a.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap().unwrap();
        let theirs: u32 = other.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap().unwrap();
        assert_eq!((mine, theirs), (round + 1, round), "round {round}: uncommitted until COMMIT");
        if round % 2 == 0 {
            a.query_drop("COMMIT").await.unwrap();
        } else {
            a.query_drop("ROLLBACK").await.unwrap();
            a.query_drop(format!("INSERT INTO {t} VALUES ({round}, {round})")).await.unwrap();
            a.query_drop("COMMIT").await.unwrap();
        }
        assert_eq!(pinned(&proxy).await, 0, "round {round}: the transaction ended, nothing is held");
    }
    let n: u32 = other.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap().unwrap();
    assert_eq!(n, 5);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

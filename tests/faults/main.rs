//! Fault tests on a real cluster of their own (primary + two GTID replicas): killed replica,
//! stopped replication, lag, killed primary, switchover. They break the cluster on purpose, so
//! they run one at a time and restore it before the next.

#[path = "../it/support/mod.rs"]
mod support;

mod churn;
mod consistency;
mod failures;
mod histories;
mod history;
mod hung;
mod lag;
mod statements;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

/// One fault test at a time.
pub async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(())).lock().await
}

/// A proxy config for fault tests: fast monitor, then `extra`.
pub fn fault_config(monitor: &str, extra: &str) -> String {
    let c = support::cluster();
    support::config_text(c, extra).replace("interval_ms = 200\ntimeout_ms = 1000\n", monitor)
}

/// Polls `f` every 50 ms until it returns true or `limit` passes; returns the time it took.
pub async fn wait_until(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The `/servers` entry of `address` in `hostgroup`.
pub async fn server_state(proxy: &support::Proxy, hostgroup: u64, address: &str) -> serde_json::Value {
    let (_, v) = proxy.admin_get("/servers").await;
    v["servers"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["hostgroup"] == hostgroup && s["address"] == address).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// Restores the cluster after a test: every node running, replicas replicating from the
/// original primary, read_only set as at the start.
pub fn restore_cluster() {
    let c = support::cluster();
    for n in c.nodes() {
        if !n.is_running() {
            n.start();
        }
    }
    c.primary.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF");
    for r in &c.replicas {
        r.sql(&format!(
            "STOP SLAVE; SET GLOBAL gtid_slave_pos = @@gtid_current_pos; \
             CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
             MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
             MASTER_DELAY={}; START SLAVE; SET GLOBAL read_only = ON",
            c.primary.port,
            support::cluster::replica_delay()
        ));
    }
    c.sync_replicas();
}

/// Switchover as an operator or an orchestrator does it: the old primary read-only, the
/// new one (caught up first when `wait`) promoted, the old one and the other replica
/// repointed to it.
pub fn switchover(wait: bool) {
    let c = support::cluster();
    let (old, new, other) = (&c.primary, &c.replicas[0], &c.replicas[1]);
    old.sql("SET GLOBAL read_only = ON");
    if wait {
        let pos = old.sql("SELECT @@gtid_binlog_pos");
        assert_eq!(new.sql(&format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")), "0");
    }
    new.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF");
    let repoint = format!(
        "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
         MASTER_PASSWORD='repl', MASTER_USE_GTID=current_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
        new.port
    );
    other.sql(&repoint);
    old.sql(&repoint);
}

/// Restores the cluster when dropped, even if the test panicked.
pub struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore_cluster();
    }
}

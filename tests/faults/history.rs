//! A history checker for read-your-writes, in the spirit of Jepsen's register checks.
//! Concurrent clients, half on a new connection per operation and half on one kept
//! connection, insert unique values under a few keys and read each key's whole set back
//! through the proxy, recording every operation's start and end. The checker then verifies:
//! every read saw every write acknowledged before the read began (through any instance under
//! test), no read saw a value whose write began after the read ended, and on the primary every
//! acknowledged write is there exactly once (an unacknowledged one at most once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::cluster::DATABASE;
use crate::support::{opts, table};

/// The history's clients log in as a plain application user (no SUPER), so `read_only` on a
/// demoted primary stops their writes, as it would in production.
pub const USER: &str = "hist";
pub const USERS: &str = "[[users]]\nusername = \"hist\"\npassword = \"hist\"\ndefault_hostgroup = 0\n";

const CLIENTS: usize = 8;
const KEYS: u32 = 64;
/// Each client's operations are bounded in count as well as in time.
const MAX_OPS_PER_CLIENT: usize = 5000;

#[derive(Debug, Clone)]
pub enum Action {
    /// Inserted this value.
    Write(u64),
    /// Saw these values (and which server answered).
    Read(BTreeSet<u64>, u32),
}

#[derive(Debug, Clone)]
pub struct Op {
    pub key: u32,
    pub action: Action,
    pub start: Instant,
    pub end: Instant,
    /// The proxy answered without an error.
    pub ok: bool,
}

/// What a run did and what the checker found.
#[derive(Debug, Default)]
pub struct Report {
    pub ops: usize,
    pub writes: usize,
    pub reads: usize,
    pub failed: usize,
    pub replica_reads: usize,
    pub read_micros: Vec<u64>,
    pub violations: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut lat = self.read_micros.clone();
        lat.sort_unstable();
        let pct =
            |p: usize| lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
        write!(
            f,
            "{} ops ({} writes, {} reads, {} failed), {} reads on replicas ({:.0}%), read p50 {} us p99 {} us, {} violations",
            self.ops,
            self.writes,
            self.reads,
            self.failed,
            self.replica_reads,
            100.0 * self.replica_reads as f64 / self.reads.max(1) as f64,
            pct(50),
            pct(99),
            self.violations.len()
        )
    }
}

/// Runs the clients against `ports` (client i's operation j goes to `ports[(i + j) % n]`)
/// for `limit` (and at most `MAX_OPS_PER_CLIENT` operations each).
pub async fn run(ports: &[u16], t: &str, limit: Duration) -> Vec<Op> {
    let next = Arc::new(AtomicU64::new(1));
    let deadline = Instant::now() + limit;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (ports, t, next) = (ports.to_vec(), t.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (client as u64 + 1);
            let fresh_each_time = client % 2 == 0;
            let mut kept: Option<(u16, Conn)> = None;
            let mut ops = Vec::new();
            for j in 0..MAX_OPS_PER_CLIENT {
                if Instant::now() >= deadline {
                    break;
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let port = ports[(client + j) % ports.len()];
                let key = (rng % u64::from(KEYS)) as u32;
                let write = rng % 5 < 2;
                if fresh_each_time || kept.as_ref().is_none_or(|(p, _)| *p != port) {
                    kept = None;
                }
                ops.push(
                    one_op(&mut kept, port, &t, key, write.then(|| next.fetch_add(1, Ordering::Relaxed)))
                        .await,
                );
            }
            ops
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    all
}

async fn one_op(kept: &mut Option<(u16, Conn)>, port: u16, t: &str, key: u32, write: Option<u64>) -> Op {
    let start = Instant::now();
    let result = async {
        if kept.is_none() {
            let mut c = Conn::new(Opts::from(opts(port, USER, USER, Some(DATABASE)))).await?;
            c.query_drop("SET SESSION group_concat_max_len = 1048576").await?;
            *kept = Some((port, c));
        }
        let (_, c) = kept.as_mut().expect("connected");
        Ok::<_, mysql_async::Error>(match write {
            Some(v) => {
                c.query_drop(format!("INSERT INTO {t} (k, v) VALUES ({key}, {v})")).await?;
                Action::Write(v)
            }
            None => {
                let row: Option<(u32, Option<String>)> = c
                    .query_first(format!("SELECT @@server_id, GROUP_CONCAT(v) FROM {t} WHERE k = {key}"))
                    .await?;
                let (sid, list) = row.unwrap_or((0, None));
                let seen = list.unwrap_or_default().split(',').filter_map(|v| v.parse().ok()).collect();
                Action::Read(seen, sid)
            }
        })
    }
    .await;
    let end = Instant::now();
    match result {
        Ok(action) => Op { key, action, start, end, ok: true },
        Err(_) => {
            *kept = None;
            let action = write.map_or(Action::Read(BTreeSet::new(), 0), Action::Write);
            Op { key, action, start, end, ok: false }
        }
    }
}

/// Checks the history against the rows finally on the primary (`value → copies`).
pub fn check(ops: &[Op], on_primary: &BTreeMap<u64, u32>, primary_id: u32) -> Report {
    let mut r = Report { ops: ops.len(), ..Report::default() };
    let writes: Vec<(&Op, u64)> = ops
        .iter()
        .filter_map(|o| if let Action::Write(v) = o.action { Some((o, v)) } else { None })
        .collect();
    let began: BTreeMap<u64, Instant> = writes.iter().map(|(o, v)| (*v, o.start)).collect();
    // Acknowledged writes per key, by acknowledgement time.
    let mut acked: BTreeMap<u32, Vec<(Instant, u64)>> = BTreeMap::new();
    for (w, v) in writes.iter().filter(|(w, _)| w.ok) {
        acked.entry(w.key).or_default().push((w.end, *v));
    }
    acked.values_mut().for_each(|l| l.sort_unstable());
    for op in ops {
        match (&op.action, op.ok) {
            (_, false) => r.failed += 1,
            (Action::Write(_), true) => r.writes += 1,
            (Action::Read(seen, sid), true) => {
                r.reads += 1;
                r.read_micros.push(op.end.duration_since(op.start).as_micros() as u64);
                if *sid != primary_id {
                    r.replica_reads += 1;
                }
                let before = acked
                    .get(&op.key)
                    .map_or(&[][..], |l| &l[..l.partition_point(|(end, _)| *end < op.start)]);
                for (end, v) in before.iter().filter(|(_, v)| !seen.contains(v)) {
                    r.violations.push(format!(
                        "stale read of key {} on server {sid}: missed value {v}, acknowledged {:?} before the read began",
                        op.key,
                        op.start.duration_since(*end)
                    ));
                }
                for v in seen {
                    if began.get(v).is_none_or(|b| *b > op.end) {
                        r.violations
                            .push(format!("read of key {} saw {v}, never written before it ended", op.key));
                    }
                }
            }
        }
    }
    for (w, v) in &writes {
        let copies = on_primary.get(v).copied().unwrap_or(0);
        if (w.ok && copies != 1) || copies > 1 {
            r.violations.push(format!("value {v} (acknowledged: {}) is on the primary {copies} times", w.ok));
        }
    }
    r
}

/// Creates the history table on the primary (replicated before the run starts).
pub fn create(name: &str) -> String {
    let t = table(name);
    crate::support::cluster().primary.sql(&format!(
        "CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{USER}'; \
         GRANT SELECT, INSERT ON {DATABASE}.* TO '{USER}'@'%'; \
         CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, k INT, v BIGINT, KEY (k))"
    ));
    crate::support::cluster().sync_replicas();
    t
}

/// `value → copies` on the current writer.
pub fn rows_on(node: &crate::support::cluster::Node, t: &str) -> BTreeMap<u64, u32> {
    let out = node.sql(&format!("SELECT v, COUNT(*) FROM {t} GROUP BY v"));
    out.lines()
        .filter_map(|l| {
            let (v, n) = l.split_once('\t')?;
            Some((v.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

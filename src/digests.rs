//! Per-digest statistics (ProxySQL's `stats_mysql_query_digest` plus percentiles) in a
//! bounded table: sharded, each shard an exact LRU (index-linked list over a slab), so the
//! table never grows past its cap however many distinct statements arrive.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SHARDS: usize = 8;
/// Latency buckets: powers of two in microseconds (1 µs … ~67 s).
const BUCKETS: usize = 27;

/// Digest hashes are already well mixed: use them as they are.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One digest's figures, as served by `/digests`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DigestRow {
    pub digest: String,
    pub digest_text: String,
    pub hostgroup: u32,
    pub count: u64,
    pub errors: u64,
    pub rows_sent: u64,
    pub total_time_us: u64,
    pub min_time_us: u64,
    pub max_time_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub first_seen: u64,
    pub last_seen: u64,
}

struct Entry {
    hash: u64,
    row: DigestRow,
    hist: [u32; BUCKETS],
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Default)]
struct Shard {
    index: HashMap<u64, usize, BuildHasherDefault<IdHasher>>,
    slots: Vec<Entry>,
    /// Most and least recently used.
    head: Option<usize>,
    tail: Option<usize>,
}

impl Shard {
    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            Some(p) => self.slots[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.slots[n].prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = None;
        self.slots[i].next = self.head;
        if let Some(h) = self.head {
            self.slots[h].prev = Some(i);
        }
        self.head = Some(i);
        if self.tail.is_none() {
            self.tail = Some(i);
        }
    }
}

pub struct DigestTable {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

fn bucket(us: u64) -> usize {
    (64 - us.max(1).leading_zeros() as usize - 1).min(BUCKETS - 1)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl DigestTable {
    /// A table holding at most `cap` digests (rounded up to a multiple of the shard count).
    pub fn new(cap: usize) -> Self {
        let per_shard = cap.div_ceil(SHARDS).max(1);
        DigestTable { shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(), per_shard }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.index.len())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records one execution in the hostgroup that ran it (one row per digest and hostgroup,
    /// as ProxySQL keeps them). `text` is only copied when the row is new.
    pub fn record(&self, hash: u64, text: &str, hostgroup: u32, took: Duration, error: bool, rows: u64) {
        let key = hash ^ u64::from(hostgroup).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let Ok(mut s) = self.shards[(key as usize) % SHARDS].lock() else { return };
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let now = now_secs();
        let i = match s.index.get(&key) {
            Some(&i) => {
                s.unlink(i);
                i
            }
            None => self.insert(&mut s, (key, hash), text, hostgroup, now),
        };
        s.push_front(i);
        let e = &mut s.slots[i];
        let r = &mut e.row;
        r.count += 1;
        r.errors += u64::from(error);
        r.rows_sent += rows;
        r.total_time_us += us;
        r.min_time_us = if r.count == 1 { us } else { r.min_time_us.min(us) };
        r.max_time_us = r.max_time_us.max(us);
        r.last_seen = now;
        e.hist[bucket(us)] += 1;
    }

    /// A slot for a new row (`key`: digest and hostgroup; `hash`: the digest's): a fresh one
    /// below the cap, else the least recently used one.
    fn insert(&self, s: &mut Shard, (key, hash): (u64, u64), text: &str, hostgroup: u32, now: u64) -> usize {
        let row = DigestRow {
            digest: format!("0x{hash:016X}"),
            digest_text: text.to_string(),
            hostgroup,
            count: 0,
            errors: 0,
            rows_sent: 0,
            total_time_us: 0,
            min_time_us: 0,
            max_time_us: 0,
            p50_us: 0,
            p99_us: 0,
            first_seen: now,
            last_seen: now,
        };
        let entry = Entry { hash: key, row, hist: [0; BUCKETS], prev: None, next: None };
        let i = if s.slots.len() < self.per_shard {
            s.slots.push(entry);
            s.slots.len() - 1
        } else {
            let victim = s.tail.unwrap_or(0);
            s.unlink(victim);
            let old = s.slots[victim].hash;
            s.index.remove(&old);
            s.slots[victim] = entry;
            victim
        };
        s.index.insert(key, i);
        i
    }

    /// Forgets every digest (`stats_mysql_query_digest_reset`).
    pub fn reset(&self) {
        for shard in &self.shards {
            if let Ok(mut s) = shard.lock() {
                *s = Shard::default();
            }
        }
    }

    /// The top `n` digests by `order` ("total_time", "count" or "p99").
    pub fn top(&self, n: usize, order: &str) -> Vec<DigestRow> {
        let mut rows: Vec<DigestRow> = Vec::new();
        for shard in &self.shards {
            let Ok(s) = shard.lock() else { continue };
            rows.extend(s.slots.iter().filter(|e| s.index.contains_key(&e.hash)).map(|e| {
                let mut r = e.row.clone();
                r.p50_us = percentile(&e.hist, r.count, 0.50);
                r.p99_us = percentile(&e.hist, r.count, 0.99);
                r
            }));
        }
        match order {
            "count" => rows.sort_by_key(|r| std::cmp::Reverse(r.count)),
            "p99" => rows.sort_by_key(|r| std::cmp::Reverse(r.p99_us)),
            _ => rows.sort_by_key(|r| std::cmp::Reverse(r.total_time_us)),
        }
        rows.truncate(n);
        rows
    }
}

/// Upper bound of the bucket holding the `q` quantile (within a factor of two).
fn percentile(hist: &[u32; BUCKETS], count: u64, q: f64) -> u64 {
    let target = ((count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, &n) in hist.iter().enumerate() {
        seen += u64::from(n);
        if seen >= target {
            return 1u64 << (i + 1);
        }
    }
    1u64 << BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_cap_under_100k_distinct_digests() {
        let t = DigestTable::new(1000);
        for i in 0..100_000u64 {
            let h = crate::routing::hash64(&i.to_le_bytes());
            t.record(h, "SELECT ?", 0, Duration::from_micros(10), false, 1);
        }
        assert!(t.len() <= 1000, "{}", t.len());
        assert!(t.len() >= 900, "shards fill evenly: {}", t.len());
    }

    #[test]
    fn least_recently_used_goes_first() {
        let t = DigestTable::new(SHARDS); // one slot per shard
        let same_shard = |k: u64| k * SHARDS as u64; // hashes landing in shard 0
        t.record(same_shard(1), "a", 0, Duration::from_micros(5), false, 0);
        t.record(same_shard(2), "b", 0, Duration::from_micros(5), false, 0);
        let texts: Vec<String> = t.top(10, "count").into_iter().map(|r| r.digest_text).collect();
        assert_eq!(texts, ["b"], "a was evicted");
        let t = DigestTable::new(2 * SHARDS);
        t.record(same_shard(1), "a", 0, Duration::from_micros(5), false, 0);
        t.record(same_shard(2), "b", 0, Duration::from_micros(5), false, 0);
        t.record(same_shard(1), "a", 0, Duration::from_micros(5), false, 0); // a is recent now
        t.record(same_shard(3), "c", 0, Duration::from_micros(5), false, 0);
        let mut texts: Vec<String> = t.top(10, "count").into_iter().map(|r| r.digest_text).collect();
        texts.sort();
        assert_eq!(texts, ["a", "c"]);
    }

    #[test]
    fn figures_and_percentiles() {
        let t = DigestTable::new(100);
        for us in [100u64, 100, 100, 100, 100, 100, 100, 100, 100, 50_000] {
            t.record(7, "SELECT * FROM t WHERE id = ?", 1, Duration::from_micros(us), us > 1000, 2);
        }
        let r = &t.top(1, "total_time")[0];
        assert_eq!((r.count, r.errors, r.rows_sent, r.hostgroup), (10, 1, 20, 1));
        assert_eq!((r.min_time_us, r.max_time_us, r.total_time_us), (100, 50_000, 50_900));
        assert!((100..=256).contains(&r.p50_us), "{}", r.p50_us);
        assert!(r.p99_us >= 50_000, "{}", r.p99_us);
    }

    #[test]
    fn each_hostgroup_that_ran_a_digest_keeps_its_own_row() {
        let t = DigestTable::new(100);
        for hg in [1, 1, 1, 0] {
            t.record(7, "SELECT 1", hg, Duration::from_micros(10), false, 1);
        }
        let mut rows: Vec<(u32, u64, String)> =
            t.top(10, "count").into_iter().map(|r| (r.hostgroup, r.count, r.digest)).collect();
        rows.sort();
        assert_eq!(rows, [(0, 1, "0x0000000000000007".into()), (1, 3, "0x0000000000000007".into())]);
    }
}

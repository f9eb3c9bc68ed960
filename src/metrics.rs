//! Prometheus metrics: typed handles created once at start (atomics indexed by bounded
//! labels), rendered in the text exposition format on scrape. Nothing here is looked up by
//! name on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Statement kinds, as label values (index = position).
pub const KINDS: [&str; 10] =
    ["read", "locking_read", "write", "ddl", "transaction", "set", "use", "show", "other", "empty"];
/// Route targets, as label values.
pub const TARGETS: [&str; 3] = ["writer", "reader", "other"];
/// Why a client connection was refused.
pub const REFUSALS: [&str; 3] = ["max_connections", "user_max_connections", "access_denied"];

const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram with fixed buckets (seconds), lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Per-hostgroup statement counters and latency.
#[derive(Debug)]
pub struct HostgroupMetrics {
    pub hostgroup: u32,
    statements: [[AtomicU64; KINDS.len()]; TARGETS.len()],
    pub latency: Histogram,
}

impl HostgroupMetrics {
    /// Statements counted in this hostgroup, every target and kind.
    pub fn total(&self) -> u64 {
        self.statements.iter().flatten().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn new(hostgroup: u32) -> std::sync::Arc<Self> {
        std::sync::Arc::new(HostgroupMetrics {
            hostgroup,
            statements: Default::default(),
            latency: Histogram::default(),
        })
    }
}

/// Every metric the proxy records on its own (pool, health and pin figures are read from
/// their owners at scrape time).
#[derive(Debug)]
pub struct Metrics {
    hostgroups: arc_swap::ArcSwap<Vec<std::sync::Arc<HostgroupMetrics>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Unix time of the last successful (re)load.
    pub last_reload: AtomicU64,
    pub accepted: AtomicU64,
    refused: [AtomicU64; REFUSALS.len()],
    pub checkout_wait: Histogram,
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    errors_by_code: Mutex<BTreeMap<u16, u64>>,
}

impl Metrics {
    /// Handles for every configured hostgroup.
    pub fn new(hostgroups: impl IntoIterator<Item = u32>) -> Self {
        let mut hgs: Vec<u32> = hostgroups.into_iter().collect();
        hgs.sort_unstable();
        hgs.dedup();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Metrics {
            hostgroups: arc_swap::ArcSwap::from_pointee(hgs.into_iter().map(HostgroupMetrics::new).collect()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_reload: AtomicU64::new(now),
            accepted: AtomicU64::new(0),
            refused: Default::default(),
            checkout_wait: Histogram::default(),
            bytes_from_clients: AtomicU64::new(0),
            bytes_to_clients: AtomicU64::new(0),
            errors_by_code: Mutex::new(BTreeMap::new()),
        }
    }

    /// Statements counted, all hostgroups.
    pub fn statements_total(&self) -> u64 {
        self.hostgroups.load().iter().map(|h| h.total()).sum()
    }

    /// The handles of a hostgroup (a handful of entries: a short scan, no hashing).
    pub fn hostgroup(&self, hostgroup: u32) -> Option<std::sync::Arc<HostgroupMetrics>> {
        self.hostgroups.load().iter().find(|h| h.hostgroup == hostgroup).cloned()
    }

    /// Adds handles for hostgroups a reloaded config introduced (existing ones keep counting).
    pub fn add_hostgroups(&self, hostgroups: impl IntoIterator<Item = u32>) {
        let new: Vec<u32> = hostgroups.into_iter().collect();
        self.hostgroups.rcu(|current| {
            let mut all: Vec<std::sync::Arc<HostgroupMetrics>> = current.iter().cloned().collect();
            for hg in &new {
                if !all.iter().any(|h| h.hostgroup == *hg) {
                    all.push(HostgroupMetrics::new(*hg));
                }
            }
            all.sort_by_key(|h| h.hostgroup);
            all
        });
    }

    pub fn statement(&self, hostgroup: u32, target: usize, kind: usize, took: Duration) {
        if let Some(h) = self.hostgroup(hostgroup) {
            h.statements[target.min(TARGETS.len() - 1)][kind.min(KINDS.len() - 1)]
                .fetch_add(1, Ordering::Relaxed);
            h.latency.observe(took);
        }
    }

    pub fn refused(&self, reason: usize) {
        self.refused[reason.min(REFUSALS.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// An ERR sent to a client (made by the proxy or relayed from a backend). Error codes are a
    /// bounded set (MySQL's code space), and this is not on the success path.
    /// Counts an error sent to a client. Codes are chosen by clients too (`SIGNAL …
    /// MYSQL_ERRNO`), so at most `MAX_ERROR_CODES` distinct ones get a label; the rest count
    /// under code 0 ("other").
    pub fn error_sent(&self, code: u16) {
        if let Ok(mut m) = self.errors_by_code.lock() {
            let code = if m.contains_key(&code) || m.len() < MAX_ERROR_CODES { code } else { 0 };
            *m.entry(code).or_default() += 1;
        }
    }

    /// Appends this layer's families in the text exposition format.
    pub fn render(&self, out: &mut String) {
        family(out, "rwproxy_client_connections_accepted_total", "counter", "Client connections accepted.");
        let _ = writeln!(
            out,
            "rwproxy_client_connections_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        family(
            out,
            "rwproxy_client_connections_refused_total",
            "counter",
            "Client connections refused, by reason.",
        );
        for (i, r) in REFUSALS.iter().enumerate() {
            let v = self.refused[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "rwproxy_client_connections_refused_total{{reason=\"{r}\"}} {v}");
        }
        let hostgroups = self.hostgroups.load();
        family(out, "rwproxy_statements_total", "counter", "Statements by hostgroup, target and kind.");
        for h in hostgroups.iter() {
            for (t, target) in TARGETS.iter().enumerate() {
                for (k, kind) in KINDS.iter().enumerate() {
                    let v = h.statements[t][k].load(Ordering::Relaxed);
                    let labels = format!("hostgroup=\"{}\",target=\"{target}\",kind=\"{kind}\"", h.hostgroup);
                    let _ = writeln!(out, "rwproxy_statements_total{{{labels}}} {v}");
                }
            }
        }
        family(
            out,
            "rwproxy_statement_duration_seconds",
            "histogram",
            "Statement latency through the proxy.",
        );
        for h in hostgroups.iter() {
            h.latency.render(
                out,
                "rwproxy_statement_duration_seconds",
                &format!("hostgroup=\"{}\"", h.hostgroup),
            );
        }
        family(out, "rwproxy_pool_checkout_wait_seconds", "histogram", "Time to get a backend connection.");
        self.checkout_wait.render(out, "rwproxy_pool_checkout_wait_seconds", "");
        family(out, "rwproxy_client_received_bytes_total", "counter", "Bytes received from clients.");
        let _ = writeln!(
            out,
            "rwproxy_client_received_bytes_total {}",
            self.bytes_from_clients.load(Ordering::Relaxed)
        );
        family(out, "rwproxy_client_sent_bytes_total", "counter", "Bytes relayed to clients.");
        let _ = writeln!(
            out,
            "rwproxy_client_sent_bytes_total {}",
            self.bytes_to_clients.load(Ordering::Relaxed)
        );
        family(out, "rwproxy_config_reloads_total", "counter", "Config reloads, by result.");
        let (ok, failed) =
            (self.reloads_ok.load(Ordering::Relaxed), self.reloads_failed.load(Ordering::Relaxed));
        let _ = writeln!(out, "rwproxy_config_reloads_total{{result=\"success\"}} {ok}");
        let _ = writeln!(out, "rwproxy_config_reloads_total{{result=\"failure\"}} {failed}");
        let name = "rwproxy_config_last_reload_success_timestamp_seconds";
        family(out, name, "gauge", "When the config was last loaded successfully (Unix time).");
        let _ = writeln!(out, "{name} {}", self.last_reload.load(Ordering::Relaxed));
        family(
            out,
            "rwproxy_client_errors_total",
            "counter",
            "ERR packets sent to clients, by MySQL error code.",
        );
        if let Ok(m) = self.errors_by_code.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(out, "rwproxy_client_errors_total{{code=\"{code}\"}} {n}");
            }
        }
    }
}

/// Distinct error codes labelled in `rwproxy_client_errors_total` (one more slot: "other").
const MAX_ERROR_CODES: usize = 100;

/// Writes `# HELP` and `# TYPE` for a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut out = String::new();
        h.render(&mut out, "x", "hostgroup=\"0\"");
        assert!(out.contains("x_bucket{hostgroup=\"0\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{hostgroup=\"0\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{hostgroup=\"0\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{hostgroup=\"0\"} 3\n"), "{out}");
    }

    #[test]
    fn statements_are_counted_by_bounded_labels() {
        let m = Metrics::new([1, 0, 1]);
        m.statement(1, 1, 0, Duration::from_millis(1));
        m.statement(7, 0, 0, Duration::from_millis(1)); // unknown hostgroup: ignored
        m.error_sent(1146);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("rwproxy_statements_total{hostgroup=\"1\",target=\"reader\",kind=\"read\"} 1"));
        assert!(!out.contains("hostgroup=\"7\""));
        assert!(out.contains("rwproxy_client_errors_total{code=\"1146\"} 1"));
    }
}

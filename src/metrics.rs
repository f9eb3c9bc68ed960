//! Prometheus metrics on `metrics-exporter-prometheus` (the `metrics` facade's exporter), with
//! recorders owned here, never installed globally. The data path touches only handles made
//! once (atomics indexed by bounded labels; histogram handles of a long-lived recorder); the
//! families whose values live elsewhere (pools, health, pins) are written into a fresh
//! recorder at each scrape, so a removed server's series goes with it. Both are rendered by
//! the library in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// Statement kinds, as label values (index = position).
pub const KINDS: [&str; 10] =
    ["read", "locking_read", "write", "ddl", "transaction", "set", "use", "show", "other", "empty"];
/// Route targets, as label values.
pub const TARGETS: [&str; 3] = ["writer", "reader", "other"];
/// Why a client connection was refused.
pub const REFUSALS: [&str; 3] = ["max_connections", "user_max_connections", "access_denied"];

const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const STATEMENT_DURATION: &str = "rwproxy_statement_duration_seconds";
const CHECKOUT_WAIT: &str = "rwproxy_pool_checkout_wait_seconds";

static META: Metadata<'static> = Metadata::new("rwproxy", metrics::Level::INFO, None);

/// Families and their help texts: every family `/metrics` serves (README's table lists them).
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    ("rwproxy_client_connections", Kind::Gauge, "Client connections open now."),
    ("rwproxy_client_connections_accepted_total", Kind::Counter, "Client connections accepted."),
    ("rwproxy_client_connections_refused_total", Kind::Counter, "Client connections refused, by reason."),
    ("rwproxy_client_logins_total", Kind::Counter, "Client logins, by TLS and compressed protocol."),
    ("rwproxy_statements_total", Kind::Counter, "Statements by hostgroup, target and kind."),
    (STATEMENT_DURATION, Kind::Histogram, "Statement latency through the proxy."),
    (CHECKOUT_WAIT, Kind::Histogram, "Time to get a backend connection."),
    ("rwproxy_client_received_bytes_total", Kind::Counter, "Bytes received from clients."),
    ("rwproxy_client_sent_bytes_total", Kind::Counter, "Bytes relayed to clients."),
    ("rwproxy_config_reloads_total", Kind::Counter, "Config reloads, by result."),
    (
        "rwproxy_config_last_reload_success_timestamp_seconds",
        Kind::Gauge,
        "When the config was last loaded successfully (Unix time).",
    ),
    ("rwproxy_client_errors_total", Kind::Counter, "ERR packets sent to clients, by MySQL error code."),
    ("rwproxy_pool_connections", Kind::Gauge, "Backend connections by state."),
    ("rwproxy_pool_waiters", Kind::Gauge, "Checkouts waiting for a free connection."),
    ("rwproxy_backend_connects_total", Kind::Counter, "Backend connections opened."),
    (
        "rwproxy_backend_statements_total",
        Kind::Counter,
        "Statements sent to each server (the one that ran them, after retries and pins).",
    ),
    ("rwproxy_backend_connect_failures_total", Kind::Counter, "Backend connects that failed."),
    ("rwproxy_backend_up", Kind::Gauge, "1 when the server takes work (not shunned, not backing off)."),
    ("rwproxy_backend_shunned", Kind::Gauge, "1 for the reason a server is shunned."),
    ("rwproxy_backend_replication_lag_seconds", Kind::Gauge, "Replication lag the monitor measured."),
    (
        "rwproxy_backend_apply_delay_seconds",
        Kind::Gauge,
        "How long after this proxy acknowledged a write the server had applied it (last measurement).",
    ),
    ("rwproxy_backend_read_only", Kind::Gauge, "The server's read_only as last probed."),
    ("rwproxy_sessions_pinned", Kind::Gauge, "Sessions holding their backend connection, by reason."),
    ("rwproxy_pin_events_total", Kind::Counter, "Times a session started being pinned, by reason."),
    (
        "rwproxy_backend_cleanups_total",
        Kind::Counter,
        "Backend connections reset or closed before reuse, by kind of state they carried.",
    ),
    ("rwproxy_read_your_writes_total", Kind::Counter, "Reads that had to see earlier writes, by decision."),
    (
        "rwproxy_primary_position_fetches_total",
        Kind::Counter,
        "Fetches of the primary's position for universal consistency (each serves every read waiting).",
    ),
    (
        "rwproxy_local_answers_total",
        Kind::Counter,
        "Statements the proxy answered without a backend (well-known SETs).",
    ),
    ("rwproxy_read_retries_total", Kind::Counter, "Reads retried on another backend."),
    (
        "rwproxy_query_log_dropped_total",
        Kind::Counter,
        "Query log lines dropped because its writer fell behind.",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

fn describe(r: &PrometheusRecorder) {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => r.describe_counter((*name).into(), None, (*help).into()),
            Kind::Gauge => r.describe_gauge((*name).into(), None, (*help).into()),
            Kind::Histogram => r.describe_histogram((*name).into(), None, (*help).into()),
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, v.clone())).collect::<Vec<_>>())
}

/// One scrape's values, written into a recorder made for that scrape.
pub struct Scrape {
    recorder: PrometheusRecorder,
}

impl Default for Scrape {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        describe(&recorder);
        Scrape { recorder }
    }
}

impl Scrape {
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, String)], v: u64) {
        self.recorder.register_counter(&key(name, labels), &META).absolute(v);
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)], v: f64) {
        self.recorder.register_gauge(&key(name, labels), &META).set(v);
    }

    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

/// Per-hostgroup statement counters and latency.
#[derive(Debug)]
pub struct HostgroupMetrics {
    pub hostgroup: u32,
    statements: [[AtomicU64; KINDS.len()]; TARGETS.len()],
    latency: metrics::Histogram,
}

impl HostgroupMetrics {
    fn new(hostgroup: u32, recorder: &PrometheusRecorder) -> std::sync::Arc<Self> {
        let latency = recorder
            .register_histogram(&key(STATEMENT_DURATION, &[("hostgroup", hostgroup.to_string())]), &META);
        std::sync::Arc::new(HostgroupMetrics { hostgroup, statements: Default::default(), latency })
    }

    /// Statements counted in this hostgroup, every target and kind.
    pub fn total(&self) -> u64 {
        self.statements.iter().flatten().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Every metric the proxy records on its own (pool, health and pin figures are read from
/// their owners at scrape time).
pub struct Metrics {
    /// Holds the histograms (their samples accumulate between scrapes).
    recorder: PrometheusRecorder,
    hostgroups: arc_swap::ArcSwap<Vec<std::sync::Arc<HostgroupMetrics>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Unix time of the last successful (re)load.
    pub last_reload: AtomicU64,
    pub accepted: AtomicU64,
    refused: [AtomicU64; REFUSALS.len()],
    /// Logins by transport: index 2 × TLS + compressed.
    logins: [AtomicU64; 4],
    checkout_wait: metrics::Histogram,
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    errors_by_code: Mutex<BTreeMap<u16, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Handles for every configured hostgroup.
    pub fn new(hostgroups: impl IntoIterator<Item = u32>) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(STATEMENT_DURATION.into()), &LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(CHECKOUT_WAIT.into()), &LATENCY_BUCKETS))
            .expect("the latency buckets are not empty")
            .build_recorder();
        describe(&recorder);
        let mut hgs: Vec<u32> = hostgroups.into_iter().collect();
        hgs.sort_unstable();
        hgs.dedup();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let checkout_wait = recorder.register_histogram(&Key::from_name(CHECKOUT_WAIT), &META);
        let handles = hgs.into_iter().map(|hg| HostgroupMetrics::new(hg, &recorder)).collect();
        Metrics {
            hostgroups: arc_swap::ArcSwap::from_pointee(handles),
            recorder,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_reload: AtomicU64::new(now),
            accepted: AtomicU64::new(0),
            refused: Default::default(),
            logins: Default::default(),
            checkout_wait,
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
                    all.push(HostgroupMetrics::new(*hg, &self.recorder));
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
            h.latency.record(took.as_secs_f64());
        }
    }

    pub fn checkout_waited(&self, waited: Duration) {
        self.checkout_wait.record(waited.as_secs_f64());
    }

    pub fn refused(&self, reason: usize) {
        self.refused[reason.min(REFUSALS.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a login that completed, by how the client is connected.
    pub fn logged_in(&self, tls: bool, compressed: bool) {
        self.logins[usize::from(tls) * 2 + usize::from(compressed)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error sent to a client. Codes are chosen by clients too (`SIGNAL …
    /// MYSQL_ERRNO`), so at most `MAX_ERROR_CODES` distinct ones get a label; the rest count
    /// under code 0 ("other").
    pub fn error_sent(&self, code: u16) {
        if let Ok(mut m) = self.errors_by_code.lock() {
            let code = if m.contains_key(&code) || m.len() < MAX_ERROR_CODES { code } else { 0 };
            *m.entry(code).or_default() += 1;
        }
    }

    /// Folds histogram samples recorded since the last scrape (run every few seconds, so
    /// memory stays bounded when nobody scrapes).
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// This layer's counters into `scrape`.
    pub fn publish(&self, scrape: &Scrape) {
        scrape.counter(
            "rwproxy_client_connections_accepted_total",
            &[],
            self.accepted.load(Ordering::Relaxed),
        );
        for (i, r) in REFUSALS.iter().enumerate() {
            let v = self.refused[i].load(Ordering::Relaxed);
            scrape.counter("rwproxy_client_connections_refused_total", &[("reason", (*r).into())], v);
        }
        for (i, n) in self.logins.iter().enumerate() {
            let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
            let labels = [("tls", yes(i >= 2)), ("compressed", yes(i % 2 == 1))];
            scrape.counter("rwproxy_client_logins_total", &labels, n.load(Ordering::Relaxed));
        }
        for h in self.hostgroups.load().iter() {
            for (t, target) in TARGETS.iter().enumerate() {
                for (k, kind) in KINDS.iter().enumerate() {
                    let labels = [
                        ("hostgroup", h.hostgroup.to_string()),
                        ("target", (*target).into()),
                        ("kind", (*kind).into()),
                    ];
                    scrape.counter(
                        "rwproxy_statements_total",
                        &labels,
                        h.statements[t][k].load(Ordering::Relaxed),
                    );
                }
            }
        }
        scrape.counter(
            "rwproxy_client_received_bytes_total",
            &[],
            self.bytes_from_clients.load(Ordering::Relaxed),
        );
        scrape.counter("rwproxy_client_sent_bytes_total", &[], self.bytes_to_clients.load(Ordering::Relaxed));
        let reloads = [("success", &self.reloads_ok), ("failure", &self.reloads_failed)];
        for (result, n) in reloads {
            scrape.counter(
                "rwproxy_config_reloads_total",
                &[("result", result.into())],
                n.load(Ordering::Relaxed),
            );
        }
        let last = self.last_reload.load(Ordering::Relaxed) as f64;
        scrape.gauge("rwproxy_config_last_reload_success_timestamp_seconds", &[], last);
        if let Ok(m) = self.errors_by_code.lock() {
            for (code, n) in m.iter() {
                scrape.counter("rwproxy_client_errors_total", &[("code", code.to_string())], *n);
            }
        }
    }

    /// The histograms, rendered.
    pub fn render_histograms(&self) -> String {
        self.recorder.handle().render()
    }
}

/// Distinct error codes labelled in `rwproxy_client_errors_total` (one more slot: "other").
const MAX_ERROR_CODES: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new([0]);
        for d in [Duration::from_micros(300), Duration::from_millis(3), Duration::from_secs(20)] {
            m.statement(0, 0, 0, d);
        }
        let out = m.render_histograms();
        let name = STATEMENT_DURATION;
        assert!(out.contains(&format!("{name}_bucket{{hostgroup=\"0\",le=\"0.0005\"}} 1\n")), "{out}");
        assert!(out.contains(&format!("{name}_bucket{{hostgroup=\"0\",le=\"0.005\"}} 2\n")), "{out}");
        assert!(out.contains(&format!("{name}_bucket{{hostgroup=\"0\",le=\"+Inf\"}} 3\n")), "{out}");
        assert!(out.contains(&format!("{name}_count{{hostgroup=\"0\"}} 3\n")), "{out}");
    }

    #[test]
    fn statements_are_counted_by_bounded_labels() {
        let m = Metrics::new([1, 0, 1]);
        m.statement(1, 1, 0, Duration::from_millis(1));
        m.statement(7, 0, 0, Duration::from_millis(1)); // unknown hostgroup: ignored
        m.error_sent(1146);
        let scrape = Scrape::default();
        m.publish(&scrape);
        let out = scrape.render();
        assert!(
            out.contains("rwproxy_statements_total{hostgroup=\"1\",target=\"reader\",kind=\"read\"} 1"),
            "{out}"
        );
        assert!(!out.contains("hostgroup=\"7\""));
        assert!(out.contains("rwproxy_client_errors_total{code=\"1146\"} 1"));
        assert!(
            out.contains("# HELP rwproxy_statements_total Statements by hostgroup, target and kind."),
            "{out}"
        );
    }
}

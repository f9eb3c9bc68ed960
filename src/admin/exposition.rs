//! The `/metrics` page: the data path's own counters plus pool, health, pin and consistency
//! figures read from their owners at scrape time (label values: configured hostgroups and
//! servers, fixed reason lists — all bounded), rendered by `metrics-exporter-prometheus`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::backend::StateKind;
use crate::metrics::Scrape;
use crate::pool::health::ShunReason;
use crate::shared::Context;

const SHUN_REASONS: [ShunReason; 5] = [
    ShunReason::Down,
    ShunReason::Lagging,
    ShunReason::ReplicationStopped,
    ShunReason::ReplicationBroken,
    ShunReason::ReadOnlyOff,
];

pub fn render(ctx: &Context) -> String {
    let scrape = Scrape::default();
    scrape.gauge("rwproxy_client_connections", &[], f64::from(ctx.limits.current()));
    ctx.metrics.publish(&scrape);
    pools(ctx, &scrape);
    health(ctx, &scrape);
    sessions(ctx, &scrape);
    let mut out = scrape.render();
    out += &ctx.metrics.render_histograms();
    out
}

fn server_labels(hostgroup: u32, address: &str) -> [(&'static str, String); 2] {
    [("hostgroup", hostgroup.to_string()), ("server", address.to_string())]
}

fn pools(ctx: &Context, out: &Scrape) {
    let pools = ctx.pools();
    for s in pools.servers() {
        let l = server_labels(s.id.hostgroup, &s.id.address);
        let in_use = s.outstanding.load(Ordering::Relaxed) as usize;
        for (state, v) in [("open", s.open_count()), ("idle", s.idle_count()), ("in_use", in_use)] {
            let labels = [l[0].clone(), l[1].clone(), ("state", state.into())];
            out.gauge("rwproxy_pool_connections", &labels, v as f64);
        }
        out.gauge("rwproxy_pool_waiters", &l, s.stats.waiters.load(Ordering::Relaxed) as f64);
        out.counter("rwproxy_backend_connects_total", &l, s.stats.connects.load(Ordering::Relaxed));
        out.counter("rwproxy_backend_statements_total", &l, s.stats.statements.load(Ordering::Relaxed));
        out.counter(
            "rwproxy_backend_connect_failures_total",
            &l,
            s.stats.connect_failures.load(Ordering::Relaxed),
        );
    }
}

fn health(ctx: &Context, out: &Scrape) {
    let pools = ctx.pools();
    let mut servers: Vec<String> = pools.servers().iter().map(|s| s.id.address.clone()).collect();
    servers.sort();
    servers.dedup();
    let now = Instant::now();
    for addr in &servers {
        let Some(h) = pools.health(addr) else { continue };
        let server = [("server", addr.clone())];
        let backing_off = pools.servers().iter().any(|s| s.id.address == *addr && s.in_backoff(now));
        out.gauge("rwproxy_backend_up", &server, f64::from(u8::from(!h.is_shunned() && !backing_off)));
        let view = h.view();
        let current = view.shunned.as_ref().map(|(r, _)| *r);
        for r in SHUN_REASONS {
            let labels = [server[0].clone(), ("reason", r.as_str().into())];
            out.gauge("rwproxy_backend_shunned", &labels, f64::from(u8::from(current == Some(r))));
        }
        if let Some(lag) = view.lag_seconds {
            out.gauge("rwproxy_backend_replication_lag_seconds", &server, lag as f64);
        }
        let applied = h.applied();
        if applied.pos.is_some() {
            out.gauge("rwproxy_backend_apply_delay_seconds", &server, applied.delay.as_secs_f64());
        }
        if let Some(ro) = view.read_only {
            out.gauge("rwproxy_backend_read_only", &server, f64::from(u8::from(ro)));
        }
    }
}

fn sessions(ctx: &Context, out: &Scrape) {
    let s = &ctx.stats;
    for r in StateKind::pinning() {
        let reason = [("reason", r.name().to_string())];
        out.gauge("rwproxy_sessions_pinned", &reason, s.pinned_now(r) as f64);
        out.counter("rwproxy_pin_events_total", &reason, s.pin_events(r));
    }
    for k in StateKind::ALL {
        let (reset, close) = s.cleanups(*k);
        for (action, n) in [("reset", reset), ("close", close)] {
            let labels = [("state", k.name().to_string()), ("action", action.to_string())];
            out.counter("rwproxy_backend_cleanups_total", &labels, n);
        }
    }
    let decisions = [
        ("reader", &s.ryw_reader),
        ("waited", &s.ryw_waited),
        ("wait_timed_out", &s.ryw_wait_failed),
        ("writer", &s.ryw_writer),
    ];
    for (d, v) in decisions {
        out.counter("rwproxy_read_your_writes_total", &[("decision", d.into())], v.load(Ordering::Relaxed));
    }
    out.counter("rwproxy_primary_position_fetches_total", &[], ctx.fetcher.fetches.load(Ordering::Relaxed));
    out.counter("rwproxy_local_answers_total", &[], s.local_answers());
    out.counter("rwproxy_read_retries_total", &[], s.retries());
    if let Some(log) = ctx.query_log.get() {
        out.counter("rwproxy_query_log_dropped_total", &[], log.dropped.load(Ordering::Relaxed));
    }
}

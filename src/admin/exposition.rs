//! The `/metrics` page: the data path's own counters plus pool, health, pin and consistency
//! figures read from their owners at scrape time (label values: configured hostgroups and
//! servers, fixed reason lists — all bounded).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::backend::StateKind;
use crate::metrics::family;
use crate::pool::health::ShunReason;
use crate::session::Context;

const SHUN_REASONS: [ShunReason; 5] = [
    ShunReason::Down,
    ShunReason::Lagging,
    ShunReason::ReplicationStopped,
    ShunReason::ReplicationBroken,
    ShunReason::ReadOnlyOff,
];

pub fn render(ctx: &Context) -> String {
    let mut out = String::with_capacity(16 * 1024);
    family(&mut out, "rwproxy_client_connections", "gauge", "Client connections open now.");
    let _ = writeln!(out, "rwproxy_client_connections {}", ctx.limits.current());
    ctx.metrics.render(&mut out);
    pools(ctx, &mut out);
    health(ctx, &mut out);
    sessions(ctx, &mut out);
    out
}

fn pools(ctx: &Context, out: &mut String) {
    let pools = ctx.pools();
    family(out, "rwproxy_pool_connections", "gauge", "Backend connections by state.");
    for s in pools.servers() {
        let l = format!("hostgroup=\"{}\",server=\"{}\"", s.id.hostgroup, s.id.address);
        let (open, idle) = (s.open_count(), s.idle_count());
        let in_use = s.outstanding.load(Ordering::Relaxed);
        let _ = writeln!(out, "rwproxy_pool_connections{{{l},state=\"open\"}} {open}");
        let _ = writeln!(out, "rwproxy_pool_connections{{{l},state=\"idle\"}} {idle}");
        let _ = writeln!(out, "rwproxy_pool_connections{{{l},state=\"in_use\"}} {in_use}");
    }
    family(out, "rwproxy_pool_waiters", "gauge", "Checkouts waiting for a free connection.");
    for s in pools.servers() {
        let l = format!("hostgroup=\"{}\",server=\"{}\"", s.id.hostgroup, s.id.address);
        let _ = writeln!(out, "rwproxy_pool_waiters{{{l}}} {}", s.stats.waiters.load(Ordering::Relaxed));
    }
    family(out, "rwproxy_backend_connects_total", "counter", "Backend connections opened.");
    for s in pools.servers() {
        let l = format!("hostgroup=\"{}\",server=\"{}\"", s.id.hostgroup, s.id.address);
        let _ = writeln!(
            out,
            "rwproxy_backend_connects_total{{{l}}} {}",
            s.stats.connects.load(Ordering::Relaxed)
        );
    }
    family(out, "rwproxy_backend_connect_failures_total", "counter", "Backend connects that failed.");
    for s in pools.servers() {
        let l = format!("hostgroup=\"{}\",server=\"{}\"", s.id.hostgroup, s.id.address);
        let v = s.stats.connect_failures.load(Ordering::Relaxed);
        let _ = writeln!(out, "rwproxy_backend_connect_failures_total{{{l}}} {v}");
    }
}

fn health(ctx: &Context, out: &mut String) {
    let pools = ctx.pools();
    let mut servers: Vec<String> = pools.servers().iter().map(|s| s.id.address.clone()).collect();
    servers.dedup();
    servers.sort();
    servers.dedup();
    let now = Instant::now();
    family(
        out,
        "rwproxy_backend_up",
        "gauge",
        "1 when the server takes work (not shunned, not backing off).",
    );
    for addr in &servers {
        let Some(h) = pools.health(addr) else { continue };
        let backing_off = pools.servers().iter().any(|s| s.id.address == *addr && s.in_backoff(now));
        let up = u8::from(!h.is_shunned() && !backing_off);
        let _ = writeln!(out, "rwproxy_backend_up{{server=\"{addr}\"}} {up}");
    }
    family(out, "rwproxy_backend_shunned", "gauge", "1 for the reason a server is shunned.");
    for addr in &servers {
        let Some(h) = pools.health(addr) else { continue };
        let current = h.view().shunned.as_ref().map(|(r, _)| *r);
        for r in SHUN_REASONS {
            let v = u8::from(current == Some(r));
            let _ =
                writeln!(out, "rwproxy_backend_shunned{{server=\"{addr}\",reason=\"{}\"}} {v}", r.as_str());
        }
    }
    family(out, "rwproxy_backend_replication_lag_seconds", "gauge", "Replication lag the monitor measured.");
    for addr in &servers {
        let Some(lag) = pools.health(addr).and_then(|h| h.view().lag_seconds) else { continue };
        let _ = writeln!(out, "rwproxy_backend_replication_lag_seconds{{server=\"{addr}\"}} {lag}");
    }
    family(
        out,
        "rwproxy_backend_apply_delay_seconds",
        "gauge",
        "How long after this proxy acknowledged a write the server had applied it (last measurement).",
    );
    for addr in &servers {
        let Some(a) = pools.health(addr).map(|h| h.applied()).filter(|a| a.pos.is_some()) else { continue };
        let _ = writeln!(
            out,
            "rwproxy_backend_apply_delay_seconds{{server=\"{addr}\"}} {:.3}",
            a.delay.as_secs_f64()
        );
    }
    family(out, "rwproxy_backend_read_only", "gauge", "The server's read_only as last probed.");
    for addr in &servers {
        let Some(ro) = pools.health(addr).and_then(|h| h.view().read_only) else { continue };
        let _ = writeln!(out, "rwproxy_backend_read_only{{server=\"{addr}\"}} {}", u8::from(ro));
    }
}

fn sessions(ctx: &Context, out: &mut String) {
    let s = &ctx.stats;
    family(out, "rwproxy_sessions_pinned", "gauge", "Sessions holding their backend connection, by reason.");
    for r in StateKind::pinning() {
        let _ = writeln!(out, "rwproxy_sessions_pinned{{reason=\"{}\"}} {}", r.name(), s.pinned_now(r));
    }
    family(out, "rwproxy_pin_events_total", "counter", "Times a session started being pinned, by reason.");
    for r in StateKind::pinning() {
        let _ = writeln!(out, "rwproxy_pin_events_total{{reason=\"{}\"}} {}", r.name(), s.pin_events(r));
    }
    family(
        out,
        "rwproxy_backend_cleanups_total",
        "counter",
        "Backend connections reset or closed before reuse, by kind of state they carried.",
    );
    for k in StateKind::ALL {
        let (reset, close) = s.cleanups(*k);
        for (action, n) in [("reset", reset), ("close", close)] {
            let _ = writeln!(
                out,
                "rwproxy_backend_cleanups_total{{state=\"{}\",action=\"{action}\"}} {n}",
                k.name()
            );
        }
    }
    family(
        out,
        "rwproxy_read_your_writes_total",
        "counter",
        "Reads that had to see earlier writes, by decision.",
    );
    let decisions = [
        ("reader", s.ryw_reader.load(Ordering::Relaxed)),
        ("waited", s.ryw_waited.load(Ordering::Relaxed)),
        ("wait_timed_out", s.ryw_wait_failed.load(Ordering::Relaxed)),
        ("writer", s.ryw_writer.load(Ordering::Relaxed)),
    ];
    for (d, v) in decisions {
        let _ = writeln!(out, "rwproxy_read_your_writes_total{{decision=\"{d}\"}} {v}");
    }
    family(
        out,
        "rwproxy_primary_position_fetches_total",
        "counter",
        "Fetches of the primary's position for universal consistency (each serves every read waiting).",
    );
    let _ = writeln!(
        out,
        "rwproxy_primary_position_fetches_total {}",
        ctx.fetcher.fetches.load(Ordering::Relaxed)
    );
    family(
        out,
        "rwproxy_local_answers_total",
        "counter",
        "Statements the proxy answered without a backend (well-known SETs).",
    );
    let _ = writeln!(out, "rwproxy_local_answers_total {}", s.local_answers());
    family(out, "rwproxy_read_retries_total", "counter", "Reads retried on another backend.");
    let _ = writeln!(out, "rwproxy_read_retries_total {}", s.retries());
}

//! JSON views of the running proxy for the admin API (snapshots; nothing here blocks the data
//! path).

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::backend::StateKind;
use crate::config::Secret;
use crate::shared::Context;

pub fn servers(ctx: &Context) -> Value {
    let config = ctx.config();
    let now = std::time::Instant::now();
    let list: Vec<Value> = ctx
        .pools()
        .servers()
        .iter()
        .map(|s| {
            let h = s.health.view();
            let role = match config.replication {
                Some(r) if r.writer_hostgroup == s.id.hostgroup => "writer",
                Some(r) if r.reader_hostgroup == s.id.hostgroup => "reader",
                _ => "hostgroup",
            };
            json!({
                "hostgroup": s.id.hostgroup,
                "address": s.id.address,
                "role": role,
                "active": s.active.load(Ordering::Acquire),
                "health": if h.shunned.is_some() { "shunned" } else { "up" },
                "draining": s.health.is_draining(),
                "shunned_reason": h.shunned.as_ref().map(|(r, _)| r.as_str()),
                "shunned_detail": h.shunned.as_ref().map(|(_, d)| d.clone()),
                "read_only": h.read_only,
                "replication_lag_seconds": h.lag_seconds,
                "gtid": h.gtid.as_ref().map(|g| g.to_string()),
                "applied": applied_view(&s.health.applied()),
                "backing_off": s.in_backoff(now),
                "last_connect_error": s.last_error(),
                "pool": {
                    "max": s.max_connections(),
                    "open": s.open_count(),
                    "idle": s.idle_count(),
                    "in_use": s.outstanding.load(Ordering::Relaxed),
                    "waiters": s.stats.waiters.load(Ordering::Relaxed),
                    "connects": s.stats.connects.load(Ordering::Relaxed),
                    "connect_failures": s.stats.connect_failures.load(Ordering::Relaxed),
                },
            })
        })
        .collect();
    json!({ "servers": list })
}

/// A server's applied position as read-your-writes sees it.
fn applied_view(a: &crate::pool::positions::Applied) -> Value {
    json!({
        "gtid": a.pos.as_ref().map(|g| g.to_string()),
        "age_ms": a.seen.map(|t| t.elapsed().as_millis() as u64),
        "apply_delay_ms": a.pos.as_ref().map(|_| a.delay.as_millis() as u64),
    })
}

pub fn status(ctx: &Context) -> Value {
    let s = &ctx.stats;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "client_connections": ctx.limits.current(),
        "logins": {
            "pending": ctx.pending.current(),
            "evicted_total": ctx.pending.evicted.load(Ordering::Relaxed),
            "refusals_delayed_total": ctx.throttle.delayed.load(Ordering::Relaxed),
        },
        "read_retries_total": s.retries(),
        "read_your_writes": {
            "served_by_reader": s.ryw_reader.load(Ordering::Relaxed),
            "served_after_gtid_wait": s.ryw_waited.load(Ordering::Relaxed),
            "gtid_waits_timed_out": s.ryw_wait_failed.load(Ordering::Relaxed),
            "fell_back_to_writer": s.ryw_writer.load(Ordering::Relaxed),
        },
        "writes_gtid": ctx.written.load().to_string(),
        "primary_position": {
            "fetches": ctx.fetcher.fetches.load(Ordering::Relaxed),
            "reads_served": ctx.fetcher.reads.load(Ordering::Relaxed),
            "fetch_micros_total": ctx.fetcher.fetch_micros.load(Ordering::Relaxed),
        },
    })
}

pub fn sessions(ctx: &Context) -> Value {
    let mut pinned = serde_json::Map::new();
    let mut events = serde_json::Map::new();
    for r in StateKind::pinning() {
        pinned.insert(r.name().into(), json!(ctx.stats.pinned_now(r)));
        events.insert(r.name().into(), json!(ctx.stats.pin_events(r)));
    }
    let mut cleanups = serde_json::Map::new();
    for k in StateKind::ALL {
        let (reset, close) = ctx.stats.cleanups(*k);
        cleanups.insert(
            k.name().into(),
            json!({ "mechanism": k.mechanism().as_str(), "reset": reset, "close": close }),
        );
    }
    json!({
        "connected": ctx.limits.current(),
        "pinned_by_reason": pinned,
        "pin_events_total": events,
        "backend_cleanups": cleanups,
    })
}

fn redacted(s: &Secret) -> &'static str {
    match s {
        Secret::Clear(_) => "<redacted>",
        Secret::Hash(_) | Secret::Sha2(_) => "<redacted hash>",
    }
}

/// The running configuration with every secret replaced.
pub fn config(ctx: &Context) -> Value {
    let c = ctx.config();
    json!({
        "proxy": {
            "listen": c.proxy.listen.to_string(),
            "max_connections": c.proxy.max_connections,
            "max_allowed_packet": c.proxy.max_allowed_packet,
            "server_version": c.proxy.server_version,
            "shutdown_timeout_ms": c.proxy.shutdown_timeout.as_millis() as u64,
            "shutdown_delay_ms": c.proxy.shutdown_delay.as_millis() as u64,
        },
        "servers": c.servers.iter().map(|s| json!({
            "hostgroup": s.hostgroup, "address": s.address, "weight": s.weight.get(),
            "max_connections": s.max_connections.get(), "max_replication_lag": s.max_replication_lag,
        })).collect::<Vec<_>>(),
        "users": c.users.iter().map(|u| json!({
            "username": u.username, "password": redacted(&u.secret), "default_hostgroup": u.default_hostgroup,
            "default_schema": u.default_schema, "max_connections": u.max_connections,
        })).collect::<Vec<_>>(),
        "monitor": c.monitor.as_ref().map(|m| json!({
            "username": m.username, "password": redacted(&m.password),
            "interval_ms": m.interval.as_millis() as u64, "max_replication_lag": m.max_replication_lag,
            "shun_after": m.shun_after, "recover_after": m.recover_after,
        })),
        "replication": c.replication.map(|r| json!({
            "writer_hostgroup": r.writer_hostgroup, "reader_hostgroup": r.reader_hostgroup,
            "writer_is_also_reader": r.writer_is_also_reader,
        })),
        "routing": {
            "read_consistency": format!("{:?}", c.routing.read_consistency).to_lowercase(),
            "session_write_window_ms": c.routing.session_write_window.as_millis() as u64,
            "gtid_wait_ms": c.routing.gtid_wait.as_millis() as u64,
        },
        "query_rules": c.query_rules.iter().map(|r| json!({
            "rule_id": r.rule_id, "username": r.username, "schemaname": r.schemaname,
            "match_digest": r.match_digest.as_ref().map(|re| re.as_str().to_string()),
            "match_pattern": r.match_pattern.as_ref().map(|re| re.as_str().to_string()),
            "destination_hostgroup": r.destination_hostgroup, "apply": r.apply,
        })).collect::<Vec<_>>(),
        "admin": {
            "listen": c.admin.listen.to_string(),
            "token": c.admin.token.as_ref().map(redacted),
        },
        "metrics": { "listen": c.metrics_listen.to_string(), "digests_max": c.digests_max },
    })
}

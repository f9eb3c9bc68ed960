//! HTTP admin API: route explanation, session and pin counts, liveness and readiness.
//! Reads snapshots only; never holds a lock the data path needs.

mod exposition;
pub mod http;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::routing::{SessionFacts, classify, route};
use crate::session::{Context, PinReason};

/// Explains where a statement from a fresh autocommit session of `user` would go.
pub fn explain(config: &Config, sql: &str, user: &str) -> Result<Value, String> {
    let u = config.user(user.as_bytes()).ok_or_else(|| format!("unknown user {user:?}"))?;
    let facts = SessionFacts {
        user: &u.username,
        schema: u.default_schema.as_deref(),
        default_hostgroup: u.default_hostgroup,
        pinned: None,
        recent_write: false,
    };
    let stmt = classify(sql.as_bytes());
    let r = route(&stmt, sql.as_bytes(), &facts, config);
    let mut v = json!({
        "hostgroup": r.hostgroup,
        "target": r.target.as_str(),
        "reason": r.reason.describe(),
        "digest": stmt.digest.text,
        "kind": format!("{:?}", stmt.kind),
    });
    if let Some(e) = r.error {
        v["error"] = json!(e);
    }
    Ok(v)
}

/// Serves the admin API until `shutdown` completes.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let Some(req) = http::read_request(&mut stream).await else {
                        return http::respond(&mut stream, 400, "text/plain", b"bad request\n").await;
                    };
                    if req.path == "/metrics" {
                        let body = exposition::render(&ctx);
                        let kind = "text/plain; version=0.0.4; charset=utf-8";
                        return http::respond(&mut stream, 200, kind, body.as_bytes()).await;
                    }
                    let (status, body) = handle(&req, &ctx);
                    let body = serde_json::to_vec_pretty(&body).unwrap_or_default();
                    http::respond(&mut stream, status, "application/json", &body).await;
                });
            }
            _ = &mut shutdown => return,
        }
    }
}

fn handle(req: &http::Request, ctx: &Context) -> (u16, Value) {
    if req.method != "GET" {
        return (405, json!({"error": "only GET is served here"}));
    }
    match req.path.as_str() {
        "/live" => (200, json!({"live": true})),
        "/ready" if ctx.ready.load(Ordering::Acquire) => (200, json!({"ready": true})),
        "/ready" => (503, json!({"ready": false, "reason": "shutting down"})),
        "/route" => {
            let Some(sql) = req.param("sql") else { return (400, json!({"error": "missing ?sql="})) };
            let config = ctx.config();
            let user = req
                .param("user")
                .map(str::to_string)
                .or_else(|| config.users.first().map(|u| u.username.clone()));
            match explain(&config, sql, user.as_deref().unwrap_or_default()) {
                Ok(v) => (200, v),
                Err(e) => (404, json!({"error": e})),
            }
        }
        "/sessions" => (200, sessions(ctx)),
        "/servers" => (200, servers(ctx)),
        "/digests" => {
            let top = req.param("top").and_then(|n| n.parse().ok()).unwrap_or(20usize);
            let order = req.param("order").unwrap_or("total_time");
            if !["total_time", "count", "p99"].contains(&order) {
                return (400, json!({"error": "order must be total_time, count or p99"}));
            }
            (200, json!({ "digests": ctx.digests.top(top, order), "kept": ctx.digests.len() }))
        }
        "/status" => (200, status(ctx)),
        _ => (404, json!({"error": format!("no such endpoint {:?}", req.path)})),
    }
}

fn servers(ctx: &Context) -> Value {
    let config = ctx.config();
    let now = std::time::Instant::now();
    let list: Vec<Value> = ctx
        .pools
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
                "shunned_reason": h.shunned.as_ref().map(|(r, _)| r.as_str()),
                "shunned_detail": h.shunned.as_ref().map(|(_, d)| d.clone()),
                "read_only": h.read_only,
                "replication_lag_seconds": h.lag_seconds,
                "gtid": h.gtid.as_ref().map(|g| g.to_string()),
                "backing_off": s.in_backoff(now),
                "last_connect_error": s.last_error(),
                "pool": {
                    "max": s.max_connections,
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

fn status(ctx: &Context) -> Value {
    let s = &ctx.stats;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "client_connections": ctx.limits.current(),
        "read_retries_total": s.retries(),
        "read_your_writes": {
            "served_by_reader": s.ryw_reader.load(Ordering::Relaxed),
            "served_after_gtid_wait": s.ryw_waited.load(Ordering::Relaxed),
            "fell_back_to_writer": s.ryw_writer.load(Ordering::Relaxed),
        },
        "writes_gtid": ctx.written.load().to_string(),
    })
}

fn sessions(ctx: &Context) -> Value {
    let mut pinned = serde_json::Map::new();
    let mut events = serde_json::Map::new();
    for r in PinReason::ALL {
        pinned.insert(r.as_str().into(), json!(ctx.stats.pinned_now(r)));
        events.insert(r.as_str().into(), json!(ctx.stats.pin_events(r)));
    }
    json!({
        "connected": ctx.limits.current(),
        "pinned_by_reason": pinned,
        "pin_events_total": events,
    })
}

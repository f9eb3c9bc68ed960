//! HTTP admin API: route explanation, session and pin counts, liveness and readiness.
//! Reads snapshots only; never holds a lock the data path needs.

mod explain;
mod exposition;
pub mod http;
mod server;
pub mod sql;
mod views;

pub use explain::{Assumed, explain};
pub use server::serve;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::config::Config;
use crate::config::Secret;
use crate::routing::Dialect;
use crate::shared::Context;

/// The dialect to read SQL with when no backend was asked: the configured `server_version`,
/// else the fallback version.
pub fn assumed_dialect(config: &Config) -> Dialect {
    let version = config.proxy.server_version.as_deref().unwrap_or(&config.proxy.fallback_server_version);
    Dialect::from_server_version(version.as_bytes())
}

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin API (token-protected when a token is configured).
    Admin,
    /// `/metrics`, `/live` and `/ready` only, without a token (for scrapers and probes).
    Metrics,
}

/// The answer to one request: status, content type, body.
async fn answer(req: &http::Request, ctx: &Context, role: Role) -> (u16, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    let json_body = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    if req.method == "POST" && req.path == "/reload" && role == Role::Admin {
        let (status, body) = reload(req, ctx).await;
        return (status, JSON, json_body(&body));
    }
    if req.path == "/metrics" {
        // On the admin listener, the token applies to /metrics too.
        if role == Role::Admin && !authorized(req, ctx) {
            return (401, JSON, json_body(&json!({"error": UNAUTHORIZED})));
        }
        return (200, "text/plain; version=0.0.4; charset=utf-8", exposition::render(ctx).into_bytes());
    }
    let (status, body) = handle(req, ctx, role);
    (status, JSON, json_body(&body))
}

/// Why a request was refused.
const UNAUTHORIZED: &str = "missing or wrong bearer token (admin.token; or admin.allow_without_token = true on a \
                            loopback listener)";

fn authorized(req: &http::Request, ctx: &Context) -> bool {
    let admin = &ctx.config().admin;
    match &admin.token {
        None => admin.allow_without_token,
        Some(Secret::Clear(t)) => req
            .bearer
            .as_deref()
            .is_some_and(|b| crate::protocol::auth::constant_time_eq(b.as_bytes(), t.as_bytes())),
        Some(Secret::Hash(_) | Secret::Sha2(_)) => false,
    }
}

fn handle(req: &http::Request, ctx: &Context, role: Role) -> (u16, Value) {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/live") => return (200, json!({"live": true})),
        ("GET", "/ready") if ctx.ready.load(Ordering::Acquire) => return (200, json!({"ready": true})),
        ("GET", "/ready") => return (503, json!({"ready": false, "reason": "shutting down"})),
        _ if role == Role::Metrics => {
            return (404, json!({"error": "this listener serves /metrics, /live, /ready"}));
        }
        _ => {}
    }
    if !authorized(req, ctx) {
        return (401, json!({"error": UNAUTHORIZED}));
    }
    if req.method == "POST" {
        return action(req, ctx);
    }
    if req.method != "GET" {
        return (405, json!({"error": "GET or POST only"}));
    }
    match req.path.as_str() {
        "/route" => {
            let Some(sql) = req.param("sql") else { return (400, json!({"error": "missing ?sql="})) };
            let config = ctx.config();
            let assumed = match assumed_from(req) {
                Ok(a) => a,
                Err(e) => return (400, json!({"error": e})),
            };
            let dialect =
                ctx.pools().connector().version().map_or_else(|| assumed_dialect(&config), |v| v.dialect);
            match explain(&config, sql, &assumed, dialect) {
                Ok(v) => (200, v),
                Err(e) => (404, json!({"error": e})),
            }
        }
        "/sessions" => (200, views::sessions(ctx)),
        "/servers" => (200, views::servers(ctx)),
        "/status" => (200, views::status(ctx)),
        "/config" => (200, views::config(ctx)),
        "/digests" => {
            let top = req.param("top").and_then(|n| n.parse().ok()).unwrap_or(20usize);
            let order = req.param("order").unwrap_or("total_time");
            if !["total_time", "count", "p99"].contains(&order) {
                return (400, json!({"error": "order must be total_time, count or p99"}));
            }
            (200, json!({ "digests": ctx.digests.top(top, order), "kept": ctx.digests.len() }))
        }
        _ => (404, json!({"error": format!("no such endpoint {:?}", req.path)})),
    }
}

/// The session facts `/route` takes: `user`, `schema`, `pinned=<hostgroup>`, and the flags
/// `in_transaction`, `recent_write`, `autocommit_off`, `read_only` (`1`/`true`).
fn assumed_from(req: &http::Request) -> Result<Assumed, String> {
    let flag = |name: &str| -> Result<bool, String> {
        match req.param(name) {
            None | Some("0" | "false") => Ok(false),
            Some("1" | "true" | "") => Ok(true),
            Some(other) => Err(format!("{name} must be 1 or 0, got {other:?}")),
        }
    };
    let pinned = match req.param("pinned") {
        None => None,
        Some(p) => Some(p.parse().map_err(|_| format!("pinned must be a hostgroup number, got {p:?}"))?),
    };
    Ok(Assumed {
        user: req.param("user").map(str::to_string),
        schema: req.param("schema").map(str::to_string),
        pinned,
        in_transaction: flag("in_transaction")?,
        recent_write: flag("recent_write")?,
        autocommit_off: flag("autocommit_off")?,
        read_only: flag("read_only")?,
    })
}

/// `POST /reload`: validated reload of the config file.
async fn reload(req: &http::Request, ctx: &Context) -> (u16, Value) {
    if !authorized(req, ctx) {
        return (401, json!({"error": UNAUTHORIZED}));
    }
    let Some(requests) = ctx.reloads.get() else { return (503, json!({"error": "reload is not available"})) };
    match crate::shared::request(requests, None).await {
        Ok(summary) => (200, json!({"reloaded": true, "summary": summary})),
        Err(error) => (400, json!({"reloaded": false, "error": error})),
    }
}

/// `POST /servers/{address}/drain` and `/undrain`.
fn action(req: &http::Request, ctx: &Context) -> (u16, Value) {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["servers", address, verb @ ("drain" | "undrain")] => {
            let on = *verb == "drain";
            if ctx.pools().drain(address, on) {
                tracing::info!(server = %address, draining = on, "drain changed by the admin API");
                (200, json!({"server": address, "draining": on}))
            } else {
                (404, json!({"error": format!("no server {address:?}")}))
            }
        }
        _ => (404, json!({"error": format!("no such action {:?}", req.path)})),
    }
}

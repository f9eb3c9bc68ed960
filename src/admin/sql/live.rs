//! The read-only tables: runtime server status, variables, pool and digest statistics, the
//! process list and the monitor's logs, built from snapshots at query time.

use std::sync::atomic::Ordering;

use super::expr::Value;
use super::toml_rows::Row;
use crate::shared::Context;

use Value::{Int, Null};

fn host_port(address: &str) -> (String, i64) {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "0"));
    (host.trim_start_matches('[').trim_end_matches(']').to_string(), port.parse().unwrap_or(0))
}

fn count(n: impl TryInto<i64>) -> Value {
    Int(n.try_into().unwrap_or(i64::MAX))
}

/// What `runtime_mysql_servers.status` says of a server now: the config's status, or what
/// the monitor and operators made of it (`SHUNNED`, drained = `OFFLINE_SOFT`).
pub fn runtime_status(ctx: &Context, rows: &mut [Row]) {
    let pools = ctx.pools();
    for row in rows.iter_mut() {
        let host = row[1].render().unwrap_or_default();
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let address = format!("{host}:{}", row[2].as_int().unwrap_or(0));
        let Some(h) = pools.health(&address) else { continue };
        if row[4].as_str() == Some("ONLINE") {
            if h.is_shunned() {
                row[4] = Value::text("SHUNNED");
            } else if h.is_draining() {
                row[4] = Value::text("OFFLINE_SOFT");
            }
        }
    }
}

pub fn rows(name: &str, ctx: &Context) -> Vec<Row> {
    match name {
        "global_variables" | "runtime_global_variables" => variables(ctx),
        "stats_mysql_connection_pool" => pool(ctx),
        "stats_mysql_query_digest" => digests(ctx, false),
        "stats_mysql_query_digest_reset" => digests(ctx, true),
        "stats_mysql_global" => global(ctx),
        "stats_mysql_processlist" => processlist(ctx),
        "mysql_server_ping_log" | "mysql_server_read_only_log" | "mysql_server_replication_lag_log" => {
            monitor_log(ctx, name)
        }
        _ => Vec::new(),
    }
}

/// The ProxySQL variables that have an rwproxy meaning (none of them secret).
fn variables(ctx: &Context) -> Vec<Row> {
    let c = ctx.config();
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let mut v: Vec<(&str, String)> = vec![
        ("mysql-interfaces", c.proxy.listen.to_string()),
        ("mysql-max_connections", c.proxy.max_connections.to_string()),
        ("mysql-max_allowed_packet", c.proxy.max_allowed_packet.to_string()),
        (
            "mysql-server_version",
            c.proxy.server_version.clone().unwrap_or(c.proxy.fallback_server_version.clone()),
        ),
        ("mysql-connect_timeout_server", ms(c.pool.connect_timeout)),
        ("mysql-connection_max_age_ms", ms(c.pool.max_lifetime)),
        ("mysql-free_connections_pct", "100".into()),
        ("mysql-wait_timeout", ms(c.proxy.wait_timeout)),
        ("mysql-max_transaction_idle_time", ms(c.proxy.idle_transaction_timeout)),
        ("mysql-default_query_timeout", c.routing.max_statement_time.map_or("0".into(), ms)),
    ];
    if let Some(m) = &c.monitor {
        v.push(("mysql-monitor_username", m.username.clone()));
        for k in ["ping_interval", "read_only_interval", "replication_lag_interval", "connect_interval"] {
            v.push((leak_key(k), ms(m.interval)));
        }
        for k in ["ping_timeout", "read_only_timeout", "replication_lag_timeout", "connect_timeout"] {
            v.push((leak_key(k), ms(m.timeout)));
        }
        v.push(("mysql-monitor_ping_max_failures", m.shun_after.to_string()));
    }
    if let Some(sql) = &c.admin.sql {
        v.push(("admin-mysql_ifaces", sql.listen.to_string()));
    }
    v.push(("admin-version", env!("CARGO_PKG_VERSION").to_string()));
    v.into_iter().map(|(k, val)| vec![Value::text(k), Value::text(val)]).collect()
}

/// `mysql-monitor_<k>` as a static name.
fn leak_key(k: &str) -> &'static str {
    match k {
        "ping_interval" => "mysql-monitor_ping_interval",
        "read_only_interval" => "mysql-monitor_read_only_interval",
        "replication_lag_interval" => "mysql-monitor_replication_lag_interval",
        "connect_interval" => "mysql-monitor_connect_interval",
        "ping_timeout" => "mysql-monitor_ping_timeout",
        "read_only_timeout" => "mysql-monitor_read_only_timeout",
        "replication_lag_timeout" => "mysql-monitor_replication_lag_timeout",
        _ => "mysql-monitor_connect_timeout",
    }
}

/// One row per active pool entry. `Queries_GTID_sync` and the byte counters are not kept per
/// server by rwproxy and read 0.
fn pool(ctx: &Context) -> Vec<Row> {
    let pools = ctx.pools();
    let now = std::time::Instant::now();
    pools
        .servers()
        .iter()
        .filter(|s| s.active.load(Ordering::Acquire))
        .map(|s| {
            let (host, port) = host_port(&s.id.address);
            let status = if s.health.is_shunned() || s.in_backoff(now) {
                "SHUNNED"
            } else if s.health.is_draining() {
                "OFFLINE_SOFT"
            } else {
                "ONLINE"
            };
            let latency = s.health.probes().last().map_or(0, |p| p.took_us);
            let st = &s.stats;
            vec![
                Int(i64::from(s.id.hostgroup)),
                Value::text(host),
                Int(port),
                Value::text(status),
                count(s.outstanding.load(Ordering::Relaxed)),
                count(s.idle_count()),
                count(st.connects.load(Ordering::Relaxed)),
                count(st.connect_failures.load(Ordering::Relaxed)),
                count(st.max_used.load(Ordering::Relaxed)),
                count(st.statements.load(Ordering::Relaxed)),
                Int(0),
                Int(0),
                Int(0),
                count(latency),
            ]
        })
        .collect()
}

/// Digests (user and schema are not kept per digest by rwproxy: empty).
fn digests(ctx: &Context, reset: bool) -> Vec<Row> {
    let rows = ctx.digests.top(usize::MAX, "total_time");
    if reset {
        ctx.digests.reset();
    }
    rows.into_iter()
        .map(|d| {
            let mut row =
                vec![Int(i64::from(d.hostgroup)), Value::text(""), Value::text(""), Value::text("")];
            row.extend([Value::text(d.digest), Value::text(d.digest_text), count(d.count)]);
            row.extend([count(d.first_seen), count(d.last_seen), count(d.total_time_us)]);
            row.extend([count(d.min_time_us), count(d.max_time_us), Int(0), count(d.rows_sent)]);
            row
        })
        .collect()
}

fn global(ctx: &Context) -> Vec<Row> {
    let pools = ctx.pools();
    let sum =
        |f: &dyn Fn(&crate::pool::PoolStats) -> u64| pools.servers().iter().map(|s| f(&s.stats)).sum::<u64>();
    let open: usize = pools.servers().iter().map(|s| s.open_count()).sum();
    let in_trans = ctx.stats.pinned_now(crate::backend::StateKind::Transaction).max(0);
    let v: Vec<(&str, u64)> = vec![
        ("Client_Connections_connected", u64::from(ctx.limits.current())),
        ("Client_Connections_created", ctx.metrics.accepted.load(Ordering::Relaxed)),
        ("Active_Transactions", in_trans as u64),
        ("Questions", ctx.metrics.statements_total()),
        ("Server_Connections_connected", open as u64),
        ("Server_Connections_created", sum(&|s| s.connects.load(Ordering::Relaxed))),
        ("Server_Connections_aborted", sum(&|s| s.connect_failures.load(Ordering::Relaxed))),
        ("ConnPool_get_conn_success", sum(&|s| s.checkouts.load(Ordering::Relaxed))),
        ("mysql_frontend_buffers_bytes", 0),
        ("Queries_backends_bytes_recv", ctx.metrics.bytes_to_clients.load(Ordering::Relaxed)),
        ("Queries_frontends_bytes_recv", ctx.metrics.bytes_from_clients.load(Ordering::Relaxed)),
        ("Read_retries", ctx.stats.retries()),
        ("Local_answers", ctx.stats.local_answers()),
    ];
    v.into_iter().map(|(k, n)| vec![Value::text(k), Value::text(n.to_string())]).collect()
}

fn processlist(ctx: &Context) -> Vec<Row> {
    let now = ctx.sessions.now();
    ctx.sessions
        .list()
        .into_iter()
        .map(|(id, h)| {
            let (command, time) = match h.idle_for(now) {
                Some(ms) => ("Sleep", ms),
                None => ("Query", 0),
            };
            let (srv_host, srv_port) = match h.running().and_then(|(a, _)| ctx.sessions.addresses.get(a)) {
                Some(a) => {
                    let (h, p) = host_port(&a);
                    (Value::text(h), Int(p))
                }
                None => (Null, Null),
            };
            let mut row =
                vec![Int(i64::from(id)), Int(i64::from(id)), Value::text(h.user()), Null, Null, Null];
            row.extend([Null, Null, Null, srv_host, srv_port, Value::text(command), count(time), Null]);
            row
        })
        .collect()
}

fn monitor_log(ctx: &Context, name: &str) -> Vec<Row> {
    let pools = ctx.pools();
    let mut addresses: Vec<&str> = pools.servers().iter().map(|s| s.id.address.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let mut rows = Vec::new();
    for address in addresses {
        let Some(h) = pools.health(address) else { continue };
        let (host, port) = host_port(address);
        for p in h.probes() {
            let mut row = vec![Value::text(host.clone()), Int(port), count(p.start_us), count(p.took_us)];
            match name {
                "mysql_server_read_only_log" => row.push(p.read_only.map_or(Null, |r| Int(i64::from(r)))),
                "mysql_server_replication_lag_log" => row.push(p.lag_seconds.map_or(Null, count)),
                _ => {}
            }
            row.push(Value::opt_text(p.error));
            rows.push(row);
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r[2].as_int()));
    rows
}

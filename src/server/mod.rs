//! Builds pools and the shared context from config, runs the accept loop, reloads, shuts
//! down cleanly.

pub mod fds;
pub mod reload;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::backend::{BackendConnector, Credentials};
use crate::config::{Config, Secret};
use crate::pool::Pools;
use crate::session;
use crate::shared::Context;

/// The sockets `run` serves, bound by the caller (tests bind port 0).
pub struct Listeners {
    pub mysql: TcpListener,
    pub admin: Option<TcpListener>,
    /// Serves `/metrics` (and the same read-only endpoints as the admin API).
    pub metrics: Option<TcpListener>,
    /// The SQL admin (served when `[admin.sql]` is configured).
    pub sql_admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses the config names; an error names the address and its key.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        async fn bind(addr: std::net::SocketAddr, key: &str) -> std::io::Result<TcpListener> {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({key}): {e}")))
        }
        let mysql = bind(config.proxy.listen, "proxy.listen").await?;
        let admin = bind(config.admin.listen, "admin.listen").await?;
        let metrics = bind(config.metrics_listen, "metrics.listen").await?;
        let sql_admin = match &config.admin.sql {
            Some(sql) => Some(bind(sql.listen, "admin.sql.listen").await?),
            None => None,
        };
        Ok(Listeners { mysql, admin: Some(admin), metrics: Some(metrics), sql_admin })
    }
}

/// Serves MySQL clients (and the admin API) until `shutdown` completes; then stops
/// accepting, lets running statements finish (up to `proxy.shutdown_timeout`) and returns.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) {
    let config = Arc::new(config);
    let connector = Arc::new(BackendConnector::new(&config));
    let pools = Pools::new(&config, connector.clone());
    reload::apply_status(None, &config, &pools);
    let ctx = Context::new(config.clone(), pools);
    if let Some(t) = &config.tls {
        match crate::tls::acceptor(t) {
            Ok(a) => ctx.tls.store(Some(Arc::new(a))),
            Err(e) => tracing::error!("TLS is off: {e}"),
        }
    }
    if let Some(path) = &config.proxy.caching_sha2_private_key_file {
        match crate::shared::rsa::RsaKey::load(path) {
            Ok(k) => ctx.rsa.store(Some(Arc::new(k))),
            Err(e) => tracing::error!("caching_sha2 RSA exchange is off: {e}"),
        }
    }
    if let Some(q) = &config.query_log {
        match crate::querylog::QueryLog::start(q) {
            Ok(log) => {
                tracing::info!(file = %q.path.display(), "query log on");
                let _ = ctx.query_log.set(log);
            }
            Err(e) => tracing::error!("the query log is off: {e}"),
        }
    }
    if config.admin.token.is_none() && !config.admin.allow_without_token {
        tracing::warn!(
            "the admin API answers only /live and /ready: set admin.token (or admin.allow_without_token = true \
             on a loopback listener)"
        );
    }
    probe_version(&config, &connector).await;
    let listener = listeners.mysql;
    let (stop_tx, stop_rx) = watch::channel(false);
    let reloader = reload::Reloader::start(ctx.clone());
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let _ = ctx.reloads.set(reload_tx.clone());
    tokio::spawn(reloader.clone().serve(reload_rx));
    spawn_reload_triggers(&config, reload_tx, stop_rx.clone());
    let http =
        [(listeners.admin, crate::admin::Role::Admin), (listeners.metrics, crate::admin::Role::Metrics)];
    for (listener, role) in http.into_iter().filter_map(|(l, r)| l.map(|l| (l, r))) {
        let mut stop = stop_rx.clone();
        tokio::spawn(crate::admin::serve(listener, ctx.clone(), role, async move {
            let _ = stop.changed().await;
        }));
    }
    match (listeners.sql_admin, &config.admin.sql) {
        (Some(listener), Some(_)) => {
            let mut stop = stop_rx.clone();
            tokio::spawn(crate::admin::sql::serve(listener, ctx.clone(), async move {
                let _ = stop.changed().await;
            }));
        }
        (_, None) => tracing::info!("the SQL admin is off: configure [admin.sql] username and password"),
        (None, Some(_)) => {}
    }
    // Histogram samples are folded every few seconds, scraped or not (bounded memory).
    let upkeep = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                ctx.metrics.upkeep();
            }
        })
    };
    // Idle clients, all sessions at once (runs until the sessions are gone).
    let sweeper = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::shared::SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                ctx.sessions.sweep();
            }
        })
    };
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "rwproxy accepting connections");
    tokio::pin!(shutdown);
    let spawn = |stream: tokio::net::TcpStream, peer| {
        // Latency over throughput for request/response traffic.
        let _nodelay = stream.set_nodelay(true);
        let (ctx, stop, alive) = (ctx.clone(), stop_rx.clone(), alive_tx.clone());
        // So a KILL from another session, or the idle sweeper, can shut this one down.
        let kill_switch = Some(std::os::fd::AsRawFd::as_raw_fd(&stream));
        tokio::spawn(async move {
            session::serve(crate::tls::ClientStream::Plain(stream), peer, ctx, stop, kill_switch).await;
            drop(alive);
        });
    };
    let mut reserve = fds::Reserve::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    ctx.metrics.accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    spawn(stream, peer)
                }
                Err(e) if fds::Reserve::is_exhaustion(&e) && reserve.release() => {
                    // Out of descriptors: the reserved one lets this client in to be told so.
                    if let Ok((stream, peer)) = listener.accept().await {
                        tracing::warn!(%peer, "refused: out of file descriptors ({e})");
                        ctx.metrics.refused(0);
                        refuse_too_many(stream).await;
                    }
                    reserve.restore();
                }
                Err(e) => {
                    // Keep serving existing sessions.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    // Readiness goes first so orchestrators stop routing here; keep accepting meanwhile.
    ctx.ready.store(false, std::sync::atomic::Ordering::Release);
    let delay = config.proxy.shutdown_delay;
    tracing::info!(delay_ms = delay.as_millis() as u64, "shutting down: not ready any more");
    let until = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            accepted = listener.accept() => if let Ok((stream, peer)) = accepted { spawn(stream, peer) },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    drop(listener);
    tracing::info!(
        sessions = ctx.limits.current(),
        "shutting down: listener closed; idle sessions close, transactions may finish"
    );
    let _ = stop_tx.send(true);
    reloader.stop_monitor();
    drop(alive_tx);
    let timeout = config.proxy.shutdown_timeout;
    if tokio::time::timeout(timeout, alive_rx.recv()).await.is_err() {
        tracing::warn!(
            sessions = ctx.limits.current(),
            "shutdown timeout reached; closing remaining sessions"
        );
    }
    sweeper.abort();
    upkeep.abort();
}

/// SIGHUP and (with `proxy.watch_config`) changes of the file trigger a reload.
fn spawn_reload_triggers(
    config: &Config,
    requests: mpsc::Sender<reload::ReloadRequest>,
    stop: watch::Receiver<bool>,
) {
    if let Some(path) = config.source.clone() {
        if config.proxy.watch_config {
            tokio::spawn(reload::watch_file(path, requests.clone(), stop.clone()));
        }
        let mut stop = stop;
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP received: reloading the config");
                        let _ = reload::request(&requests, None).await;
                    }
                    _ = stop.changed() => return,
                }
            }
        });
    }
}

/// Learns the primary's version string before the first client connects, with the monitor
/// credentials; without them (or with the primary down) the first pooled connection does.
async fn probe_version(config: &Config, connector: &BackendConnector) {
    let (Some(monitor), Some(hostgroup)) = (&config.monitor, config.version_hostgroup()) else { return };
    let creds = match &monitor.password {
        Secret::Clear(p) => Credentials::Password(p.clone()),
        Secret::Hash(_) | Secret::Sha2(_) => return,
    };
    for server in config.servers.iter().filter(|s| s.hostgroup == hostgroup) {
        match connector.connect_as(&server.address, &monitor.username, &creds).await {
            Ok(conn) => {
                connector.record_version(&conn.greeting);
                tracing::info!(server = %server.address, version = %String::from_utf8_lossy(&conn.greeting.server_version), "primary version learned");
                return;
            }
            Err(e) => tracing::warn!(server = %server.address, "version probe failed: {e}"),
        }
    }
}

/// ERR 1040 in place of the greeting, then close (bounded: a client that does not read is
/// simply dropped).
async fn refuse_too_many(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let payload = crate::protocol::reply::err_packet_pre_handshake(1040, "Too many connections");
    let mut out = Vec::with_capacity(payload.len() + 4);
    crate::protocol::packet::encode(&mut out, 0, &payload);
    let _ = tokio::time::timeout(Duration::from_millis(500), stream.write_all(&out)).await;
}

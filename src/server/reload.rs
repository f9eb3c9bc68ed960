//! Validated hot reload: the new file is parsed and validated completely first; on any error
//! the running config stays and the exact key and reason are reported. On success the config,
//! connector and pools are swapped atomically and the monitor restarts: new sessions and
//! statements see the new config, sessions keep their connections, removed servers drain.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::backend::BackendConnector;
use crate::config::Config;
use crate::shared::Context;

pub use crate::shared::{ReloadRequest, request};

pub struct Reloader {
    ctx: Arc<Context>,
    monitor_stop: Mutex<watch::Sender<bool>>,
}

impl Reloader {
    /// Starts the monitor for the current config.
    pub fn start(ctx: Arc<Context>) -> Arc<Self> {
        let (tx, rx) = watch::channel(false);
        crate::monitor::spawn(ctx.config().clone(), ctx.pools(), ctx.write_log.clone(), rx);
        Arc::new(Reloader { ctx, monitor_stop: Mutex::new(tx) })
    }

    pub fn stop_monitor(&self) {
        if let Ok(tx) = self.monitor_stop.lock() {
            let _ = tx.send(true);
        }
    }

    /// Serves reload requests (admin API, SIGHUP, file watcher) one at a time.
    pub async fn serve(self: Arc<Self>, mut requests: mpsc::Receiver<ReloadRequest>) {
        while let Some(ReloadRequest { config, reply }) = requests.recv().await {
            let outcome = self.reload(config);
            let _ = reply.send(outcome);
        }
    }

    /// Reloads the config file, or installs `config` (validated already, from the SQL admin).
    /// `Ok` carries a summary (with warnings for settings that need a restart), `Err` the key
    /// path and reason of the first problem.
    pub fn reload(&self, config: Option<Box<Config>>) -> Result<String, String> {
        let metrics = &self.ctx.metrics;
        let result = self.try_reload(config);
        match &result {
            Ok(summary) => {
                metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                metrics.last_reload.store(now, Ordering::Relaxed);
                tracing::info!("config reloaded: {summary}");
            }
            Err(e) => {
                metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("config reload refused, the running config stays: {e}");
            }
        }
        result
    }

    fn try_reload(&self, given: Option<Box<Config>>) -> Result<String, String> {
        let old = self.ctx.config().clone();
        let new = match given {
            Some(mut c) => {
                c.source.clone_from(&old.source);
                Arc::new(*c)
            }
            None => {
                let path = old.source.clone().ok_or("the running config was not loaded from a file")?;
                Arc::new(Config::load(&path).map_err(|e| e.to_string())?)
            }
        };
        let mut warnings = Vec::new();
        for (key, changed) in [
            ("proxy.listen", old.proxy.listen != new.proxy.listen),
            ("admin.listen", old.admin.listen != new.admin.listen),
            ("metrics.listen", old.metrics_listen != new.metrics_listen),
            ("proxy.worker_threads", old.proxy.worker_threads != new.proxy.worker_threads),
            ("query_log", old.query_log != new.query_log),
            (
                "admin.sql.listen",
                old.admin.sql.as_ref().map(|s| s.listen) != new.admin.sql.as_ref().map(|s| s.listen),
            ),
        ] {
            if changed {
                warnings.push(format!("{key} changed: takes effect after a restart"));
            }
        }
        // Certificates are read again on every reload (renewed files take effect); a bad one
        // refuses the whole reload.
        let tls = new.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let rsa = new
            .proxy
            .caching_sha2_private_key_file
            .as_deref()
            .map(crate::shared::rsa::RsaKey::load)
            .transpose()?;
        crate::backend::tls::BackendTls::from_config(&new)?;
        let old_pools = self.ctx.pools();
        let connector = Arc::new(BackendConnector::new(&new));
        connector.inherit(old_pools.connector());
        let pools = old_pools.rebuild(&new, connector);
        self.ctx.metrics.add_hostgroups(new.servers.iter().map(|s| s.hostgroup));
        self.ctx.swap(new.clone(), pools.clone());
        self.ctx.tls.store(tls.map(Arc::new));
        self.ctx.rsa.store(rsa.map(Arc::new));
        let (tx, rx) = watch::channel(false);
        if let Ok(mut stop) = self.monitor_stop.lock() {
            let _ = stop.send(true);
            *stop = tx;
        }
        apply_status(Some(&old), &new, &pools);
        crate::monitor::spawn(new.clone(), pools, self.ctx.write_log.clone(), rx);
        let mut summary = format!(
            "{} servers, {} users, {} query rules",
            new.servers.len(),
            new.users.len(),
            new.query_rules.len()
        );
        if !warnings.is_empty() {
            summary = format!("{summary}; {}", warnings.join("; "));
        }
        Ok(summary)
    }
}

/// Applies the servers' configured `status`: `OFFLINE_SOFT`/`OFFLINE_HARD` drain the
/// address (hard also closes its idle connections); a server that was offline in `old` and is
/// `ONLINE` now is undrained. A drain set through the admin API stays until the config says
/// otherwise.
pub fn apply_status(old: Option<&Config>, new: &Config, pools: &crate::pool::Pools<BackendConnector>) {
    use crate::config::ServerStatus;
    let status_of = |c: &Config, address: &str| {
        let entries = c.servers.iter().filter(|s| s.address == address);
        entries.map(|s| s.status).max_by_key(|s| *s as u8).unwrap_or_default()
    };
    for s in &new.servers {
        let now = status_of(new, &s.address);
        let before = old.map_or(ServerStatus::Online, |o| status_of(o, &s.address));
        if now != ServerStatus::Online {
            pools.drain(&s.address, true);
        } else if before != ServerStatus::Online {
            pools.drain(&s.address, false);
        }
    }
}

/// Reloads when the config file's modification time changes (checked every second).
pub async fn watch_file(
    path: std::path::PathBuf,
    requests: mpsc::Sender<ReloadRequest>,
    mut stop: watch::Receiver<bool>,
) {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let now = modified(&path);
        if now.is_some() && now != last {
            last = now;
            tracing::info!(file = %path.display(), "config file changed");
            let _ = request(&requests, None).await;
        }
    }
}

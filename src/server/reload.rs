//! Validated hot reload: the new file is parsed and validated completely first; on any error
//! the running config stays and the exact key and reason are reported. On success the config,
//! connector and pools are swapped atomically and the monitor restarts: new sessions and
//! statements see the new config, sessions keep their connections, removed servers drain.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::BackendConnector;
use crate::config::Config;
use crate::session::Context;

/// A reload request and where its outcome goes.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

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
        while let Some(reply) = requests.recv().await {
            let outcome = self.reload();
            let _ = reply.send(outcome);
        }
    }

    /// Reloads the config file. `Ok` carries a summary (with warnings for settings that
    /// need a restart), `Err` the key path and reason of the first problem.
    pub fn reload(&self) -> Result<String, String> {
        let metrics = &self.ctx.metrics;
        let result = self.try_reload();
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

    fn try_reload(&self) -> Result<String, String> {
        let old = self.ctx.config().clone();
        let path = old.source.clone().ok_or("the running config was not loaded from a file")?;
        let new = Arc::new(Config::load(&path).map_err(|e| e.to_string())?);
        let mut warnings = Vec::new();
        for (key, changed) in [
            ("proxy.listen", old.proxy.listen != new.proxy.listen),
            ("admin.listen", old.admin.listen != new.admin.listen),
            ("metrics.listen", old.metrics_listen != new.metrics_listen),
            ("proxy.worker_threads", old.proxy.worker_threads != new.proxy.worker_threads),
        ] {
            if changed {
                warnings.push(format!("{key} changed: takes effect after a restart"));
            }
        }
        let old_pools = self.ctx.pools();
        let connector = Arc::new(BackendConnector::new(&new));
        connector.inherit(old_pools.connector());
        let pools = old_pools.rebuild(&new, connector);
        self.ctx.metrics.add_hostgroups(new.servers.iter().map(|s| s.hostgroup));
        self.ctx.swap(new.clone(), pools.clone());
        let (tx, rx) = watch::channel(false);
        if let Ok(mut stop) = self.monitor_stop.lock() {
            let _ = stop.send(true);
            *stop = tx;
        }
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

/// Sends a reload request and waits for its outcome.
pub async fn request(requests: &mpsc::Sender<ReloadRequest>) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    requests.send(tx).await.map_err(|_| "the proxy is shutting down".to_string())?;
    rx.await.map_err(|_| "the reload was interrupted".to_string())?
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
            let _ = request(&requests).await;
        }
    }
}

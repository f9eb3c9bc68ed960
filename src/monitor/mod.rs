//! Health monitor: one probe task per backend (ping, `read_only`, lag, GTID position) and a
//! coordinator that turns consecutive results into shun/recover decisions and replication
//! roles, published lock-free to the pools.

pub mod health;
mod probe;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};

use crate::backend::{BackendConn, BackendConnector, Credentials};
use crate::config::{Config, MonitorConfig, Secret};
use crate::pool::Pools;
use crate::pool::health::HealthView;
use crate::pool::positions::WriteLog;
use crate::routing::gtid::GtidPos;
use health::{Change, Probe, Tracker, choose_writer, reader_verdict};

/// Starts the monitor when `[monitor]` is configured; it stops when `stop` turns true.
pub fn spawn(
    config: Arc<Config>,
    pools: Arc<Pools<BackendConnector>>,
    log: Arc<WriteLog>,
    stop: watch::Receiver<bool>,
) {
    let Some(m) = config.monitor.clone() else {
        tracing::warn!("no [monitor] section: backends are not health-checked");
        return;
    };
    let Secret::Clear(password) = &m.password else {
        tracing::warn!("monitor.password must be clear text (or password_env); health checks are off");
        return;
    };
    let creds = Credentials::Password(password.clone());
    let mut addresses: Vec<String> = Vec::new();
    for s in &config.servers {
        if !addresses.contains(&s.address) {
            addresses.push(s.address.clone());
        }
    }
    let (tx, rx) = mpsc::channel(addresses.len() * 4);
    for (i, addr) in addresses.iter().enumerate() {
        let task = ProbeTask {
            index: i,
            address: addr.clone(),
            creds: creds.clone(),
            monitor: m.clone(),
            pools: pools.clone(),
            log: log.clone(),
        };
        tokio::spawn(task.run(pools.connector().clone(), tx.clone(), stop.clone()));
    }
    tokio::spawn(Coordinator::new(config, m, pools, addresses).run(rx));
}

struct ProbeTask {
    index: usize,
    address: String,
    creds: Credentials,
    monitor: MonitorConfig,
    pools: Arc<Pools<BackendConnector>>,
    log: Arc<WriteLog>,
}

impl ProbeTask {
    async fn run(
        self,
        connector: Arc<BackendConnector>,
        tx: mpsc::Sender<(usize, Result<Probe, String>)>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut conn = None;
        let mut tick = tokio::time::interval(self.monitor.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = self.monitor.position_interval;
        let mut position_tick =
            tokio::time::interval(if every.is_zero() { self.monitor.interval } else { every });
        position_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut replica = false; // the last probe found it read-only: worth polling its position
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = position_tick.tick(), if replica && !every.is_zero() => {
                    self.poll_position(&mut conn).await;
                    continue;
                }
                _ = stop.changed() => return,
            }
            let attempt = async {
                if conn.is_none() {
                    let c = connector.connect_as(&self.address, &self.monitor.username, &self.creds).await;
                    conn = Some(c.map_err(|e| e.to_string())?);
                }
                match conn.as_mut() {
                    Some(c) => probe::probe(c).await,
                    None => Err("no monitor connection".to_string()),
                }
            };
            let (started, clock) = (std::time::SystemTime::now(), std::time::Instant::now());
            let result = match tokio::time::timeout(self.monitor.timeout, attempt).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", self.monitor.timeout.as_millis())),
            };
            if let Some(h) = self.pools.health(&self.address) {
                h.record_probe(record(&result, started, clock.elapsed()));
            }
            match &result {
                Ok(p) => {
                    replica = p.read_only;
                    if let (Some(g), Some(h)) = (&p.gtid, self.pools.health(&self.address)) {
                        h.observe_position(g, &self.log);
                        h.set_fresh_within(self.fresh_within(replica));
                    }
                }
                Err(_) => conn = None,
            }
            if tx.send((self.index, result)).await.is_err() {
                return;
            }
        }
    }

    /// How old this server's last answer may be while it is answering: a few position polls
    /// for a replica, a probe interval and its timeout otherwise.
    fn fresh_within(&self, replica: bool) -> std::time::Duration {
        let m = &self.monitor;
        if replica && !m.position_interval.is_zero() {
            (m.position_interval * 5).max(std::time::Duration::from_millis(250)).max(m.timeout)
        } else {
            m.interval + m.timeout * 2
        }
    }

    /// Reads the server's applied GTID position alone (one short query), for read-your-writes.
    /// A failure drops the connection; the next probe reconnects and reports it.
    async fn poll_position(&self, conn: &mut Option<BackendConn>) {
        let Some(c) = conn.as_mut() else { return };
        let sql = format!("SELECT {}", probe::applied_variable(c));
        let read = tokio::time::timeout(self.monitor.timeout, c.query_rows(&sql)).await;
        match read {
            Ok(Ok(Ok(rows))) => {
                let value = rows.rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref());
                if let (Some(g), Some(h)) = (value.and_then(GtidPos::parse), self.pools.health(&self.address))
                {
                    h.observe_position(&g, &self.log);
                }
            }
            Ok(Ok(Err(_))) => {} // no GTIDs here (MySQL, or an old server): the probe has it
            _ => *conn = None,
        }
    }
}

struct Coordinator {
    config: Arc<Config>,
    monitor: MonitorConfig,
    pools: Arc<Pools<BackendConnector>>,
    addresses: Vec<String>,
    trackers: Vec<Tracker>,
    read_only: Vec<Option<bool>>,
    writer: Option<usize>,
}

impl Coordinator {
    fn new(
        config: Arc<Config>,
        monitor: MonitorConfig,
        pools: Arc<Pools<BackendConnector>>,
        addresses: Vec<String>,
    ) -> Self {
        let writer = config.replication.and_then(|r| {
            let first = config.servers.iter().find(|s| s.hostgroup == r.writer_hostgroup)?;
            addresses.iter().position(|a| *a == first.address)
        });
        let n = addresses.len();
        Coordinator {
            config,
            monitor,
            pools,
            addresses,
            trackers: vec![Tracker::default(); n],
            read_only: vec![None; n],
            writer,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<(usize, Result<Probe, String>)>) {
        while let Some((i, result)) = rx.recv().await {
            self.observe(i, result);
        }
    }

    fn in_replication(&self, i: usize) -> bool {
        let Some(r) = self.config.replication else { return false };
        let groups = [r.writer_hostgroup, r.reader_hostgroup];
        self.config.servers.iter().any(|s| s.address == self.addresses[i] && groups.contains(&s.hostgroup))
    }

    fn observe(&mut self, i: usize, result: Result<Probe, String>) {
        let m = self.monitor.clone();
        if let Ok(p) = &result {
            self.read_only[i] = Some(p.read_only);
        }
        self.update_writer();
        let replicated = self.in_replication(i);
        let is_writer = !replicated || self.writer == Some(i);
        let max_lag = self
            .config
            .servers
            .iter()
            .find(|s| s.address == self.addresses[i])
            .and_then(|s| s.max_replication_lag)
            .unwrap_or(m.max_replication_lag);
        let verdict = reader_verdict(&result, max_lag, is_writer);
        let addr = &self.addresses[i];
        match self.trackers[i].observe(verdict, m.shun_after, m.recover_after) {
            Some(Change::Shunned(reason, detail)) => {
                tracing::warn!(server = %addr, reason = reason.as_str(), "server shunned: {detail}");
                self.pools.clear_idle(addr);
            }
            Some(Change::Recovered) => {
                tracing::info!(server = %addr, "server readmitted");
                self.pools.clear_backoff(addr);
            }
            None => {}
        }
        let probe = result.as_ref().ok();
        let view = HealthView {
            shunned: self.trackers[i].shunned.clone(),
            read_only: self.read_only[i],
            lag_seconds: probe.and_then(|p| p.replication.as_ref()).and_then(|r| r.lag_seconds),
            gtid: probe.and_then(|p| p.gtid.clone()),
            checked_at: Some(SystemTime::now()),
            probe_failed: result.is_err(),
        };
        if let Some(h) = self.pools.health(addr) {
            h.publish(view);
        }
    }

    /// Moves the writer role when the current writer is down or read-only and another
    /// server is up and writable (ProxySQL replication hostgroups).
    fn update_writer(&mut self) {
        let Some(r) = self.config.replication else { return };
        let candidates: Vec<bool> = (0..self.addresses.len())
            .map(|i| {
                self.in_replication(i)
                    && self.read_only[i] == Some(false)
                    && !self.trackers[i]
                        .shunned
                        .as_ref()
                        .is_some_and(|(r, _)| *r == crate::pool::health::ShunReason::Down)
            })
            .collect();
        let chosen = choose_writer(self.writer, &candidates);
        let first_decision = self.writer.is_some() && self.read_only.iter().all(Option::is_some);
        if chosen != self.writer || first_decision {
            if chosen != self.writer {
                let from = self.writer.map_or("none", |w| self.addresses[w].as_str());
                let to = chosen.map_or("none", |w| self.addresses[w].as_str());
                tracing::warn!(from, to, hostgroup = r.writer_hostgroup, "writer changed");
            }
            self.writer = chosen;
        }
        for (i, addr) in self.addresses.iter().enumerate().filter(|(i, _)| self.in_replication(*i)) {
            let is_writer = self.writer == Some(i);
            self.pools.set_active(r.writer_hostgroup, addr, is_writer);
            let known_read_only = self.read_only[i] != Some(false) || is_writer;
            self.pools.set_active(
                r.reader_hostgroup,
                addr,
                known_read_only && (!is_writer || r.writer_is_also_reader),
            );
        }
    }
}

/// A probe's outcome for the monitor log.
fn record(
    result: &Result<Probe, String>,
    started: std::time::SystemTime,
    took: std::time::Duration,
) -> crate::pool::health::ProbeRecord {
    let start_us = started.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    match result {
        Ok(p) => crate::pool::health::ProbeRecord {
            start_us,
            took_us: took.as_micros() as u64,
            error: None,
            read_only: Some(p.read_only),
            lag_seconds: p.replication.as_ref().and_then(|r| r.lag_seconds),
        },
        Err(e) => crate::pool::health::ProbeRecord {
            start_us,
            took_us: 0,
            error: Some(e.clone()),
            read_only: None,
            lag_seconds: None,
        },
    }
}

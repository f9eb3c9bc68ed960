//! Backend connection pools per server, grouped by hostgroup; checkout, checkin, reaping.
//!
//! Generic over the connection (`Connector`) so the pool logic is testable without MySQL.

mod checkout;
pub mod health;
pub mod positions;
mod server;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{Config, PoolConfig, ServerConfig};
use health::ServerHealth;
use server::{Idle, Permit};
pub use server::{PoolStats, ServerPool};

/// Identifies one server entry: an address in a hostgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerId {
    pub hostgroup: u32,
    pub address: String,
}

/// Opens and resets connections for the pool.
pub trait Connector: Send + Sync + 'static {
    type Conn: Send + 'static;
    type Key: Hash + Eq + Clone + Debug + Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    fn connect(
        &self,
        server: &ServerId,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;
    /// Brings a used connection back to a clean state; `false` means close it.
    fn reset(&self, conn: &mut Self::Conn) -> impl Future<Output = bool> + Send;
    /// Whether a connect error says the server is unreachable (back off) rather than that it
    /// refused this login.
    fn is_server_down(err: &Self::Error) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError<E: std::error::Error + 'static> {
    #[error("hostgroup {hostgroup} has no servers")]
    EmptyHostgroup { hostgroup: u32 },
    #[error("no backend connection in hostgroup {hostgroup} within {} ms{}", waited.as_millis(), last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout { hostgroup: u32, waited: Duration, last_error: Option<String> },
    #[error("no healthy server in hostgroup {hostgroup} ({last_error})")]
    Unreachable { hostgroup: u32, last_error: String },
    #[error("hostgroup {hostgroup}: {source}")]
    Refused { hostgroup: u32, source: E },
}

/// A checked-out connection. Dropping it closes the connection and frees its slot
/// (waiters are woken by the `Permit`).
pub struct Pooled<C: Connector> {
    conn: C::Conn,
    permit: Permit,
    server: Arc<ServerPool<C::Conn, C::Key>>,
    key: C::Key,
    created: Instant,
    _outstanding: Outstanding,
    /// Whether the connection came from the idle list rather than a fresh connect.
    pub reused: bool,
    /// How long it lay idle before this checkout (zero for a fresh connect).
    pub idle_for: Duration,
    /// How long the checkout took (zero when an idle connection was there at once).
    pub waited: Duration,
}

/// Counts a checked-out connection against its server while it lives.
struct Outstanding(Arc<AtomicU32>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<C: Connector> Pooled<C> {
    pub fn conn(&mut self) -> &mut C::Conn {
        &mut self.conn
    }
    pub fn server(&self) -> &ServerId {
        &self.server.id
    }
    pub fn key(&self) -> &C::Key {
        &self.key
    }
    pub fn health(&self) -> &Arc<ServerHealth> {
        &self.server.health
    }
    /// Counts a statement sent on this connection (for the server it ran on).
    pub fn count_statement(&self) {
        self.server.stats.statements.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Pools<C: Connector> {
    connector: Arc<C>,
    cfg: PoolConfig,
    servers: Vec<Arc<ServerPool<C::Conn, C::Key>>>,
    by_hostgroup: crate::FastMap<u32, (Vec<usize>, Arc<Notify>)>,
    health: HashMap<String, Arc<ServerHealth>>,
}

impl<C: Connector> Pools<C> {
    /// One entry per configured server; with `[replication]`, every server of the writer and
    /// reader hostgroups also gets an (inactive) entry in the other, so the monitor can move
    /// roles on failover.
    pub fn new(config: &Config, connector: Arc<C>) -> Arc<Self> {
        Self::build(config, connector, None)
    }

    /// Pools for a reloaded config. Entries of servers that stay are the same objects (idle
    /// connections, health, statistics and waiters carry over) with the new weight and cap;
    /// entries of removed servers are retired: no new checkouts, idle connections closed,
    /// connections in use closed when returned.
    pub fn rebuild(&self, config: &Config, connector: Arc<C>) -> Arc<Self> {
        let next = Self::build(config, connector, Some(self));
        for old in &self.servers {
            if !next.servers.iter().any(|s| Arc::ptr_eq(s, old)) {
                old.active.store(false, Ordering::Release);
                old.clear_idle();
            }
        }
        next
    }

    fn build(config: &Config, connector: Arc<C>, previous: Option<&Self>) -> Arc<Self> {
        let mut entries: Vec<(ServerConfig, bool)> =
            config.servers.iter().map(|s| (s.clone(), true)).collect();
        if let Some(r) = config.replication {
            for s in config
                .servers
                .iter()
                .filter(|s| [r.writer_hostgroup, r.reader_hostgroup].contains(&s.hostgroup))
            {
                for hg in [r.writer_hostgroup, r.reader_hostgroup] {
                    if !entries.iter().any(|(e, _)| e.hostgroup == hg && e.address == s.address) {
                        entries.push((ServerConfig { hostgroup: hg, ..s.clone() }, false));
                    }
                }
            }
        }
        let mut by_hostgroup: crate::FastMap<u32, (Vec<usize>, Arc<Notify>)> = crate::FastMap::default();
        let mut health: HashMap<String, Arc<ServerHealth>> = HashMap::new();
        let mut servers = Vec::new();
        for (i, (s, configured)) in entries.iter().enumerate() {
            let notify = previous.and_then(|p| p.by_hostgroup.get(&s.hostgroup)).map(|(_, n)| n.clone());
            let entry =
                by_hostgroup.entry(s.hostgroup).or_insert_with(|| (Vec::new(), notify.unwrap_or_default()));
            entry.0.push(i);
            let reused = previous.and_then(|p| {
                p.servers.iter().find(|old| old.id.hostgroup == s.hostgroup && old.id.address == s.address)
            });
            if let Some(old) = reused {
                old.resize(s.weight.get(), s.max_connections.get());
                health.insert(s.address.clone(), old.health.clone());
                servers.push(old.clone());
                continue;
            }
            let previous_health = previous.and_then(|p| p.health.get(&s.address)).cloned();
            let h = health
                .entry(s.address.clone())
                .or_insert_with(|| previous_health.unwrap_or_default())
                .clone();
            let id = ServerId { hostgroup: s.hostgroup, address: s.address.clone() };
            let pool = ServerPool::new(id, s.weight.get(), s.max_connections.get(), entry.1.clone(), h);
            pool.active.store(*configured, Ordering::Release);
            servers.push(Arc::new(pool));
        }
        let pools = Arc::new(Pools { connector, cfg: config.pool.clone(), servers, by_hostgroup, health });
        tokio::spawn(reaper(Arc::downgrade(&pools)));
        pools
    }

    pub fn connector(&self) -> &Arc<C> {
        &self.connector
    }

    pub fn servers(&self) -> &[Arc<ServerPool<C::Conn, C::Key>>] {
        &self.servers
    }

    /// The shared health of a server address.
    pub fn health(&self, address: &str) -> Option<&Arc<ServerHealth>> {
        self.health.get(address)
    }

    /// Puts an entry in or out of its hostgroup (replication roles).
    pub fn set_active(&self, hostgroup: u32, address: &str, active: bool) {
        for s in self.servers.iter().filter(|s| s.id.hostgroup == hostgroup && s.id.address == address) {
            if s.active.swap(active, Ordering::AcqRel) != active && !active {
                s.clear_idle();
            }
        }
    }

    /// A connection to `address` broke: back off from it and close its idle connections,
    /// which are likely dead too.
    pub fn server_failed(&self, address: &str, error: &str) {
        for s in self.servers.iter().filter(|s| s.id.address == address) {
            s.connect_failed(
                Instant::now(),
                error.to_string(),
                self.cfg.backoff_initial,
                self.cfg.backoff_max,
            );
            s.clear_idle();
        }
    }

    /// Drains (or undrains) a server: no new checkouts while drained; connections in use
    /// finish their work and are closed when returned. False when the address is unknown.
    pub fn drain(&self, address: &str, on: bool) -> bool {
        let Some(h) = self.health.get(address) else { return false };
        h.set_draining(on);
        if on {
            self.clear_idle(address);
        }
        true
    }

    /// Forgets connect failures of `address` (the monitor saw it recover).
    pub fn clear_backoff(&self, address: &str) {
        self.servers.iter().filter(|s| s.id.address == address).for_each(|s| s.clear_backoff());
    }

    /// Closes idle connections of every entry of `address` (after it was shunned).
    pub fn clear_idle(&self, address: &str) {
        self.servers.iter().filter(|s| s.id.address == address).for_each(|s| s.clear_idle());
    }

    /// Whether `hostgroup` has any server configured.
    pub fn has_hostgroup(&self, hostgroup: u32) -> bool {
        self.by_hostgroup.contains_key(&hostgroup)
    }

    /// Returns a clean connection for reuse (closed instead when past its max lifetime).
    pub fn checkin(&self, pooled: Pooled<C>) {
        let now = Instant::now();
        let retired = !pooled.server.active.load(Ordering::Acquire) || pooled.server.health.is_draining();
        if now - pooled.created >= self.cfg.max_lifetime || retired {
            return;
        }
        let Pooled { conn, permit, server, key, created, .. } = pooled;
        server.clone().put_idle(key, Idle { conn, permit, created, since: now });
    }

    /// Resets a used connection off the request path, then returns it (or closes it).
    pub fn checkin_dirty(self: &Arc<Self>, mut pooled: Pooled<C>) {
        let pools = self.clone();
        tokio::spawn(async move {
            if pools.connector.reset(&mut pooled.conn).await {
                pools.checkin(pooled);
            }
        });
    }
}

async fn reaper<C: Connector>(pools: Weak<Pools<C>>) {
    let period = match pools.upgrade() {
        Some(p) => (p.cfg.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(p) = pools.upgrade() else { return };
        let now = Instant::now();
        for s in &p.servers {
            s.reap(now, p.cfg.idle_timeout, p.cfg.max_lifetime);
        }
    }
}

#[cfg(test)]
mod tests;

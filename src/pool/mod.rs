//! Backend connection pools per server, grouped by hostgroup; checkout, checkin, reaping.
//!
//! Generic over the connection (`Connector`) so the pool logic is testable without MySQL.

mod server;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{Config, PoolConfig};
use server::{Idle, Permit, Take};
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
    #[error("all servers of hostgroup {hostgroup} are unreachable (last error: {last_error})")]
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
    /// Whether the connection came from the idle list rather than a fresh connect.
    pub reused: bool,
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
}

pub struct Pools<C: Connector> {
    connector: Arc<C>,
    cfg: PoolConfig,
    servers: Vec<Arc<ServerPool<C::Conn, C::Key>>>,
    by_hostgroup: HashMap<u32, (Vec<usize>, Arc<Notify>)>,
}

impl<C: Connector> Pools<C> {
    pub fn new(config: &Config, connector: Arc<C>) -> Arc<Self> {
        let mut by_hostgroup: HashMap<u32, (Vec<usize>, Arc<Notify>)> = HashMap::new();
        let mut servers = Vec::new();
        for (i, s) in config.servers.iter().enumerate() {
            let entry = by_hostgroup.entry(s.hostgroup).or_default();
            entry.0.push(i);
            let id = ServerId { hostgroup: s.hostgroup, address: s.address.clone() };
            let notify = entry.1.clone();
            servers.push(Arc::new(ServerPool::new(id, s.weight.get(), s.max_connections.get(), notify)));
        }
        let pools = Arc::new(Pools { connector, cfg: config.pool.clone(), servers, by_hostgroup });
        tokio::spawn(reaper(Arc::downgrade(&pools)));
        pools
    }

    pub fn connector(&self) -> &Arc<C> {
        &self.connector
    }

    pub fn servers(&self) -> &[Arc<ServerPool<C::Conn, C::Key>>] {
        &self.servers
    }

    /// A connection to a server of `hostgroup` for `key`. Never does a network round trip for
    /// an idle connection; prefers one already in the caller's state (`prefer`), takes any it
    /// can use (`accept`), opens a new one when none fits; waits up to the checkout timeout.
    pub async fn checkout(
        &self,
        hostgroup: u32,
        key: &C::Key,
        prefer: &(dyn Fn(&C::Conn) -> bool + Sync),
        accept: &(dyn Fn(&C::Conn) -> bool + Sync),
    ) -> Result<Pooled<C>, PoolError<C::Error>> {
        let (members, notify) =
            self.by_hostgroup.get(&hostgroup).ok_or(PoolError::EmptyHostgroup { hostgroup })?;
        let start = Instant::now();
        let deadline = start + self.cfg.checkout_timeout;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let live: Vec<usize> =
                members.iter().copied().filter(|&i| !self.servers[i].in_backoff(now)).collect();
            if live.is_empty() {
                return Err(self.unreachable(hostgroup, members));
            }
            for i in weighted_order(&live, |i| self.servers[i].weight) {
                let server = &self.servers[i];
                match server.take(key, prefer, accept) {
                    Take::Idle(idle) => {
                        return Ok(self.wrap(server, key, idle.conn, idle.permit, idle.created, true));
                    }
                    Take::Permit(permit) => match self.open(server, key).await {
                        Ok(conn) => return Ok(self.wrap(server, key, conn, permit, Instant::now(), false)),
                        Err(e) if C::is_server_down(&e) => drop(permit),
                        Err(source) => return Err(PoolError::Refused { hostgroup, source }),
                    },
                    Take::Full => {}
                }
            }
            if members.iter().all(|&i| self.servers[i].in_backoff(Instant::now())) {
                return Err(self.unreachable(hostgroup, members));
            }
            let server = &self.servers[live[0]];
            server.stats.waiters.fetch_add(1, Ordering::Relaxed);
            let timed_out = tokio::time::timeout_at(deadline.into(), notified).await.is_err();
            server.stats.waiters.fetch_sub(1, Ordering::Relaxed);
            if timed_out {
                let last_error = members.iter().find_map(|&i| self.servers[i].last_error());
                return Err(PoolError::Timeout { hostgroup, waited: start.elapsed(), last_error });
            }
        }
    }

    fn unreachable(&self, hostgroup: u32, members: &[usize]) -> PoolError<C::Error> {
        let last_error = members.iter().find_map(|&i| self.servers[i].last_error());
        PoolError::Unreachable { hostgroup, last_error: last_error.unwrap_or_else(|| "unknown".into()) }
    }

    async fn open(&self, server: &ServerPool<C::Conn, C::Key>, key: &C::Key) -> Result<C::Conn, C::Error> {
        let result = self.connector.connect(&server.id, key).await;
        match &result {
            Ok(_) => server.connect_ok(),
            Err(e) if C::is_server_down(e) => {
                tracing::warn!(server = %server.id.address, hostgroup = server.id.hostgroup, error = %e, "backend connect failed");
                server.connect_failed(
                    Instant::now(),
                    e.to_string(),
                    self.cfg.backoff_initial,
                    self.cfg.backoff_max,
                );
            }
            Err(e) => tracing::warn!(server = %server.id.address, error = %e, "backend refused login"),
        }
        result
    }

    fn wrap(
        &self,
        server: &Arc<ServerPool<C::Conn, C::Key>>,
        key: &C::Key,
        conn: C::Conn,
        permit: Permit,
        created: Instant,
        reused: bool,
    ) -> Pooled<C> {
        server.stats.checkouts.fetch_add(1, Ordering::Relaxed);
        Pooled { conn, permit, server: server.clone(), key: key.clone(), created, reused }
    }

    /// Returns a clean connection for reuse (closed instead when past its max lifetime).
    /// Whether `hostgroup` has any server configured.
    pub fn has_hostgroup(&self, hostgroup: u32) -> bool {
        self.by_hostgroup.contains_key(&hostgroup)
    }

    pub fn checkin(&self, pooled: Pooled<C>) {
        let now = Instant::now();
        if now - pooled.created >= self.cfg.max_lifetime {
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

/// Server indexes in a weighted random order (each pick proportional to weight).
fn weighted_order(items: &[usize], weight: impl Fn(usize) -> u32) -> Vec<usize> {
    let mut rest: Vec<usize> = items.to_vec();
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let total: u64 = rest.iter().map(|&i| u64::from(weight(i))).sum();
        let mut pick = fastrand::u64(..total.max(1));
        let pos = rest
            .iter()
            .position(|&i| {
                let w = u64::from(weight(i));
                if pick < w {
                    return true;
                }
                pick -= w;
                false
            })
            .unwrap_or(0);
        out.push(rest.swap_remove(pos));
    }
    out
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

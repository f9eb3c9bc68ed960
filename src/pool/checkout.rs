//! Checkout: pick a live server of the hostgroup (weighted, least outstanding first), reuse an
//! idle connection or open one, wait for a free slot up to the checkout timeout.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::health::ServerHealth;
use super::server::{Permit, Take};
use super::{Connector, Outstanding, PoolError, Pooled, Pools, ServerPool};

type Server<C> = Arc<ServerPool<<C as Connector>::Conn, <C as Connector>::Key>>;

impl<C: Connector> Pools<C> {
    /// A connection to a server of `hostgroup` for `key`. Never does a network round trip for
    /// an idle connection; prefers one already in the caller's state (`prefer`), takes any it
    /// can use (`accept`), opens a new one when none fits; waits up to the checkout timeout.
    /// With `only`, only servers whose health it accepts qualify (read-your-writes: a
    /// position applied, or expected soon).
    pub async fn checkout(
        &self,
        hostgroup: u32,
        key: &C::Key,
        prefer: &(dyn Fn(&C::Conn) -> bool + Sync),
        accept: &(dyn Fn(&C::Conn) -> bool + Sync),
    ) -> Result<Pooled<C>, PoolError<C::Error>> {
        self.checkout_where(hostgroup, key, prefer, accept, None).await
    }

    pub async fn checkout_where(
        &self,
        hostgroup: u32,
        key: &C::Key,
        prefer: &(dyn Fn(&C::Conn) -> bool + Sync),
        accept: &(dyn Fn(&C::Conn) -> bool + Sync),
        only: Option<&(dyn Fn(&ServerHealth) -> bool + Sync)>,
    ) -> Result<Pooled<C>, PoolError<C::Error>> {
        let (members, notify) =
            self.by_hostgroup.get(&hostgroup).ok_or(PoolError::EmptyHostgroup { hostgroup })?;
        let start = Instant::now();
        let deadline = start + self.cfg.checkout_timeout;
        let mut first = true;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // One clock read for a checkout that finds an idle connection at once.
            let mut now = if first { start } else { Instant::now() };
            first = false;
            // One allocation: the live servers, then shuffled in place into the order to try.
            let mut order: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| self.servers[i].is_live(now))
                .filter(|&i| only.is_none_or(|f| f(&self.servers[i].health)))
                .collect();
            if order.is_empty() {
                return Err(self.unreachable(hostgroup, members, only.is_some()));
            }
            self.pick_order(&mut order);
            // A server whose last probe failed (hung?) is tried last, not excluded: one lost
            // probe must not take a writer away.
            if order.iter().any(|&i| self.servers[i].health.failing()) {
                order.sort_by_key(|&i| self.servers[i].health.failing());
            }
            for &i in &order {
                let server = &self.servers[i];
                match server.take(key, prefer, accept) {
                    Take::Idle(idle) => {
                        let idle_for = Some(now.saturating_duration_since(idle.since));
                        let mut p = self.wrap(server, key, idle.conn, idle.permit, idle.created, idle_for);
                        p.waited = now.saturating_duration_since(start);
                        return Ok(p);
                    }
                    Take::Permit(permit) => match self.open(server, key).await {
                        Ok(conn) => {
                            let opened = Instant::now();
                            let mut p = self.wrap(server, key, conn, permit, opened, None);
                            p.waited = opened.saturating_duration_since(start);
                            return Ok(p);
                        }
                        Err(e) if C::is_server_down(&e) => {
                            drop(permit);
                            now = Instant::now(); // the connect took time
                        }
                        Err(source) => return Err(PoolError::Refused { hostgroup, source }),
                    },
                    Take::Full => {}
                }
            }
            if !members.iter().any(|&i| self.servers[i].is_live(Instant::now())) {
                return Err(self.unreachable(hostgroup, members, false));
            }
            let server = &self.servers[order[0]];
            server.stats.waiters.fetch_add(1, Ordering::Relaxed);
            let timed_out = tokio::time::timeout_at(deadline.into(), notified).await.is_err();
            server.stats.waiters.fetch_sub(1, Ordering::Relaxed);
            if timed_out {
                let last_error = members.iter().find_map(|&i| self.servers[i].last_error());
                return Err(PoolError::Timeout { hostgroup, waited: start.elapsed(), last_error });
            }
        }
    }

    /// Weighted random order, then the two first candidates compared by outstanding work per
    /// weight (power of two choices): weighted selection, least-outstanding as tie-breaker.
    fn pick_order(&self, order: &mut [usize]) {
        weighted_shuffle(order, |i| self.servers[i].weight());
        if order.len() >= 2 {
            let load = |i: usize| {
                let s = &self.servers[i];
                u64::from(s.outstanding.load(Ordering::Relaxed)) * 1000 / u64::from(s.weight().max(1))
            };
            if load(order[1]) < load(order[0]) {
                order.swap(0, 1);
            }
        }
    }

    fn unreachable(&self, hostgroup: u32, members: &[usize], gtid: bool) -> PoolError<C::Error> {
        let why: Vec<String> = members
            .iter()
            .map(|&i| {
                let s = &self.servers[i];
                let state = if !s.active.load(Ordering::Acquire) {
                    "not in this role".to_string()
                } else if let Some((r, detail)) = s.health.view().shunned.clone() {
                    format!("shunned: {}: {detail}", r.as_str())
                } else if s.in_backoff(Instant::now()) {
                    format!("backing off after: {}", s.last_error().unwrap_or_default())
                } else if gtid {
                    "has not applied the session's writes".to_string()
                } else {
                    "available".to_string()
                };
                format!("{}: {state}", s.id.address)
            })
            .collect();
        PoolError::Unreachable { hostgroup, last_error: why.join("; ") }
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
        server: &Server<C>,
        key: &C::Key,
        conn: C::Conn,
        permit: Permit,
        created: Instant,
        idle_for: Option<Duration>,
    ) -> Pooled<C> {
        server.stats.checkouts.fetch_add(1, Ordering::Relaxed);
        let in_use = server.outstanding.fetch_add(1, Ordering::Relaxed) + 1;
        server.stats.max_used.fetch_max(u64::from(in_use), Ordering::Relaxed);
        let outstanding = Outstanding(server.outstanding.clone());
        Pooled {
            conn,
            permit,
            server: server.clone(),
            key: key.clone(),
            created,
            _outstanding: outstanding,
            reused: idle_for.is_some(),
            idle_for: idle_for.unwrap_or_default(),
            waited: Duration::ZERO,
        }
    }
}

/// Server indexes in a weighted random order (each pick proportional to weight).
#[cfg(test)]
pub(super) fn weighted_order(items: &[usize], weight: impl Fn(usize) -> u32) -> Vec<usize> {
    let mut out = items.to_vec();
    weighted_shuffle(&mut out, weight);
    out
}

/// `items` put in a weighted random order in place: position k is drawn from the rest, each
/// with probability proportional to its weight.
fn weighted_shuffle(items: &mut [usize], weight: impl Fn(usize) -> u32) {
    for k in 0..items.len().saturating_sub(1) {
        let rest = &items[k..];
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
        items.swap(k, k + pos);
    }
}

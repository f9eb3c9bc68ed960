//! What every session shares: config and pools (swapped by reloads), limits, counters, the
//! write position and log for read-your-writes, the session registry, the login guards.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use arc_swap::{ArcSwap, Guard};

use super::{limits::Limits, pending, registry, schemas, stats::SessionStats, throttle, universal};
use crate::backend::BackendConnector;
use crate::config::Config;
use crate::pool::Pools;
use crate::routing::gtid::GtidPos;

/// What every session shares: config, pools, limits. Built once by `server::run`.
pub struct Context {
    config: ArcSwap<Config>,
    pools: ArcSwap<Pools<BackendConnector>>,
    pub limits: Arc<Limits>,
    pub stats: SessionStats,
    /// Every write committed through this instance (global read consistency).
    pub written: ArcSwap<GtidPos>,
    /// When each recent write was acknowledged, to measure how far behind replicas apply.
    pub write_log: Arc<crate::pool::positions::WriteLog>,
    /// The primary's position for cross-instance reads (`read_consistency = "universal"`).
    pub fetcher: universal::PositionFetcher,
    pub metrics: crate::metrics::Metrics,
    pub digests: crate::digests::DigestTable,
    /// Where reload requests go (set by `server::run`).
    pub reloads: std::sync::OnceLock<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// False once shutdown began: `/ready` answers 503 so load balancers stop sending clients.
    pub ready: std::sync::atomic::AtomicBool,
    /// Live sessions by id, for `KILL`.
    pub sessions: registry::Registry,
    /// Connections that have not logged in yet.
    pub pending: Arc<pending::PendingLogins>,
    /// Failed logins per client address.
    pub throttle: throttle::Throttle,
    /// Schemas a backend confirmed, so logins naming them need no backend.
    pub schemas: schemas::KnownSchemas,
    /// The TLS acceptor for clients (`[tls]`; swapped by reloads, so renewed certificates
    /// take effect for new connections).
    pub tls: arc_swap::ArcSwapOption<tokio_rustls::TlsAcceptor>,
    /// caching_sha2's RSA key (`proxy.caching_sha2_private_key_file`; read again on reload).
    pub rsa: arc_swap::ArcSwapOption<super::rsa::RsaKey>,
    /// The query log, when `[query_log]` is configured (set by `server::run`).
    pub query_log: std::sync::OnceLock<crate::querylog::QueryLog>,
    pub(crate) next_id: AtomicU32,
}

impl Context {
    pub fn new(config: Arc<Config>, pools: Arc<Pools<BackendConnector>>) -> Arc<Self> {
        let metrics = crate::metrics::Metrics::new(config.servers.iter().map(|s| s.hostgroup));
        let digests = crate::digests::DigestTable::new(config.digests_max);
        Arc::new(Context {
            config: ArcSwap::new(config),
            pools: ArcSwap::new(pools),
            limits: Arc::new(Limits::default()),
            stats: SessionStats::default(),
            written: ArcSwap::from_pointee(GtidPos::default()),
            write_log: Arc::default(),
            fetcher: universal::PositionFetcher::default(),
            metrics,
            digests,
            ready: std::sync::atomic::AtomicBool::new(true),
            sessions: registry::Registry::default(),
            pending: Arc::default(),
            throttle: throttle::Throttle::default(),
            schemas: schemas::KnownSchemas::default(),
            reloads: std::sync::OnceLock::new(),
            query_log: std::sync::OnceLock::new(),
            tls: arc_swap::ArcSwapOption::empty(),
            rsa: arc_swap::ArcSwapOption::empty(),
            next_id: AtomicU32::new(1),
        })
    }

    pub fn config(&self) -> Guard<Arc<Config>> {
        self.config.load()
    }

    /// The current pools (swapped by a config reload; connections in use keep theirs).
    pub fn pools(&self) -> Arc<Pools<BackendConnector>> {
        self.pools.load_full()
    }

    /// Installs a reloaded config and the pools built for it.
    pub fn swap(&self, config: Arc<Config>, pools: Arc<Pools<BackendConnector>>) {
        self.pools.store(pools);
        self.config.store(config);
    }
}

/// A reload request: `config` to install (validated already; the SQL admin's), or `None` to
/// read the config file again; and where the outcome goes.
pub struct ReloadRequest {
    pub config: Option<Box<Config>>,
    pub reply: tokio::sync::oneshot::Sender<Result<String, String>>,
}

/// Sends a reload request and waits for its outcome.
pub async fn request(
    requests: &tokio::sync::mpsc::Sender<ReloadRequest>,
    config: Option<Box<Config>>,
) -> Result<String, String> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    requests
        .send(ReloadRequest { config, reply })
        .await
        .map_err(|_| "the proxy is shutting down".to_string())?;
    rx.await.map_err(|_| "the reload was interrupted".to_string())?
}

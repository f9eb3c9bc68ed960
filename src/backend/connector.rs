//! Opens pooled backend connections for a (user, flags, collation) key; learns the primary's version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::{BackendConn, BackendError};
use crate::config::{Config, Secret};
use crate::pool::{Connector, ServerId};
use crate::protocol::auth::Stage1;

/// How the proxy answers a backend's scramble for one user.
#[derive(Clone)]
pub enum Credentials {
    Password(String),
    /// SHA1(password), recovered from a client's successful login when only the hash is configured.
    Stage1(Stage1),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Which pooled connections are interchangeable: same user, same login-time flags
/// (`caps::POOL_KEY`, `mariadb_caps::POOL_KEY`). `collation` is 0 when sessions replay their handshake collation with
/// `SET NAMES` (the connection then logs in with the server's default); otherwise the
/// connection logs in with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub user: Arc<str>,
    pub capabilities: u32,
    pub mariadb_caps: u32,
    pub collation: u8,
}

/// The primary's greeting, announced to clients.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub server_version: Vec<u8>,
    /// How the backend reads version-conditional comments.
    pub dialect: crate::routing::Dialect,
    pub capabilities: u32,
    pub mariadb_caps: u32,
    pub collation: u8,
}

#[derive(Debug)]
pub struct BackendConnector {
    clear: HashMap<String, String>,
    learned: Mutex<HashMap<String, Credentials>>,
    connect_timeout: Duration,
    max_packet: usize,
    /// Prepared statements each connection keeps, per (hostgroup, address): the server's share
    /// of `pool.max_prepared_statements_per_server`, at most the per-connection bound.
    max_prepared: HashMap<(u32, String), usize>,
    version_hostgroup: Option<u32>,
    version: ArcSwapOption<VersionInfo>,
    /// TLS to each server (the monitor's connections included).
    tls: super::tls::BackendTls,
}

impl BackendConnector {
    pub fn new(config: &Config) -> Self {
        let clear = config
            .users
            .iter()
            .filter_map(|u| match &u.secret {
                Secret::Clear(p) => Some((u.username.clone(), p.clone())),
                Secret::Hash(_) | Secret::Sha2(_) => None,
            })
            .collect();
        let tls = super::tls::BackendTls::from_config(config).unwrap_or_else(|e| {
            tracing::error!("TLS to backends is off: {e}");
            super::tls::BackendTls::default()
        });
        BackendConnector {
            tls,
            clear,
            learned: Mutex::new(HashMap::new()),
            connect_timeout: config.pool.connect_timeout,
            max_packet: config.proxy.max_allowed_packet,
            max_prepared: config
                .servers
                .iter()
                .map(|s| {
                    ((s.hostgroup, s.address.clone()), config.pool.prepared_per_connection(s.max_connections))
                })
                .collect(),
            version_hostgroup: config.version_hostgroup(),
            version: ArcSwapOption::empty(),
        }
    }

    /// Records what a hash-only user's login revealed (SHA1(password) from a native scramble,
    /// the password from a full authentication) after the client proved it.
    pub fn learn(&self, user: &str, creds: Credentials) {
        if let Ok(mut m) = self.learned.lock() {
            m.insert(user.to_string(), creds);
        }
    }

    fn credentials(&self, user: &str) -> Option<Credentials> {
        if let Some(p) = self.clear.get(user) {
            return Some(Credentials::Password(p.clone()));
        }
        let learned = self.learned.lock().ok()?;
        learned.get(user).cloned()
    }

    /// Keeps what an earlier connector learned (hash-only users' SHA1, the primary's version)
    /// across a config reload.
    pub fn inherit(&self, old: &BackendConnector) {
        if let (Ok(mut mine), Ok(theirs)) = (self.learned.lock(), old.learned.lock()) {
            for (user, creds) in theirs.iter() {
                mine.entry(user.clone()).or_insert_with(|| creds.clone());
            }
        }
        if self.version.load().is_none() {
            self.version.store(old.version.load_full());
        }
    }

    pub fn version(&self) -> Option<Arc<VersionInfo>> {
        self.version.load_full()
    }

    pub fn record_version(&self, greeting: &crate::protocol::handshake::HandshakeV10) {
        self.version.store(Some(Arc::new(VersionInfo {
            server_version: greeting.server_version.clone(),
            dialect: crate::routing::Dialect::from_server_version(&greeting.server_version),
            capabilities: greeting.capabilities,
            mariadb_caps: greeting.mariadb_caps,
            collation: greeting.collation,
        })));
    }

    /// Connects with explicit credentials (the monitor's), bounded by the connect timeout.
    pub async fn connect_as(
        &self,
        addr: &str,
        user: &str,
        creds: &Credentials,
    ) -> Result<BackendConn, BackendError> {
        let fut = BackendConn::connect(addr, user, creds, (0, 0), 0x21, (self.max_packet, &self.tls));
        tokio::time::timeout(self.connect_timeout, fut)
            .await
            .map_err(|_| BackendError::Timeout { addr: addr.to_string(), after: self.connect_timeout })?
    }
}

impl Connector for BackendConnector {
    /// Boxed: a checked-out connection moves through pool, session and futures by pointer.
    type Conn = Box<BackendConn>;
    type Key = ConnKey;
    type Error = BackendError;

    async fn connect(&self, server: &ServerId, key: &ConnKey) -> Result<Box<BackendConn>, BackendError> {
        let creds = self.credentials(&key.user).ok_or_else(|| BackendError::Unsupported {
            addr: server.address.clone(),
            what: format!("no backend credentials known for user {:?}", &*key.user),
        })?;
        let fut = BackendConn::connect(
            &server.address,
            &key.user,
            &creds,
            (key.capabilities, key.mariadb_caps),
            key.collation,
            (self.max_packet, &self.tls),
        );
        let mut conn = tokio::time::timeout(self.connect_timeout, fut).await.map_err(|_| {
            BackendError::Timeout { addr: server.address.clone(), after: self.connect_timeout }
        })??;
        let bound = self.max_prepared.get(&(server.hostgroup, server.address.clone()));
        conn.prepared.set_max(bound.copied().unwrap_or(1));
        if Some(server.hostgroup) == self.version_hostgroup || self.version.load().is_none() {
            self.record_version(&conn.greeting);
        }
        Ok(Box::new(conn))
    }

    async fn reset(&self, conn: &mut Box<BackendConn>) -> bool {
        if conn.residue.cleanup() == Some(super::Mechanism::Close) {
            return false;
        }
        let fut = conn.reset();
        matches!(tokio::time::timeout(self.connect_timeout, fut).await, Ok(Ok(())))
    }

    fn is_server_down(err: &BackendError) -> bool {
        !err.server_answered()
    }
}

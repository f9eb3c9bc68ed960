//! TOML → `ConfigFile` (serde) → validated, typed `Config`; every error names its key path.

mod file;
mod rules;
mod sections;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

pub use file::ConfigFile;

/// A configuration problem, naming the key path (`servers[1].address`) and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub proxy: ProxyConfig,
    pub pool: PoolConfig,
    pub servers: Vec<ServerConfig>,
    pub users: Vec<UserConfig>,
    pub monitor: Option<MonitorConfig>,
    pub replication: Option<ReplicationConfig>,
    pub admin: AdminConfig,
    /// Prometheus `/metrics` listener.
    pub metrics_listen: SocketAddr,
    /// Most distinct digests kept for `/digests` (least recently used go first).
    pub digests_max: usize,
    pub routing: RoutingConfig,
    /// Active rules only, sorted by `rule_id`.
    pub query_rules: Vec<QueryRule>,
    /// The file this config came from (what a reload reads again).
    pub source: Option<std::path::PathBuf>,
    /// The TOML text this config was parsed from (what the SQL admin edits).
    pub text: std::sync::Arc<str>,
    /// What is valid but probably not meant (inactive rules); `check-config` prints them.
    pub warnings: Vec<String>,
    pub query_log: Option<QueryLogConfig>,
    /// TLS towards clients.
    pub tls: Option<TlsConfig>,
    /// The CA backend certificates must chain to (`verify_ca`, `verify_identity`).
    pub backend_ca_file: Option<std::path::PathBuf>,
    /// caching_sha2 full authentication to backends without TLS: the servers' RSA public key
    /// (`backend_tls.server_public_key_file`), or asking the server for it.
    pub backend_public_key_file: Option<std::path::PathBuf>,
    pub backend_get_public_key: bool,
}

/// `[tls]`: the certificate (chain) and key clients are offered, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

/// `[query_log]`: one JSON line per statement, in a size-bounded rotated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLogConfig {
    pub path: std::path::PathBuf,
    /// A file is rotated before it grows past this.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`).
    pub files: u32,
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// `START TRANSACTION READ ONLY` may run on a reader.
    pub read_only_transactions_to_reader: bool,
    pub read_consistency: ReadConsistency,
    /// After a write, the session's reads stay on the writer this long (without GTIDs).
    pub session_write_window: Duration,
    /// Longest `MASTER_GTID_WAIT` on a replica before a read falls back to the writer
    /// (global consistency); zero = never wait.
    pub gtid_wait: Duration,
    /// Statements running longer are cancelled on the backend (`KILL QUERY`); `None`: no limit.
    pub max_statement_time: Option<Duration>,
}

/// Which reads must see earlier writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Reads may go to any healthy reader.
    None,
    /// A session reads its own writes.
    Session,
    /// A read sees every write committed through this proxy instance before it arrived.
    Global,
    /// A read sees every write committed on the primary before it arrived, through any
    /// instance (the primary's position is fetched first).
    Universal,
}

/// A ProxySQL-style query rule, regexes compiled once at load.
#[derive(Debug, Clone)]
pub struct QueryRule {
    pub rule_id: u32,
    pub username: Option<String>,
    pub schemaname: Option<String>,
    pub flag_in: i64,
    pub flag_out: Option<i64>,
    pub match_digest: Option<regex::Regex>,
    pub match_pattern: Option<regex::Regex>,
    pub negate_match_pattern: bool,
    pub destination_hostgroup: Option<u32>,
    pub apply: bool,
    pub error_msg: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub max_connections: u32,
    pub max_allowed_packet: usize,
    /// Announced to clients instead of the primary's version when set.
    pub server_version: Option<String>,
    /// Announced while no backend has been reached yet.
    pub fallback_server_version: String,
    /// The plugin the greeting names (MySQL's `default_authentication_plugin`).
    pub default_auth_plugin: &'static str,
    /// Offer the compressed protocol (`CLIENT_COMPRESS`, zlib) to clients.
    pub compression: bool,
    /// caching_sha2_password's RSA key pair for full authentication without TLS.
    pub caching_sha2_private_key_file: Option<std::path::PathBuf>,
    pub shutdown_timeout: Duration,
    /// On SIGTERM, `/ready` answers 503 for this long before the listener closes.
    pub shutdown_delay: Duration,
    /// Reload when the config file changes (checked every second).
    pub watch_config: bool,
    /// Runtime worker threads; `None` = one per available core.
    pub worker_threads: Option<usize>,
    /// A client must have logged in within this (MariaDB's `connect_timeout`).
    pub connect_timeout: Duration,
    /// Connections not logged in yet; at this many the oldest is closed for a new one.
    pub max_pending_logins: u32,
    /// An idle client is closed after this unless its session set its own `wait_timeout`.
    pub wait_timeout: Duration,
    /// A client idle inside a transaction is closed (the transaction rolled back) after this;
    /// zero: never.
    pub idle_transaction_timeout: Duration,
    /// A client that takes nothing of a reply for this long is closed (MariaDB's
    /// `net_write_timeout`): a stalled reader must not hold a backend connection.
    pub net_write_timeout: Duration,
    /// Prepared statements one session may hold open, and their SQL text in bytes.
    pub max_prepared_statements_per_session: u32,
    pub max_prepared_bytes_per_session: usize,
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub connect_timeout: Duration,
    pub checkout_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Backend prepared statements kept per connection (least recently used closed first).
    pub max_prepared_per_connection: NonZeroU32,
    /// What the proxy's connections to one server may hold together: each connection keeps at
    /// most this divided by the server's `max_connections` (at least 1).
    pub max_prepared_per_server: NonZeroU32,
    /// A statement still waiting for its backend after this long is cut once the monitor
    /// cannot reach that server (hung, unreachable); a read is then retried elsewhere.
    pub backend_read_timeout: Duration,
}

impl PoolConfig {
    /// The per-connection bound for a server with `max_connections` connections.
    pub fn prepared_per_connection(&self, max_connections: NonZeroU32) -> usize {
        let share = (self.max_prepared_per_server.get() / max_connections.get()).max(1);
        share.min(self.max_prepared_per_connection.get()) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub hostgroup: u32,
    /// `host:port`; resolved at connect time so DNS names (compose, Kubernetes) work.
    pub address: String,
    pub weight: NonZeroU32,
    pub max_connections: NonZeroU32,
    /// Seconds of replication lag before this server is shunned as a reader (overrides
    /// `monitor.max_replication_lag`).
    pub max_replication_lag: Option<u64>,
    pub status: ServerStatus,
    pub comment: Option<String>,
    pub tls: BackendTlsMode,
}

/// TLS to a backend, as MySQL's `--ssl-mode` names the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendTlsMode {
    #[default]
    Off,
    /// TLS when the server offers it; the certificate is not checked.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS with a certificate that chains to `backend_tls.ca_file`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host (or IP) of the server's address.
    VerifyIdentity,
}

impl BackendTlsMode {
    pub fn parse(s: &str) -> Option<BackendTlsMode> {
        Some(match s.to_ascii_lowercase().as_str() {
            "off" | "disabled" => BackendTlsMode::Off,
            "preferred" => BackendTlsMode::Preferred,
            "required" => BackendTlsMode::Required,
            "verify_ca" => BackendTlsMode::VerifyCa,
            "verify_identity" => BackendTlsMode::VerifyIdentity,
            _ => return None,
        })
    }
}

/// ProxySQL's server `status`, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerStatus {
    #[default]
    Online,
    /// Drained: no new work; connections in use finish and are closed when returned.
    OfflineSoft,
    /// Disabled: drained, and its idle connections closed at once.
    OfflineHard,
}

impl ServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Online => "ONLINE",
            ServerStatus::OfflineSoft => "OFFLINE_SOFT",
            ServerStatus::OfflineHard => "OFFLINE_HARD",
        }
    }

    pub fn parse(s: &str) -> Option<ServerStatus> {
        [ServerStatus::Online, ServerStatus::OfflineSoft, ServerStatus::OfflineHard]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Clear(String),
    /// `SHA1(SHA1(password))`, from `password_hash = "*HEX"`.
    Hash([u8; 20]),
    /// A `caching_sha2_password` hash, from `password_hash = "$A$005$…"` (or its `0x…` hex).
    Sha2(Sha2Secret),
}

/// A caching_sha2 hash checks a password only by full authentication; the fast path works
/// after one, from SHA256(SHA256(password)) kept here — in this config, so a reload forgets
/// it, as MySQL's `FLUSH PRIVILEGES` empties its cache.
#[derive(Clone)]
pub struct Sha2Secret {
    pub crypt: crate::protocol::sha2_crypt::Sha2Crypt,
    pub fast: std::sync::Arc<std::sync::OnceLock<[u8; 32]>>,
}

impl PartialEq for Sha2Secret {
    fn eq(&self, other: &Self) -> bool {
        self.crypt == other.crypt
    }
}
impl Eq for Sha2Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Clear(_) => "Secret::Clear(<redacted>)",
            Secret::Hash(_) => "Secret::Hash(<redacted>)",
            Secret::Sha2(_) => "Secret::Sha2(<redacted>)",
        })
    }
}

#[derive(Debug, Clone)]
pub struct UserConfig {
    pub username: String,
    pub secret: Secret,
    pub default_hostgroup: u32,
    pub default_schema: Option<String>,
    pub max_connections: u32,
    /// Logins without TLS are refused (as MariaDB refuses a `REQUIRE SSL` user).
    pub require_tls: bool,
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub username: String,
    pub password: Secret,
    pub interval: Duration,
    /// How often each server's applied GTID position is read between full probes
    /// (read-your-writes routes by it); zero: only with the probes.
    pub position_interval: Duration,
    pub timeout: Duration,
    /// Seconds.
    pub max_replication_lag: u64,
    /// Consecutive bad checks before a server is shunned.
    pub shun_after: u32,
    /// Consecutive good checks before a shunned server is readmitted.
    pub recover_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub writer_hostgroup: u32,
    pub reader_hostgroup: u32,
    /// The writer also serves reads (ProxySQL's `writer_is_also_reader`).
    pub writer_is_also_reader: bool,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token the admin API requires (mandatory off loopback).
    pub token: Option<Secret>,
    /// Serve the admin API without a token (loopback listeners only, explicitly configured);
    /// without a token and without this, only `/live` and `/ready` answer.
    pub allow_without_token: bool,
    /// The ProxySQL-compatible SQL admin; `None` when no credentials are configured.
    pub sql: Option<SqlAdminConfig>,
}

#[derive(Debug, Clone)]
pub struct SqlAdminConfig {
    pub listen: SocketAddr,
    pub username: String,
    pub secret: Secret,
}

impl Config {
    /// Reads and validates a file. Environment variables named by `password_env` are read here.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut config = Self::parse(&text, &path.display().to_string(), &|k| std::env::var(k).ok())?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses TOML text; `env` resolves `password_env` names (injected for tests).
    pub fn parse(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: ConfigFile = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?;
        let mut config = validate::validate(raw, env)?;
        config.text = text.into();
        Ok(config)
    }

    pub fn user(&self, name: &[u8]) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.username.as_bytes() == name)
    }

    /// The hostgroup whose primary's version string clients should see.
    pub fn version_hostgroup(&self) -> Option<u32> {
        self.replication
            .map(|r| r.writer_hostgroup)
            .or_else(|| self.users.first().map(|u| u.default_hostgroup))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "example_tests.rs"]
mod example_tests;

//! The TOML file as written: every field optional so validation can name what is missing.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub proxy: ProxyFile,
    #[serde(default)]
    pub pool: PoolFile,
    #[serde(default)]
    pub servers: Vec<ServerFile>,
    #[serde(default)]
    pub users: Vec<UserFile>,
    pub monitor: Option<MonitorFile>,
    pub replication: Option<ReplicationFile>,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub routing: RoutingFile,
    #[serde(default)]
    pub metrics: MetricsFile,
    #[serde(default)]
    pub query_rules: Vec<QueryRuleFile>,
    pub query_log: Option<QueryLogFile>,
    pub tls: Option<TlsFile>,
    pub backend_tls: Option<BackendTlsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsFile {
    pub mode: Option<String>,
    pub ca_file: Option<String>,
    pub server_public_key_file: Option<String>,
    pub get_server_public_key: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLogFile {
    pub path: Option<String>,
    pub max_bytes: Option<u64>,
    pub files: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    pub read_only_transactions_to_reader: Option<bool>,
    pub read_consistency: Option<String>,
    pub session_write_window_ms: Option<u64>,
    pub max_statement_time_ms: Option<u64>,
    pub gtid_wait_ms: Option<u64>,
}

/// ProxySQL `mysql_query_rules` columns, with ProxySQL's names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRuleFile {
    pub rule_id: Option<u32>,
    pub active: Option<bool>,
    pub username: Option<String>,
    pub schemaname: Option<String>,
    #[serde(rename = "flagIN")]
    pub flag_in: Option<i64>,
    #[serde(rename = "flagOUT")]
    pub flag_out: Option<i64>,
    pub match_digest: Option<String>,
    pub match_pattern: Option<String>,
    pub negate_match_pattern: Option<bool>,
    pub re_modifiers: Option<String>,
    pub destination_hostgroup: Option<u32>,
    pub apply: Option<bool>,
    pub error_msg: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub listen: Option<String>,
    pub max_connections: Option<u32>,
    pub max_allowed_packet: Option<u64>,
    pub server_version: Option<String>,
    pub fallback_server_version: Option<String>,
    pub default_auth_plugin: Option<String>,
    pub compression: Option<bool>,
    pub caching_sha2_private_key_file: Option<String>,
    pub shutdown_timeout_ms: Option<u64>,
    pub shutdown_delay_ms: Option<u64>,
    pub watch_config: Option<bool>,
    pub worker_threads: Option<u32>,
    pub connect_timeout_ms: Option<u64>,
    pub max_pending_logins: Option<u32>,
    pub wait_timeout_ms: Option<u64>,
    pub idle_transaction_timeout_ms: Option<u64>,
    pub net_write_timeout_ms: Option<u64>,
    pub max_prepared_statements_per_session: Option<u32>,
    pub max_prepared_bytes_per_session: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    pub connect_timeout_ms: Option<u64>,
    pub checkout_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub max_lifetime_ms: Option<u64>,
    pub backoff_initial_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub max_prepared_statements_per_connection: Option<u32>,
    pub max_prepared_statements_per_server: Option<u32>,
    pub backend_read_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub hostgroup: Option<u32>,
    pub address: Option<String>,
    pub weight: Option<u32>,
    pub max_connections: Option<u32>,
    pub max_replication_lag: Option<u64>,
    /// ProxySQL's `status`: `ONLINE`, `OFFLINE_SOFT` (drained), `OFFLINE_HARD` (disabled).
    pub status: Option<String>,
    /// TLS to this server (overrides `backend_tls.mode`).
    pub tls: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub password_env: Option<String>,
    pub default_hostgroup: Option<u32>,
    pub default_schema: Option<String>,
    pub max_connections: Option<u32>,
    pub comment: Option<String>,
    /// Refuse this user's logins that did not upgrade to TLS (MariaDB's `REQUIRE SSL`).
    pub require_tls: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorFile {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub interval_ms: Option<u64>,
    pub position_interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_replication_lag: Option<u64>,
    pub shun_after: Option<u32>,
    pub recover_after: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationFile {
    pub writer_hostgroup: Option<u32>,
    pub reader_hostgroup: Option<u32>,
    pub writer_is_also_reader: Option<bool>,
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    pub listen: Option<String>,
    pub digests_max: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub allow_without_token: Option<bool>,
    /// The ProxySQL-compatible SQL admin (MySQL protocol).
    pub sql: Option<SqlAdminFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlAdminFile {
    pub listen: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub password_env: Option<String>,
}

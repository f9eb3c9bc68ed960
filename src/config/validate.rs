//! Raw file values → typed `Config`, checking each field and the cross-field rules once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::file::{ConfigFile, MonitorFile, PoolFile, ProxyFile, ServerFile, UserFile};
use super::*;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

pub(super) fn required<T>(v: Option<T>, key: &str) -> Result<T, ConfigError> {
    v.ok_or_else(|| invalid(key, "is required"))
}

pub(super) fn socket_addr(v: Option<String>, default: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    let s = v.unwrap_or_else(|| default.to_string());
    s.parse().map_err(|_| invalid(key, format!("expected ip:port, got {s:?}")))
}

fn millis(v: Option<u64>, default: u64, key: &str) -> Result<Duration, ConfigError> {
    match v.unwrap_or(default) {
        0 => Err(invalid(key, "must be greater than 0 (milliseconds)")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn non_zero(v: Option<u32>, default: u32, key: &str) -> Result<NonZeroU32, ConfigError> {
    let n = v.unwrap_or(default);
    NonZeroU32::new(n).ok_or_else(|| invalid(key, format!("must be at least 1, got {n}")))
}

pub(super) fn validate(raw: ConfigFile, env: Env<'_>) -> Result<Config, ConfigError> {
    let proxy = proxy(raw.proxy)?;
    let pool = pool(raw.pool)?;
    let backend_tls = raw.backend_tls.unwrap_or_default();
    let default_tls = match backend_tls.mode.as_deref() {
        None => BackendTlsMode::Off,
        Some(m) => BackendTlsMode::parse(m).ok_or_else(|| invalid("backend_tls.mode", tls_modes(m)))?,
    };
    let servers = servers(raw.servers, default_tls)?;
    let backend_ca_file = backend_tls.ca_file.map(std::path::PathBuf::from);
    let backend_public_key_file = backend_tls.server_public_key_file.map(std::path::PathBuf::from);
    let backend_get_public_key = backend_tls.get_server_public_key.unwrap_or(false);
    if backend_ca_file.is_none()
        && let Some(s) = servers
            .iter()
            .find(|s| matches!(s.tls, BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity))
    {
        return Err(invalid("backend_tls.ca_file", format!("is required: {} uses {:?}", s.address, s.tls)));
    }
    let hostgroups: HashSet<u32> = servers.iter().map(|s| s.hostgroup).collect();
    let users = users(raw.users, &hostgroups, env)?;
    let monitor = raw.monitor.map(|m| monitor(m, env)).transpose()?;
    let replication = match raw.replication {
        None => None,
        Some(r) => {
            let writer = required(r.writer_hostgroup, "replication.writer_hostgroup")?;
            let reader = required(r.reader_hostgroup, "replication.reader_hostgroup")?;
            if writer == reader {
                return Err(invalid(
                    "replication.reader_hostgroup",
                    format!("must differ from writer_hostgroup, both are {writer}"),
                ));
            }
            if !hostgroups.contains(&writer) {
                return Err(invalid(
                    "replication.writer_hostgroup",
                    format!("no server is in hostgroup {writer}"),
                ));
            }
            let writer_is_also_reader = r.writer_is_also_reader.unwrap_or(false);
            Some(ReplicationConfig {
                writer_hostgroup: writer,
                reader_hostgroup: reader,
                writer_is_also_reader,
            })
        }
    };
    let admin = super::sections::admin(raw.admin, env)?;
    let read_consistency = match raw.routing.read_consistency.as_deref() {
        Some("session") => ReadConsistency::Session,
        Some("none") => ReadConsistency::None,
        None | Some("global") => ReadConsistency::Global,
        Some("universal") => ReadConsistency::Universal,
        Some(other) => {
            let msg = format!("expected \"none\", \"session\", \"global\" or \"universal\", got {other:?}");
            return Err(invalid("routing.read_consistency", msg));
        }
    };
    let routing = RoutingConfig {
        read_only_transactions_to_reader: raw.routing.read_only_transactions_to_reader.unwrap_or(true),
        read_consistency,
        session_write_window: millis(
            raw.routing.session_write_window_ms,
            1_000,
            "routing.session_write_window_ms",
        )?,
        gtid_wait: Duration::from_millis(raw.routing.gtid_wait_ms.unwrap_or(50).min(10_000)),
        max_statement_time: raw.routing.max_statement_time_ms.filter(|&ms| ms > 0).map(Duration::from_millis),
    };
    let (query_rules, warnings) = super::rules::validate(raw.query_rules, &hostgroups)?;
    let metrics_listen = socket_addr(raw.metrics.listen, "127.0.0.1:6070", "metrics.listen")?;
    Ok(Config {
        proxy,
        pool,
        servers,
        users,
        monitor,
        replication,
        admin,
        metrics_listen,
        digests_max: non_zero(raw.metrics.digests_max, 10_000, "metrics.digests_max")?.get() as usize,
        routing,
        query_rules,
        source: None,
        text: "".into(),
        warnings,
        query_log: raw.query_log.map(super::sections::query_log).transpose()?,
        tls: raw.tls.map(super::sections::tls).transpose()?,
        backend_ca_file,
        backend_public_key_file,
        backend_get_public_key,
    })
}

fn proxy(p: ProxyFile) -> Result<ProxyConfig, ConfigError> {
    let max_packet = p.max_allowed_packet.unwrap_or(64 << 20);
    if !(1024..=1 << 30).contains(&max_packet) {
        return Err(invalid(
            "proxy.max_allowed_packet",
            format!("must be between 1024 and 1073741824 bytes, got {max_packet}"),
        ));
    }
    if let Some(v) = p.server_version.as_ref().filter(|v| v.is_empty() || v.contains('\0')) {
        return Err(invalid("proxy.server_version", format!("not a usable version string: {v:?}")));
    }
    let default_auth_plugin = match p.default_auth_plugin.as_deref() {
        None | Some("mysql_native_password") => "mysql_native_password",
        Some("caching_sha2_password") => "caching_sha2_password",
        Some(other) => {
            let msg =
                format!("expected \"mysql_native_password\" or \"caching_sha2_password\", got {other:?}");
            return Err(invalid("proxy.default_auth_plugin", msg));
        }
    };
    Ok(ProxyConfig {
        listen: socket_addr(p.listen, "0.0.0.0:6033", "proxy.listen")?,
        max_connections: non_zero(p.max_connections, 2048, "proxy.max_connections")?.get(),
        max_allowed_packet: max_packet as usize,
        server_version: p.server_version,
        fallback_server_version: p.fallback_server_version.unwrap_or_else(|| "8.0.0-rwproxy".into()),
        default_auth_plugin,
        compression: p.compression.unwrap_or(true),
        caching_sha2_private_key_file: p.caching_sha2_private_key_file.map(Into::into),
        shutdown_timeout: millis(p.shutdown_timeout_ms, 30_000, "proxy.shutdown_timeout_ms")?,
        shutdown_delay: Duration::from_millis(p.shutdown_delay_ms.unwrap_or(0).min(600_000)),
        watch_config: p.watch_config.unwrap_or(false),
        connect_timeout: millis(p.connect_timeout_ms, 10_000, "proxy.connect_timeout_ms")?,
        max_pending_logins: non_zero(p.max_pending_logins, 256, "proxy.max_pending_logins")?.get(),
        wait_timeout: millis(p.wait_timeout_ms, 28_800_000, "proxy.wait_timeout_ms")?,
        idle_transaction_timeout: Duration::from_millis(p.idle_transaction_timeout_ms.unwrap_or(14_400_000)),
        net_write_timeout: millis(p.net_write_timeout_ms, 60_000, "proxy.net_write_timeout_ms")?,
        max_prepared_statements_per_session: non_zero(
            p.max_prepared_statements_per_session,
            2048,
            "proxy.max_prepared_statements_per_session",
        )?
        .get(),
        max_prepared_bytes_per_session: p.max_prepared_bytes_per_session.unwrap_or(16 << 20).max(1024)
            as usize,
        worker_threads: match p.worker_threads {
            None | Some(0) => None,
            Some(n @ 1..=256) => Some(n as usize),
            Some(n) => {
                return Err(invalid("proxy.worker_threads", format!("must be 0 (auto) to 256, got {n}")));
            }
        },
    })
}

fn pool(p: PoolFile) -> Result<PoolConfig, ConfigError> {
    let cfg = PoolConfig {
        connect_timeout: millis(p.connect_timeout_ms, 3_000, "pool.connect_timeout_ms")?,
        checkout_timeout: millis(p.checkout_timeout_ms, 5_000, "pool.checkout_timeout_ms")?,
        idle_timeout: millis(p.idle_timeout_ms, 300_000, "pool.idle_timeout_ms")?,
        max_lifetime: millis(p.max_lifetime_ms, 3_600_000, "pool.max_lifetime_ms")?,
        backoff_initial: millis(p.backoff_initial_ms, 200, "pool.backoff_initial_ms")?,
        backoff_max: millis(p.backoff_max_ms, 5_000, "pool.backoff_max_ms")?,
        max_prepared_per_connection: non_zero(
            p.max_prepared_statements_per_connection,
            20,
            "pool.max_prepared_statements_per_connection",
        )?,
        max_prepared_per_server: non_zero(
            p.max_prepared_statements_per_server,
            8_000,
            "pool.max_prepared_statements_per_server",
        )?,
        backend_read_timeout: millis(p.backend_read_timeout_ms, 5_000, "pool.backend_read_timeout_ms")?,
    };
    if cfg.backoff_max < cfg.backoff_initial {
        return Err(invalid(
            "pool.backoff_max_ms",
            format!("must be at least backoff_initial_ms ({} ms)", cfg.backoff_initial.as_millis()),
        ));
    }
    Ok(cfg)
}

fn tls_modes(got: &str) -> String {
    format!(
        "expected \"off\", \"preferred\", \"required\", \"verify_ca\" or \"verify_identity\", got {got:?}"
    )
}

fn servers(raw: Vec<ServerFile>, default_tls: BackendTlsMode) -> Result<Vec<ServerConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid("servers", "at least one [[servers]] entry is required"));
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, s)| {
            let key = |f: &str| format!("servers[{i}].{f}");
            let address = required(s.address, &key("address"))?;
            check_host_port(&address).map_err(|m| invalid(key("address"), m))?;
            let hostgroup = required(s.hostgroup, &key("hostgroup"))?;
            if !seen.insert((hostgroup, address.clone())) {
                return Err(invalid(
                    key("address"),
                    format!("{address:?} is listed twice in hostgroup {hostgroup}"),
                ));
            }
            Ok(ServerConfig {
                hostgroup,
                address,
                weight: non_zero(s.weight, 1, &key("weight"))?,
                max_connections: non_zero(s.max_connections, 200, &key("max_connections"))?,
                max_replication_lag: s.max_replication_lag,
                status: match s.status.as_deref() {
                    None => ServerStatus::Online,
                    Some(v) => ServerStatus::parse(v).ok_or_else(|| {
                        invalid(
                            key("status"),
                            format!("expected ONLINE, OFFLINE_SOFT or OFFLINE_HARD, got {v:?}"),
                        )
                    })?,
                },
                comment: s.comment,
                tls: match s.tls.as_deref() {
                    None => default_tls,
                    Some(m) => BackendTlsMode::parse(m).ok_or_else(|| invalid(key("tls"), tls_modes(m)))?,
                },
            })
        })
        .collect()
}

fn check_host_port(s: &str) -> Result<(), String> {
    let (host, port) = s.rsplit_once(':').ok_or(format!("expected host:port, got {s:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("expected host:port, got {s:?}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("bad port in {s:?}")),
    }
}

pub(super) fn secret(
    password: Option<String>,
    hash: Option<String>,
    var: Option<String>,
    prefix: &str,
    env: Env<'_>,
) -> Result<Secret, ConfigError> {
    match (password, hash, var) {
        (Some(p), None, None) => Ok(Secret::Clear(p)),
        (None, Some(h), None) => auth_hash(&h)
            .map(Secret::Hash)
            .or_else(|| {
                let crypt = crate::protocol::sha2_crypt::Sha2Crypt::parse(&h)?;
                Some(Secret::Sha2(super::Sha2Secret { crypt, fast: Default::default() }))
            })
            .ok_or_else(|| {
                let msg = "expected \"*\" followed by 40 hex digits (mysql_native_password), or a \
                           caching_sha2_password hash: \"$A$005$\" + 63 characters, or the same as 0x + hex";
                invalid(format!("{prefix}.password_hash"), msg)
            }),
        (None, None, Some(v)) => env(&v).map(Secret::Clear).ok_or_else(|| {
            invalid(format!("{prefix}.password_env"), format!("environment variable {v:?} is not set"))
        }),
        (None, None, None) => Err(invalid(
            format!("{prefix}.password"),
            "one of password, password_hash or password_env is required",
        )),
        _ => Err(invalid(
            format!("{prefix}.password"),
            "give only one of password, password_hash or password_env",
        )),
    }
}

/// `*` + 40 hex digits (kept here so config stays a leaf module).
fn auth_hash(h: &str) -> Option<[u8; 20]> {
    let hex = h.strip_prefix('*').filter(|x| x.len() == 40 && x.is_ascii())?;
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn users(
    raw: Vec<UserFile>,
    hostgroups: &HashSet<u32>,
    env: Env<'_>,
) -> Result<Vec<UserConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid("users", "at least one [[users]] entry is required"));
    }
    let mut names = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, u)| {
            let prefix = format!("users[{i}]");
            let username = required(u.username, &format!("{prefix}.username"))?;
            if username.is_empty() || !names.insert(username.clone()) {
                return Err(invalid(
                    format!("{prefix}.username"),
                    format!("{username:?} is empty or listed twice"),
                ));
            }
            let default_hostgroup = required(u.default_hostgroup, &format!("{prefix}.default_hostgroup"))?;
            if !hostgroups.contains(&default_hostgroup) {
                return Err(invalid(
                    format!("{prefix}.default_hostgroup"),
                    format!("no server is in hostgroup {default_hostgroup}"),
                ));
            }
            Ok(UserConfig {
                secret: secret(u.password, u.password_hash, u.password_env, &prefix, env)?,
                username,
                default_hostgroup,
                default_schema: u.default_schema.filter(|s| !s.is_empty()),
                max_connections: non_zero(u.max_connections, 10_000, &format!("{prefix}.max_connections"))?
                    .get(),
                require_tls: u.require_tls.unwrap_or(false),
            })
        })
        .collect()
}

fn monitor(m: MonitorFile, env: Env<'_>) -> Result<MonitorConfig, ConfigError> {
    let interval = millis(m.interval_ms, 1_000, "monitor.interval_ms")?;
    if interval < Duration::from_millis(50) {
        return Err(invalid(
            "monitor.interval_ms",
            format!("must be at least 50, got {}", interval.as_millis()),
        ));
    }
    let position_interval = Duration::from_millis(m.position_interval_ms.unwrap_or(50));
    if !position_interval.is_zero() && position_interval < Duration::from_millis(10) {
        return Err(invalid(
            "monitor.position_interval_ms",
            format!("must be 0 (off) or at least 10, got {}", position_interval.as_millis()),
        ));
    }
    Ok(MonitorConfig {
        username: required(m.username, "monitor.username")?,
        password: secret(m.password, None, m.password_env, "monitor", env)?,
        interval,
        position_interval,
        timeout: millis(m.timeout_ms, 1_000, "monitor.timeout_ms")?,
        max_replication_lag: m.max_replication_lag.unwrap_or(10),
        shun_after: non_zero(m.shun_after, 2, "monitor.shun_after")?.get(),
        recover_after: non_zero(m.recover_after, 2, "monitor.recover_after")?.get(),
    })
}

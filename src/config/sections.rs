//! Validation of the operator-facing sections: `[admin]`, `[admin.sql]`, `[tls]`,
//! `[query_log]`.

use super::validate::{invalid, required, secret, socket_addr};
use super::*;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn admin(a: super::file::AdminFile, env: Env<'_>) -> Result<AdminConfig, ConfigError> {
    let listen = socket_addr(a.listen, "127.0.0.1:6080", "admin.listen")?;
    let token = match (a.token, a.token_env) {
        (None, None) => None,
        (t, e) => Some(secret(t, None, e, "admin", env).map_err(|e| match e {
            ConfigError::Invalid { key, message } => {
                ConfigError::Invalid { key: key.replace("admin.password", "admin.token"), message }
            }
            other => other,
        })?),
    };
    if token.is_none() && !listen.ip().is_loopback() {
        return Err(invalid(
            "admin.token",
            format!("is required when admin.listen is not loopback ({listen})"),
        ));
    }
    let allow_without_token = a.allow_without_token.unwrap_or(false);
    if allow_without_token && !listen.ip().is_loopback() {
        return Err(invalid(
            "admin.allow_without_token",
            format!("is only allowed on a loopback admin.listen, not {listen}"),
        ));
    }
    let sql = a.sql.map(|q| sql_admin(q, env)).transpose()?;
    Ok(AdminConfig { listen, token, allow_without_token, sql })
}

pub(super) fn tls(t: super::file::TlsFile) -> Result<TlsConfig, ConfigError> {
    let file = |v: Option<String>, key: &str| -> Result<std::path::PathBuf, ConfigError> {
        let path = required(v, key)?;
        std::fs::metadata(&path).map_err(|e| invalid(key, format!("{path}: {e}")))?;
        Ok(path.into())
    };
    Ok(TlsConfig {
        cert_file: file(t.cert_file, "tls.cert_file")?,
        key_file: file(t.key_file, "tls.key_file")?,
    })
}

pub(super) fn query_log(q: super::file::QueryLogFile) -> Result<QueryLogConfig, ConfigError> {
    let path = required(q.path, "query_log.path")?;
    let max_bytes = q.max_bytes.unwrap_or(100 << 20);
    if max_bytes < 4096 {
        return Err(invalid("query_log.max_bytes", format!("must be at least 4096, got {max_bytes}")));
    }
    Ok(QueryLogConfig { path: path.into(), max_bytes, files: q.files.unwrap_or(5).min(100) })
}

/// `[admin.sql]`: listener (default `127.0.0.1:6032`, ProxySQL's) and the one admin login.
fn sql_admin(q: super::file::SqlAdminFile, env: Env<'_>) -> Result<SqlAdminConfig, ConfigError> {
    let listen = socket_addr(q.listen, "127.0.0.1:6032", "admin.sql.listen")?;
    let username = required(q.username, "admin.sql.username")?;
    let secret = secret(q.password, q.password_hash, q.password_env, "admin.sql", env)?;
    if matches!(&secret, Secret::Clear(p) if p.is_empty()) {
        return Err(invalid("admin.sql.password", "must not be empty"));
    }
    Ok(SqlAdminConfig { listen, username, secret })
}

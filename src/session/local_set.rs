//! Well-known session settings answered by the proxy itself: a `SET` whose every item is one
//! the proxy can prove valid (`autocommit`, `SET NAMES` of a common character set, a UTC
//! offset `time_zone`, a `sql_mode` of standard modes, `SET SESSION TRANSACTION …`, a few
//! boolean switches) gets an OK synthesised like the server's, status flags and tracked
//! variables included, and reaches a backend only with the next statement's state sync. What
//! a client library sends at every connect (`SET NAMES utf8mb4`, `SET autocommit = 0`,
//! Django's isolation level) then costs no round trip and needs no writer connection.
//! Anything else runs on a backend as before, which is the judge of what it accepts.

use tokio::io::{AsyncRead, AsyncWrite};

use super::state::apply_set;
use super::{Session, SessionError};
use crate::backend::known_collations;
use crate::protocol::{caps, status};
use crate::routing::lexer::starts_with_words;
use crate::routing::set::{SetItem, parse_set};
use crate::routing::{Dialect, Statement};

/// Character sets whose `SET NAMES` no supported server refuses or warns about (`utf8` and
/// `utf8mb3` are deprecated on MySQL 8, and `utf8` means `utf8mb3` on MariaDB).
const CHARSETS: [&str; 4] = ["utf8mb4", "latin1", "ascii", "binary"];

/// `sql_mode` words MariaDB 10.x/11.x and MySQL 8 both accept without a warning.
const SQL_MODES: [&str; 18] = [
    "REAL_AS_FLOAT",
    "PIPES_AS_CONCAT",
    "ANSI_QUOTES",
    "IGNORE_SPACE",
    "ONLY_FULL_GROUP_BY",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_DIR_IN_CREATE",
    "ANSI",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "STRICT_TRANS_TABLES",
    "STRICT_ALL_TABLES",
    "ALLOW_INVALID_DATES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "TRADITIONAL",
    "HIGH_NOT_PRECEDENCE",
    "NO_ENGINE_SUBSTITUTION",
    "PAD_CHAR_TO_FULL_LENGTH",
];

/// Session switches that take `0`/`1`/`ON`/`OFF` on every supported server.
const SWITCHES: [&str; 7] = [
    "sql_auto_is_null",
    "sql_safe_updates",
    "foreign_key_checks",
    "unique_checks",
    "sql_big_selects",
    "sql_notes",
    "sql_quote_show_create",
];

/// The server's default `session_track_system_variables`, in the order MariaDB reports them.
const TRACKED: [&str; 5] =
    ["time_zone", "character_set_client", "character_set_results", "character_set_connection", "autocommit"];

/// What a locally answered `SET` reports: the tracked variables it set (in `TRACKED` order,
/// with the values the server would print), the new `autocommit` and whether the new
/// `sql_mode` has `NO_BACKSLASH_ESCAPES` (both status flags), when it set them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LocalSet {
    pub tracked: Vec<(&'static str, String)>,
    pub autocommit: Option<bool>,
    pub no_backslash_escapes: Option<bool>,
}

/// Whether `items` (parsed from `sql`) can be answered locally, and what the answer reports.
pub fn answer(items: &[SetItem], sql: &[u8], dialect: Dialect) -> Option<LocalSet> {
    let mut values: [Option<String>; TRACKED.len()] = Default::default();
    let mut autocommit = None;
    let mut no_backslash_escapes = None;
    // `SET SESSION TRANSACTION …` is a statement of its own: nothing may follow it after a
    // comma but more characteristics (no assignment).
    let session_transaction = starts_session_transaction(sql, dialect) && !sql.contains(&b'=');
    for item in items {
        match item {
            SetItem::Names { charset, collation } => {
                let cs = known_charset(charset, collation.as_deref())?;
                for slot in &mut values[1..4] {
                    *slot = Some(cs.to_string());
                }
            }
            SetItem::Session { name, value } => match name.as_str() {
                "autocommit" => {
                    let on = switch(value)?;
                    autocommit = Some(on);
                    values[4] = Some(if on { "ON" } else { "OFF" }.into());
                }
                "time_zone" => values[0] = Some(time_zone(value)?),
                // MySQL 8 warns about several mode combinations (3135): MariaDB only.
                "sql_mode" if dialect.mariadb => no_backslash_escapes = Some(sql_mode(value)?),
                "transaction_isolation" | "transaction_read_only" if session_transaction => {}
                n if SWITCHES.contains(&n) => {
                    switch(value)?;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
    let tracked = TRACKED.iter().zip(values).filter_map(|(n, v)| v.map(|v| (*n, v))).collect();
    Some(LocalSet { tracked, autocommit, no_backslash_escapes })
}

fn known_charset(charset: &str, collation: Option<&str>) -> Option<&'static str> {
    let cs = unquote(charset)?;
    let cs = *CHARSETS.iter().find(|c| c.eq_ignore_ascii_case(cs))?;
    match collation {
        None => Some(cs),
        Some(coll) => {
            let coll = unquote(coll)?;
            known_collations().any(|(c, name)| c == cs && name.eq_ignore_ascii_case(coll)).then_some(cs)
        }
    }
}

/// A bare word or a single-quoted string's content (no escapes inside).
fn unquote(v: &str) -> Option<&str> {
    let inner = match v.strip_prefix('\'') {
        Some(rest) => rest.strip_suffix('\'')?,
        None => v.trim_matches('`'),
    };
    (!inner.contains(['\'', '\\', '"'])).then_some(inner)
}

fn switch(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" => Some(true),
        "0" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// `'SYSTEM'` or a `'±HH:MM'` offset every supported server takes (-12:59 … +13:00).
fn time_zone(value: &str) -> Option<String> {
    let tz = value.strip_prefix('\'')?.strip_suffix('\'')?;
    if tz.eq_ignore_ascii_case("system") {
        return Some("SYSTEM".into());
    }
    let b = tz.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' || !digits(1..3) || !digits(4..6) {
        return None;
    }
    let (h, m) = (u32::from(b[1] - b'0') * 10 + u32::from(b[2] - b'0'), u32::from(b[4] - b'0') * 10);
    let m = m + u32::from(b[5] - b'0');
    let ok = m < 60 && if b[0] == b'+' { h < 13 || (h == 13 && m == 0) } else { h < 13 };
    ok.then(|| tz.to_string())
}

/// A `sql_mode` of known modes: whether it has `NO_BACKSLASH_ESCAPES`.
fn sql_mode(value: &str) -> Option<bool> {
    let modes = value.strip_prefix('\'')?.strip_suffix('\'')?;
    if modes.is_empty() {
        return Some(false);
    }
    // Word by word as the server splits it: `'A, B'` names a mode " B", which it refuses.
    let known = modes.split(',').all(|m| SQL_MODES.iter().any(|k| k.eq_ignore_ascii_case(m)));
    known.then(|| modes.split(',').any(|m| m.eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES")))
}

/// `SET SESSION TRANSACTION …` / `SET LOCAL TRANSACTION …`: the one spelling of isolation
/// level and access mode every supported server knows (`tx_isolation` is gone from MySQL 8,
/// `transaction_isolation` is unknown to MariaDB before 11.1).
fn starts_session_transaction(sql: &[u8], dialect: Dialect) -> bool {
    starts_with_words(sql, dialect, &[&["SET"], &["SESSION", "LOCAL"], &["TRANSACTION"]])
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Answers `stmt` (a `SET`) locally when the session holds no connection and every item
    /// is well known. True when answered.
    pub(super) async fn answer_set_locally(
        &mut self,
        stmt: &Statement,
        sql: &[u8],
    ) -> Result<bool, SessionError> {
        if self.backend.is_some() || stmt.statements != 1 || self.client_keeps != Default::default() {
            return Ok(false);
        }
        let dialect = self.dialect();
        let Some(items) = parse_set(sql, dialect) else { return Ok(false) };
        let Some(local) = answer(&items, sql, dialect) else { return Ok(false) };
        apply_set(&mut self.vars, &items);
        let flag = |status: u16, bit: u16, on: bool| if on { status | bit } else { status & !bit };
        if let Some(on) = local.autocommit {
            self.status = flag(self.status, status::AUTOCOMMIT, on);
            self.vars.follow_autocommit(!on);
        }
        if let Some(on) = local.no_backslash_escapes {
            self.status = flag(self.status, status::NO_BACKSLASH_ESCAPES, on);
        }
        self.local_outcome = true;
        self.ctx.stats.note_local_answer();
        let tracks = self.login.capabilities & caps::SESSION_TRACK != 0;
        let tracked: &[(&str, String)] = if tracks { &local.tracked } else { &[] };
        let ok = crate::protocol::session_track::ok_with_variables(self.status & status::SESSION, tracked);
        self.client.write_packet(1, &ok).await?;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "local_set_tests.rs"]
mod tests;

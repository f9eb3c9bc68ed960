//! The session's desired state and the plan that brings a borrowed connection to it.

use crate::backend::state::CHARSET_VARS;
use crate::backend::{SessionVars, collation_name};
use crate::routing::set::{SetItem, replay_name};

/// Variables that are not replayed on another connection: session-only ones (they have no
/// global value, so no `DEFAULT` to undo them with, and several are one-shot) and ones that
/// collect per-connection data or drive the proxy's own session tracking. Setting one pins the
/// session (`untracked_state`).
const NOT_REPLAYED: [&str; 17] = [
    "rand_seed1",
    "rand_seed2",
    "insert_id",
    "timestamp",
    "gtid_seq_no",
    "pseudo_thread_id",
    "pseudo_slave_mode",
    "skip_replication",
    "skip_parallel_replication",
    "default_master_connection",
    "wsrep_gtid_seq_no",
    "profiling",
    "session_track_system_variables",
    "session_track_state_change",
    "session_track_schema",
    "session_track_transaction_info",
    "session_track_gtids",
];

/// Timeouts after which the server closes an idle connection: replayed for the session, but a
/// pooled connection that carried one is reset before reuse (`idle_timeout` kind), and the
/// proxy enforces `wait_timeout` on the client itself.
pub const IDLE_TIMEOUTS: [&str; 2] = ["wait_timeout", "interactive_timeout"];

/// Items of a successful `SET` the session must remember, and what in it cannot be replayed.
pub fn apply_set(desired: &mut SessionVars, items: &[SetItem]) -> SetEffects {
    let mut fx = SetEffects::default();
    for item in items {
        match item {
            SetItem::Session { name, .. } if name == "autocommit" => {}
            SetItem::Session { name, value } if name == "last_insert_id" || name == "identity" => {
                match value.parse() {
                    Ok(id) => desired.last_insert_id = id,
                    Err(_) => fx.untracked = true,
                }
            }
            SetItem::Session { name, value } if NOT_REPLAYED.contains(&name.as_str()) => {
                fx.untracked = true;
                if name == "session_track_state_change" {
                    fx.tracks_state_change =
                        Some(matches!(value.to_ascii_lowercase().trim_matches('\''), "on" | "1"));
                }
                if name == "session_track_gtids" {
                    fx.replaces_tracking = true;
                    fx.tracks_gtid = Some(!value.trim_matches('\'').eq_ignore_ascii_case("off"));
                }
                if name == "session_track_system_variables" {
                    fx.replaces_tracking = true;
                    let list = value.trim_matches('\'').to_ascii_lowercase();
                    fx.tracks_gtid = Some(list.split(',').any(|v| matches!(v.trim(), "last_gtid" | "*")));
                }
            }
            SetItem::Session { name, value } => {
                fx.timeouts |= IDLE_TIMEOUTS.contains(&name.as_str());
                desired.set(name, value)
            }
            SetItem::Names { charset, collation } => desired.set_names(charset.clone(), collation.clone()),
            SetItem::CharacterSet(cs) => desired.set_charset(cs.clone()),
            SetItem::UserVar => fx.user_vars = true,
            SetItem::NextTransaction => fx.next_transaction = true,
            SetItem::Global => {}
        }
    }
    fx
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetEffects {
    pub user_vars: bool,
    pub next_transaction: bool,
    /// Something the proxy does not replay (see `NOT_REPLAYED`).
    pub untracked: bool,
    /// The client set `session_track_state_change` (on: it wants those entries itself).
    pub tracks_state_change: Option<bool>,
    /// The client set its own tracked variables: `last_gtid` is no longer among them.
    pub replaces_tracking: bool,
    /// The client's own tracked variables name `last_gtid` (or `*`): it sees that entry.
    pub tracks_gtid: Option<bool>,
    /// The client set `wait_timeout` or `interactive_timeout`.
    pub timeouts: bool,
}

fn is_charset_var(name: &str) -> bool {
    CHARSET_VARS.contains(&name)
}

/// Compares desired and applied state: whether a reset must come first (only to undo a
/// character set the proxy cannot name), and the one `SET` that brings the connection in line.
/// `need_insert_id` when the statement reads `LAST_INSERT_ID()`.
pub fn plan(
    desired: &SessionVars,
    applied: &SessionVars,
    need_insert_id: bool,
    mariadb: bool,
) -> (bool, Option<String>) {
    let mut parts: Vec<String> = Vec::new();
    if charset_parts(desired, applied, &mut parts).is_none() {
        return (true, None);
    }
    for (name, value) in desired.vars.iter().filter(|(n, _)| !is_charset_var(n)) {
        if applied.get(name) != Some(value.as_str()) {
            parts.push(format!("{} = {value}", replay_name(name, mariadb)));
        }
    }
    for (name, _) in applied.vars.iter().filter(|(n, _)| !is_charset_var(n)) {
        if desired.get(name).is_none() {
            // A session without the entry has autocommit on, whatever the server's default.
            let value = if name == "autocommit" { "1" } else { "DEFAULT" };
            parts.push(format!("{} = {value}", replay_name(name, mariadb)));
        }
    }
    if need_insert_id && desired.last_insert_id != applied.last_insert_id {
        parts.push(format!("last_insert_id = {}", desired.last_insert_id));
    }
    let sql = (!parts.is_empty()).then(|| format!("SET {}", parts.join(", ")));
    (false, sql)
}

/// The character-set part of the plan: `SET NAMES` (the session's, or its handshake
/// collation's) and then the session's individual character-set variables. `None` when only
/// a reset can bring the connection back (its state must be undone and the session's
/// handshake collation has no name the proxy knows).
fn charset_parts(desired: &SessionVars, applied: &SessionVars, parts: &mut Vec<String>) -> Option<()> {
    fn charset_vars(v: &SessionVars) -> impl Iterator<Item = &(String, String)> {
        v.vars.iter().filter(|(n, _)| is_charset_var(n))
    }
    let base_same = desired.names == applied.names
        && desired.charset == applied.charset
        && (desired.names.is_some() || desired.charset.is_some() || desired.collation == applied.collation);
    // Variables the connection has but the session does not need a fresh base to undo.
    let undo = charset_vars(applied).any(|(n, _)| desired.get(n).is_none());
    let base = if base_same && !undo {
        false
    } else {
        parts.push(match (&desired.names, &desired.charset) {
            (Some((cs, Some(coll))), _) => format!("NAMES {cs} COLLATE {coll}"),
            (Some((cs, None)), _) => format!("NAMES {cs}"),
            (None, Some(cs)) => format!("CHARACTER SET {cs}"),
            (None, None) => {
                let (cs, coll) = collation_name(desired.collation)?;
                format!("NAMES {cs} COLLATE {coll}")
            }
        });
        true
    };
    for (name, value) in charset_vars(desired) {
        if base || applied.get(name) != Some(value.as_str()) {
            parts.push(format!("{name} = {value}"));
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Dialect;
    use crate::routing::set::parse_set;

    fn desired(sqls: &[&str]) -> SessionVars {
        let mut d = SessionVars::default();
        for s in sqls {
            apply_set(&mut d, &parse_set(s.as_bytes(), Dialect::default()).unwrap());
        }
        d
    }

    #[test]
    fn django_connection_setup_becomes_one_set() {
        let d = desired(&[
            "SET NAMES utf8mb4",
            "SET SQL_AUTO_IS_NULL = 0, TX_ISOLATION = 'read-committed'",
            "SET sql_mode='STRICT_TRANS_TABLES'",
        ]);
        let (reset, sql) = plan(&d, &SessionVars::default(), false, true);
        assert!(!reset);
        assert_eq!(
            sql.as_deref(),
            Some(
                "SET NAMES utf8mb4, sql_auto_is_null = 0, tx_isolation = 'read-committed', sql_mode = 'STRICT_TRANS_TABLES'"
            )
        );
        assert_eq!(plan(&d, &d, false, true), (false, None), "an in-sync connection needs nothing");
        let (_, mysql) = plan(&d, &SessionVars::default(), false, false);
        assert!(mysql.unwrap().contains("transaction_isolation = 'read-committed'"));
    }

    #[test]
    fn extra_variables_go_back_to_default_and_charsets_to_the_handshake_collation() {
        let applied = desired(&["SET sql_mode = ''", "SET time_zone = '+00:00'"]);
        let d = desired(&["SET time_zone = '+00:00'"]);
        assert_eq!(plan(&d, &applied, false, true), (false, Some("SET sql_mode = DEFAULT".into())));
        let applied = desired(&["SET NAMES latin1"]);
        let fresh = SessionVars::with_collation(45);
        assert_eq!(
            plan(&fresh, &applied, false, true),
            (false, Some("SET NAMES utf8mb4 COLLATE utf8mb4_general_ci".into()))
        );
        let unknown = SessionVars::with_collation(255);
        assert_eq!(
            plan(&unknown, &SessionVars { collation: 255, ..applied }, false, true),
            (true, None),
            "no name for 255: reset"
        );
        let individual = desired(&["SET character_set_results = NULL"]);
        assert_eq!(
            plan(&SessionVars::with_collation(45), &SessionVars { collation: 45, ..individual }, false, true),
            (false, Some("SET NAMES utf8mb4 COLLATE utf8mb4_general_ci".into()))
        );
    }

    #[test]
    fn a_connection_of_another_handshake_collation_gets_the_sessions() {
        let session = SessionVars::with_collation(224);
        let conn = SessionVars::with_collation(45);
        assert_eq!(
            plan(&session, &conn, false, true).1.as_deref(),
            Some("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci")
        );
        assert_eq!(plan(&session, &SessionVars::with_collation(224), false, true), (false, None));
        let mut names = SessionVars::with_collation(8);
        names.set_names("utf8mb4".into(), None);
        names.set("character_set_results", "latin1");
        assert_eq!(
            plan(&names, &conn, false, true).1.as_deref(),
            Some("SET NAMES utf8mb4, character_set_results = latin1"),
            "the session's own SET NAMES wins over its handshake collation"
        );
    }

    #[test]
    fn session_only_variables_are_not_replayed() {
        let mut d = SessionVars::default();
        let fx = apply_set(
            &mut d,
            &parse_set(b"SET rand_seed1 = 1, insert_id = 5, sql_mode = ''", Dialect::default()).unwrap(),
        );
        assert!(fx.untracked);
        assert_eq!(d.vars, vec![("sql_mode".to_string(), "''".to_string())]);
        let fx = apply_set(&mut d, &parse_set(b"SET last_insert_id = 77", Dialect::default()).unwrap());
        assert!(!fx.untracked);
        assert_eq!(d.last_insert_id, 77, "replayed as the session's LAST_INSERT_ID()");
        let fx = apply_set(
            &mut d,
            &parse_set(b"SET session_track_state_change = ON", Dialect::default()).unwrap(),
        );
        assert_eq!((fx.untracked, fx.tracks_state_change), (true, Some(true)));
    }

    #[test]
    fn last_insert_id_is_synced_only_when_read() {
        let d = SessionVars { last_insert_id: 42, ..SessionVars::default() };
        // A fresh connection has no insert id: plan from the same collation.
        assert_eq!(plan(&d, &SessionVars::default(), false, true).1, None);
        assert_eq!(
            plan(&d, &SessionVars::default(), true, true).1.as_deref(),
            Some("SET last_insert_id = 42")
        );
    }

    #[test]
    fn user_variables_and_next_transaction_are_reported() {
        let mut d = SessionVars::default();
        let fx = apply_set(&mut d, &parse_set(b"SET @a = 1, autocommit = 0", Dialect::default()).unwrap());
        assert!(fx.user_vars);
        assert!(d.vars.is_empty(), "autocommit is followed through status flags, not replayed");
        let fx = apply_set(
            &mut d,
            &parse_set(b"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Dialect::default()).unwrap(),
        );
        assert!(fx.next_transaction);
    }
}

//! The session's desired state and the plan that brings a borrowed connection to it.

use crate::backend::SessionVars;
use crate::backend::state::CHARSET_VARS;
use crate::routing::set::{SetItem, replay_name};

/// Items of a successful `SET` the session must remember. Returns whether anything in it
/// cannot be replayed (user variables, next-transaction characteristics).
pub fn apply_set(desired: &mut SessionVars, items: &[SetItem]) -> SetEffects {
    let mut fx = SetEffects::default();
    for item in items {
        match item {
            SetItem::Session { name, .. } if name == "autocommit" => {}
            SetItem::Session { name, value } => desired.set(name, value),
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
}

/// Compares desired and applied state; `need_insert_id` when the statement reads
/// `LAST_INSERT_ID()`.
pub fn plan(
    desired: &SessionVars,
    applied: &SessionVars,
    need_insert_id: bool,
    mariadb: bool,
) -> (bool, Option<String>) {
    let charset_undo = (applied.names.is_some() && desired.names != applied.names && desired.names.is_none())
        || (applied.charset.is_some() && desired.charset.is_none() && desired.names.is_none())
        || applied.vars.iter().any(|(n, _)| CHARSET_VARS.contains(&n.as_str()) && desired.get(n).is_none());
    let reset = charset_undo;
    let empty = SessionVars::default();
    let base = if reset { &empty } else { applied };
    let mut parts: Vec<String> = Vec::new();
    if desired.names != base.names
        && let Some((cs, coll)) = &desired.names
    {
        parts.push(match coll {
            Some(c) => format!("NAMES {cs} COLLATE {c}"),
            None => format!("NAMES {cs}"),
        });
    }
    if desired.charset != base.charset
        && let Some(cs) = &desired.charset
    {
        parts.push(format!("CHARACTER SET {cs}"));
    }
    for (name, value) in &desired.vars {
        if base.get(name) != Some(value.as_str()) {
            parts.push(format!("{} = {value}", replay_name(name, mariadb)));
        }
    }
    for (name, _) in &base.vars {
        if desired.get(name).is_none() {
            parts.push(format!("{} = DEFAULT", replay_name(name, mariadb)));
        }
    }
    let applied_id = if reset { 0 } else { applied.last_insert_id };
    if need_insert_id && desired.last_insert_id != applied_id {
        parts.push(format!("last_insert_id = {}", desired.last_insert_id));
    }
    let sql = (!parts.is_empty()).then(|| format!("SET {}", parts.join(", ")));
    (reset, sql)
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
    fn extra_variables_go_back_to_default_and_charsets_need_a_reset() {
        let applied = desired(&["SET sql_mode = ''", "SET time_zone = '+00:00'"]);
        let d = desired(&["SET time_zone = '+00:00'"]);
        assert_eq!(plan(&d, &applied, false, true), (false, Some("SET sql_mode = DEFAULT".into())));
        let applied = desired(&["SET NAMES latin1"]);
        assert_eq!(plan(&SessionVars::default(), &applied, false, true), (true, None));
    }

    #[test]
    fn last_insert_id_is_synced_only_when_read() {
        let d = SessionVars { last_insert_id: 42, ..SessionVars::default() };
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

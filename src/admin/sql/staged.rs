//! The staged ("memory") layer: the rows `INSERT`/`UPDATE`/`DELETE` edit, per section, until
//! `LOAD … TO RUNTIME` applies them. Values are typed and keys kept unique on every change, so
//! what reaches the config validator is at least well-formed.

use std::collections::HashMap;

use super::expr::{E, Value};
use super::tables::{Dflt, Section, Spec, staged};
use super::toml_rows::{Row, is_hash, shown_password};
use crate::config::Secret;
use crate::protocol::resultset::ColumnType;

#[derive(Default)]
pub struct Staged {
    rows: HashMap<SectionKey, Vec<Row>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SectionKey(u8);

fn key(s: Section) -> SectionKey {
    SectionKey(s as u8)
}

/// Columns that identify a row (ProxySQL's primary keys).
fn primary_key(s: Section) -> &'static [usize] {
    match s {
        Section::Servers => &[0, 1, 2],
        Section::Users => &[0],
        Section::Rules => &[0],
        Section::Replication => &[0],
    }
}

impl Staged {
    pub fn get(&self, s: Section) -> Option<&Vec<Row>> {
        self.rows.get(&key(s))
    }

    pub fn set(&mut self, s: Section, rows: Vec<Row>) {
        self.rows.insert(key(s), rows);
    }

    /// `INSERT` (or `REPLACE` with `replace`): `columns` as named, or all in table order.
    pub fn insert(
        &mut self,
        s: Section,
        columns: &[usize],
        values: Vec<Vec<Value>>,
        replace: bool,
    ) -> Result<u64, String> {
        let spec = staged(s);
        let rows = self.rows.get(&key(s)).cloned().unwrap_or_default();
        let mut rows = rows;
        let mut affected = 0;
        for given in values {
            if given.len() != columns.len() {
                return Err("Column count doesn't match value count".into());
            }
            let mut row: Row = Vec::with_capacity(spec.columns.len());
            for (i, (name, _, default)) in spec.columns.iter().enumerate() {
                let v = match columns.iter().position(|c| *c == i) {
                    Some(at) => given[at].clone(),
                    None => default_value(*default, name)?,
                };
                row.push(v);
            }
            if s == Section::Rules && row[0] == Value::Null {
                let next = rows.iter().filter_map(|r| r[0].as_int()).max().unwrap_or(0) + 1;
                row[0] = Value::Int(next);
            }
            let row = normalize(spec, s, row)?;
            let same = |r: &Row| {
                primary_key(s).iter().all(|&k| r[k].compare(&row[k]) == Some(std::cmp::Ordering::Equal))
            };
            match rows.iter().position(same) {
                Some(at) if replace => {
                    rows[at] = row;
                    affected += 2;
                }
                Some(_) => return Err(duplicate(spec, s)),
                None => {
                    rows.push(row);
                    affected += 1;
                }
            }
        }
        self.rows.insert(key(s), rows);
        Ok(affected)
    }

    /// `UPDATE … SET … [WHERE …]`.
    pub fn update(&mut self, s: Section, set: &[(usize, E)], filter: Option<&E>) -> Result<u64, String> {
        let spec = staged(s);
        let mut rows = self.rows.get(&key(s)).cloned().unwrap_or_default();
        let mut affected = 0;
        for stored in rows.iter_mut() {
            if !filter.map_or(Ok(true), |f| f.holds(stored))? {
                continue;
            }
            let mut row = stored.clone();
            for (col, e) in set {
                row[*col] = e.eval(stored)?;
            }
            *stored = normalize(spec, s, row)?;
            affected += 1;
        }
        let pk = primary_key(s);
        for (i, a) in rows.iter().enumerate() {
            if rows[..i]
                .iter()
                .any(|b| pk.iter().all(|&k| a[k].compare(&b[k]) == Some(std::cmp::Ordering::Equal)))
            {
                return Err(duplicate(spec, s));
            }
        }
        self.rows.insert(key(s), rows);
        Ok(affected)
    }

    /// `DELETE FROM … [WHERE …]`.
    pub fn delete(&mut self, s: Section, filter: Option<&E>) -> Result<u64, String> {
        let mut rows = self.rows.get(&key(s)).cloned().unwrap_or_default();
        let before = rows.len();
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows.drain(..) {
            if !filter.map_or(Ok(true), |f| f.holds(&r))? {
                kept.push(r);
            }
        }
        let affected = (before - kept.len()) as u64;
        self.rows.insert(key(s), kept);
        Ok(affected)
    }
}

fn default_value(d: Dflt, name: &str) -> Result<Value, String> {
    d.value().ok_or_else(|| format!("Field '{name}' doesn't have a default value"))
}

fn duplicate(spec: &Spec, s: Section) -> String {
    let cols: Vec<String> =
        primary_key(s).iter().map(|&k| format!("{}.{}", spec.name, spec.columns[k].0)).collect();
    format!("UNIQUE constraint failed: {}", cols.join(", "))
}

/// Types every cell as its column is typed; hashes clear passwords (the admin never shows or
/// stores one).
fn normalize(spec: &Spec, s: Section, mut row: Row) -> Result<Row, String> {
    for (v, (name, kind, default)) in row.iter_mut().zip(spec.columns) {
        if *v == Value::Null {
            if matches!(default, Dflt::Required) {
                return Err(format!("NOT NULL constraint failed: {}.{name}", spec.name));
            }
            continue;
        }
        if *kind == ColumnType::Integer {
            let i =
                v.as_int().ok_or_else(|| format!("{}.{name} expects an integer, got {v:?}", spec.name))?;
            *v = Value::Int(i);
        } else if let Value::Int(i) = v {
            *v = Value::text(i.to_string());
        }
    }
    if s == Section::Users
        && let Some(p) = row[1].as_str().filter(|p| !p.is_empty() && !is_hash(p))
    {
        row[1] = Value::text(shown_password(&Secret::Clear(p.to_string())));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_fill_defaults_type_values_and_keep_keys_unique() {
        let mut st = Staged::default();
        st.set(Section::Servers, Vec::new());
        let cols = [0, 1, 2];
        let row = vec![Value::text("20"), Value::text("db2"), Value::Int(3306)];
        assert_eq!(st.insert(Section::Servers, &cols, vec![row.clone()], false), Ok(1));
        let stored = &st.get(Section::Servers).unwrap()[0];
        assert_eq!(stored[0], Value::Int(20));
        assert_eq!(stored[4], Value::text("ONLINE"));
        let err = st.insert(Section::Servers, &cols, vec![row.clone()], false).unwrap_err();
        assert!(err.contains("UNIQUE"), "{err}");
        assert_eq!(st.insert(Section::Servers, &cols, vec![row], true), Ok(2));
        let bad = vec![Value::text("x"), Value::text("db3"), Value::Int(1)];
        assert!(st.insert(Section::Servers, &cols, vec![bad], false).is_err());
        assert!(
            st.insert(Section::Servers, &[0], vec![vec![Value::Int(1)]], false)
                .unwrap_err()
                .contains("hostname")
        );
    }

    #[test]
    fn clear_passwords_are_stored_as_hashes_and_rule_ids_are_assigned() {
        let mut st = Staged::default();
        st.insert(Section::Users, &[0, 1], vec![vec![Value::text("u"), Value::text("secret")]], false)
            .unwrap();
        let shown = st.get(Section::Users).unwrap()[0][1].render().unwrap();
        assert!(is_hash(&shown), "{shown}");
        assert!(!shown.contains("secret"));
        st.insert(Section::Rules, &[1], vec![vec![Value::Int(1)], vec![Value::Int(1)]], false).unwrap();
        let ids: Vec<_> = st.get(Section::Rules).unwrap().iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids, [Value::Int(1), Value::Int(2)]);
    }
}

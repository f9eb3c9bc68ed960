//! `SELECT` over one admin table (or none): projection with `*`, column lists, aliases and
//! `COUNT(*)`, `WHERE`, `ORDER BY` (expressions, aliases, positions), `LIMIT`/`OFFSET`.

use sqlparser::ast::{
    Expr, LimitClause, OrderByKind, OrderBySort, Query, Select, SelectItem, SetExpr, TableFactor,
};

use super::Answer;
use super::expr::{E, Scope, Value};
use super::tables::Spec;
use super::toml_rows::Row;
use crate::protocol::resultset::{Column, ColumnType};

/// What a `SELECT` reads: the table (if any) and its rows.
pub struct Source<'a> {
    pub spec: Option<&'static Spec>,
    pub rows: Vec<Row>,
    pub variable: &'a dyn Fn(&str) -> Option<Value>,
    pub function: &'a dyn Fn(&str) -> Option<Value>,
}

/// The table a query reads, if it reads one (`Err`: more than the admin supports).
pub fn table_name(q: &Query) -> Result<Option<String>, String> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Err("only plain SELECTs are supported by the rwproxy admin".into());
    };
    match s.from.as_slice() {
        [] => Ok(None),
        [t] if t.joins.is_empty() => match &t.relation {
            TableFactor::Table { name, .. } => Ok(Some(name.to_string())),
            _ => Err("only plain table names are supported by the rwproxy admin".into()),
        },
        _ => Err("joins are not supported by the rwproxy admin".into()),
    }
}

struct Item {
    name: String,
    expr: E,
    kind: Option<ColumnType>,
}

fn items(s: &Select, spec: Option<&Spec>, scope: &Scope) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for item in &s.projection {
        let (expr, name): (&Expr, String) = match item {
            SelectItem::Wildcard(_) => {
                let spec = spec.ok_or("SELECT * needs a table")?;
                for (i, (n, k, _)) in spec.columns.iter().enumerate() {
                    out.push(Item { name: (*n).into(), expr: E::Column(i), kind: Some(*k) });
                }
                continue;
            }
            SelectItem::UnnamedExpr(e) => (e, e.to_string()),
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
            other => return Err(format!("not supported by the rwproxy admin: {other}")),
        };
        let lowered = scope.lower(expr)?;
        let kind = match &lowered {
            E::Column(i) => spec.map(|s| s.columns[*i].1),
            E::CountStar => Some(ColumnType::Integer),
            _ => None,
        };
        let name = match (&lowered, spec) {
            (E::Column(i), Some(spec)) if matches!(item, SelectItem::UnnamedExpr(_)) => {
                spec.columns[*i].0.into()
            }
            _ => name,
        };
        out.push(Item { name, expr: lowered, kind });
    }
    Ok(out)
}

fn limit(q: &Query) -> Result<(usize, usize), String> {
    let n = |e: &Expr| match e {
        Expr::Value(v) => v.value.to_string().parse::<usize>().map_err(|_| format!("bad LIMIT {e}")),
        other => Err(format!("bad LIMIT {other}")),
    };
    Ok(match &q.limit_clause {
        None => (usize::MAX, 0),
        Some(LimitClause::LimitOffset { limit, offset, .. }) => (
            limit.as_ref().map(n).transpose()?.unwrap_or(usize::MAX),
            offset.as_ref().map(|o| n(&o.value)).transpose()?.unwrap_or(0),
        ),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (n(limit)?, n(offset)?),
    })
}

/// A sort key: a position in the output, an output alias, or an expression on the source row.
enum Key {
    Output(usize),
    Source(E),
}

fn order_keys(q: &Query, items: &[Item], scope: &Scope) -> Result<Vec<(Key, bool)>, String> {
    let Some(order) = &q.order_by else { return Ok(Vec::new()) };
    let OrderByKind::Expressions(list) = &order.kind else {
        return Err("ORDER BY ALL is not supported".into());
    };
    list.iter()
        .map(|o| {
            let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
            let key = match &o.expr {
                Expr::Value(v) => {
                    let at =
                        v.value.to_string().parse::<usize>().ok().filter(|p| (1..=items.len()).contains(p));
                    Key::Output(
                        at.ok_or_else(|| format!("Unknown column '{}' in 'order clause'", v.value))? - 1,
                    )
                }
                Expr::Identifier(id) if items.iter().any(|i| i.name == id.value) => {
                    Key::Output(items.iter().position(|i| i.name == id.value).unwrap_or(0))
                }
                e => Key::Source(scope.lower(e)?),
            };
            Ok((key, desc))
        })
        .collect()
}

/// Orders projected rows by `keys`; NULLs first, as MySQL sorts them.
fn sort(out: Vec<(Row, Row)>, keys: &[(Key, bool)]) -> Result<Vec<(Row, Row)>, String> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut keyed: Vec<(Vec<Value>, Row)> = Vec::with_capacity(out.len());
    for (source, projected) in out {
        let k = keys
            .iter()
            .map(|(k, _)| match k {
                Key::Output(i) => Ok(projected[*i].clone()),
                Key::Source(e) => e.eval(&source),
            })
            .collect::<Result<Vec<_>, String>>()?;
        keyed.push((k, projected));
    }
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, (_, desc)) in keys.iter().enumerate() {
            let o = match (&a[i], &b[i]) {
                (Value::Null, Value::Null) => Equal,
                (Value::Null, _) => Less,
                (_, Value::Null) => Greater,
                (x, y) => x.compare(y).unwrap_or(Equal),
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Equal {
                return o;
            }
        }
        Equal
    });
    Ok(keyed.into_iter().map(|(_, r)| (Vec::new(), r)).collect())
}

pub fn run(q: &Query, src: Source) -> Result<Answer, String> {
    let SetExpr::Select(s) = q.body.as_ref() else { return Err("only plain SELECTs are supported".into()) };
    let names = src.spec.map(|s| s.names()).unwrap_or_default();
    let scope = Scope { columns: &names, variable: src.variable, function: src.function };
    let items = items(s, src.spec, &scope)?;
    let filter = s.selection.as_ref().map(|w| scope.lower(w)).transpose()?;
    let mut rows = if src.spec.is_some() { src.rows } else { vec![Vec::new()] };
    if let Some(f) = &filter {
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if f.holds(&r)? {
                kept.push(r);
            }
        }
        rows = kept;
    }
    let aggregate = items.iter().any(|i| matches!(i.expr, E::CountStar));
    let mut out: Vec<(Row, Row)> = Vec::new();
    if aggregate {
        let first = rows.first().cloned().unwrap_or_default();
        let mut row = Vec::with_capacity(items.len());
        for i in &items {
            row.push(match i.expr {
                E::CountStar => Value::Int(rows.len() as i64),
                ref e => e.eval(&first)?,
            });
        }
        out.push((first, row));
    } else {
        for r in rows {
            let projected = items.iter().map(|i| i.expr.eval(&r)).collect::<Result<Row, _>>()?;
            out.push((r, projected));
        }
    }
    let keys = order_keys(q, &items, &scope)?;
    if !keys.is_empty() {
        out = sort(out, &keys)?;
    }
    let (n, skip) = limit(q)?;
    let rows: Vec<Row> = out.into_iter().skip(skip).take(n).map(|(_, r)| r).collect();
    let columns = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let all_int =
                !rows.is_empty() && rows.iter().all(|r| matches!(r[i], Value::Int(_) | Value::Null));
            let kind = it.kind.unwrap_or(if all_int { ColumnType::Integer } else { ColumnType::Text });
            Column { name: it.name.clone(), kind }
        })
        .collect();
    Ok(Answer::Rows { table: src.spec.map_or("", |s| s.name).to_string(), columns, rows })
}

//! The ProxySQL-compatible SQL admin: ProxySQL's tables and `LOAD`/`SAVE` commands over the
//! MySQL protocol on its own listener (default `127.0.0.1:6032`), parsed with `sqlparser`
//! (MySQL dialect). Never on the data path: it reads snapshots and changes the config only
//! through the validated, atomic reload path.

mod expr;
mod layers;
mod listener;
mod live;
mod select;
mod staged;
mod tables;
mod toml_rows;

use std::sync::{Arc, Mutex};

use sqlparser::ast::{ShowCreateObject, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

pub use listener::serve;

use expr::{Scope, Value};
use tables::Layer;
use toml_rows::Row;

use crate::protocol::resultset::{Column, ColumnType};
use crate::shared::Context;

/// One statement's answer.
#[derive(Debug)]
pub enum Answer {
    Ok { affected: u64 },
    Rows { table: String, columns: Vec<Column>, rows: Vec<Row> },
    Err { code: u16, message: String },
}

impl Answer {
    fn refused(message: impl Into<String>) -> Answer {
        Answer::Err { code: 1105, message: message.into() }
    }

    fn text_rows(columns: &[&str], rows: Vec<Vec<String>>) -> Answer {
        Answer::Rows {
            table: String::new(),
            columns: columns.iter().map(|c| Column { name: (*c).into(), kind: ColumnType::Text }).collect(),
            rows: rows.into_iter().map(|r| r.into_iter().map(Value::Text).collect()).collect(),
        }
    }
}

/// The admin's state: the staged layer, shared by every admin connection (as ProxySQL's
/// `main` schema is).
pub struct Admin {
    ctx: Arc<Context>,
    staged: Mutex<staged::Staged>,
}

impl Admin {
    pub fn new(ctx: Arc<Context>) -> Arc<Admin> {
        Arc::new(Admin { ctx, staged: Mutex::default() })
    }

    /// Runs every statement of `sql` (split on `;` outside quotes and comments).
    pub async fn execute(&self, sql: &str, connection_id: u32) -> Vec<Answer> {
        let mut out = Vec::new();
        for stmt in split(sql) {
            out.push(self.one(stmt, connection_id).await);
        }
        if out.is_empty() {
            out.push(Answer::Err { code: 1065, message: "Query was empty".into() });
        }
        out
    }

    async fn one(&self, sql: &str, connection_id: u32) -> Answer {
        if let Some(cmd) = layers::Command::parse(sql) {
            return match self.layer_command(cmd).await {
                Ok(()) => Answer::Ok { affected: 0 },
                Err(e) => Answer::refused(e),
            };
        }
        let verb = sql.split_whitespace().next().unwrap_or("");
        if verb.eq_ignore_ascii_case("LOAD") || verb.eq_ignore_ascii_case("SAVE") {
            let msg = "unknown admin command: expected LOAD|SAVE MYSQL SERVERS|USERS|QUERY RULES TO|FROM RUNTIME|MEMORY|DISK";
            return Answer::Err { code: 1064, message: msg.into() };
        }
        let rewritten = rewrite(sql);
        let parsed = match Parser::parse_sql(&MySqlDialect {}, &rewritten) {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            Ok(_) => return Answer::Err { code: 1065, message: "Query was empty".into() },
            Err(e) => return Answer::Err { code: 1064, message: format!("{e} (rwproxy admin)") },
        };
        match self.statement(&parsed, connection_id) {
            Ok(a) => a,
            Err(e) if e.starts_with("Unknown column") => Answer::Err { code: 1054, message: e },
            Err(e) if e.starts_with("UNIQUE") => Answer::Err { code: 1062, message: e },
            Err(e) if e.starts_with("Table ") => Answer::Err { code: 1146, message: e },
            Err(e) if e.starts_with("Unknown system variable") => Answer::Err { code: 1193, message: e },
            Err(e) => Answer::refused(e),
        }
    }

    fn statement(&self, stmt: &Statement, connection_id: u32) -> Result<Answer, String> {
        match stmt {
            Statement::Query(q) => self.select(q, connection_id),
            Statement::Insert(i) => self.insert(i),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            Statement::ShowTables { show_options, .. } => {
                let schema =
                    show_options.show_in.as_ref().and_then(|i| i.parent_name.as_ref()).map(|n| n.to_string());
                let schema = schema.unwrap_or_else(|| "main".into()).to_ascii_lowercase();
                let names = tables::TABLES.iter().filter(|t| tables::schema_of(t) == schema);
                Ok(Answer::text_rows(&["tables"], names.map(|t| vec![t.name.to_string()]).collect()))
            }
            Statement::ShowDatabases { .. } => {
                let rows = [("0", "main"), ("2", "disk"), ("3", "stats"), ("4", "monitor")];
                let rows = rows.iter().map(|(s, n)| vec![(*s).into(), (*n).into(), String::new()]).collect();
                Ok(Answer::text_rows(&["seq", "name", "file"], rows))
            }
            Statement::ShowCreate { obj_type: ShowCreateObject::Table, obj_name } => {
                let spec = find(&obj_name.to_string())?;
                Ok(Answer::text_rows(
                    &["table", "Create Table"],
                    vec![vec![spec.name.into(), spec.create_statement()]],
                ))
            }
            Statement::ShowVariables { .. } => {
                let rows = live::rows("global_variables", &self.ctx);
                let rows =
                    rows.into_iter().map(|r| r.iter().map(|v| v.render().unwrap_or_default()).collect());
                Ok(Answer::text_rows(&["Variable_name", "Value"], rows.collect()))
            }
            Statement::Set(_) | Statement::Use(_) => Ok(Answer::Ok { affected: 0 }),
            Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => {
                Ok(Answer::Ok { affected: 0 })
            }
            other => Err(format!("not supported by the rwproxy admin: {}", first_words(&other.to_string()))),
        }
    }

    /// The rows a table shows now.
    fn rows(&self, spec: &'static tables::Spec) -> Result<Vec<Row>, String> {
        match spec.layer {
            Layer::Staged(s) => self.staged_rows(s),
            Layer::Runtime(s) => {
                let config = self.ctx.config();
                let doc = layers::document(&config.text)?;
                let mut rows = toml_rows::rows(&doc, s, &config);
                if s == tables::Section::Servers {
                    live::runtime_status(&self.ctx, &mut rows);
                }
                Ok(rows)
            }
            Layer::Live => Ok(live::rows(spec.name, &self.ctx)),
        }
    }

    fn select(&self, q: &sqlparser::ast::Query, connection_id: u32) -> Result<Answer, String> {
        let spec = select::table_name(q)?.map(|n| find(&n)).transpose()?;
        let rows = spec.map(|s| self.rows(s)).transpose()?.unwrap_or_default();
        let user = self.ctx.config().admin.sql.as_ref().map(|s| s.username.clone()).unwrap_or_default();
        let variable = |name: &str| variable(&self.ctx, name, connection_id);
        let function = |name: &str| match name {
            "database" | "schema" => Some(Value::text("main")),
            "user" | "current_user" | "session_user" | "system_user" => {
                Some(Value::text(format!("{user}@localhost")))
            }
            "version" => variable("version"),
            "connection_id" => Some(Value::Int(i64::from(connection_id))),
            _ => None,
        };
        select::run(q, select::Source { spec, rows, variable: &variable, function: &function })
    }

    /// The reply to `COM_FIELD_LIST` for `table` (an error when there is no such table).
    pub fn field_list(&self, table: &str) -> Vec<u8> {
        let mut out = Vec::new();
        match tables::find(table) {
            Some(spec) => {
                let columns: Vec<Column> =
                    spec.columns.iter().map(|(n, k, _)| Column { name: (*n).into(), kind: *k }).collect();
                crate::protocol::resultset::encode_field_list(
                    &mut out,
                    spec.name,
                    &columns,
                    crate::protocol::status::AUTOCOMMIT,
                );
            }
            None => {
                let msg = format!("Table 'main.{table}' doesn't exist");
                crate::protocol::packet::encode(
                    &mut out,
                    1,
                    &crate::protocol::reply::err_packet(1146, "42S02", &msg),
                );
            }
        }
        out
    }

    fn scope_for<'a>(&self, names: &'a [&'a str]) -> Scope<'a> {
        Scope { columns: names, variable: &|_| None, function: &|_| None }
    }
}

/// Fixed answers to the `@@variables` clients (the CLI, JDBC and GUI tools) read on connect.
const VARIABLES: &[(&str, Fixed)] = &[
    ("version_comment", Fixed::Text("rwproxy admin")),
    ("autocommit", Fixed::Int(1)),
    ("auto_increment_increment", Fixed::Int(1)),
    ("sql_mode", Fixed::Text("")),
    ("init_connect", Fixed::Text("")),
    ("max_allowed_packet", Fixed::Int(67_108_864)),
    ("character_set_client", Fixed::Text("utf8")),
    ("character_set_connection", Fixed::Text("utf8")),
    ("character_set_results", Fixed::Text("utf8")),
    ("character_set_server", Fixed::Text("utf8")),
    ("character_set_database", Fixed::Text("utf8")),
    ("character_set_system", Fixed::Text("utf8")),
    ("collation_connection", Fixed::Text("utf8_general_ci")),
    ("collation_server", Fixed::Text("utf8_general_ci")),
    ("collation_database", Fixed::Text("utf8_general_ci")),
    ("lower_case_table_names", Fixed::Int(0)),
    ("tx_isolation", Fixed::Text("REPEATABLE-READ")),
    ("transaction_isolation", Fixed::Text("REPEATABLE-READ")),
    ("tx_read_only", Fixed::Int(0)),
    ("transaction_read_only", Fixed::Int(0)),
    ("read_only", Fixed::Int(0)),
    ("time_zone", Fixed::Text("SYSTEM")),
    ("system_time_zone", Fixed::Text("UTC")),
    ("wait_timeout", Fixed::Int(28_800)),
    ("interactive_timeout", Fixed::Int(28_800)),
    ("net_buffer_length", Fixed::Int(16_384)),
    ("net_write_timeout", Fixed::Int(60)),
    ("performance_schema", Fixed::Int(0)),
    ("query_cache_size", Fixed::Int(0)),
    ("query_cache_type", Fixed::Text("OFF")),
    ("have_ssl", Fixed::Text("DISABLED")),
    ("protocol_version", Fixed::Int(10)),
    ("version_compile_os", Fixed::Text("Linux")),
    ("hostname", Fixed::Text("rwproxy")),
    ("license", Fixed::Text("MIT")),
];

#[derive(Clone, Copy)]
enum Fixed {
    Int(i64),
    Text(&'static str),
}

/// A `@@variable` as the admin answers it (`None`: unknown, ERR 1193 as a server answers).
fn variable(ctx: &Context, name: &str, _connection_id: u32) -> Option<Value> {
    match name {
        "version" => Some(Value::text(format!("8.0.30 (rwproxy {} admin)", env!("CARGO_PKG_VERSION")))),
        "port" => ctx.config().admin.sql.as_ref().map(|s| Value::Int(i64::from(s.listen.port()))),
        _ => VARIABLES.iter().find(|(n, _)| *n == name).map(|(_, v)| match v {
            Fixed::Int(i) => Value::Int(*i),
            Fixed::Text(t) => Value::text(*t),
        }),
    }
}

fn find(name: &str) -> Result<&'static tables::Spec, String> {
    tables::find(name).ok_or_else(|| format!("Table '{}' doesn't exist", name.replace('`', "")))
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// ProxySQL's SQLite spellings MySQL's grammar lacks.
fn rewrite(sql: &str) -> String {
    for (from, to) in
        [(["INSERT", "OR", "REPLACE"], "REPLACE"), (["INSERT", "OR", "IGNORE"], "INSERT IGNORE")]
    {
        let mut rest = sql.trim_start();
        let matched = from.iter().all(|w| {
            let word = rest.split(char::is_whitespace).next().unwrap_or("");
            rest = rest[word.len()..].trim_start();
            word.eq_ignore_ascii_case(w)
        });
        if matched {
            return format!("{to} {rest}");
        }
    }
    sql.to_string()
}

/// Splits on `;` outside quotes, backticks and comments; drops empty pieces.
fn split(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == b'\\' && q != b'`' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, b'\'' | b'"' | b'`') => quote = Some(c),
            None if c == b'-' && b.get(i + 1) == Some(&b'-') || c == b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            None if c == b'/' && b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            None if c == b';' => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            None => {}
        }
        i += 1;
    }
    out.push(&sql[start.min(sql.len())..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

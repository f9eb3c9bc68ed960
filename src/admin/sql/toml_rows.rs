//! The config file's sections as ProxySQL rows and back. Rows are read from a TOML document
//! (`toml_edit`), and written back into one by editing it in place: an entry that stays (same
//! key) keeps its comments and the keys the admin does not show (`password_env`,
//! `writer_is_also_reader`); a column rwproxy cannot honour is refused, never dropped.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use super::expr::Value;
use super::tables::Section;
use crate::config::{Config, Secret};
use crate::protocol::auth;

pub type Row = Vec<Value>;

fn int(t: &Table, key: &str) -> Option<i64> {
    t.get(key).and_then(Item::as_integer)
}

fn text(t: &Table, key: &str) -> Option<String> {
    t.get(key).and_then(Item::as_str).map(str::to_string)
}

fn boolean(t: &Table, key: &str) -> Option<bool> {
    t.get(key).and_then(Item::as_bool)
}

fn entries<'a>(doc: &'a DocumentMut, key: &str) -> Vec<&'a Table> {
    doc.get(key).and_then(Item::as_array_of_tables).map(|a| a.iter().collect()).unwrap_or_default()
}

/// `*HEX` of a configured secret, or its caching_sha2 hash (what `mysql_users.password` shows).
pub fn shown_password(secret: &Secret) -> String {
    match secret {
        Secret::Clear(p) => auth::format_hash(&auth::native_hash(p.as_bytes())),
        Secret::Hash(h) => auth::format_hash(h),
        Secret::Sha2(s) => s.crypt.text(),
    }
}

/// Whether `s` is a native password hash as `mysql_users.password` holds it.
pub fn is_hash(s: &str) -> bool {
    let native = s.len() == 41 && s.starts_with('*') && s[1..].bytes().all(|b| b.is_ascii_hexdigit());
    native || crate::protocol::sha2_crypt::Sha2Crypt::parse(s).is_some()
}

/// The rows of `section` as the document holds them; passwords from `config` (so a password
/// given by environment variable shows as its hash too).
pub fn rows(doc: &DocumentMut, section: Section, config: &Config) -> Vec<Row> {
    match section {
        Section::Servers => entries(doc, "servers").into_iter().map(server_row).collect(),
        Section::Users => entries(doc, "users").into_iter().map(|t| user_row(t, config)).collect(),
        Section::Rules => entries(doc, "query_rules").into_iter().map(rule_row).collect(),
        Section::Replication => doc
            .get("replication")
            .and_then(Item::as_table)
            .map(|t| {
                vec![vec![
                    Value::Int(int(t, "writer_hostgroup").unwrap_or(0)),
                    Value::Int(int(t, "reader_hostgroup").unwrap_or(0)),
                    Value::text("read_only"),
                    Value::text(text(t, "comment").unwrap_or_default()),
                ]]
            })
            .unwrap_or_default(),
    }
}

fn server_row(t: &Table) -> Row {
    use Value::Int;
    let address = text(t, "address").unwrap_or_default();
    let (host, port) = address.rsplit_once(':').unwrap_or((&address, "3306"));
    let status = text(t, "status").map_or("ONLINE".into(), |s| s.to_ascii_uppercase());
    vec![
        Int(int(t, "hostgroup").unwrap_or(0)),
        Value::text(host.trim_start_matches('[').trim_end_matches(']')),
        Int(port.parse().unwrap_or(0)),
        Int(0),
        Value::text(status),
        Int(int(t, "weight").unwrap_or(1)),
        Int(0),
        Int(int(t, "max_connections").unwrap_or(200)),
        Int(int(t, "max_replication_lag").unwrap_or(0)),
        Int(0),
        Int(0),
        Value::text(text(t, "comment").unwrap_or_default()),
    ]
}

fn user_row(t: &Table, config: &Config) -> Row {
    use Value::Int;
    let name = text(t, "username").unwrap_or_default();
    let password = match config.user(name.as_bytes()) {
        Some(u) => shown_password(&u.secret),
        None => text(t, "password_hash")
            .or_else(|| text(t, "password").map(|p| shown_password(&Secret::Clear(p))))
            .unwrap_or_default(),
    };
    let mut row = vec![Value::text(name), Value::text(password), Int(1), Int(0)];
    row.push(Int(int(t, "default_hostgroup").unwrap_or(0)));
    row.push(Value::opt_text(text(t, "default_schema")));
    row.extend([Int(0), Int(1), Int(0), Int(1), Int(1)]);
    row.push(Int(int(t, "max_connections").unwrap_or(10_000)));
    row.extend([Value::text(""), Value::text(text(t, "comment").unwrap_or_default())]);
    row
}

fn rule_row(t: &Table) -> Row {
    use Value::{Int, Null};
    let b = |v: bool| Int(i64::from(v));
    let o = |k: &str| int(t, k).map_or(Null, Int);
    let s = |k: &str| Value::opt_text(text(t, k));
    let mut row = vec![o("rule_id"), b(boolean(t, "active").unwrap_or(true))];
    row.extend([s("username"), s("schemaname"), Int(int(t, "flagIN").unwrap_or(0))]);
    row.extend([Null, Null, Null, Null, s("match_digest"), s("match_pattern")]);
    row.push(b(boolean(t, "negate_match_pattern").unwrap_or(false)));
    row.push(Value::text(text(t, "re_modifiers").unwrap_or_else(|| "CASELESS".into())));
    row.extend([o("flagOUT"), Null, o("destination_hostgroup")]);
    row.extend(std::iter::repeat_n(Null, 10));
    row.extend([s("error_msg"), Null, Null, Null, Null, Null]);
    row.extend([b(boolean(t, "apply").unwrap_or(false)), Value::text(""), s("comment")]);
    row
}

/// Columns whose non-default values rwproxy cannot honour, per section: (column index, name,
/// the one accepted value or `None` for NULL).
fn unsupported(section: Section) -> &'static [(usize, &'static str, Option<i64>)] {
    match section {
        Section::Servers => &[
            (3, "gtid_port", Some(0)),
            (6, "compression", Some(0)),
            (9, "use_ssl", Some(0)),
            (10, "max_latency_ms", Some(0)),
        ],
        Section::Users => &[
            (2, "active", Some(1)),
            (3, "use_ssl", Some(0)),
            (6, "schema_locked", Some(0)),
            (8, "fast_forward", Some(0)),
            (9, "backend", Some(1)),
            (10, "frontend", Some(1)),
        ],
        Section::Rules => &[
            (5, "client_addr", None),
            (6, "proxy_addr", None),
            (7, "proxy_port", None),
            (8, "digest", None),
            (14, "replace_pattern", None),
            (16, "cache_ttl", None),
            (17, "cache_empty_result", None),
            (18, "cache_timeout", None),
            (19, "reconnect", None),
            (20, "timeout", None),
            (21, "retries", None),
            (22, "delay", None),
            (23, "next_query_flagIN", None),
            (24, "mirror_flagOUT", None),
            (25, "mirror_hostgroup", None),
            (27, "OK_msg", None),
            (28, "sticky_conn", None),
            (29, "multiplex", None),
            (30, "gtid_from_hostgroup", None),
            (31, "log", None),
        ],
        Section::Replication => &[],
    }
}

/// Why a row cannot be written (a column with a value rwproxy would silently not honour).
fn check(section: Section, row: &Row, table: &str, n: usize) -> Result<(), String> {
    for (i, name, accepted) in unsupported(section) {
        let v = &row[*i];
        let ok = match accepted {
            None => *v == Value::Null,
            Some(a) => v.as_int() == Some(*a),
        };
        if !ok {
            let shown = v.render().unwrap_or_else(|| "NULL".into());
            return Err(format!(
                "{table} row {n}: {name} = {shown} is not supported by rwproxy (it would not be honoured)"
            ));
        }
    }
    Ok(())
}

/// Sets `key`, keeping the comments around an existing value.
fn put(t: &mut Table, key: &str, mut new: Item) {
    if let (Some(old), Some(v)) = (t.get(key).and_then(Item::as_value), new.as_value_mut()) {
        *v.decor_mut() = old.decor().clone();
    }
    t.insert(key, new);
}

/// Sets `key` unless it is absent and `v` is what absence means.
fn put_unless_default(t: &mut Table, key: &str, v: i64, default: i64) {
    if t.contains_key(key) || v != default {
        put(t, key, value(v));
    }
}

fn set_or_remove(t: &mut Table, key: &str, v: Option<Item>) {
    match v {
        Some(v) => put(t, key, v),
        None => {
            t.remove(key);
        }
    }
}

fn int_item(v: &Value) -> Option<Item> {
    v.as_int().map(value)
}

fn text_item(v: &Value) -> Option<Item> {
    v.render().map(value)
}

fn nonempty(v: &Value) -> Option<Item> {
    v.render().filter(|s| !s.is_empty()).map(value)
}

/// Replaces `section` of `doc` with `rows`.
pub fn write(doc: &mut DocumentMut, section: Section, rows: &[Row], config: &Config) -> Result<(), String> {
    let table = super::tables::staged(section).name;
    for (n, row) in rows.iter().enumerate() {
        check(section, row, table, n + 1)?;
    }
    if section == Section::Replication {
        return write_replication(doc, rows);
    }
    let key = match section {
        Section::Servers => "servers",
        Section::Users => "users",
        _ => "query_rules",
    };
    let old: Vec<Table> = entries(doc, key).into_iter().cloned().collect();
    let mut out = ArrayOfTables::new();
    for row in rows {
        let mut t = match section {
            Section::Servers => server(row, &old),
            Section::Users => user(row, &old, config),
            _ => rule(row, &old),
        };
        t.set_implicit(false);
        out.push(t);
    }
    if rows.is_empty() {
        doc.remove(key);
    } else {
        doc.insert(key, Item::ArrayOfTables(out));
    }
    Ok(())
}

fn server(row: &Row, old: &[Table]) -> Table {
    let host = row[1].render().unwrap_or_default();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let address = format!("{host}:{}", row[2].as_int().unwrap_or(3306));
    let same = |t: &&Table| {
        int(t, "hostgroup") == row[0].as_int() && text(t, "address").as_deref() == Some(&address)
    };
    let mut t = old.iter().find(same).cloned().unwrap_or_default();
    put(&mut t, "hostgroup", value(row[0].as_int().unwrap_or(0)));
    put(&mut t, "address", value(address));
    put_unless_default(&mut t, "weight", row[5].as_int().unwrap_or(1), 1);
    put_unless_default(&mut t, "max_connections", row[7].as_int().unwrap_or(200), 200);
    set_or_remove(&mut t, "max_replication_lag", int_item(&row[8]).filter(|_| row[8].as_int() != Some(0)));
    let status = row[4].render().unwrap_or_default().to_ascii_uppercase();
    set_or_remove(&mut t, "status", (status != "ONLINE").then(|| value(status)));
    set_or_remove(&mut t, "comment", nonempty(&row[11]));
    t
}

fn user(row: &Row, old: &[Table], config: &Config) -> Table {
    let name = row[0].render().unwrap_or_default();
    let existing = old.iter().find(|t| text(t, "username").as_deref() == Some(&name));
    let mut t = existing.cloned().unwrap_or_default();
    put(&mut t, "username", value(name.as_str()));
    let password = row[1].render().unwrap_or_default();
    let unchanged = existing.is_some()
        && config.user(name.as_bytes()).is_some_and(|u| shown_password(&u.secret) == password);
    if !unchanged {
        for k in ["password", "password_hash", "password_env"] {
            t.remove(k);
        }
        let k = if is_hash(&password) { "password_hash" } else { "password" };
        t.insert(k, value(password));
    }
    put(&mut t, "default_hostgroup", value(row[4].as_int().unwrap_or(0)));
    set_or_remove(&mut t, "default_schema", text_item(&row[5]));
    put_unless_default(&mut t, "max_connections", row[11].as_int().unwrap_or(10_000), 10_000);
    set_or_remove(&mut t, "comment", nonempty(&row[13]));
    t
}

fn rule(row: &Row, old: &[Table]) -> Table {
    let id = row[0].as_int();
    let mut t = old.iter().find(|t| int(t, "rule_id") == id).cloned().unwrap_or_default();
    let flag = |v: &Value| value(v.as_int().unwrap_or(0) != 0);
    set_or_remove(&mut t, "rule_id", int_item(&row[0]));
    put(&mut t, "active", flag(&row[1]));
    set_or_remove(&mut t, "username", text_item(&row[2]));
    set_or_remove(&mut t, "schemaname", text_item(&row[3]));
    set_or_remove(&mut t, "flagIN", int_item(&row[4]).filter(|_| row[4].as_int() != Some(0)));
    set_or_remove(&mut t, "match_digest", text_item(&row[9]));
    set_or_remove(&mut t, "match_pattern", text_item(&row[10]));
    set_or_remove(&mut t, "negate_match_pattern", (row[11].as_int() == Some(1)).then(|| value(true)));
    let modifiers = row[12].render().filter(|m| !m.eq_ignore_ascii_case("CASELESS")).map(value);
    set_or_remove(&mut t, "re_modifiers", modifiers);
    set_or_remove(&mut t, "flagOUT", int_item(&row[13]));
    set_or_remove(&mut t, "destination_hostgroup", int_item(&row[15]));
    set_or_remove(&mut t, "error_msg", text_item(&row[26]));
    put(&mut t, "apply", flag(&row[32]));
    set_or_remove(&mut t, "comment", text_item(&row[34]));
    t
}

fn write_replication(doc: &mut DocumentMut, rows: &[Row]) -> Result<(), String> {
    match rows {
        [] => {
            doc.remove("replication");
        }
        [row] => {
            let check_type = row[2].render().unwrap_or_default();
            if !check_type.eq_ignore_ascii_case("read_only") {
                return Err(format!(
                    "mysql_replication_hostgroups: check_type = {check_type:?} is not supported (read_only is)"
                ));
            }
            let mut t = doc.get("replication").and_then(Item::as_table).cloned().unwrap_or_default();
            put(&mut t, "writer_hostgroup", value(row[0].as_int().unwrap_or(0)));
            put(&mut t, "reader_hostgroup", value(row[1].as_int().unwrap_or(0)));
            set_or_remove(&mut t, "comment", nonempty(&row[3]));
            doc.insert("replication", Item::Table(t));
        }
        _ => {
            return Err(
                "mysql_replication_hostgroups: rwproxy runs one writer/reader pair; keep one row".into()
            );
        }
    }
    Ok(())
}

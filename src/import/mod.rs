//! `rwproxy import-proxysql`: a ProxySQL `proxysql.cnf` → an rwproxy TOML config, with a
//! comment for every setting that could not be carried over.

pub mod libconfig;

use std::fmt::Write as _;

use libconfig::Value;

/// Settings of `mysql_variables` that map onto rwproxy keys (others become comments).
const HANDLED_VARIABLES: [&str; 14] = [
    "interfaces",
    "max_connections",
    "server_version",
    "monitor_username",
    "monitor_password",
    "monitor_ping_interval",
    "monitor_read_only_interval",
    "monitor_replication_lag_interval",
    "monitor_connect_timeout",
    "monitor_ping_timeout",
    "monitor_read_only_timeout",
    "connect_timeout_server",
    "default_schema",
    "max_allowed_packet",
];

/// Rule columns rwproxy cannot honour whose loss would make the rule match more statements
/// (or act differently) than in ProxySQL: such a rule is imported inactive.
const RULE_UNHONOURED: [&str; 6] =
    ["client_addr", "proxy_addr", "proxy_port", "digest", "replace_pattern", "OK_msg"];

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list<'a>(root: &'a Value, name: &str) -> &'a [Value] {
    match root.get(name) {
        Some(Value::List(items)) => items,
        _ => &[],
    }
}

fn int(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_int)
}

fn text<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Comments for every key of `entry` not in `handled`.
fn leftovers(out: &mut String, entry: &Value, handled: &[&str], what: &str) {
    if let Value::Group(items) = entry {
        for (k, v) in items.iter().filter(|(k, _)| !handled.iter().any(|h| h.eq_ignore_ascii_case(k))) {
            let _ = writeln!(out, "# not carried over ({what}): {k} = {}", v.display());
        }
    }
}

/// Converts the text of a `proxysql.cnf`.
pub fn convert(cnf: &str) -> Result<String, libconfig::ParseError> {
    let root = libconfig::parse(cnf)?;
    let mut out = String::from("# Converted from proxysql.cnf by `rwproxy import-proxysql`.\n");
    out += "# Check with `rwproxy check-config FILE`; keys are documented in config/example.toml.\n\n";
    let empty = Value::Group(Vec::new());
    let vars = root.get("mysql_variables").unwrap_or(&empty);
    proxy_section(&mut out, vars);
    servers(&mut out, &root);
    users(&mut out, &root, text(vars, "default_schema"));
    monitor(&mut out, vars);
    replication(&mut out, &root);
    rules(&mut out, &root);
    out += "[admin]\n# rwproxy's HTTP admin API (GET /route, /servers, /sessions, /digests, /metrics …).\n";
    out += "listen = \"127.0.0.1:6080\"\n";
    if let Some(a) = root.get("admin_variables") {
        sql_admin(&mut out, a);
    }
    leftovers(&mut out, vars, &HANDLED_VARIABLES, "mysql_variables");
    if let Value::Group(items) = &root {
        let known = [
            "mysql_variables",
            "admin_variables",
            "mysql_servers",
            "mysql_users",
            "mysql_query_rules",
            "mysql_replication_hostgroups",
        ];
        for (k, v) in items.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
            let _ = writeln!(out, "# not carried over: {k} = {}", v.display());
        }
    }
    Ok(out)
}

fn proxy_section(out: &mut String, vars: &Value) {
    *out += "[proxy]\n";
    let interfaces: Vec<&str> =
        text(vars, "interfaces").map(|i| i.split(';').map(str::trim).collect()).unwrap_or_default();
    let listen =
        interfaces.iter().copied().find(|a| a.contains(':') && !a.starts_with('/')).unwrap_or("0.0.0.0:6033");
    let _ = writeln!(out, "listen = {}", quote(listen));
    for other in interfaces.iter().filter(|a| **a != listen && !a.is_empty()) {
        let why = if other.starts_with('/') {
            "a Unix socket; rwproxy listens on TCP only"
        } else {
            "rwproxy listens on one address"
        };
        let _ = writeln!(out, "# not carried over: interface {other:?} ({why})");
    }
    if let Some(n) = int(vars, "max_connections") {
        let _ = writeln!(out, "max_connections = {n}");
    }
    if let Some(n) = int(vars, "max_allowed_packet") {
        let _ = writeln!(out, "max_allowed_packet = {n}");
    }
    if let Some(v) = text(vars, "server_version") {
        *out += "# ProxySQL announced a fixed version; rwproxy announces the primary's real one so\n";
        *out += "# drivers detect MariaDB/MySQL correctly. Uncomment to keep the old behaviour.\n";
        let _ = writeln!(out, "# server_version = {}", quote(v));
    }
    if let Some(ms) = int(vars, "connect_timeout_server") {
        let _ = writeln!(out, "\n[pool]\nconnect_timeout_ms = {ms}");
    }
    *out += "\n";
}

fn servers(out: &mut String, root: &Value) {
    let handled = [
        "address",
        "hostname",
        "port",
        "hostgroup",
        "hostgroup_id",
        "weight",
        "max_connections",
        "max_replication_lag",
        "status",
        "comment",
    ];
    for s in list(root, "mysql_servers") {
        let host = text(s, "address").or_else(|| text(s, "hostname")).unwrap_or("127.0.0.1");
        let port = int(s, "port").unwrap_or(3306);
        let hostgroup = int(s, "hostgroup").or_else(|| int(s, "hostgroup_id")).unwrap_or(0);
        *out += "[[servers]]\n";
        let _ = writeln!(out, "hostgroup = {hostgroup}");
        let _ = writeln!(out, "address = {}", quote(&format!("{host}:{port}")));
        match int(s, "weight") {
            Some(w) if w >= 1 => {
                let _ = writeln!(out, "weight = {w}");
            }
            Some(w) => {
                let _ = writeln!(out, "# weight = {w} is not allowed (must be at least 1): default 1 used");
            }
            None => {}
        }
        if let Some(n) = int(s, "max_connections").filter(|n| *n >= 1) {
            let _ = writeln!(out, "max_connections = {n}");
        }
        if let Some(n) = int(s, "max_replication_lag").filter(|n| *n > 0) {
            let _ = writeln!(out, "max_replication_lag = {n}");
        }
        match text(s, "status").map(str::to_ascii_uppercase).as_deref() {
            None | Some("ONLINE") => {}
            Some(st @ ("OFFLINE_SOFT" | "OFFLINE_HARD")) => {
                let _ = writeln!(out, "status = {}", quote(st));
            }
            Some(other) => {
                let _ = writeln!(out, "# status {other:?} is runtime state in ProxySQL: imported ONLINE");
            }
        }
        if let Some(c) = text(s, "comment") {
            let _ = writeln!(out, "comment = {}", quote(c));
        }
        leftovers(out, s, &handled, "mysql_servers");
        *out += "\n";
    }
}

fn users(out: &mut String, root: &Value, default_schema: Option<&str>) {
    let handled =
        ["username", "password", "default_hostgroup", "max_connections", "default_schema", "active"];
    for u in list(root, "mysql_users") {
        let Some(name) = text(u, "username") else { continue };
        if int(u, "active") == Some(0) {
            let _ = writeln!(out, "# not carried over: mysql_users entry {name:?} is inactive\n");
            continue;
        }
        *out += "[[users]]\n";
        let _ = writeln!(out, "username = {}", quote(name));
        match text(u, "password") {
            Some(p) if p.starts_with('*') && p.len() == 41 => {
                let _ = writeln!(out, "password_hash = {}", quote(p));
            }
            Some(p) => {
                let _ = writeln!(out, "password = {}", quote(p));
            }
            None => *out += "password = \"\"\n",
        }
        let _ = writeln!(out, "default_hostgroup = {}", int(u, "default_hostgroup").unwrap_or(0));
        if let Some(s) = text(u, "default_schema").or(default_schema) {
            let _ = writeln!(out, "default_schema = {}", quote(s));
        }
        if let Some(n) = int(u, "max_connections").filter(|n| *n >= 1) {
            let _ = writeln!(out, "max_connections = {n}");
        }
        leftovers(out, u, &handled, "mysql_users");
        *out += "\n";
    }
}

fn monitor(out: &mut String, vars: &Value) {
    let Some(user) = text(vars, "monitor_username") else { return };
    *out += "[monitor]\n";
    let _ = writeln!(out, "username = {}", quote(user));
    let _ = writeln!(out, "password = {}", quote(text(vars, "monitor_password").unwrap_or("")));
    // One rwproxy probe does ProxySQL's ping, read_only and lag checks: as often as the most
    // frequent of them, with the longest of their timeouts.
    let intervals =
        ["monitor_ping_interval", "monitor_read_only_interval", "monitor_replication_lag_interval"];
    let given: Vec<(&str, i64)> = intervals.iter().filter_map(|k| int(vars, k).map(|v| (*k, v))).collect();
    if let Some(ms) = given.iter().map(|(_, v)| *v).min().map(|ms| ms.max(50)) {
        let names: Vec<String> = given.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "# one probe covers ping, read_only and lag: {}", names.join(", "));
        let _ = writeln!(out, "interval_ms = {ms}");
    }
    let timeouts = ["monitor_connect_timeout", "monitor_ping_timeout", "monitor_read_only_timeout"];
    if let Some(ms) = timeouts.iter().filter_map(|k| int(vars, k)).max().filter(|ms| *ms > 0) {
        let _ = writeln!(out, "timeout_ms = {ms}");
    }
    *out += "\n";
}

fn replication(out: &mut String, root: &Value) {
    let groups = list(root, "mysql_replication_hostgroups");
    let Some(r) = groups.first() else { return };
    *out += "[replication]\n";
    let _ = writeln!(out, "writer_hostgroup = {}", int(r, "writer_hostgroup").unwrap_or(0));
    let _ = writeln!(out, "reader_hostgroup = {}", int(r, "reader_hostgroup").unwrap_or(1));
    leftovers(out, r, &["writer_hostgroup", "reader_hostgroup"], "mysql_replication_hostgroups");
    for extra in &groups[1..] {
        let _ = writeln!(
            out,
            "# not carried over: another replication hostgroup pair {:?}",
            extra.get("comment").map(Value::display)
        );
    }
    *out += "\n";
}

fn rules(out: &mut String, root: &Value) {
    let bools = ["active", "negate_match_pattern", "apply"];
    let ints = ["rule_id", "flagIN", "flagOUT", "destination_hostgroup"];
    let strings = ["username", "schemaname", "match_digest", "match_pattern", "error_msg"];
    let mut handled: Vec<&str> = bools.to_vec();
    handled.extend(ints);
    handled.extend(strings);
    handled.extend(RULE_UNHONOURED);
    handled.extend(["re_modifiers", "comment"]);
    let rules = list(root, "mysql_query_rules");
    if !rules.is_empty() {
        *out += "# rwproxy splits reads and writes without rules; these keep working as in ProxySQL.\n";
    }
    for r in rules {
        let (caseless, mut inactive) = modifiers(r);
        for k in RULE_UNHONOURED {
            if let Some(v) = r.get(k).filter(|v| !matches!(v.as_str(), Some(""))) {
                inactive.push(format!("{k} = {} cannot be honoured", v.display()));
            }
        }
        *out += "[[query_rules]]\n";
        for k in ints {
            if let Some(n) = int(r, k) {
                let _ = writeln!(out, "{k} = {n}");
            }
        }
        for k in bools.into_iter().filter(|k| *k != "active") {
            if let Some(n) = int(r, k) {
                let _ = writeln!(out, "{k} = {}", n != 0);
            }
        }
        for k in strings {
            let Some(s) = text(r, k) else { continue };
            let bad = k.starts_with("match_")
                && regex::RegexBuilder::new(s).case_insensitive(caseless).build().is_err();
            if bad {
                let _ = writeln!(out, "# {k} = {}", quote(s));
                inactive.push(format!("{k} is not a regular expression rwproxy can run (RE2 syntax)"));
            } else {
                let _ = writeln!(out, "{k} = {}", quote(s));
            }
        }
        let was_active = int(r, "active").is_none_or(|a| a != 0);
        let _ = writeln!(out, "active = {}", was_active && inactive.is_empty());
        let mut comment: Vec<String> = text(r, "comment").map(str::to_string).into_iter().collect();
        if was_active && !inactive.is_empty() {
            comment.push(format!(
                "imported inactive: {} (it would match more than in ProxySQL)",
                inactive.join("; ")
            ));
        }
        if !comment.is_empty() {
            let _ = writeln!(out, "comment = {}", quote(&comment.join("; ")));
        }
        leftovers(out, r, &handled, "mysql_query_rules");
        *out += "\n";
    }
}

/// `re_modifiers`: CASELESS (the default) and GLOBAL are understood; anything else makes the
/// rule inactive (returns whether matching is caseless, and the reasons).
fn modifiers(r: &Value) -> (bool, Vec<String>) {
    let Some(m) = text(r, "re_modifiers") else { return (true, Vec::new()) };
    let upper = m.to_ascii_uppercase();
    let parts: Vec<&str> = upper.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let unknown: Vec<&str> = parts.iter().copied().filter(|p| !matches!(*p, "CASELESS" | "GLOBAL")).collect();
    let mut reasons = Vec::new();
    if !unknown.is_empty() {
        reasons.push(format!("re_modifiers {} cannot be mapped", unknown.join(",")));
    }
    (parts.contains(&"CASELESS"), reasons)
}

/// `admin_variables` → `[admin.sql]`: the first `admin_credentials` pair; the listener stays
/// on loopback (rwproxy never opens an admin port to the network unless told to).
fn sql_admin(out: &mut String, a: &Value) {
    let creds = text(a, "admin_credentials").unwrap_or("");
    let pairs: Vec<&str> = creds.split(';').map(str::trim).filter(|p| p.contains(':')).collect();
    if let Some((user, password)) = pairs.first().and_then(|p| p.split_once(':')) {
        *out += "\n[admin.sql]\n# ProxySQL's SQL admin (port 6032 tables, LOAD/SAVE commands).\n";
        if let Some(ifaces) = text(a, "mysql_ifaces").filter(|i| !i.starts_with("127.")) {
            let _ = writeln!(out, "# ProxySQL listened on {ifaces:?}; rwproxy's SQL admin stays on loopback");
        }
        *out += "listen = \"127.0.0.1:6032\"\n";
        let _ = writeln!(out, "username = {}", quote(user));
        let _ = writeln!(out, "password = {}", quote(password));
        if pairs.len() > 1 {
            let _ = writeln!(
                out,
                "# not carried over: {} more admin_credentials (rwproxy has one admin login)",
                pairs.len() - 1
            );
        }
    }
    leftovers(out, a, &["admin_credentials", "mysql_ifaces"], "admin_variables");
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

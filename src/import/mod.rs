//! `rwproxy import-proxysql`: a ProxySQL `proxysql.cnf` → an rwproxy TOML config, with a
//! comment for every setting that could not be carried over.

pub mod libconfig;

use std::fmt::Write as _;

use libconfig::Value;

/// Settings of `mysql_variables` that map onto rwproxy keys (others become comments).
const HANDLED_VARIABLES: [&str; 9] = [
    "interfaces",
    "max_connections",
    "server_version",
    "monitor_username",
    "monitor_password",
    "monitor_ping_interval",
    "connect_timeout_server",
    "default_schema",
    "max_allowed_packet",
];

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
    out +=
        "[admin]\n# rwproxy's admin API is HTTP (GET /route, /servers, /sessions, /digests, /metrics …).\n";
    out += "listen = \"127.0.0.1:6080\"\n";
    if let Some(a) = root.get("admin_variables") {
        leftovers(&mut out, a, &[], "admin_variables: ProxySQL's SQL admin interface has no equivalent");
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
    let listen = text(vars, "interfaces")
        .and_then(|i| i.split(';').find(|a| a.contains(':') && !a.starts_with('/')))
        .unwrap_or("0.0.0.0:6033");
    let _ = writeln!(out, "listen = {}", quote(listen));
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
    if let Some(ms) = int(vars, "monitor_ping_interval").filter(|ms| *ms >= 50) {
        let _ = writeln!(out, "interval_ms = {ms}");
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
    let strings =
        ["username", "schemaname", "match_digest", "match_pattern", "re_modifiers", "error_msg", "comment"];
    let mut handled: Vec<&str> = bools.to_vec();
    handled.extend(ints);
    handled.extend(strings);
    let rules = list(root, "mysql_query_rules");
    if !rules.is_empty() {
        *out += "# rwproxy splits reads and writes without rules; these keep working as in ProxySQL.\n";
    }
    for r in rules {
        *out += "[[query_rules]]\n";
        for k in ints {
            if let Some(n) = int(r, k) {
                let _ = writeln!(out, "{k} = {n}");
            }
        }
        for k in bools {
            if let Some(n) = int(r, k) {
                let _ = writeln!(out, "{k} = {}", n != 0);
            }
        }
        for k in strings {
            if let Some(s) = text(r, k) {
                let _ = writeln!(out, "{k} = {}", quote(s));
            }
        }
        leftovers(out, r, &handled, "mysql_query_rules");
        *out += "\n";
    }
}

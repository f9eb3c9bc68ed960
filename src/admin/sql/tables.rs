//! The SQL admin's tables with ProxySQL's names, column names, types and defaults, so scripts
//! written for ProxySQL parse what they read.

use super::expr::Value;
use crate::protocol::resultset::ColumnType;

/// A column's default for `INSERT`s that leave it out.
#[derive(Debug, Clone, Copy)]
pub enum Dflt {
    Required,
    Null,
    Int(i64),
    Text(&'static str),
}

impl Dflt {
    pub fn value(self) -> Option<Value> {
        match self {
            Dflt::Required => None,
            Dflt::Null => Some(Value::Null),
            Dflt::Int(i) => Some(Value::Int(i)),
            Dflt::Text(s) => Some(Value::text(s)),
        }
    }
}

pub type Col = (&'static str, ColumnType, Dflt);

/// Which layer a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Staged ("memory"): edited by INSERT/UPDATE/DELETE, applied by `LOAD … TO RUNTIME`.
    Staged(Section),
    /// What runs now.
    Runtime(Section),
    /// Read-only views of live state.
    Live,
}

/// The config sections the admin edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Servers,
    Replication,
    Users,
    Rules,
}

pub struct Spec {
    pub name: &'static str,
    pub layer: Layer,
    pub columns: &'static [Col],
}

impl Spec {
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.0).collect()
    }

    /// `SHOW CREATE TABLE`'s text.
    pub fn create_statement(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(n, k, d)| {
                let ty = if *k == ColumnType::Integer { "INT" } else { "VARCHAR" };
                let null = if matches!(d, Dflt::Required) { " NOT NULL" } else { "" };
                let default = match d {
                    Dflt::Int(i) => format!(" DEFAULT {i}"),
                    Dflt::Text(t) => format!(" DEFAULT '{t}'"),
                    _ => String::new(),
                };
                format!("    {n} {ty}{null}{default}")
            })
            .collect();
        format!("CREATE TABLE {} (\n{})", self.name, cols.join(",\n"))
    }
}

use ColumnType::{Integer as I, Text as T};
use Dflt::{Int, Null, Required as R, Text as Tx};

const SERVERS: &[Col] = &[
    ("hostgroup_id", I, Int(0)),
    ("hostname", T, R),
    ("port", I, Int(3306)),
    ("gtid_port", I, Int(0)),
    ("status", T, Tx("ONLINE")),
    ("weight", I, Int(1)),
    ("compression", I, Int(0)),
    ("max_connections", I, Int(200)),
    ("max_replication_lag", I, Int(0)),
    ("use_ssl", I, Int(0)),
    ("max_latency_ms", I, Int(0)),
    ("comment", T, Tx("")),
];

const USERS: &[Col] = &[
    ("username", T, R),
    ("password", T, Tx("")),
    ("active", I, Int(1)),
    ("use_ssl", I, Int(0)),
    ("default_hostgroup", I, Int(0)),
    ("default_schema", T, Null),
    ("schema_locked", I, Int(0)),
    ("transaction_persistent", I, Int(1)),
    ("fast_forward", I, Int(0)),
    ("backend", I, Int(1)),
    ("frontend", I, Int(1)),
    ("max_connections", I, Int(10000)),
    ("attributes", T, Tx("")),
    ("comment", T, Tx("")),
];

const RULES: &[Col] = &[
    ("rule_id", I, Null),
    ("active", I, Int(0)),
    ("username", T, Null),
    ("schemaname", T, Null),
    ("flagIN", I, Int(0)),
    ("client_addr", T, Null),
    ("proxy_addr", T, Null),
    ("proxy_port", I, Null),
    ("digest", T, Null),
    ("match_digest", T, Null),
    ("match_pattern", T, Null),
    ("negate_match_pattern", I, Int(0)),
    ("re_modifiers", T, Tx("CASELESS")),
    ("flagOUT", I, Null),
    ("replace_pattern", T, Null),
    ("destination_hostgroup", I, Null),
    ("cache_ttl", I, Null),
    ("cache_empty_result", I, Null),
    ("cache_timeout", I, Null),
    ("reconnect", I, Null),
    ("timeout", I, Null),
    ("retries", I, Null),
    ("delay", I, Null),
    ("next_query_flagIN", I, Null),
    ("mirror_flagOUT", I, Null),
    ("mirror_hostgroup", I, Null),
    ("error_msg", T, Null),
    ("OK_msg", T, Null),
    ("sticky_conn", I, Null),
    ("multiplex", I, Null),
    ("gtid_from_hostgroup", I, Null),
    ("log", I, Null),
    ("apply", I, Int(0)),
    ("attributes", T, Tx("")),
    ("comment", T, Null),
];

const REPLICATION: &[Col] = &[
    ("writer_hostgroup", I, R),
    ("reader_hostgroup", I, R),
    ("check_type", T, Tx("read_only")),
    ("comment", T, Tx("")),
];

const VARIABLES: &[Col] = &[("variable_name", T, R), ("variable_value", T, Null)];
const GLOBAL: &[Col] = &[("Variable_Name", T, R), ("Variable_Value", T, Null)];

const POOL: &[Col] = &[
    ("hostgroup", I, R),
    ("srv_host", T, R),
    ("srv_port", I, R),
    ("status", T, R),
    ("ConnUsed", I, R),
    ("ConnFree", I, R),
    ("ConnOK", I, R),
    ("ConnERR", I, R),
    ("MaxConnUsed", I, R),
    ("Queries", I, R),
    ("Queries_GTID_sync", I, R),
    ("Bytes_data_sent", I, R),
    ("Bytes_data_recv", I, R),
    ("Latency_us", I, R),
];

const DIGEST: &[Col] = &[
    ("hostgroup", I, R),
    ("schemaname", T, R),
    ("username", T, R),
    ("client_address", T, R),
    ("digest", T, R),
    ("digest_text", T, R),
    ("count_star", I, R),
    ("first_seen", I, R),
    ("last_seen", I, R),
    ("sum_time", I, R),
    ("min_time", I, R),
    ("max_time", I, R),
    ("sum_rows_affected", I, R),
    ("sum_rows_sent", I, R),
];

const PROCESSLIST: &[Col] = &[
    ("ThreadID", I, R),
    ("SessionID", I, R),
    ("user", T, R),
    ("db", T, R),
    ("cli_host", T, R),
    ("cli_port", I, R),
    ("hostgroup", I, R),
    ("l_srv_host", T, R),
    ("l_srv_port", I, R),
    ("srv_host", T, R),
    ("srv_port", I, R),
    ("command", T, R),
    ("time_ms", I, R),
    ("info", T, R),
];

const PING_LOG: &[Col] = &[
    ("hostname", T, R),
    ("port", I, R),
    ("time_start_us", I, R),
    ("ping_success_time_us", I, R),
    ("ping_error", T, R),
];
const READ_ONLY_LOG: &[Col] = &[
    ("hostname", T, R),
    ("port", I, R),
    ("time_start_us", I, R),
    ("success_time_us", I, R),
    ("read_only", I, R),
    ("error", T, R),
];
const LAG_LOG: &[Col] = &[
    ("hostname", T, R),
    ("port", I, R),
    ("time_start_us", I, R),
    ("success_time_us", I, R),
    ("repl_lag", I, R),
    ("error", T, R),
];

use Layer::{Live, Runtime, Staged};
use Section::{Replication, Rules, Servers, Users};

pub const TABLES: &[Spec] = &[
    Spec { name: "mysql_servers", layer: Staged(Servers), columns: SERVERS },
    Spec { name: "runtime_mysql_servers", layer: Runtime(Servers), columns: SERVERS },
    Spec { name: "mysql_users", layer: Staged(Users), columns: USERS },
    Spec { name: "runtime_mysql_users", layer: Runtime(Users), columns: USERS },
    Spec { name: "mysql_query_rules", layer: Staged(Rules), columns: RULES },
    Spec { name: "runtime_mysql_query_rules", layer: Runtime(Rules), columns: RULES },
    Spec { name: "mysql_replication_hostgroups", layer: Staged(Replication), columns: REPLICATION },
    Spec { name: "runtime_mysql_replication_hostgroups", layer: Runtime(Replication), columns: REPLICATION },
    Spec { name: "global_variables", layer: Live, columns: VARIABLES },
    Spec { name: "runtime_global_variables", layer: Live, columns: VARIABLES },
    Spec { name: "stats_mysql_connection_pool", layer: Live, columns: POOL },
    Spec { name: "stats_mysql_query_digest", layer: Live, columns: DIGEST },
    Spec { name: "stats_mysql_query_digest_reset", layer: Live, columns: DIGEST },
    Spec { name: "stats_mysql_global", layer: Live, columns: GLOBAL },
    Spec { name: "stats_mysql_processlist", layer: Live, columns: PROCESSLIST },
    Spec { name: "mysql_server_ping_log", layer: Live, columns: PING_LOG },
    Spec { name: "mysql_server_read_only_log", layer: Live, columns: READ_ONLY_LOG },
    Spec { name: "mysql_server_replication_lag_log", layer: Live, columns: LAG_LOG },
];

/// The table a (possibly schema-qualified, `main.`, `stats.`, `monitor.`) name means.
pub fn find(name: &str) -> Option<&'static Spec> {
    let name = name.replace('`', "");
    let bare = name.rsplit('.').next().unwrap_or(&name);
    TABLES.iter().find(|t| t.name.eq_ignore_ascii_case(bare))
}

/// The staged table of a section.
pub fn staged(section: Section) -> &'static Spec {
    TABLES.iter().find(|t| t.layer == Layer::Staged(section)).expect("every section has a staged table")
}

/// The schema `SHOW TABLES FROM …` lists a table in.
pub fn schema_of(spec: &Spec) -> &'static str {
    match spec.name {
        n if n.starts_with("stats_") => "stats",
        n if n.starts_with("mysql_server_") => "monitor",
        _ => "main",
    }
}

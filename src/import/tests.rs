//! The importer never widens a rule: every ProxySQL column rwproxy cannot honour turns the
//! rule off with the reason, and the result still loads (with a warning per such rule).

use super::convert;
use crate::config::{Config, ServerStatus};

fn cnf(rules: &str, extra_vars: &str, servers: &str) -> String {
    format!(
        r#"
admin_variables = {{ admin_credentials="radmin:s3cret;other:x" mysql_ifaces="0.0.0.0:6032" }}
mysql_variables =
{{
    interfaces="0.0.0.0:6033;/tmp/proxysql.sock"
    monitor_username="monitor"
    monitor_password="monitor"
    {extra_vars}
}}
mysql_servers = ( {{ address="10.0.0.1", port=3306, hostgroup=0 }} {servers} )
mysql_users = ( {{ username="app", password="app", default_hostgroup=0 }} )
mysql_query_rules = ( {rules} )
"#
    )
}

fn load(toml: &str) -> Config {
    Config::parse(toml, "imported", &|_| None).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

#[test]
fn rules_with_columns_rwproxy_cannot_honour_are_imported_inactive_with_the_reason() {
    let cases = [
        (r#"client_addr="10.1.2.3""#, "client_addr"),
        (r#"proxy_addr="10.0.0.9""#, "proxy_addr"),
        ("proxy_port=6034", "proxy_port"),
        (r#"digest="0x1234ABCD""#, "digest"),
        (r#"replace_pattern="SELECT 1""#, "replace_pattern"),
        (r#"OK_msg="done""#, "OK_msg"),
        (r#"re_modifiers="CASELESS,MULTILINE""#, "re_modifiers MULTILINE"),
        (r#"match_digest="^SELECT (?=x)""#, "match_digest is not a regular expression"),
    ];
    for (column, reason) in cases {
        let rule = format!(
            r#"{{ rule_id=7, active=1, match_pattern="^SELECT", destination_hostgroup=0, apply=1, {column} }}"#
        );
        let toml = convert(&cnf(&rule, "", "")).unwrap();
        let config = load(&toml);
        assert!(config.query_rules.is_empty(), "{column}: the rule must not be active:\n{toml}");
        let warning =
            config.warnings.iter().find(|w| w.contains("rule_id 7")).unwrap_or_else(|| panic!("{toml}"));
        assert!(warning.contains("imported inactive") && warning.contains(reason), "{column}: {warning}");
    }
    // Columns that do not change which statements match keep the rule active, with a comment.
    let rule = r#"{ rule_id=8, active=1, match_pattern="^SELECT", destination_hostgroup=0, apply=1, cache_ttl=100 }"#;
    let toml = convert(&cnf(rule, "", "")).unwrap();
    assert_eq!(load(&toml).query_rules.len(), 1);
    assert!(toml.contains("# not carried over (mysql_query_rules): cache_ttl = 100"), "{toml}");
}

#[test]
fn server_status_monitor_intervals_sockets_and_admin_credentials_carry_over() {
    let servers = r#", { address="10.0.0.2", port=3306, hostgroup=1, status="OFFLINE_SOFT", comment="r1" },
        { address="10.0.0.3", port=3306, hostgroup=1, status="OFFLINE_HARD" }"#;
    let vars = "monitor_ping_interval=10000\n monitor_read_only_interval=1500\n monitor_replication_lag_interval=2000\n monitor_connect_timeout=600\n monitor_read_only_timeout=800";
    let toml = convert(&cnf("", vars, servers)).unwrap();
    let config = load(&toml);
    let status: Vec<ServerStatus> = config.servers.iter().map(|s| s.status).collect();
    assert_eq!(status, [ServerStatus::Online, ServerStatus::OfflineSoft, ServerStatus::OfflineHard]);
    assert_eq!(config.servers[1].comment.as_deref(), Some("r1"));
    let m = config.monitor.as_ref().unwrap();
    assert_eq!((m.interval.as_millis(), m.timeout.as_millis()), (1500, 800), "{toml}");
    assert!(toml.contains(r#"# not carried over: interface "/tmp/proxysql.sock" (a Unix socket"#), "{toml}");
    let sql = config.admin.sql.as_ref().expect("[admin.sql] from admin_credentials");
    assert_eq!((sql.username.as_str(), sql.listen.to_string().as_str()), ("radmin", "127.0.0.1:6032"));
    assert!(toml.contains("1 more admin_credentials"), "{toml}");
}

//! `rwproxy import-proxysql`: a real-looking proxysql.cnf converted, loaded and served.

use std::collections::BTreeSet;

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, connect};

fn proxysql_cnf() -> String {
    let c = cluster();
    format!(
        r#"# ProxySQL configuration, as shipped with the scaling guide
datadir="/var/lib/proxysql"

admin_variables=
{{
    admin_credentials="admin:admin"
    mysql_ifaces="0.0.0.0:6032"
}}

mysql_variables=
{{
    threads=4
    max_connections=2048
    default_query_delay=0
    interfaces="0.0.0.0:6033"
    default_schema="information_schema"
    server_version="5.7.0"
    connect_timeout_server=3000
    monitor_username="monitor"
    monitor_password="monitor"
    monitor_ping_interval=10000
    ping_interval_server_msec=120000
}}

mysql_servers =
(
    {{ address="127.0.0.1" , port={p} , hostgroup=0, max_connections=200 }},
    {{ address="127.0.0.1" , port={r1} , hostgroup=1, max_connections=200, weight=1 }},
    {{ address="127.0.0.1" , port={r2} , hostgroup=1, max_connections=200, weight=1, comment="replica 2" }}
)

mysql_users:
(
    {{
        username = "app"
        password = "app"
        default_hostgroup = 0
        max_connections=200
        default_schema="rwtest"
        active = 1
        transaction_persistent = 1
    }}
)

mysql_query_rules:
(
    {{
        rule_id=1
        active=1
        match_pattern="^SELECT.*FOR UPDATE$"
        destination_hostgroup=0
        apply=1
    }},
    {{
        rule_id=2
        active=1
        match_pattern="^SELECT"
        destination_hostgroup=1
        apply=1
        cache_ttl=5000
    }},
    {{
        rule_id=3
        active=1
        client_addr="10.9.9.9"
        match_pattern="."
        destination_hostgroup=0
        apply=1
    }}
)

mysql_replication_hostgroups=
(
    {{ writer_hostgroup=0 , reader_hostgroup=1 , comment="cluster" }}
)
"#,
        p = c.primary.port,
        r1 = c.replicas[0].port,
        r2 = c.replicas[1].port
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxysql_config_converts_and_serves() {
    let dir = std::env::temp_dir().join(format!("rwproxy-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cnf = dir.join("proxysql.cnf");
    std::fs::write(&cnf, proxysql_cnf()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .arg("import-proxysql")
        .arg(&cnf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    for comment in [
        "# not carried over (mysql_variables): threads = 4",
        "# not carried over (mysql_users): transaction_persistent = 1",
        "# not carried over (mysql_query_rules): cache_ttl = 5000",
        "comment = \"replica 2\"",
        "# server_version = \"5.7.0\"",
        "[admin.sql]",
        "imported inactive: client_addr = \"10.9.9.9\" cannot be honoured",
    ] {
        assert!(toml.contains(comment), "missing {comment:?} in:\n{toml}");
    }
    let toml_path = dir.join("rwproxy.toml");
    std::fs::write(&toml_path, &toml).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .arg("check-config")
        .arg(&toml_path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}\n{toml}", String::from_utf8_lossy(&check.stderr));
    let warnings = String::from_utf8_lossy(&check.stderr);
    assert!(
        warnings.contains("warning: query_rules[2] (rule_id 3) is inactive: imported inactive"),
        "{warnings}"
    );

    let proxy = Proxy::start(&toml).await;
    let mut c = connect(proxy.port()).await;
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(c.query_first::<u32, _>("SELECT @@server_id").await.unwrap().unwrap());
    }
    assert_eq!(seen, BTreeSet::from([2, 3]), "the classic rules send reads to the readers");
    let locked: u32 = c.query_first("SELECT @@server_id FROM DUAL FOR UPDATE").await.unwrap().unwrap();
    assert_eq!(locked, 1, "… and FOR UPDATE to the writer");
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("rwtest"));
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

use std::sync::Arc;

use super::layers::{Action, Command};
use super::tables::Section;
use super::*;
use crate::backend::BackendConnector;
use crate::config::Config;
use crate::pool::Pools;

const CONFIG: &str = r#"
# the primary
[[servers]]
hostgroup = 10
address = "127.0.0.1:13306"

[[servers]]
hostgroup = 20
address = "127.0.0.1:13307"
weight = 3 # the big replica

[[users]]
username = "app"
password = "app-secret"
default_hostgroup = 10

[[query_rules]]
rule_id = 1
match_digest = "^SELECT .* FOR UPDATE"
destination_hostgroup = 10
apply = true

[replication]
writer_hostgroup = 10
reader_hostgroup = 20

[admin.sql]
username = "radmin"
password = "radmin-pw"
"#;

/// An admin over a running (monitor-less) proxy state whose reloads are served.
fn admin(text: &str, file: Option<&std::path::Path>) -> Arc<Admin> {
    let mut config = Config::parse(text, "test", &|_| None).expect("valid test config");
    config.source = file.map(|p| p.to_path_buf());
    let config = Arc::new(config);
    let pools = Pools::new(&config, Arc::new(BackendConnector::new(&config)));
    let ctx = Context::new(config, pools);
    let reloader = crate::server::reload::Reloader::start(ctx.clone());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let _ = ctx.reloads.set(tx);
    tokio::spawn(reloader.serve(rx));
    Admin::new(ctx)
}

async fn rows(a: &Admin, sql: &str) -> Vec<Vec<String>> {
    match a.execute(sql, 1).await.remove(0) {
        Answer::Rows { rows, .. } => rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| v.render().unwrap_or("NULL".into())).collect())
            .collect(),
        other => panic!("{sql}: {other:?}"),
    }
}

async fn ok(a: &Admin, sql: &str) -> u64 {
    match a.execute(sql, 1).await.remove(0) {
        Answer::Ok { affected } => affected,
        other => panic!("{sql}: {other:?}"),
    }
}

async fn err(a: &Admin, sql: &str) -> (u16, String) {
    match a.execute(sql, 1).await.remove(0) {
        Answer::Err { code, message } => (code, message),
        other => panic!("{sql} should fail: {other:?}"),
    }
}

#[tokio::test]
async fn selects_filter_sort_count_and_limit_as_sql_does() {
    let a = admin(CONFIG, None);
    let sql = "SELECT hostgroup_id, hostname, port, weight FROM main.mysql_servers ORDER BY weight DESC";
    assert_eq!(rows(&a, sql).await, [["20", "127.0.0.1", "13307", "3"], ["10", "127.0.0.1", "13306", "1"]]);
    assert_eq!(rows(&a, "SELECT COUNT(*) FROM runtime_mysql_servers WHERE status = 'online'").await, [["2"]]);
    let sql =
        "select port AS p from mysql_servers where hostname like '127.%' and port in (13307, 1) limit 1";
    assert_eq!(rows(&a, sql).await, [["13307"]]);
    assert_eq!(rows(&a, "SELECT hostname FROM mysql_servers ORDER BY 1 LIMIT 1 OFFSET 1").await.len(), 1);
    assert_eq!(rows(&a, "select @@version_comment limit 1").await, [["rwproxy admin"]]);
    assert_eq!(
        rows(&a, "SELECT writer_hostgroup, reader_hostgroup FROM mysql_replication_hostgroups").await,
        [["10", "20"]]
    );
    assert_eq!(err(&a, "SELECT nope FROM mysql_servers").await.0, 1054);
    assert_eq!(err(&a, "SELECT * FROM no_such_table").await.0, 1146);
    assert_eq!(err(&a, "SELEC 1").await.0, 1064);
    let names = rows(&a, "SHOW TABLES").await;
    assert!(names.iter().any(|r| r[0] == "mysql_query_rules"), "{names:?}");
    let stats = rows(&a, "SHOW TABLES FROM stats").await;
    assert!(stats.iter().all(|r| r[0].starts_with("stats_")) && !stats.is_empty(), "{stats:?}");
}

#[tokio::test]
async fn passwords_show_as_hashes_only() {
    let a = admin(CONFIG, None);
    let users = rows(&a, "SELECT username, password FROM mysql_users").await;
    assert_eq!(users[0][0], "app");
    assert!(toml_rows::is_hash(&users[0][1]), "{users:?}");
    let all = format!("{:?}{:?}", rows(&a, "SELECT * FROM global_variables").await, users);
    assert!(!all.contains("app-secret") && !all.contains("radmin-pw"), "{all}");
}

#[tokio::test]
async fn staged_changes_reach_the_runtime_only_when_loaded_and_only_if_valid() {
    let a = admin(CONFIG, None);
    ok(&a, "INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (20, '127.0.0.1', 13308)").await;
    ok(&a, "UPDATE mysql_servers SET status = 'OFFLINE_SOFT', max_connections = 7 WHERE port = 13307").await;
    assert_eq!(rows(&a, "SELECT COUNT(*) FROM runtime_mysql_servers").await, [["2"]], "staged only");
    ok(&a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    let cfg = a.ctx.config();
    assert_eq!(cfg.servers.len(), 3);
    let drained = cfg.servers.iter().find(|s| s.address.ends_with(":13307")).unwrap();
    assert_eq!(
        (drained.status, drained.max_connections.get()),
        (crate::config::ServerStatus::OfflineSoft, 7)
    );
    assert!(a.ctx.pools().health("127.0.0.1:13307").unwrap().is_draining());
    let sql = "SELECT status FROM runtime_mysql_servers WHERE port = 13307";
    assert_eq!(rows(&a, sql).await, [["OFFLINE_SOFT"]]);
    drop(cfg);

    // A rule sending reads to a hostgroup with no server: refused with the reason, nothing changes.
    ok(&a, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply) VALUES (5, 1, '^SELECT', 99, 1)").await;
    let (_, msg) = err(&a, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
    assert!(msg.contains("nothing changed") && msg.contains("hostgroup 99"), "{msg}");
    assert_eq!(a.ctx.config().query_rules.len(), 1);
    // A rule rwproxy cannot honour is refused, never widened into a catch-all.
    ok(
        &a,
        "UPDATE mysql_query_rules SET destination_hostgroup = 20, client_addr = '10.0.0.1' WHERE rule_id = 5",
    )
    .await;
    let (_, msg) = err(&a, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
    assert!(msg.contains("client_addr"), "{msg}");
    ok(&a, "UPDATE mysql_query_rules SET client_addr = NULL WHERE rule_id = 5").await;
    ok(&a, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
    assert_eq!(a.ctx.config().query_rules.len(), 2);

    // Back to what runs.
    ok(&a, "DELETE FROM mysql_servers").await;
    ok(&a, "SAVE MYSQL SERVERS FROM RUNTIME").await;
    assert_eq!(err(&a, "LOAD MYSQL SERVERS FROM RUNTIME").await.0, 1064);
    assert_eq!(rows(&a, "SELECT COUNT(*) FROM mysql_servers").await, [["3"]]);
}

#[tokio::test]
async fn new_users_are_stored_as_hashes_and_can_be_loaded() {
    let a = admin(CONFIG, None);
    ok(&a, "INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('bob', 'bob-pw', 20)")
        .await;
    let shown = rows(&a, "SELECT password FROM mysql_users WHERE username = 'bob'").await;
    assert!(toml_rows::is_hash(&shown[0][0]), "{shown:?}");
    ok(&a, "LOAD MYSQL USERS TO RUNTIME").await;
    let cfg = a.ctx.config();
    let bob = cfg.user(b"bob").expect("bob is loaded");
    assert!(matches!(bob.secret, crate::config::Secret::Hash(_)));
    // The existing user kept its clear password (its row was not changed).
    assert!(matches!(cfg.user(b"app").unwrap().secret, crate::config::Secret::Clear(_)));
    assert!(!cfg.text.contains("bob-pw"));
}

#[tokio::test]
async fn save_to_disk_keeps_comments_and_the_previous_file() {
    let dir = std::env::temp_dir().join(format!("rwproxy-sqladmin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rwproxy.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let a = admin(CONFIG, Some(&path));
    ok(&a, "UPDATE mysql_servers SET weight = 5 WHERE hostgroup_id = 20").await;
    ok(&a, "SAVE MYSQL SERVERS TO DISK").await;
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("# the primary") && saved.contains("# the big replica"), "{saved}");
    assert!(saved.contains("weight = 5"), "{saved}");
    assert_eq!(std::fs::read_to_string(dir.join("rwproxy.toml.bak")).unwrap(), CONFIG);
    let reread = Config::load(&path).expect("the saved file is valid");
    assert_eq!(reread.servers[1].weight.get(), 5);
    assert_eq!(a.ctx.config().servers[1].weight.get(), 3, "SAVE TO DISK does not touch the runtime");
    // An invalid change is not written.
    ok(&a, "DELETE FROM mysql_servers").await;
    assert!(err(&a, "SAVE MYSQL SERVERS TO DISK").await.1.contains("file is unchanged"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layer_commands_parse_in_every_spelling() {
    let c = |s: &str| Command::parse(s).map(|c| c.action);
    assert_eq!(c("LOAD MYSQL SERVERS TO RUNTIME"), Some(Action::ToRuntime));
    assert_eq!(c("load mysql servers to run;"), Some(Action::ToRuntime));
    assert_eq!(c("LOAD MYSQL QUERY RULES FROM MEMORY"), Some(Action::ToRuntime));
    assert_eq!(c("SAVE MYSQL USERS TO DISK"), Some(Action::ToDisk));
    assert_eq!(c("SAVE MYSQL SERVERS FROM RUNTIME"), Some(Action::FromRuntime));
    assert_eq!(c("LOAD MYSQL USERS FROM DISK"), Some(Action::FromDisk));
    assert_eq!(c("LOAD MYSQL VARIABLES TO RUNTIME"), Some(Action::Nothing));
    assert_eq!(c("LOAD MYSQL SERVERS TO NOWHERE"), None);
    assert_eq!(c("SELECT 1"), None);
    let servers = Command::parse("LOAD MYSQL SERVERS TO RUNTIME").unwrap().sections;
    assert_eq!(servers, [Section::Servers, Section::Replication]);
}

#[test]
fn statements_split_outside_quotes_and_comments() {
    assert_eq!(
        split("SELECT 1; SELECT ';' ; -- x;\n SELECT 2"),
        ["SELECT 1", " SELECT ';' ", " -- x;\n SELECT 2"]
    );
    assert_eq!(split(" ; ;"), Vec::<&str>::new());
    assert_eq!(
        rewrite("insert  or replace INTO mysql_servers VALUES (1)"),
        "REPLACE INTO mysql_servers VALUES (1)"
    );
}

/// `COM_FIELD_LIST` (the CLI's name completion) gets the table's columns, as a server's reply.
#[tokio::test]
async fn field_lists_are_answered_as_a_server_does() {
    use crate::protocol::{ReplyKind, ReplyTracker, Step};
    let a = admin(CONFIG, None);
    let out = a.field_list("mysql_servers");
    let mut tracker = ReplyTracker::new(ReplyKind::FieldList, false, false);
    let (mut at, mut frames, mut done) = (0, 0, false);
    while at < out.len() {
        let (len, _) = crate::protocol::packet::frame_header(&out[at..]).unwrap();
        done = matches!(tracker.on_frame(len, &out[at + 4..at + 4 + len]).unwrap(), Step::Done(_));
        at += 4 + len;
        frames += 1;
    }
    assert!(done && frames == 13, "12 columns and an EOF: {frames}");
    assert_eq!(a.field_list("nope")[4], 0xff, "an unknown table is an error");
    assert_eq!(rows(&a, "SELECT @@character_set_database, @@net_buffer_length").await, [["utf8", "16384"]]);
    assert_eq!(err(&a, "SELECT @@no_such_variable").await.0, 1193);
}

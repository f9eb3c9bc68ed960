//! Session semantics drivers' test suites rely on, through the proxy as directly: the current
//! schema dropped under the session, global settings read where they were set, `wait_timeout`
//! closing idle clients, dead pooled connections, prepared statements released.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::{Proxy, cluster, opts};

async fn conn(port: u16, db: Option<&str>) -> Conn {
    Conn::new(Opts::from(opts(port, APP_USER, APP_PASSWORD, db))).await.expect("connect")
}

/// `DROP DATABASE` of the session's own schema leaves it with none (the server says so in the
/// OK packet); the session can then `USE` another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_current_schema_leaves_the_session_without_one() {
    let proxy = Proxy::default().await;
    let db = format!("sem_drop_{}", std::process::id());
    for port in [cluster().primary.port, proxy.port()] {
        cluster().primary.sql(&format!("CREATE DATABASE {db}"));
        cluster().sync_replicas();
        let mut c = conn(port, Some(&db)).await;
        c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
        for _ in 0..5 {
            let now: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
            assert_eq!(now, None, "port {port}: no schema after dropping it");
        }
        c.query_drop(format!("USE {DATABASE}")).await.unwrap_or_else(|e| panic!("port {port}: USE: {e}"));
        let now: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(now.as_deref(), Some(DATABASE), "port {port}");
        let _ = c.disconnect().await;
    }
    proxy.shutdown().await;
}

/// A global setting the session changed is read back from the server it changed it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_set_by_the_session_reads_back() {
    // Without read-your-writes, so routing alone decides where the reads go.
    let config = crate::support::config_text(cluster(), "[routing]\nread_consistency = \"none\"\n");
    let proxy = Proxy::start(&config).await;
    let mut c = conn(proxy.port(), Some(DATABASE)).await;
    let old: u32 = c.query_first("SELECT @@global.net_read_timeout").await.unwrap().unwrap();
    c.query_drop(format!("SET GLOBAL net_read_timeout = {}", old + 7)).await.unwrap();
    for _ in 0..10 {
        let now: u32 = c.query_first("SELECT @@global.net_read_timeout").await.unwrap().unwrap();
        assert_eq!(now, old + 7, "@@global read where it was set");
        let shown: Option<(String, String)> =
            c.query_first("SHOW GLOBAL VARIABLES LIKE 'net_read_timeout'").await.unwrap();
        assert_eq!(shown.map(|(_, v)| v), Some((old + 7).to_string()), "SHOW GLOBAL VARIABLES");
    }
    c.query_drop(format!("SET GLOBAL net_read_timeout = {old}")).await.unwrap();
    let _ = c.disconnect().await;
    proxy.shutdown().await;
}

/// A client that sets `wait_timeout` and stays idle longer is closed, as by the server, while
/// the proxy's pooled connections live on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_closes_the_idle_client_not_the_pool() {
    let proxy = Proxy::default().await;
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = conn(port, Some(DATABASE)).await;
        c.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
        let t: u32 = c.query_first("SELECT @@wait_timeout").await.unwrap().unwrap();
        assert_eq!(t, 1, "port {port}");
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert!(c.query_drop("SELECT 1").await.is_err(), "port {port}: the idle client was closed");
    }
    let mut other = conn(proxy.port(), Some(DATABASE)).await;
    for _ in 0..10 {
        other.query_drop("/* rwproxy:writer */ SELECT 1").await.unwrap();
        other.query_drop("SELECT 1").await.unwrap();
    }
    proxy.shutdown().await;
}

/// Pooled connections the server closed (a DBA's KILL, a client's own wait_timeout) are
/// dropped unused; the server is not taken out and nobody gets an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pooled_connections_take_nothing_down() {
    let user = format!("sem_kill_{}", std::process::id());
    let extra = format!("[[users]]\nusername = \"{user}\"\npassword = \"k\"\ndefault_hostgroup = 0\n");
    let proxy = Proxy::start(&crate::support::config_text(cluster(), &extra)).await;
    let t = crate::support::table("sem_kill");
    cluster().primary.sql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'k'; GRANT ALL ON {DATABASE}.* TO '{user}'@'%'; \
         CREATE TABLE {t} (v INT)"
    ));
    cluster().sync_replicas();
    let login = || async {
        Conn::new(Opts::from(opts(proxy.port(), &user, "k", Some(DATABASE)))).await.expect("login")
    };
    // Several pooled connections on the writer and both readers.
    let mut warm = Vec::new();
    for _ in 0..4 {
        warm.push(login().await);
    }
    for c in &mut warm {
        c.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
        c.query_drop("SELECT 1").await.unwrap();
    }
    for c in warm {
        let _ = c.disconnect().await;
    }
    for node in cluster().nodes() {
        let ids = node.sql(&format!(
            "SELECT GROUP_CONCAT(ID) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"
        ));
        for id in ids.split(',').filter(|s| !s.is_empty() && *s != "NULL") {
            let _ = node.try_sql(&format!("KILL {id}"));
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut errors = Vec::new();
    for i in 0..20 {
        let mut c = login().await;
        for sql in [format!("INSERT INTO {t} VALUES ({i})"), "SELECT 1".to_string()] {
            if let Err(e) = c.query_drop(&sql).await {
                errors.push(format!("session {i}: {sql}: {e}"));
            }
        }
        let _ = c.disconnect().await;
    }
    assert!(errors.is_empty(), "{} errors after the KILLs: {errors:?}", errors.len());
    let (_, v) = proxy.admin_get("/servers").await;
    for s in v["servers"].as_array().unwrap() {
        assert_eq!(s["backing_off"], false, "{s}");
    }
    cluster().primary.sql(&format!("DROP TABLE {t}; DROP USER '{user}'@'%'"));
    proxy.shutdown().await;
}

/// A client's COM_STMT_PREPARE is answered with today's metadata (after an ALTER TABLE), as
/// directly, not with a reply cached from an earlier prepare of the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepare_after_alter_table_sees_the_new_columns() {
    use rwproxy::protocol::ReplyKind;
    let proxy = Proxy::default().await;
    let t = crate::support::table("sem_alter");
    let columns = |reply: &[Vec<u8>]| u16::from_le_bytes([reply[0][5], reply[0][6]]);
    for port in [cluster().primary.port, proxy.port()] {
        cluster().primary.sql(&format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (a INT)"));
        cluster().sync_replicas();
        let mut c =
            crate::support::raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
        // On the writer: one connection, so an old reply cached there would be found.
        let prepare = format!("\x16/* rwproxy:writer */ SELECT * FROM {t}");
        assert_eq!(columns(&c.command(prepare.as_bytes(), ReplyKind::Prepare).await), 1, "port {port}");
        cluster().primary.sql(&format!("ALTER TABLE {t} ADD b INT"));
        cluster().sync_replicas();
        assert_eq!(columns(&c.command(prepare.as_bytes(), ReplyKind::Prepare).await), 2, "port {port}");
        c.quit().await;
    }
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

/// A prepare's column definitions carry the session's `character_set_results` (mysql2's
/// `test-charset-results`): sessions with different ones, sharing one connection per server,
/// each get what the server gives them directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_metadata_follows_each_sessions_result_charset() {
    use rwproxy::protocol::ReplyKind;
    let config =
        crate::support::config_text(cluster(), "").replace("address = ", "max_connections = 1\naddress = ");
    let proxy = Proxy::start(&config).await;
    let t = crate::support::table("sem_charset");
    cluster().primary.sql(&format!("CREATE TABLE {t} (name VARCHAR(10)) DEFAULT CHARSET=utf8mb4"));
    cluster().sync_replicas();
    // On the writer: one connection, so a reply cached there under another charset would be found.
    let prepare = format!("\x16/* rwproxy:writer */ SELECT name FROM {t}");
    let mut replies = Vec::new();
    for port in [cluster().primary.port, proxy.port()] {
        let mut got = Vec::new();
        for charset in ["cp1251", "DEFAULT", "latin1", "DEFAULT"] {
            let mut c =
                crate::support::raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
            if charset != "DEFAULT" {
                c.query(&format!("SET character_set_results = {charset}")).await;
            }
            let reply = c.command(prepare.as_bytes(), ReplyKind::Prepare).await;
            let def = &reply[1];
            // The column's character set id: the 2 bytes after the 0x0c length of the fixed fields.
            let at = def.len() - 12;
            got.push((charset, u16::from_le_bytes([def[at], def[at + 1]])));
            c.quit().await;
        }
        replies.push(got);
    }
    assert_eq!(replies[0][0].1, 51, "cp1251_general_ci directly");
    assert_eq!(replies[1], replies[0]);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

fn server_code(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        _ => 0,
    }
}

/// The id in the greeting is the session's: `CONNECTION_ID()` answers it, `KILL QUERY` and
/// `KILL` act on that session, another user may not, and an id that is not a proxy session is
/// unknown (never forwarded: the primary thread with that number is somebody else's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_connection_id_act_on_proxy_sessions() {
    let proxy = Proxy::default().await;
    let mut a = conn(proxy.port(), Some(DATABASE)).await;
    let mut b = conn(proxy.port(), Some(DATABASE)).await;
    let id = a.id();
    let reported: u32 = a.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    assert_eq!(reported, id, "CONNECTION_ID() is the greeting's id");

    let sleeper = tokio::spawn(async move {
        let r = a.query_drop("SELECT SLEEP(20)").await;
        (a, r)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    b.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (mut a, r) =
        tokio::time::timeout(std::time::Duration::from_secs(10), sleeper).await.unwrap().unwrap();
    assert_eq!(r.as_ref().err().map(server_code), Some(1317), "the running statement was interrupted: {r:?}");
    a.query_drop("SELECT 1").await.expect("KILL QUERY leaves the session alive");

    // A direct connection to the primary: its thread id is no proxy session's.
    let mut direct = conn(cluster().primary.port, Some(DATABASE)).await;
    let stranger: u32 = direct.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    let e = b.query_drop(format!("KILL {stranger}")).await.unwrap_err();
    assert_eq!(server_code(&e), 1094, "{e}");
    direct.query_drop("SELECT 1").await.expect("the stranger lives");

    let mut other = Conn::new(Opts::from(opts(proxy.port(), "other", "other", None))).await.unwrap();
    let e = other.query_drop(format!("KILL {id}")).await.unwrap_err();
    assert_eq!(server_code(&e), 1095, "{e}");

    b.query_drop(format!("KILL {id}")).await.unwrap();
    assert!(a.query_drop("SELECT 1").await.is_err(), "the killed session is closed");
    b.query_drop("SELECT 1").await.expect("the killer goes on");
    let e = b.query_drop("KILL CONNECTION_ID()").await.unwrap_err();
    assert_eq!(server_code(&e), 1927, "{e}");
    proxy.shutdown().await;
}

/// The proxy's own answer to `SELECT CONNECTION_ID()` has the server's shape, in both EOF modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_id_answer_has_the_servers_shape() {
    use rwproxy::protocol::caps;
    let proxy = Proxy::default().await;
    for extra in [0, caps::DEPRECATE_EOF] {
        let mut replies = Vec::new();
        for port in [cluster().primary.port, proxy.port()] {
            let mut c = crate::support::raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), extra)
                .await
                .unwrap();
            let mut reply = c.query("SELECT CONNECTION_ID()").await;
            let row = reply.len() - 2;
            assert_eq!(reply[row][1..], c.greeting.connection_id.to_string().into_bytes()[..], "port {port}");
            reply.remove(row);
            replies.push(reply);
            c.quit().await;
        }
        assert_eq!(replies[0], replies[1], "caps {extra:#x}");
    }
    proxy.shutdown().await;
}

/// What a procedure leaves in user variables (an OUT parameter, a `SET @x` in its body), a
/// `HANDLER` opened, and `SET profiling = 1` stay with the session: it keeps the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedures_handlers_and_profiling_keep_their_connection() {
    let proxy = Proxy::default().await;
    let n = std::process::id();
    let (t, p) = (crate::support::table("sem_proc"), format!("{DATABASE}.sem_proc_{n}"));
    let mut direct = conn(cluster().primary.port, Some(DATABASE)).await;
    direct.query_drop(format!("CREATE TABLE {t} (a INT); INSERT INTO {t} VALUES (1), (2)")).await.unwrap();
    direct
        .query_drop(format!(
            "CREATE PROCEDURE {p}(IN x INT, OUT y INT) BEGIN SET y = x * 2; SET @sem_body = x; END"
        ))
        .await
        .unwrap();
    cluster().sync_replicas();
    let mut c = conn(proxy.port(), Some(DATABASE)).await;
    c.query_drop(format!("CALL {p}(21, @sem_out)")).await.unwrap();
    c.exec_drop(format!("CALL {p}(?, @sem_out2)"), (4,)).await.unwrap();
    for _ in 0..10 {
        let v: (i64, i64, i64) =
            c.query_first("SELECT @sem_out, @sem_out2, @sem_body").await.unwrap().unwrap();
        assert_eq!(v, (42, 8, 4), "OUT parameters and body variables");
    }
    let short = t.rsplit('.').next().unwrap();
    c.query_drop(format!("HANDLER {t} OPEN")).await.unwrap();
    for _ in 0..5 {
        let rows: Vec<i32> = c.query(format!("HANDLER {short} READ NEXT")).await.unwrap();
        assert!(rows.len() <= 1, "HANDLER READ runs where the handler is open");
    }
    c.query_drop(format!("HANDLER {short} CLOSE")).await.unwrap();
    c.query_drop("SET profiling = 1").await.unwrap();
    c.query_drop(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    let profiles: Vec<(u32, f64, String)> = c.query("SHOW PROFILES").await.unwrap();
    assert!(profiles.iter().any(|(_, _, q)| q.contains("COUNT(*)")), "profiled where it ran: {profiles:?}");
    let _ = c.disconnect().await;
    direct.query_drop(format!("DROP TABLE {t}; DROP PROCEDURE {p}")).await.unwrap();
    proxy.shutdown().await;
}

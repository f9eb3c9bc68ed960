//! Where statements ran, proven with `@@server_id` (primary 1, replicas 2 and 3).

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use rwproxy::protocol::ReplyKind;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw;
use crate::support::{Proxy, cluster, config_text, connect, opts, table};

const PRIMARY: u32 = 1;

async fn server_id(c: &mut Conn, sql: &str) -> u32 {
    c.query_first::<u32, _>(sql).await.unwrap().unwrap()
}

async fn ids(c: &mut Conn, sql: &str, n: usize) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(server_id(c, sql).await);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_both_replicas() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    assert_eq!(ids(&mut c, "SELECT @@server_id", 60).await, BTreeSet::from([2, 3]));
    assert_eq!(ids(&mut c, "/* rwproxy:writer */ SELECT @@server_id", 5).await, BTreeSet::from([PRIMARY]));
    let stmt = c.prep("SELECT @@server_id, ? + 1").await.unwrap();
    let mut seen = BTreeSet::new();
    for i in 0..40u32 {
        let (id, n): (u32, u32) = c.exec_first(&stmt, (i,)).await.unwrap().unwrap();
        assert_eq!(n, i + 1);
        seen.insert(id);
    }
    assert_eq!(seen, BTreeSet::from([2, 3]), "read-only prepared statements run on readers");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_reads_locks_and_transactions_run_on_the_primary() {
    // Without read-your-writes, so that reads right after a commit show where pins end.
    let proxy = Proxy::start(&config_text(cluster(), "[routing]\nread_consistency = \"none\"\n")).await;
    let t = table("locks");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY); INSERT INTO {t} VALUES (1)"));
    cluster().sync_replicas();
    let mut c = connect(proxy.port()).await;
    let sql = format!("SELECT @@server_id FROM {t} WHERE id = 1 FOR UPDATE");
    assert_eq!(ids(&mut c, &sql, 5).await, BTreeSet::from([PRIMARY]));
    let sql = format!("SELECT @@server_id FROM {t} WHERE id = 1 LOCK IN SHARE MODE\n-- trailing");
    assert_eq!(ids(&mut c, &sql, 5).await, BTreeSet::from([PRIMARY]));

    assert_eq!(server_id(&mut c, "SELECT GET_LOCK('rw-test', 5) + @@server_id - 1").await, PRIMARY);
    assert_eq!(ids(&mut c, "SELECT @@server_id", 10).await, BTreeSet::from([PRIMARY]), "pinned by the lock");
    assert_eq!(server_id(&mut c, "SELECT IS_USED_LOCK('rw-test') = CONNECTION_ID()").await, 1);
    c.query_drop("SELECT RELEASE_LOCK('rw-test')").await.unwrap();
    assert_eq!(ids(&mut c, "SELECT @@server_id", 30).await, BTreeSet::from([2, 3]), "unpinned");

    for begin in ["BEGIN", "START TRANSACTION", "SET autocommit = 0"] {
        c.query_drop(begin).await.unwrap();
        assert_eq!(ids(&mut c, "SELECT @@server_id", 10).await, BTreeSet::from([PRIMARY]), "{begin}");
        c.query_drop(format!("UPDATE {t} SET id = id WHERE id = 1")).await.unwrap();
        c.query_drop("SAVEPOINT s1").await.unwrap();
        assert_eq!(server_id(&mut c, "SELECT @@server_id").await, PRIMARY);
        c.query_drop("ROLLBACK TO SAVEPOINT s1").await.unwrap();
        c.query_drop("COMMIT").await.unwrap();
        if begin.starts_with("SET") {
            c.query_drop("SET autocommit = 1").await.unwrap();
        }
        assert_eq!(ids(&mut c, "SELECT @@server_id", 30).await, BTreeSet::from([2, 3]), "after {begin}");
    }
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let in_ro = ids(&mut c, "SELECT @@server_id", 10).await;
    assert_eq!(in_ro.len(), 1, "one connection for the whole read-only transaction");
    assert!(!in_ro.contains(&PRIMARY), "read-only transactions may run on a reader");
    c.query_drop("COMMIT").await.unwrap();
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_survives_connection_switches() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    c.query_drop("SET @x = 41").await.unwrap();
    assert_eq!(c.query_first::<u32, _>("SELECT @x + 1").await.unwrap(), Some(42), "user variable pins");
    c.reset().await.unwrap();
    // Django's connection setup, then many statements over both replicas.
    c.query_drop("SET SQL_AUTO_IS_NULL = 0, TX_ISOLATION = 'read-committed'").await.unwrap();
    c.query_drop("SET sql_mode = 'STRICT_TRANS_TABLES', time_zone = '+03:00'").await.unwrap();
    c.query_drop("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci").await.unwrap();
    let mut servers = BTreeSet::new();
    for _ in 0..40 {
        let row: (u32, u32, String, String, String, String) = c
            .query_first(
                "SELECT @@server_id, @@sql_auto_is_null, @@tx_isolation, @@sql_mode, @@time_zone, @@collation_connection",
            )
            .await
            .unwrap()
            .unwrap();
        servers.insert(row.0);
        assert_eq!(
            (row.1, row.2.as_str(), row.3.as_str(), row.4.as_str(), row.5.as_str()),
            (0, "READ-COMMITTED", "STRICT_TRANS_TABLES", "+03:00", "utf8mb4_unicode_ci")
        );
    }
    assert_eq!(servers, BTreeSet::from([2, 3]), "the state held on every connection used");
    // Another session on the same proxy must not inherit this state.
    let mut other = connect(proxy.port()).await;
    for _ in 0..20 {
        let tz: String = other.query_first("SELECT @@time_zone").await.unwrap().unwrap();
        assert_eq!(tz, "SYSTEM");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_temp_tables_last_insert_id_and_text_prepare() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    c.query_drop("USE mysql").await.unwrap();
    for _ in 0..10 {
        assert_eq!(c.query_first::<String, _>("SELECT DATABASE()").await.unwrap().as_deref(), Some("mysql"));
    }
    c.query_drop(format!("USE {DATABASE}")).await.unwrap();
    c.query_drop("CREATE TEMPORARY TABLE tmp (id INT AUTO_INCREMENT PRIMARY KEY, v INT)").await.unwrap();
    c.query_drop("INSERT INTO tmp (v) VALUES (1), (2)").await.unwrap();
    assert_eq!(c.query_first::<u32, _>("SELECT COUNT(*) FROM tmp").await.unwrap(), Some(2));
    c.query_drop("DROP TEMPORARY TABLE tmp").await.unwrap();

    let t = table("lastid");
    c.query_drop(format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} (v) VALUES (7)")).await.unwrap();
    let id = c.last_insert_id().unwrap();
    for _ in 0..5 {
        c.query_drop("SELECT @@server_id").await.unwrap();
    }
    assert_eq!(c.query_first::<u64, _>("SELECT LAST_INSERT_ID()").await.unwrap(), Some(id));

    c.query_drop("PREPARE s FROM 'SELECT ? * 2'").await.unwrap();
    c.query_drop("SET @v = 21").await.unwrap();
    assert_eq!(c.query_first::<u32, _>("EXECUTE s USING @v").await.unwrap(), Some(42));
    c.query_drop("DEALLOCATE PREPARE s").await.unwrap();
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_found_rows_semantics_are_preserved() {
    let proxy = Proxy::default().await;
    let t = table("found");
    cluster()
        .primary
        .sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY, a INT); INSERT INTO {t} VALUES (1, 5)"));
    for found in [false, true] {
        let mut results = Vec::new();
        for port in [proxy.port(), cluster().primary.port] {
            let o = opts(port, APP_USER, APP_PASSWORD, Some(DATABASE)).client_found_rows(found);
            let mut c = Conn::new(Opts::from(o)).await.unwrap();
            c.query_drop(format!("UPDATE {t} SET a = 5 WHERE id = 1")).await.unwrap();
            results.push(c.affected_rows());
        }
        assert_eq!(results[0], results[1], "CLIENT_FOUND_ROWS={found}");
        assert_eq!(results[0], u64::from(found));
    }
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

/// Parameter types sent once are re-sent to every new backend statement (the client sends
/// `new_params_bound_flag = 0` after its first execute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_types_survive_a_switch_of_backend_connection() {
    let proxy = Proxy::default().await;
    let mut r = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
    let prep = r.command(b"\x16SELECT @@server_id, CONCAT(?, '!')", ReplyKind::Prepare).await;
    let id = u32::from_le_bytes(prep[0][1..5].try_into().unwrap());
    let mut servers = BTreeSet::new();
    for i in 0..40u8 {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 0, 0]); // no cursor, 1 iteration, null bitmap
        if i == 0 {
            p.extend_from_slice(&[1, 0xfd, 0]); // types bound: VAR_STRING
        } else {
            p.push(0); // types not re-sent
        }
        p.extend_from_slice(&[2, b'v', b'0' + i % 10]);
        let reply = r.command(&p, ReplyKind::ResultSets).await;
        let row = &reply[reply.len() - 2];
        assert!(row.windows(3).any(|w| w == [b'v', b'0' + i % 10, b'!']), "execute {i}: {reply:?}");
        // Binary row: 0x00, null bitmap, then @@server_id as a little-endian integer.
        servers.insert(row[2]);
    }
    assert!(servers.len() > 1, "executes ran on more than one connection");
    proxy.shutdown().await;
}

/// 200 concurrent autocommit clients, each server capped at 20 connections: everything is
/// served (waiting for a connection when all are busy), and no server ever sees more than 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_share_twenty_connections_per_server() {
    let cfg = config_text(cluster(), "").replace("address = ", "max_connections = 20\naddress = ");
    let proxy = Proxy::start(&cfg).await;
    let port = proxy.port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut peak = [0usize; 3];
            let count = "SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'load'";
            for _ in 0..600 {
                for (i, n) in cluster().nodes().enumerate() {
                    peak[i] = peak[i].max(n.sql(count).parse().unwrap_or(0));
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let mut clients = Vec::new();
    for i in 0..200u32 {
        clients.push(tokio::spawn(async move {
            let mut c = Conn::new(Opts::from(opts(port, "load", "load", Some(DATABASE)))).await.unwrap();
            c.query_drop("SET SQL_AUTO_IS_NULL = 0").await.unwrap();
            for j in 0..10u32 {
                let v: u32 = c.query_first(format!("SELECT {i} * 100 + {j}")).await.unwrap().unwrap();
                assert_eq!(v, i * 100 + j);
            }
            c.disconnect().await.unwrap();
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    assert!(peak.iter().all(|&p| p <= 20), "backend connections per server peaked at {peak:?}");
    assert!(peak[1] + peak[2] > 0, "the sampler saw the readers in use: {peak:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_route_explains_and_sessions_show_pins() {
    let proxy = Proxy::default().await;
    let (status, v) =
        proxy.admin_get("/route?sql=SELECT%20*%20FROM%20t%20WHERE%20id%20%3D%205&user=app").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["hostgroup"].as_u64(), v["target"].as_str()), (Some(1), Some("reader")));
    assert_eq!(v["reason"], "plain read");
    assert_eq!(v["digest"], "SELECT * FROM t WHERE id = ?");
    let (_, v) = proxy.admin_get("/route?sql=SELECT+1+FROM+t+LOCK+IN+SHARE+MODE").await;
    assert_eq!((v["target"].as_str(), v["hostgroup"].as_u64()), (Some("writer"), Some(0)), "{v}");
    assert_eq!(proxy.admin_get("/route?sql=SELECT+1&user=nobody").await.0, 404);
    assert_eq!(proxy.admin_get("/route").await.0, 400);
    // Session facts: inside a transaction a plain read stays on the pinned writer connection.
    let (_, v) = proxy.admin_get("/route?sql=SELECT+1+FROM+t&in_transaction=1").await;
    assert_eq!(
        (v["target"].as_str(), v["applied"].clone()),
        (Some("writer"), serde_json::json!(["pinned"])),
        "{v}"
    );
    let (_, v) = proxy.admin_get("/route?sql=SELECT+1+FROM+t&autocommit_off=1&read_only=1").await;
    assert_eq!(v["target"], "reader", "a read-only transaction may open on a reader: {v}");
    assert_eq!(proxy.admin_get("/route?sql=SELECT+1&recent_write=maybe").await.0, 400);
    assert_eq!(proxy.admin_get("/live").await.0, 200);

    let mut c = connect(proxy.port()).await;
    c.query_drop("BEGIN").await.unwrap();
    let (_, v) = proxy.admin_get("/sessions").await;
    assert_eq!(v["pinned_by_reason"]["transaction"], 1, "{v}");
    c.query_drop("SET @u = 1").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let (_, v) = proxy.admin_get("/sessions").await;
    assert_eq!(v["pinned_by_reason"]["transaction"], 0, "{v}");
    assert_eq!(v["pinned_by_reason"]["user_variables"], 1, "{v}");
    assert_eq!(v["pin_events_total"]["transaction"], 1, "{v}");
    drop(c);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reads_its_own_writes_from_the_primary() {
    let cfg =
        config_text(cluster(), "[routing]\nread_consistency = \"session\"\nsession_write_window_ms = 300\n");
    let proxy = Proxy::start(&cfg).await;
    let t = table("ryw");
    let mut c = connect(proxy.port()).await;
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await.unwrap();
    for i in 0..20 {
        c.query_drop(format!("INSERT INTO {t} VALUES ({i}, {i})")).await.unwrap();
        let row: Option<u32> = c.query_first(format!("SELECT v FROM {t} WHERE id = {i}")).await.unwrap();
        assert_eq!(row, Some(i), "a read right after the write sees it");
    }
    // Once the monitor has seen the replicas apply the session's writes (however far behind
    // they run), they serve it again.
    cluster().sync_replicas();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ids(&mut c, "SELECT @@server_id", 30).await,
        BTreeSet::from([2, 3]),
        "replicas once they applied the writes"
    );
    let hinted: u32 = {
        c.query_drop(format!("UPDATE {t} SET v = 0 WHERE id = 0")).await.unwrap();
        server_id(&mut c, "SELECT /* rwproxy:consistency=none */ @@server_id").await
    };
    assert_ne!(hinted, PRIMARY, "consistency=none hint reads from a replica");
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

/// A replica that lacks a table or schema (DDL not replicated yet) never answers for the
/// primary: the read is retried on the writer before the client sees anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_missing_on_replicas_is_read_from_the_primary() {
    let proxy = Proxy::start(&config_text(cluster(), "[routing]\nread_consistency = \"none\"\n")).await;
    let db = format!("primary_only_{}", std::process::id());
    cluster().primary.sql(&format!(
        "SET SESSION sql_log_bin = 0; CREATE DATABASE {db}; CREATE TABLE {db}.t (a INT); INSERT INTO {db}.t VALUES (5); \
         CREATE TABLE {DATABASE}.{db} (a INT); INSERT INTO {DATABASE}.{db} VALUES (6)"
    ));
    let mut c = connect(proxy.port()).await;
    for _ in 0..10 {
        assert_eq!(c.query_first::<u32, _>(format!("SELECT a FROM {db}.t")).await.unwrap(), Some(5));
        assert_eq!(c.query_first::<u32, _>(format!("SELECT a FROM {db}")).await.unwrap(), Some(6));
    }
    let mut in_db =
        Conn::new(Opts::from(opts(proxy.port(), APP_USER, APP_PASSWORD, Some(&db)))).await.unwrap();
    for _ in 0..10 {
        assert_eq!(in_db.query_first::<u32, _>("SELECT a FROM t").await.unwrap(), Some(5));
    }
    let e = c.query_drop("SELECT * FROM no_such_table_anywhere").await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Server(ref s) if s.code == 1146), "{e}");
    cluster()
        .primary
        .sql(&format!("SET SESSION sql_log_bin = 0; DROP DATABASE {db}; DROP TABLE {DATABASE}.{db}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_is_also_reader_puts_the_primary_in_the_read_rotation() {
    let cfg = config_text(cluster(), "")
        .replace("reader_hostgroup = 1\n", "reader_hostgroup = 1\nwriter_is_also_reader = true\n");
    let proxy = Proxy::start(&cfg).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // the monitor has assigned roles
    let mut c = connect(proxy.port()).await;
    assert_eq!(ids(&mut c, "SELECT @@server_id", 90).await, BTreeSet::from([1, 2, 3]));
    proxy.shutdown().await;
    let proxy = Proxy::default().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut c = connect(proxy.port()).await;
    assert_eq!(ids(&mut c, "SELECT @@server_id", 60).await, BTreeSet::from([2, 3]), "default: readers only");
    proxy.shutdown().await;
}

/// `mariadb-dump`'s first line is a comment for a newer server; the `SET` after it saves a user
/// variable the session needs at the end of the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dump_header_keeps_its_user_variable_on_the_session() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    c.query_drop(
        "/*M!999999\\- enable the sandbox mode */\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */",
    )
    .await
    .unwrap();
    let mut other = connect(proxy.port()).await;
    for _ in 0..10 {
        other.query_drop("SELECT 1").await.unwrap();
        let v: Option<String> = c.query_first("SELECT @OLD_CHARACTER_SET_CLIENT").await.unwrap();
        assert_eq!(v.as_deref(), Some("utf8mb4"), "the session keeps its variable");
    }
    c.query_drop("/*!40101 SET CHARACTER_SET_CLIENT = @OLD_CHARACTER_SET_CLIENT */").await.unwrap();
    let _ = other.disconnect().await;
    proxy.shutdown().await;
}

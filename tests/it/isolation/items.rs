//! The isolation issue's observed leaks that are not about one kind of leftover state: failed
//! COM_CHANGE_USER, pool keys, prepared statements bound to their schema and sql_mode within
//! one session. (Version-conditional comments: `routing.rs` and `dump.rs`.)

use mysql_async::prelude::*;
use rwproxy::protocol::auth::{NATIVE_PLUGIN, scramble};
use rwproxy::protocol::handshake::parse_auth_switch;

use super::{app_conn, capped_proxy, expect, writer};
use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, Raw};
use crate::support::{cluster, table};

/// COM_CHANGE_USER to `user`, answering the server's (or proxy's) auth switch; the final reply.
async fn change_user(c: &mut Raw, user: &str, password: &str) -> (bool, Vec<u8>) {
    let mut p = vec![0x11];
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    let stale = scramble(&c.greeting.salt, password.as_bytes());
    p.push(stale.len() as u8);
    p.extend_from_slice(&stale);
    p.extend_from_slice(DATABASE.as_bytes());
    p.push(0);
    p.extend_from_slice(&45u16.to_le_bytes());
    p.extend_from_slice(NATIVE_PLUGIN.as_bytes());
    p.push(0);
    c.stream.write_packet(0, &p).await.expect("send change user");
    let first = c.stream.read_packet(Some(1)).await.expect("reply").expect("reply packet");
    let first = first.payload().to_vec();
    if first[0] != 0xfe {
        return (false, first);
    }
    let (_, salt) = parse_auth_switch(&first).expect("auth switch");
    let switched = salt != c.greeting.salt;
    c.stream.write_packet(2, &scramble(&salt, password.as_bytes())).await.expect("send scramble");
    let last = c.stream.read_packet(Some(3)).await.expect("reply").expect("reply packet");
    (switched, last.payload().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_change_user_resets_the_session_like_the_server() {
    let proxy = capped_proxy(1).await;
    let t = table("iso_cu");
    cluster().primary.sql(&format!("CREATE TABLE {t} (v INT)"));
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
        c.query("SET @cu = 1, time_zone = '+04:00'").await;
        c.query("BEGIN").await;
        c.query(&format!("INSERT INTO {t} VALUES (1)")).await;
        let (fresh_salt, reply) = change_user(&mut c, APP_USER, "wrong").await;
        assert_eq!(raw::err_code(&[reply]), Some(1045), "port {port}");
        if port == proxy.port() {
            assert!(fresh_salt, "the proxy answers COM_CHANGE_USER with a fresh scramble");
        }
        let rows = raw::text_rows(
            &c.query("SELECT CONCAT_WS(',', IFNULL(@cu, 'null'), @@time_zone, @@in_transaction, CURRENT_USER(), DATABASE())")
                .await,
            false,
        );
        assert_eq!(rows, vec![vec![Some(format!("null,SYSTEM,0,app@%,{DATABASE}"))]], "port {port}");
        let count = raw::text_rows(&c.query(&format!("SELECT COUNT(*) FROM {t}")).await, false);
        assert_eq!(count, vec![vec![Some("0".into())]], "the transaction was rolled back (port {port})");
        let (_, reply) = change_user(&mut c, APP_USER, APP_PASSWORD).await;
        assert_eq!(reply[0], 0, "a correct change user still works (port {port})");
        c.quit().await;
    }
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_flags_and_collations_share_backend_connections() {
    let proxy = capped_proxy(2).await;
    use rwproxy::protocol::caps;
    let collations: [(u8, &str); 5] = [
        (45, "utf8mb4_general_ci"),
        (224, "utf8mb4_unicode_ci"),
        (8, "latin1_swedish_ci"),
        (33, "utf8mb3_general_ci"),
        (46, "utf8mb4_bin"),
    ];
    let flags = [0, caps::INTERACTIVE, raw::NO_MULTI, caps::INTERACTIVE | raw::NO_MULTI];
    for i in 0..300usize {
        let (id, name) = collations[i % collations.len()];
        let extra = flags[(i / collations.len()) % flags.len()];
        let mut c =
            raw::connect_with(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), extra, id).await.unwrap();
        let rows = raw::text_rows(&c.query(&writer("SELECT @@collation_connection")).await, false);
        assert_eq!(rows, vec![vec![Some(name.to_string())]], "login {i} with collation {id}");
        c.quit().await;
    }
    let (_, v) = proxy.admin_get("/servers").await;
    let writer_connects: u64 = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["role"] == "writer" && s["active"] == true)
        .map(|s| s["pool"]["connects"].as_u64().unwrap())
        .sum();
    assert!(
        writer_connects <= 4,
        "300 logins cycling collations and flags opened {writer_connects} writer connections"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_stays_bound_to_its_schema_and_sql_mode() {
    let proxy = capped_proxy(1).await;
    let n = std::process::id();
    let (a, b) = (format!("iso_pa_{n}"), format!("iso_pb_{n}"));
    cluster().primary.sql(&format!(
        "CREATE DATABASE {a}; CREATE TABLE {a}.t (v VARCHAR(9)); INSERT INTO {a}.t VALUES ('in a'); \
         CREATE DATABASE {b}; CREATE TABLE {b}.t (v VARCHAR(9)); INSERT INTO {b}.t VALUES ('in b')"
    ));
    cluster().sync_replicas();
    let mut results = Vec::new();
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = app_conn(port, Some(&a)).await;
        c.query_drop("SET sql_mode = 'ANSI_QUOTES'").await.unwrap();
        let read = c.prep("SELECT v FROM t").await.unwrap();
        let quoted = c.prep("SELECT \"v\" FROM t").await.unwrap();
        c.query_drop(format!("USE {b}")).await.unwrap();
        c.query_drop("SET sql_mode = ''").await.unwrap();
        let mut seen = Vec::new();
        // Enough executions to run on both replicas' connections and a fresh one.
        for _ in 0..6 {
            let v: Option<String> = c.exec_first(&read, ()).await.unwrap();
            let q: Option<String> = c.exec_first(&quoted, ()).await.unwrap();
            seen.push((v, q));
        }
        // A new statement text (the driver caches statements by text) is prepared now, in b.
        let now: Option<String> = c.exec_first("SELECT \"v\" FROM t -- new", ()).await.unwrap();
        results.push((seen, now));
        let _ = c.disconnect().await;
    }
    let want = vec![(Some("in a".to_string()), Some("in a".to_string())); 6];
    expect("direct", &results[0], &(want.clone(), Some("v".into()))).unwrap();
    expect("through the proxy", &results[1], &results[0]).unwrap();
    cluster().primary.sql(&format!("DROP DATABASE {a}; DROP DATABASE {b}"));
    proxy.shutdown().await;
}

/// A change of session state on a reader (a stored function in a plain SELECT), together with
/// something else that holds the connection for a while (a warning, a read-only transaction),
/// never leaves the session pinned to the replica: its next statements for the writer go there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_on_a_reader_never_pins_the_session_there() {
    let proxy = capped_proxy(1).await;
    let f = format!("{DATABASE}.iso_rd_f_{}", std::process::id());
    let mut direct = crate::support::connect(cluster().primary.port).await;
    direct
        .query_drop(format!("CREATE FUNCTION {f}() RETURNS INT NO SQL BEGIN SET @iso_rd = 1; RETURN 1; END"))
        .await
        .unwrap();
    cluster().sync_replicas();
    let mut c = crate::support::connect(proxy.port()).await;
    for setup in [
        vec![format!("/* rwproxy:reader */ SELECT {f}(), 1/0")],
        vec!["START TRANSACTION READ ONLY".into(), format!("SELECT {f}()"), "COMMIT".into()],
    ] {
        for sql in &setup {
            c.query_drop(sql).await.unwrap();
        }
        // A locking read goes to the writer unless a pin holds the session elsewhere.
        let id: u32 = c.query_first("SELECT @@server_id FOR UPDATE").await.unwrap().unwrap();
        assert_eq!(id, 1, "after {setup:?} the session's writer statements still reach the primary");
    }
    let _ = c.disconnect().await;
    direct.query_drop(format!("DROP FUNCTION {f}")).await.unwrap();
    proxy.shutdown().await;
}

/// A client executing with no parameter types ever bound gets the server's own answer (1210),
/// not a result built from types another session bound to the pooled backend statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_without_types_never_uses_another_sessions_types() {
    let proxy = capped_proxy(1).await;
    let execute_unbound = |stmt: u32| {
        let mut p = vec![0x17];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&[0, 0, 2, b'a', b'b']); // null bitmap, new_params_bound = 0, value
        p
    };
    for port in [cluster().primary.port, proxy.port()] {
        let mut a = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
        let stmt = a.prepare("SELECT ? AS bound").await;
        assert_eq!(raw::err_code(&a.execute(stmt, 0, &[Some("x")]).await), None);
        a.quit().await;
        for i in 0..6 {
            let mut b = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap();
            let stmt = b.prepare("SELECT ? AS bound").await;
            let reply = b.command(&execute_unbound(stmt), rwproxy::protocol::ReplyKind::ResultSets).await;
            assert_eq!(raw::err_code(&reply), Some(1210), "port {port}, session {i}");
            b.quit().await;
        }
    }
    proxy.shutdown().await;
}

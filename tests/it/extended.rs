//! MariaDB's extended capabilities through the proxy as directly: bulk execution
//! (COM_STMT_BULK_EXECUTE) and extended column metadata are announced and relayed; pooled
//! connections never mix clients that asked for extended metadata with clients that did not.
//! The Node connectors' own view of the same is in `node.rs`.

use rwproxy::protocol::{ReplyKind, mariadb_caps};

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, Raw, err_code, text_rows};
use crate::support::{Proxy, cluster, config_text};

const ALL_EXTENSIONS: u32 = 0x3f;

/// One connection per server: every session borrows the connection the previous one used.
fn one_connection_config() -> String {
    config_text(cluster(), "").replace("address = ", "max_connections = 1\naddress = ")
}

async fn mariadb_client(port: u16) -> Raw {
    raw::connect_mariadb(port, Some(DATABASE), 0, ALL_EXTENSIONS).await.expect("login")
}

/// COM_STMT_BULK_EXECUTE of `stmt` (two INT parameters) for these rows.
fn bulk_payload(stmt: u32, rows: &[(i32, i32)]) -> Vec<u8> {
    let mut p = vec![0xfa];
    p.extend_from_slice(&stmt.to_le_bytes());
    p.extend_from_slice(&128u16.to_le_bytes()); // SEND_TYPES_TO_SERVER
    p.extend_from_slice(&[3, 0, 3, 0]); // MYSQL_TYPE_LONG twice
    for (a, b) in rows {
        for v in [a, b] {
            p.push(0); // a value follows
            p.extend_from_slice(&v.to_le_bytes());
        }
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_announces_the_extensions_it_relays() {
    let proxy = Proxy::default().await;
    let direct = mariadb_client(cluster().primary.port).await;
    let through = mariadb_client(proxy.port()).await;
    let relayed = mariadb_caps::STMT_BULK_OPERATIONS | mariadb_caps::EXTENDED_METADATA;
    assert_eq!(direct.mariadb_caps & relayed, relayed, "the server offers both");
    assert_eq!(through.greeting.mariadb_caps, direct.greeting.mariadb_caps & mariadb_caps::SUPPORTED);
    assert_eq!(through.mariadb_caps, relayed);
    direct.quit().await;
    through.quit().await;
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_execute_inserts_every_row_as_directly() {
    let proxy = Proxy::start(&one_connection_config()).await;
    let t = crate::support::table("ext_bulk");
    cluster().primary.sql(&format!("CREATE TABLE {t} (a INT, b INT, port INT)"));
    cluster().sync_replicas();
    let mut replies = Vec::new();
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = mariadb_client(port).await;
        let stmt = c.prepare(&format!("INSERT INTO {t} (a, b, port) VALUES (?, ?, {port})")).await;
        let reply = c.command(&bulk_payload(stmt, &[(1, 10), (2, 20), (3, 30)]), ReplyKind::ResultSets).await;
        assert_eq!(reply[0][0], 0, "port {port}: {:?}", String::from_utf8_lossy(&reply[0]));
        // The same statement again, through the last-prepared id MariaDB clients pipeline with.
        let again = c.command(&bulk_payload(u32::MAX, &[(4, 40)]), ReplyKind::ResultSets).await;
        assert_eq!(again[0][0], 0, "port {port}: {:?}", String::from_utf8_lossy(&again[0]));
        let rows = c.query(&format!("SELECT a, b FROM {t} WHERE port = {port} ORDER BY a")).await;
        let rows = text_rows(&rows, false);
        let want: Vec<Vec<Option<String>>> =
            (1..=4).map(|i| vec![Some(i.to_string()), Some((i * 10).to_string())]).collect();
        assert_eq!(rows, want, "port {port}: the session reads its own bulk rows");
        replies.push((reply, again));
        c.quit().await;
    }
    assert_eq!(replies[0], replies[1], "the OK packets (3 and 1 affected rows)");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_execute_without_the_capability_is_refused_as_by_the_server() {
    let proxy = Proxy::default().await;
    let t = crate::support::table("ext_nobulk");
    cluster().primary.sql(&format!("CREATE TABLE {t} (a INT, b INT)"));
    cluster().sync_replicas();
    let mut replies = Vec::new();
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.expect("login");
        let stmt = c.prepare(&format!("INSERT INTO {t} VALUES (?, ?)")).await;
        let reply = c.command(&bulk_payload(stmt, &[(1, 1)]), ReplyKind::ResultSets).await;
        assert!(err_code(&reply).is_some(), "port {port}: refused");
        assert_eq!(c.query("SELECT 1").await.len(), 5, "port {port}: the session goes on");
        replies.push(reply);
        c.quit().await;
    }
    assert_eq!(replies[0], replies[1]);
    let count = cluster().primary.sql(&format!("SELECT COUNT(*) FROM {t}"));
    assert_eq!(count.trim(), "0", "nothing inserted");
    proxy.shutdown().await;
}

/// Column definitions carry the JSON format and geometry subtypes only for clients that asked;
/// with one connection per server, clients of both kinds alternate on the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_metadata_reaches_only_the_clients_that_asked_for_it() {
    let proxy = Proxy::start(&one_connection_config()).await;
    let t = crate::support::table("ext_meta");
    cluster().primary.sql(&format!(
        "CREATE TABLE {t} (j JSON, p POINT); INSERT INTO {t} VALUES ('{{\"a\": 1}}', POINT(1, 2))"
    ));
    cluster().sync_replicas();
    let sql = format!("SELECT j, p, CONNECTION_ID() AS id FROM {t}");
    let mut want = Vec::new();
    for extended in [true, false] {
        let mut c = if extended {
            mariadb_client(cluster().primary.port).await
        } else {
            raw::connect(cluster().primary.port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap()
        };
        let reply = c.query(&sql).await;
        want.push(reply[1..4].to_vec()); // the column definitions
        c.quit().await;
    }
    assert!(want[0][0].windows(4).any(|w| w == b"json"), "the server marks the JSON column");
    assert!(!want[1][0].windows(4).any(|w| w == b"json"));
    for round in 0..6 {
        let extended = round % 2 == 0;
        let mut c = if extended {
            mariadb_client(proxy.port()).await
        } else {
            raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.unwrap()
        };
        let reply = c.query(&sql).await;
        // Through the proxy the connection id is the session's; the definitions are the same.
        assert_eq!(reply[1..4], want[usize::from(!extended)][..], "round {round}");
        c.quit().await;
    }
    proxy.shutdown().await;
}

/// The proxy answers `SELECT CONNECTION_ID()` itself, in the shape the server gives a client
/// with extended metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_id_answer_carries_extended_metadata_when_asked() {
    let proxy = Proxy::default().await;
    let mut replies = Vec::new();
    for port in [cluster().primary.port, proxy.port()] {
        let mut c = mariadb_client(port).await;
        let reply = c.query("SELECT CONNECTION_ID()").await;
        replies.push(reply[1].clone());
        c.quit().await;
    }
    assert_eq!(replies[0], replies[1]);
    proxy.shutdown().await;
}

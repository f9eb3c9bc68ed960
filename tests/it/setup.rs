//! Connection setup answered by the proxy (issue 12, item 1): what connectors send at every
//! connect (`SET NAMES`, `SET autocommit`, an isolation level, `sql_mode`, a UTC offset)
//! gets the server's exact OK without a backend, and takes effect with the next statement.

use mysql_async::prelude::*;
use rwproxy::protocol::caps;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, Raw};
use crate::support::{Proxy, cluster, connect};

/// What connectors and frameworks send right after the handshake.
const SETUP: [&str; 7] = [
    "SET NAMES utf8mb4",
    "SET autocommit=0",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
    "SET time_zone = '+03:00', SQL_AUTO_IS_NULL = 0",
    "SET autocommit=1",
    "SET NAMES latin1 COLLATE latin1_bin",
];

/// The state the setup left, as the session sees it.
const CHECK: &str = "SELECT @@autocommit, @@character_set_client, @@collation_connection, @@tx_isolation, \
                     @@sql_mode, @@time_zone, @@sql_auto_is_null, ROW_COUNT()";

/// A reply with the entries of each OK packet's session-state block sorted: servers send
/// tracked variables in their hash order, which differs between server instances.
fn normalised(reply: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    reply
        .into_iter()
        .map(|p| {
            // Header, affected rows, insert id, status, warnings (all one byte here), info "".
            if !p.starts_with(&[0])
                || p.len() < 9
                || p[3..5] != [0x02, 0x40][..] && p[3..5] != [0x00, 0x40][..]
            {
                return p;
            }
            let (head, state) = (&p[..8], &p[8..]);
            let mut entries = Vec::new();
            let mut rest = &state[1..]; // the block's length (under 251 here)
            while let [kind, len, tail @ ..] = rest {
                let (entry, next) = tail.split_at(usize::from(*len));
                entries.push([&[*kind, *len][..], entry].concat());
                rest = next;
            }
            entries.sort();
            [head.to_vec(), vec![state[0]], entries.concat()].concat()
        })
        .collect()
}

async fn local_answers(proxy: &Proxy) -> u64 {
    let body = proxy.metrics_text().await;
    let line = body.lines().find(|l| l.starts_with("rwproxy_local_answers_total ")).expect("metric");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_statements_get_the_servers_bytes_without_a_backend() {
    let proxy = Proxy::default().await;
    let modes = [0, caps::SESSION_TRACK, caps::DEPRECATE_EOF | caps::SESSION_TRACK];
    for extra in modes {
        let connect = |port| raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), extra);
        let (mut p, mut d): (Raw, Raw) =
            (connect(proxy.port()).await.unwrap(), connect(cluster().primary.port).await.unwrap());
        let before = local_answers(&proxy).await;
        for sql in SETUP {
            let (via_proxy, direct) = (normalised(p.query(sql).await), normalised(d.query(sql).await));
            assert_eq!(via_proxy, direct, "reply to {sql:?} (capabilities +{extra:#x})");
        }
        assert_eq!(local_answers(&proxy).await - before, SETUP.len() as u64, "all answered by the proxy");
        let (via_proxy, direct) = (p.query(CHECK).await, d.query(CHECK).await);
        let deprecate = extra & caps::DEPRECATE_EOF != 0;
        assert_eq!(
            raw::text_rows(&via_proxy, deprecate),
            raw::text_rows(&direct, deprecate),
            "state after setup"
        );
        // A value the proxy cannot vouch for goes to the server, which refuses it.
        for sql in ["SET NAMES bogus", "SET time_zone = 'Nowhere/Atlantis'", "SET autocommit = 7"] {
            let (via_proxy, direct) = (p.query(sql).await, d.query(sql).await);
            assert_eq!(raw::err_code(&via_proxy), raw::err_code(&direct), "{sql}");
            assert!(raw::err_code(&via_proxy).is_some(), "{sql} is refused");
        }
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_setting_names_stays_on_the_readers() {
    let proxy = Proxy::default().await;
    let mut c = connect(proxy.port()).await;
    c.query_drop("SET NAMES utf8mb4").await.unwrap();
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await.unwrap();
    let mut servers = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let row: (u32, String) =
            c.query_first("SELECT @@server_id, @@character_set_client").await.unwrap().unwrap();
        assert_eq!(row.1, "utf8mb4");
        servers.insert(row.0);
    }
    assert!(!servers.contains(&1), "no read went to the primary: {servers:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_schema_is_refused_at_connect_and_a_known_one_is_remembered() {
    let proxy = Proxy::default().await;
    let err = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some("no_such_schema"), 0).await.err();
    assert_eq!(err.as_deref().and_then(|e| e.get(1..3)), Some(&1049u16.to_le_bytes()[..]), "1049 at connect");
    // A schema the proxy saw dropped is refused again at once (one dropped behind its back
    // is trusted for `SCHEMA_TTL` more, like a session that had it selected).
    let db = format!("setup_gone_{}", std::process::id());
    let mut admin = connect(proxy.port()).await;
    admin.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    cluster().sync_replicas();
    let mut ok = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(&db), 0)
        .await
        .expect("login to the new schema");
    assert!(raw::err_code(&ok.query("SELECT 1").await).is_none());
    admin.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
    cluster().sync_replicas();
    let again = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(&db), 0).await.err();
    assert_eq!(
        again.as_deref().and_then(|e| e.get(1..3)),
        Some(&1049u16.to_le_bytes()[..]),
        "refused after the drop"
    );
    proxy.shutdown().await;
}

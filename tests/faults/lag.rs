//! Read-your-writes with both replicas applying 1 s behind the primary (`MASTER_DELAY = 1`),
//! in the default config: every write's position is learned however its reply ends, and
//! a read on any later connection sees it.

use mysql_async::prelude::*;

use crate::support::cluster::DATABASE;
use crate::support::raw::{self, Raw};
use crate::support::{Proxy, cluster, connect, table};
use crate::{fault_config, serial};
use rwproxy::protocol::caps;

/// Replicas 1 s behind while it lives; back to the suite's delay when dropped.
pub struct Lagging;

impl Lagging {
    pub fn one_second() -> Lagging {
        cluster().set_replica_delay(1);
        Lagging
    }
}

impl Drop for Lagging {
    fn drop(&mut self) {
        cluster().set_replica_delay(crate::support::cluster::replica_delay());
    }
}

async fn raw_client(port: u16, deprecate_eof: bool) -> Raw {
    let extra = if deprecate_eof { caps::DEPRECATE_EOF } else { 0 };
    raw::connect(port, "app", "app", Some(DATABASE), extra).await.expect("login")
}

/// Counts matching rows on a new connection (what a request after a redirect does).
/// Reads on another session, logged in before the write: its read goes out the moment the
/// writer's reply arrives, so a proxy that learned the write's position only after relaying
/// the reply (a round trip later) would send it to a lagging replica.
async fn count_elsewhere(other: &mut mysql_async::Conn, t: &str, cond: &str) -> u32 {
    other.query_first(format!("SELECT COUNT(*) FROM {t} WHERE {cond}")).await.unwrap().unwrap()
}

/// Writes whose reply is a result set (`… RETURNING`, `CALL`, a multi-statement ending in a
/// `SELECT`), by text and by prepared statement, and writes committed by `COMMIT` and
/// `XA COMMIT`, from clients with and without `CLIENT_DEPRECATE_EOF`: the next read, on a
/// connection opened before (its read leaves as soon as the reply arrives), sees each of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_returning_rows_are_seen_on_the_next_connection() {
    let _serial = serial().await;
    let t = table("lag_returning");
    cluster().primary.sql(&format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v INT);\nDELIMITER //\n\
         CREATE PROCEDURE {t}_add(i INT) BEGIN INSERT INTO {t} VALUES (i, 0); SELECT i; END //"
    ));
    cluster().sync_replicas();
    let _lag = Lagging::one_second();
    let proxy = Proxy::start(&fault_config("interval_ms = 100\ntimeout_ms = 500\n", "")).await;
    let port = proxy.port();
    let mut stale = Vec::new();
    for deprecate_eof in [false, true] {
        let base = if deprecate_eof { 100 } else { 0 };
        let steps = [
            ("INSERT … RETURNING", format!("INSERT INTO {t} VALUES ({}, 1) RETURNING id", base + 1), 1, 1),
            ("REPLACE … RETURNING", format!("REPLACE INTO {t} VALUES ({}, 2) RETURNING v", base + 1), 1, 1),
            ("DELETE … RETURNING", format!("DELETE FROM {t} WHERE id = {} RETURNING id", base + 1), 1, 0),
            ("CALL", format!("CALL {t}_add({})", base + 2), 2, 1),
            (
                "multi-statement",
                format!("SELECT 1; INSERT INTO {t} VALUES ({}, 3) RETURNING id", base + 3),
                3,
                1,
            ),
            ("prepared", format!("INSERT INTO {t} VALUES ({}, 4) RETURNING id", base + 4), 4, 1),
            ("COMMIT", format!("BEGIN;; INSERT INTO {t} VALUES ({}, 5);; COMMIT", base + 5), 5, 1),
            (
                "XA COMMIT",
                format!(
                    "XA START 'x{base}';; INSERT INTO {t} VALUES ({}, 6);; XA END 'x{base}';; \
                     XA PREPARE 'x{base}';; XA COMMIT 'x{base}'",
                    base + 6
                ),
                6,
                1,
            ),
        ];
        let mut c = raw_client(port, deprecate_eof).await;
        let mut other = connect(port).await;
        for (what, sql, id, want) in steps {
            if what == "prepared" {
                let stmt = c.prepare(&sql).await;
                c.execute(stmt, 0, &[]).await;
            } else {
                for one in sql.split(";; ") {
                    let reply = c.query(one).await;
                    assert_eq!(raw::err_code(&reply), None, "{one}");
                }
            }
            let cond = if what.starts_with("REPLACE") { " AND v = 2" } else { "" };
            let got = count_elsewhere(&mut other, &t, &format!("id = {}{cond}", base + id)).await;
            if got != want {
                stale.push(format!("{what} (DEPRECATE_EOF {deprecate_eof}): {got} rows, want {want}"));
            }
        }
        c.quit().await;
    }
    let (_, status) = proxy.admin_get("/status").await;
    eprintln!("writes returning rows, replicas 1 s behind: {}", status["read_your_writes"]);
    assert!(stale.is_empty(), "stale reads: {stale:#?}");
    proxy.shutdown().await;
    cluster().primary.sql(&format!("DROP PROCEDURE {t}_add; DROP TABLE {t}"));
}

/// Two proxy instances on one cluster, replicas 1 s behind: a write through one, then a read
/// on a new connection through the other. In `global` mode the second instance knows nothing
/// of the write (the read is stale: the test can tell); in `universal` mode it fetches the
/// primary's position first and sees it; in `global` mode a client that carries the write's
/// GTID (session tracking of `last_gtid`, as it would ask the server) sees it through a
/// `/* rwproxy:min_gtid=… */` hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_cross_instances_by_universal_mode_and_by_hint() {
    let _serial = serial().await;
    let t = table("lag_cross");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT PRIMARY KEY)"));
    cluster().sync_replicas();
    let _lag = Lagging::one_second();
    let monitor = "interval_ms = 100\ntimeout_ms = 500\n";
    let mut seen = Vec::new();
    for (i, mode) in ["global", "universal", "hint"].into_iter().enumerate() {
        let routing =
            format!("[routing]\nread_consistency = \"{}\"\n", if mode == "hint" { "global" } else { mode });
        let (a, b) = (
            Proxy::start(&fault_config(monitor, &routing)).await,
            Proxy::start(&fault_config(monitor, &routing)).await,
        );
        let tracking = caps::DEPRECATE_EOF | caps::SESSION_TRACK;
        let mut w = raw::connect(a.port(), "app", "app", Some(DATABASE), tracking).await.expect("login");
        w.query("SET session_track_system_variables = 'last_gtid'").await;
        let ok = w.query(&format!("INSERT INTO {t} VALUES ({i})")).await;
        let gtid = rwproxy::protocol::session_track::rewrite_ok(&ok[0], true, true, Default::default())
            .and_then(|r| r.last_gtid)
            .expect("the write's GTID comes back to a client tracking last_gtid");
        w.quit().await;
        let hint = if mode == "hint" { format!("/* rwproxy:min_gtid={gtid} */ ") } else { String::new() };
        let mut r = connect(b.port()).await;
        let n: u32 =
            r.query_first(format!("SELECT {hint}COUNT(*) FROM {t} WHERE id = {i}")).await.unwrap().unwrap();
        drop(r);
        let (_, status) = b.admin_get("/status").await;
        eprintln!("{mode}: the other instance read {n} row(s); {}", status["primary_position"]);
        seen.push((mode, n));
        a.shutdown().await;
        b.shutdown().await;
    }
    assert_eq!(seen, [("global", 0), ("universal", 1), ("hint", 1)]);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
}

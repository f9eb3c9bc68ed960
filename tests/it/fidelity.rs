//! Results through the proxy equal results straight from the primary.

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use rwproxy::protocol::{ReplyKind, caps, status};

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw::{self, Raw, last_status};
use crate::support::{Proxy, cluster, pair, table};

async fn raw_pair(proxy: &Proxy, caps: u32) -> (Raw, Raw) {
    let p = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, Some(DATABASE), caps).await.unwrap();
    let d = raw::connect(cluster().primary.port, APP_USER, APP_PASSWORD, Some(DATABASE), caps).await.unwrap();
    (p, d)
}

/// Runs each statement on both raw connections and asserts the replies are byte-identical.
async fn same_bytes(p: &mut Raw, d: &mut Raw, sql: &str) -> Vec<Vec<u8>> {
    let via_proxy = p.query(sql).await;
    let direct = d.query(sql).await;
    assert_eq!(via_proxy, direct, "reply to {sql:?} differs");
    via_proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_flags_inside_and_after_a_transaction() {
    let proxy = Proxy::default().await;
    let modes = [0, caps::DEPRECATE_EOF, caps::SESSION_TRACK, caps::DEPRECATE_EOF | caps::SESSION_TRACK];
    for extra in modes {
        let (mut p, mut d) = raw_pair(&proxy, extra).await;
        let deprecate = extra & caps::DEPRECATE_EOF != 0;
        same_bytes(&mut p, &mut d, "CREATE TEMPORARY TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .await;
        let begin = same_bytes(&mut p, &mut d, "BEGIN").await;
        assert_ne!(last_status(&begin, deprecate) & status::IN_TRANS, 0);
        let insert = same_bytes(&mut p, &mut d, "INSERT INTO t (v) VALUES (10), (20)").await;
        assert_ne!(last_status(&insert, deprecate) & status::IN_TRANS, 0);
        let select = same_bytes(&mut p, &mut d, "SELECT id, v FROM t ORDER BY id").await;
        assert_ne!(last_status(&select, deprecate) & status::IN_TRANS, 0);
        let commit = same_bytes(&mut p, &mut d, "COMMIT").await;
        assert_eq!(last_status(&commit, deprecate) & status::IN_TRANS, 0);
        assert_ne!(last_status(&commit, deprecate) & status::AUTOCOMMIT, 0);
        let after = same_bytes(&mut p, &mut d, "SELECT 1").await;
        assert_eq!(last_status(&after, deprecate) & status::IN_TRANS, 0);
        same_bytes(&mut p, &mut d, "SET autocommit=0").await;
        let off = same_bytes(&mut p, &mut d, "SELECT 2").await;
        assert_eq!(last_status(&off, deprecate) & status::AUTOCOMMIT, 0);
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_of_division_by_zero() {
    let proxy = Proxy::default().await;
    let (mut p, mut d) = raw_pair(&proxy, 0).await;
    let reply = same_bytes(&mut p, &mut d, "SELECT 1/0").await;
    let eof = reply.last().unwrap();
    assert_eq!(u16::from_le_bytes([eof[1], eof[2]]), 1, "one warning in the EOF packet");
    same_bytes(&mut p, &mut d, "SHOW WARNINGS").await;
    let (mut pc, mut dc) = pair(&proxy).await;
    for c in [&mut pc, &mut dc] {
        let r: Vec<Row> = c.query("SELECT 1/0").await.unwrap();
        assert_eq!(r[0].get::<Option<String>, _>(0), Some(None));
        assert_eq!(c.get_warnings(), 1);
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(w, vec![("Warning".into(), 1365, "Division by 0".into())]);
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_metadata_of_varbinary_decimal_datetime() {
    let proxy = Proxy::default().await;
    let t = table("meta");
    let (mut pc, mut dc) = pair(&proxy).await;
    dc.query_drop(format!(
        "CREATE TABLE {t} (vb VARBINARY(16), d DECIMAL(10,3), dt DATETIME(6)); \
         INSERT INTO {t} VALUES (x'00ff10', 1234567.891, '2026-11-27 12:34:56.123456')"
    ))
    .await
    .unwrap();
    cluster().sync_replicas();
    for extra in [0, caps::DEPRECATE_EOF] {
        let (mut p, mut d) = raw_pair(&proxy, extra).await;
        same_bytes(&mut p, &mut d, &format!("SELECT vb, d, dt FROM {t}")).await;
    }
    let sql = format!("SELECT vb, d, dt FROM {t}");
    let cols = |c: &mysql_async::Column| {
        (
            c.column_type(),
            c.flags(),
            c.decimals(),
            c.column_length(),
            c.character_set(),
            c.name_str().into_owned(),
        )
    };
    let mut rp = pc.query_iter(&sql).await.unwrap();
    let mp: Vec<_> = rp.columns().unwrap().iter().map(cols).collect();
    let rows_p: Vec<Row> = rp.collect().await.unwrap();
    let mut rd = dc.query_iter(&sql).await.unwrap();
    let md: Vec<_> = rd.columns().unwrap().iter().map(cols).collect();
    let rows_d: Vec<Row> = rd.collect().await.unwrap();
    assert_eq!(mp, md);
    assert_eq!(mp[1].2, 3, "DECIMAL(10,3) keeps 3 decimals");
    assert_eq!(mp[2].2, 6, "DATETIME(6) keeps 6 decimals");
    assert_eq!(
        rows_p.iter().map(|r| r.clone().unwrap()).collect::<Vec<Vec<Value>>>(),
        rows_d.iter().map(|r| r.clone().unwrap()).collect::<Vec<Vec<Value>>>()
    );
    dc.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_result_sets_then_a_normal_query() {
    let proxy = Proxy::default().await;
    let (mut p, mut d) = raw_pair(&proxy, 0).await;
    let both = same_bytes(&mut p, &mut d, "SELECT 1; SELECT 2").await;
    assert!(both.len() > 6, "two result sets in one reply");
    same_bytes(&mut p, &mut d, "SELECT 3").await;
    let (mut pc, _) = pair(&proxy).await;
    let mut r = pc.query_iter("SELECT 1; SELECT 2").await.unwrap();
    let first: Vec<u8> = r.collect().await.unwrap();
    let second: Vec<u8> = r.collect().await.unwrap();
    assert_eq!((first, second), (vec![1], vec![2]));
    drop(r);
    assert_eq!(pc.query_first::<u8, _>("SELECT 3").await.unwrap(), Some(3));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_then_a_working_query() {
    let proxy = Proxy::default().await;
    let (mut p, mut d) = raw_pair(&proxy, 0).await;
    let err = same_bytes(&mut p, &mut d, "SELECT * FROM no_such_table").await;
    assert_eq!(err[0][0], 0xff);
    same_bytes(&mut p, &mut d, "SELECT 'still fine'").await;
    let (mut pc, _) = pair(&proxy).await;
    let e = pc.query_drop("SELEC 1").await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Server(ref s) if s.code == 1064), "{e}");
    assert_eq!(pc.query_first::<u8, _>("SELECT 1").await.unwrap(), Some(1));
    proxy.shutdown().await;
}

async fn checksum(c: &mut Conn, sql: &str) -> (u64, u64) {
    let mut r = c.query_iter(sql).await.unwrap();
    let (mut n, mut sum) = (0u64, 0u64);
    r.for_each(|row: Row| {
        let (a, b): (u64, String) = mysql_async::from_row(row);
        n += 1;
        sum = sum.wrapping_mul(31).wrapping_add(a ^ b.bytes().map(u64::from).sum::<u64>());
    })
    .await
    .unwrap();
    (n, sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_rows() {
    let proxy = Proxy::default().await;
    let (mut pc, mut dc) = pair(&proxy).await;
    let sql = "SELECT seq, MD5(seq) FROM seq_1_to_100000";
    let via_proxy = checksum(&mut pc, sql).await;
    assert_eq!(via_proxy.0, 100_000);
    assert_eq!(via_proxy, checksum(&mut dc, sql).await);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longblob_over_16_mib_round_trip() {
    let proxy = Proxy::default().await;
    let t = table("blob");
    let (mut pc, mut dc) = pair(&proxy).await;
    dc.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")).await.unwrap();
    let blob: Vec<u8> = (0..(17 << 20) + 123).map(|i: u32| (i % 251) as u8).collect();
    // Client → proxy → backend: one COM_STMT_EXECUTE spanning two frames.
    pc.exec_drop(format!("INSERT INTO {t} VALUES (1, ?)"), (blob.clone(),)).await.unwrap();
    // Text protocol over COM_QUERY as well: the statement itself exceeds 16 MiB.
    let hex: String = blob[..(9 << 20)].iter().map(|b| format!("{b:02x}")).collect();
    pc.query_drop(format!("INSERT INTO {t} VALUES (2, x'{hex}')")).await.unwrap();
    // Reads go to replicas; read-your-writes is not this test's subject.
    cluster().sync_replicas();
    for c in [&mut pc, &mut dc] {
        let text: Vec<u8> = c.query_first(format!("SELECT b FROM {t} WHERE id = 1")).await.unwrap().unwrap();
        assert!(text == blob, "text protocol blob differs (len {})", text.len());
        let bin: Vec<u8> =
            c.exec_first(format!("SELECT b FROM {t} WHERE id = ?"), (1,)).await.unwrap().unwrap();
        assert!(bin == blob, "binary protocol blob differs");
        let two: Vec<u8> = c.query_first(format!("SELECT b FROM {t} WHERE id = 2")).await.unwrap().unwrap();
        assert!(two[..] == blob[..(9 << 20)]);
    }
    dc.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_with_parameters() {
    let proxy = Proxy::default().await;
    let (mut pc, mut dc) = pair(&proxy).await;
    let mut results = Vec::new();
    for c in [&mut pc, &mut dc] {
        let stmt = c.prep("SELECT ? + 1, CONCAT(?, '!'), ? IS NULL, CAST(? AS DECIMAL(6,2))").await.unwrap();
        assert_eq!(stmt.num_params(), 4);
        let mut rows = Vec::new();
        for i in 0..3i64 {
            let r: Option<(i64, String, bool, String)> =
                c.exec_first(&stmt, (i, format!("v{i}"), Value::NULL, 1.5 + i as f64)).await.unwrap();
            rows.push(r.unwrap());
        }
        c.close(stmt).await.unwrap();
        results.push(rows);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0][2], (3, "v2!".into(), true, "3.50".into()));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_to_an_unknown_user_fails_and_a_known_one_works() {
    let proxy = Proxy::default().await;
    let (mut pc, mut dc) = pair(&proxy).await;
    for c in [&mut pc, &mut dc] {
        let opts = mysql_async::ChangeUserOpts::default()
            .with_user(Some("nobody".into()))
            .with_pass(Some("x".into()));
        let e = c.change_user(opts).await.unwrap_err();
        assert!(matches!(e, mysql_async::Error::Server(ref s) if s.code == 1045), "{e}");
    }
    let mut pc = crate::support::connect(proxy.port()).await;
    pc.query_drop("SET @before = 1").await.unwrap();
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("other".into()))
        .with_pass(Some("other".into()))
        .with_db_name(Some(DATABASE.into()));
    pc.change_user(opts).await.unwrap();
    let who: Option<(String, Option<u8>, String)> =
        pc.query_first("SELECT CURRENT_USER(), @before, DATABASE()").await.unwrap();
    assert_eq!(who, Some(("other@%".into(), None, DATABASE.into())));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_clears_a_user_variable() {
    let proxy = Proxy::default().await;
    let (mut pc, mut dc) = pair(&proxy).await;
    for c in [&mut pc, &mut dc] {
        c.query_drop("SET @x = 42").await.unwrap();
        assert_eq!(c.query_first::<u8, _>("SELECT @x").await.unwrap(), Some(42));
        assert!(c.reset().await.unwrap(), "COM_RESET_CONNECTION was used");
        assert_eq!(c.query_first::<Option<u8>, _>("SELECT @x").await.unwrap(), Some(None));
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_announces_the_primary_version() {
    let proxy = Proxy::default().await;
    let g = raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.unwrap().greeting;
    let d = raw::connect(cluster().primary.port, APP_USER, APP_PASSWORD, None, 0).await.unwrap().greeting;
    assert_eq!(g.server_version, d.server_version);
    assert_ne!(
        g.salt,
        raw::connect(proxy.port(), APP_USER, APP_PASSWORD, None, 0).await.unwrap().greeting.salt
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_list_statistics_and_set_option() {
    let proxy = Proxy::default().await;
    let t = table("fl");
    cluster().primary.sql(&format!("CREATE TABLE {t} (a INT, b VARCHAR(10))"));
    let (mut p, mut d) = raw_pair(&proxy, 0).await;
    let name = t.split('.').nth(1).unwrap();
    let mut fl = vec![0x04];
    fl.extend_from_slice(name.as_bytes());
    fl.push(0);
    assert_eq!(p.command(&fl, ReplyKind::FieldList).await, d.command(&fl, ReplyKind::FieldList).await);
    let stats = p.command(&[0x09], ReplyKind::Single).await;
    assert!(String::from_utf8_lossy(&stats[0]).starts_with("Uptime:"), "{stats:?}");
    let off = [0x1b, 0x01, 0x00];
    assert_eq!(p.command(&off, ReplyKind::Single).await, d.command(&off, ReplyKind::Single).await);
    let multi = p.query("SELECT 1; SELECT 2").await;
    assert_eq!(multi, d.query("SELECT 1; SELECT 2").await, "multi-statements now off: same error");
    assert_eq!(multi[0][0], 0xff);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

fn stmt_packet(code: u8, stmt_id: u32, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![code];
    p.extend_from_slice(&stmt_id.to_le_bytes());
    p.extend_from_slice(rest);
    p
}

/// COM_STMT_EXECUTE with two VAR_STRING parameters; the first was sent as long data.
fn execute(stmt_id: u32, cursor: bool, second: &[u8]) -> Vec<u8> {
    let mut rest = vec![u8::from(cursor), 1, 0, 0, 0, 0, 1, 0xfd, 0, 0xfd, 0];
    rest.push(second.len() as u8);
    rest.extend_from_slice(second);
    stmt_packet(0x17, stmt_id, &rest)
}

/// Long data, execute, cursor fetch, reset and close, compared byte for byte in both EOF modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_long_data_cursor_fetch_reset_and_close() {
    let proxy = Proxy::default().await;
    for extra in [0, caps::DEPRECATE_EOF] {
        let (mut p, mut d) = raw_pair(&proxy, extra).await;
        let run = async |r: &mut Raw| {
            let sql = b"\x16SELECT seq, CONCAT(?, ?) FROM seq_1_to_5";
            let prep = r.command(sql, ReplyKind::Prepare).await;
            let id = u32::from_le_bytes(prep[0][1..5].try_into().unwrap());
            let mut out = vec![prep[1..].to_vec()];
            let long = stmt_packet(0x18, id, &[0, 0, b'l', b'o', b'n', b'g']);
            r.stream.write_packet(0, &long).await.unwrap();
            out.push(r.command(&execute(id, false, b"-x"), ReplyKind::ResultSets).await);
            r.stream.write_packet(0, &long).await.unwrap();
            out.push(r.command(&execute(id, true, b"-c"), ReplyKind::ResultSets).await);
            out.push(r.command(&stmt_packet(0x1c, id, &2u32.to_le_bytes()), ReplyKind::Rows).await);
            out.push(r.command(&stmt_packet(0x1c, id, &10u32.to_le_bytes()), ReplyKind::Rows).await);
            out.push(r.command(&stmt_packet(0x1a, id, &[]), ReplyKind::Single).await);
            r.stream.write_packet(0, &stmt_packet(0x19, id, &[])).await.unwrap();
            out.push(r.command(&stmt_packet(0x1a, id, &[]), ReplyKind::Single).await);
            out.push(r.query("SELECT 'after'").await);
            out
        };
        let via_proxy = tokio::time::timeout(std::time::Duration::from_secs(30), run(&mut p)).await.unwrap();
        let direct = run(&mut d).await;
        // Statement ids are per backend connection; error texts name them.
        let id_free = |v: Vec<Vec<Vec<u8>>>| -> Vec<Vec<String>> {
            v.iter()
                .map(|reply| {
                    reply
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).replace(|c: char| c.is_ascii_digit(), "#"))
                        .collect()
                })
                .collect()
        };
        assert_eq!(via_proxy[1..3], direct[1..3], "execute replies, deprecate_eof={}", extra != 0);
        assert_eq!(id_free(via_proxy.clone()), id_free(direct), "deprecate_eof={}", extra != 0);
        let cursor_status = rwproxy::protocol::reply::ok_status(via_proxy[2].last().unwrap())
            .filter(|_| extra != 0)
            .unwrap_or_else(|| {
                u16::from_le_bytes([via_proxy[2].last().unwrap()[3], via_proxy[2].last().unwrap()[4]])
            });
        assert_ne!(cursor_status & status::CURSOR_EXISTS, 0, "a cursor was opened");
        assert_eq!(via_proxy[3].len(), 3, "FETCH 2 rows: two rows and a terminator");
        assert!(via_proxy[1].iter().any(|row| row.windows(6).any(|w| w == b"long-x")), "long data was used");
        assert_eq!(via_proxy[5], vec![vec![0, 0, 0, 2, 0, 0, 0]], "reset OK");
        assert_eq!(via_proxy[6][0][0], 0xff, "reset after close: unknown statement");
    }
    proxy.shutdown().await;
}

/// MariaDB connectors pipeline PREPARE and EXECUTE, naming the statement 0xFFFFFFFF
/// ("the one just prepared") before they know its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_prepare_and_execute_of_the_last_statement() {
    let proxy = Proxy::default().await;
    let (mut p, mut d) = raw_pair(&proxy, 0).await;
    let run = async |r: &mut Raw| {
        r.stream.write_packet(0, b"\x16SELECT ? * 2").await.unwrap();
        let execute =
            [&[0x17][..], &u32::MAX.to_le_bytes(), &[0, 1, 0, 0, 0, 0, 1, 0x08, 0], &42u64.to_le_bytes()]
                .concat();
        r.stream.write_packet(0, &execute).await.unwrap();
        let prepared = r.read_reply(ReplyKind::Prepare, false).await;
        let executed = r.read_reply(ReplyKind::ResultSets, true).await;
        (prepared[1..].to_vec(), executed)
    };
    let (via_proxy, direct) = (run(&mut p).await, run(&mut d).await);
    assert_eq!(via_proxy, direct);
    assert!(via_proxy.1.iter().any(|row| row.ends_with(&84u64.to_le_bytes())), "{:?}", via_proxy.1);
    proxy.shutdown().await;
}

/// Several OK packets of one multi-statement reply often arrive in one read; each is rewritten
/// (the backend tracks session state for the proxy). The reply must complete every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_writes_always_complete() {
    let proxy = Proxy::default().await;
    let t = table("multi_ok");
    let mut c = crate::support::connect(proxy.port()).await;
    c.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, n INT); INSERT INTO {t} VALUES (1, 0), (2, 0)"
    ))
    .await
    .unwrap();
    for i in 0..50 {
        let sql = format!(
            "UPDATE {t} SET n = n + 1 WHERE id = 1; UPDATE {t} SET n = n + 1 WHERE id = 2; UPDATE {t} SET n = n + 1"
        );
        let done = tokio::time::timeout(std::time::Duration::from_secs(20), c.query_drop(sql)).await;
        assert!(matches!(done, Ok(Ok(()))), "attempt {i}: {done:?}");
    }
    let proc_and_set =
        format!("CREATE PROCEDURE {t}_p() SELECT 1; SET @multi_done = 1; DROP PROCEDURE {t}_p");
    let done = tokio::time::timeout(std::time::Duration::from_secs(20), c.query_drop(proc_and_set)).await;
    assert!(matches!(done, Ok(Ok(()))), "CREATE PROCEDURE …; SET …: {done:?}");
    let n: u32 = c.query_first(format!("SELECT SUM(n) FROM {t}")).await.unwrap().unwrap();
    assert_eq!(n, 200, "every statement ran once");
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    proxy.shutdown().await;
}

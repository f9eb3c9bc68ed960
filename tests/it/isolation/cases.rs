//! One case per kind of backend-connection state in rwproxy's state model: an earlier session
//! sets it, later sessions must not see it.

use mysql_async::prelude::*;

pub use super::fixture::{CHARSET, Fixture, Left, VARS};
use super::{expect, fails, one, reader, try_conn, writer};
use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::raw;
use crate::support::{cluster, opts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Schema,
    SessionVariables,
    CharacterSet,
    MultiStatements,
    LastInsertId,
    PreparedStatements,
    User,
    ClientFlags,
    Transaction,
    AutocommitOff,
    NextTransaction,
    UserVariables,
    TemporaryTables,
    NamedLocks,
    TableLocks,
    GlobalReadLock,
    Handlers,
    SqlPrepared,
    UntrackedState,
    LongData,
    Cursors,
    Diagnostics,
    /// Warnings and errors of commands other than queries: `COM_INIT_DB`, `COM_STMT_PREPARE`.
    DiagnosticsByCommand,
    FoundRows,
    RowCount,
    StoredCode,
    IdleTimeout,
    Xa,
}

type R = Result<(), String>;

fn q(e: mysql_async::Error) -> String {
    e.to_string()
}

impl Case {
    pub const ALL: [Case; 28] = [
        Case::Schema,
        Case::SessionVariables,
        Case::CharacterSet,
        Case::MultiStatements,
        Case::LastInsertId,
        Case::PreparedStatements,
        Case::User,
        Case::ClientFlags,
        Case::Transaction,
        Case::AutocommitOff,
        Case::NextTransaction,
        Case::UserVariables,
        Case::TemporaryTables,
        Case::NamedLocks,
        Case::TableLocks,
        Case::GlobalReadLock,
        Case::Handlers,
        Case::SqlPrepared,
        Case::UntrackedState,
        Case::LongData,
        Case::Cursors,
        Case::Diagnostics,
        Case::DiagnosticsByCommand,
        Case::FoundRows,
        Case::RowCount,
        Case::StoredCode,
        Case::IdleTimeout,
        Case::Xa,
    ];

    /// The state kind's name in rwproxy's state model (`docs/architecture.md`).
    pub fn kind(self) -> &'static str {
        match self {
            Case::Schema => "schema",
            Case::SessionVariables => "session_variables",
            Case::CharacterSet => "character_set",
            Case::MultiStatements => "multi_statements",
            Case::LastInsertId => "last_insert_id",
            Case::PreparedStatements => "prepared_statements",
            Case::User => "user",
            Case::ClientFlags => "client_flags",
            Case::Transaction => "transaction",
            Case::AutocommitOff => "autocommit_off",
            Case::NextTransaction => "next_transaction",
            Case::UserVariables => "user_variables",
            Case::TemporaryTables => "temporary_tables",
            Case::NamedLocks => "named_locks",
            Case::TableLocks => "lock_tables",
            Case::GlobalReadLock => "global_read_lock",
            Case::Handlers => "handlers",
            Case::SqlPrepared => "prepared_sql",
            Case::UntrackedState => "untracked_state",
            Case::LongData => "long_data",
            Case::Cursors => "cursor",
            Case::Diagnostics | Case::DiagnosticsByCommand => "diagnostics",
            Case::FoundRows => "found_rows",
            Case::RowCount => "row_count",
            Case::StoredCode => "stored_code",
            Case::IdleTimeout => "idle_timeout",
            Case::Xa => "xa",
        }
    }

    /// The earlier session: connects through `port` and leaves the state behind.
    pub async fn set(self, f: &Fixture, port: u16) -> Result<Left, String> {
        let n = f.suffix;
        if let Some(left) = self.set_raw(f, port).await {
            return Ok(left);
        }
        let mut a = match self {
            Case::PreparedStatements => try_conn(port, APP_USER, APP_PASSWORD, Some(&f.schema_a)).await?,
            Case::ClientFlags => {
                let o = opts(port, APP_USER, APP_PASSWORD, Some(DATABASE)).client_found_rows(true);
                mysql_async::Conn::new(mysql_async::Opts::from(o)).await.map_err(q)?
            }
            _ => try_conn(port, APP_USER, APP_PASSWORD, Some(DATABASE)).await?,
        };
        let sqls: Vec<String> = match self {
            Case::Schema => vec!["USE mysql".into(), reader("SELECT 1")],
            Case::SessionVariables => vec![
                "SET time_zone = '+07:00', sql_mode = 'ANSI_QUOTES', sql_auto_is_null = 1".into(),
                reader("SELECT 1"),
            ],
            Case::CharacterSet => vec!["SET NAMES latin1".into(), reader("SELECT 1")],
            Case::MultiStatements => vec!["DO 1; DO 2".into(), reader("SELECT 1; SELECT 2")],
            Case::LastInsertId => {
                vec![format!("INSERT INTO {} (v) VALUES ('a')", f.ai), "SET last_insert_id = 777".into()]
            }
            Case::PreparedStatements => vec![],
            Case::User | Case::ClientFlags => vec![format!("UPDATE {} SET v = v WHERE a = 1", f.t)],
            Case::Transaction => vec!["BEGIN".into(), format!("INSERT INTO {} VALUES ('tx')", f.tx)],
            Case::AutocommitOff => {
                vec!["SET autocommit = 0".into(), format!("INSERT INTO {} VALUES ('ac')", f.tx)]
            }
            Case::NextTransaction => vec!["SET TRANSACTION READ ONLY".into()],
            Case::UserVariables => vec![
                "SET @iso_leak = 'A'".into(),
                "SELECT @iso_leak2 := 2".into(),
                "SELECT 3 INTO @iso_leak3".into(),
            ],
            Case::TemporaryTables => vec!["CREATE TEMPORARY TABLE iso_tmp (a INT)".into()],
            Case::NamedLocks => vec![format!("SELECT GET_LOCK('iso_lock_{n}', 0)")],
            Case::TableLocks => vec![format!("LOCK TABLES {} READ", f.t)],
            Case::GlobalReadLock => vec!["FLUSH TABLES WITH READ LOCK".into()],
            Case::Handlers => vec![format!("HANDLER {} OPEN", f.t)],
            Case::SqlPrepared => vec!["PREPARE iso_s FROM 'SELECT 1'".into()],
            Case::UntrackedState => vec![
                reader(&format!("SELECT {DATABASE}.iso_fset_{n}()")),
                format!("CALL {DATABASE}.iso_pset_{n}()"),
                format!("INSERT INTO {} VALUES (1)", f.trg),
                "SET rand_seed1 = 1, rand_seed2 = 2".into(),
            ],
            Case::Diagnostics => vec![
                writer("SELECT 1/0"),
                reader("SELECT 1/0"),
                writer("SELECT no_such_column"),
                writer("SELECT 1"),
            ],
            Case::FoundRows => {
                vec![
                    format!("SELECT SQL_CALC_FOUND_ROWS * FROM {} LIMIT 1", f.t),
                    format!("SELECT * FROM {}", f.t),
                ]
            }
            Case::RowCount => vec![format!("UPDATE {} SET n = n + 1", f.t)],
            Case::StoredCode => vec![format!("CALL {DATABASE}.iso_plock_{n}()")],
            Case::IdleTimeout => vec!["SET wait_timeout = 1".into(), reader("SELECT 1")],
            Case::Xa => vec![
                "XA START 'iso-xa'".into(),
                format!("INSERT INTO {} VALUES ('xa')", f.tx),
                "XA END 'iso-xa'".into(),
                "XA PREPARE 'iso-xa'".into(),
            ],
            Case::LongData | Case::Cursors | Case::DiagnosticsByCommand => unreachable!("raw cases"),
        };
        for sql in &sqls {
            // Errors are part of some cases (diagnostics); everything else must work.
            if let Err(e) = a.query_drop(sql).await
                && self != Case::Diagnostics
            {
                return Err(format!("{sql}: {e}"));
            }
        }
        self.set_binary(f, &mut a).await?;
        Ok(Left::Async(a))
    }

    /// What the earlier session does through the binary protocol.
    async fn set_binary(self, f: &Fixture, a: &mut mysql_async::Conn) -> R {
        match self {
            Case::PreparedStatements => {
                let v: Option<String> = a.exec_first("SELECT v FROM t", ()).await.map_err(q)?;
                expect("A's own table", v.as_deref(), Some("in a"))?;
                a.query_drop("SET sql_mode = 'ANSI_QUOTES'").await.map_err(q)?;
                let v: Option<String> = a.exec_first("SELECT \"v\" FROM t", ()).await.map_err(q)?;
                expect("ANSI_QUOTES makes \"v\" a column", v.as_deref(), Some("in a"))
            }
            Case::UntrackedState => {
                a.exec_drop("SET time_zone = ?", ("+05:00",)).await.map_err(q)?;
                a.exec_drop("SET @iso_pv = ?", (5,)).await.map_err(q)?;
                let tz: Option<String> = a.query_first("SELECT @@time_zone").await.map_err(q)?;
                expect("the session keeps its prepared SET", tz.as_deref(), Some("+05:00"))?;
                let v: Option<i64> =
                    a.query_first("SELECT @iso_cv + @iso_trig + @iso_pv").await.map_err(q)?;
                expect("the session keeps what CALL, a trigger and a prepared SET set", v, Some(13))?;
                let _ = f;
                Ok(())
            }
            // The same kinds of state through the binary protocol.
            Case::TemporaryTables => {
                a.exec_drop("CREATE TEMPORARY TABLE iso_tmp2 (a INT)", ()).await.map_err(q)
            }
            Case::NamedLocks => {
                let got: Option<u32> = a
                    .exec_first("SELECT GET_LOCK(?, 0)", (format!("iso_lock2_{}", f.suffix),))
                    .await
                    .map_err(q)?;
                expect("GET_LOCK through a prepared statement", got, Some(1))
            }
            Case::UserVariables => a.exec_drop("SET @iso_leak4 = ?", ("B",)).await.map_err(q),
            _ => Ok(()),
        }
    }

    async fn set_raw(self, f: &Fixture, port: u16) -> Option<Left> {
        if !matches!(self, Case::LongData | Case::Cursors | Case::DiagnosticsByCommand) {
            return None;
        }
        let mut a = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0).await.ok()?;
        if self == Case::DiagnosticsByCommand {
            let single = rwproxy::protocol::ReplyKind::Single;
            let init = a.command(b"\x02iso_no_such_db", single).await;
            assert_eq!(raw::err_code(&init), Some(1049), "COM_INIT_DB of a missing schema");
            let prep = a.command(b"\x16SELEC 1", rwproxy::protocol::ReplyKind::Prepare).await;
            assert_eq!(raw::err_code(&prep), Some(1064), "COM_STMT_PREPARE of bad SQL");
        } else if self == Case::LongData {
            let stmt = a.prepare(&format!("INSERT INTO {} (id, b) VALUES (?, ?)", f.ld)).await;
            a.send_long_data(stmt, 1, b"LEAKED").await;
            // A round trip, so the proxy has handled the long data before the session ends.
            let pong = a.command(&[0x0e], rwproxy::protocol::ReplyKind::Single).await;
            assert_eq!(pong[0][0], 0, "ping");
        } else {
            let stmt = a.prepare(&format!("SELECT a FROM {} ORDER BY a", f.t)).await;
            let reply = a.execute(stmt, 1, &[]).await;
            assert_ne!(reply[0][0], 0xff, "cursor execute failed");
        }
        Some(Left::Raw(a))
    }

    /// One later session: its first statement works and shows nothing of the earlier one.
    pub async fn check(self, f: &Fixture, port: u16, i: usize) -> R {
        let n = f.suffix;
        match self {
            Case::User => {
                let mut b = try_conn(port, "other", "other", None).await?;
                for sql in [writer("SELECT CURRENT_USER()"), reader("SELECT CURRENT_USER()")] {
                    expect(&sql, one::<String>(&mut b, &sql).await, Ok(Some("other@%".into())))?;
                }
                return Ok(());
            }
            Case::MultiStatements => {
                let mut b = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), raw::NO_MULTI)
                    .await
                    .map_err(|_| "login".to_string())?;
                for sql in [writer("SELECT 1; SELECT 2"), reader("SELECT 1; SELECT 2")] {
                    expect(&sql, raw::err_code(&b.query(&sql).await), Some(1064))?;
                }
                b.quit().await;
                return Ok(());
            }
            Case::LongData => {
                // The same client flags as the earlier session, so both share one pool key.
                let mut b = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0)
                    .await
                    .map_err(|_| "login".to_string())?;
                let stmt = b.prepare(&format!("INSERT INTO {} (id, b) VALUES (?, ?)", f.ld)).await;
                let reply = b.execute(stmt, 0, &[Some(&i.to_string()), Some("mine")]).await;
                expect("execute", raw::err_code(&reply), None)?;
                let sql = writer(&format!("SELECT b FROM {} WHERE id = {i}", f.ld));
                let rows = raw::text_rows(&b.query(&sql).await, false);
                b.quit().await;
                return expect(
                    "the value the later session bound",
                    rows,
                    vec![vec![Some("mine".to_string())]],
                );
            }
            Case::Cursors => {
                let mut b = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0)
                    .await
                    .map_err(|_| "login".to_string())?;
                let stmt = b.prepare(&format!("SELECT a FROM {} ORDER BY a", f.t)).await;
                let reply = b.execute(stmt, 0, &[]).await;
                b.quit().await;
                // Column count, definition, EOF, five rows, EOF: the whole result, no cursor.
                return expect("reply packets of the statement", reply.len(), 9);
            }
            Case::DiagnosticsByCommand => {
                let mut b = raw::connect(port, APP_USER, APP_PASSWORD, Some(DATABASE), 0)
                    .await
                    .map_err(|_| "login".to_string())?;
                for sql in [writer("SHOW ERRORS"), reader("SHOW ERRORS")] {
                    let rows = raw::text_rows(&b.query(&sql).await, false);
                    expect(&sql, rows.len(), 0)?;
                }
                b.quit().await;
                return Ok(());
            }
            Case::PreparedStatements => {
                let mut b = try_conn(port, APP_USER, APP_PASSWORD, Some(&f.schema_b)).await?;
                let v: Option<String> = b.exec_first("SELECT v FROM t", ()).await.map_err(q)?;
                expect("SELECT v FROM t in schema b", v.as_deref(), Some("in b"))?;
                let v: Option<String> = b.exec_first("SELECT \"v\" FROM t", ()).await.map_err(q)?;
                expect("without ANSI_QUOTES \"v\" is a string", v.as_deref(), Some("v"))?;
                b.exec_drop("INSERT INTO t (v) VALUES (?)", ("from b",)).await.map_err(q)?;
                let in_a = cluster()
                    .primary
                    .sql(&format!("SELECT COUNT(*) FROM {}.t WHERE v = 'from b'", f.schema_a));
                return expect("rows b inserted into schema a", in_a.as_str(), "0");
            }
            _ => {}
        }
        let mut b = try_conn(port, APP_USER, APP_PASSWORD, Some(DATABASE)).await?;
        let r = self.check_conn(f, &mut b, i, n).await;
        let _ = b.disconnect().await;
        r
    }

    async fn check_conn(self, f: &Fixture, b: &mut mysql_async::Conn, i: usize, n: u32) -> R {
        let both = |sql: &str| [writer(sql), reader(sql)];
        let _ = &f.default_charset;
        let first_reader = i % 2 == 1;
        match self {
            Case::Schema => {
                for sql in both("SELECT DATABASE()") {
                    expect(&sql, one::<String>(b, &sql).await, Ok(Some(DATABASE.into())))?;
                }
            }
            Case::SessionVariables => {
                for sql in both(VARS) {
                    expect(&sql, one::<String>(b, &sql).await, Ok(Some(f.default_vars.clone())))?;
                }
            }
            Case::CharacterSet => {
                for sql in both(CHARSET) {
                    expect(&sql, one::<String>(b, &sql).await, Ok(Some(f.default_charset.clone())))?;
                }
            }
            Case::LastInsertId => {
                for sql in [writer("SELECT LAST_INSERT_ID()"), writer("SELECT @@identity")] {
                    expect(&sql, one::<u64>(b, &sql).await, Ok(Some(0)))?;
                }
            }
            Case::ClientFlags => {
                b.query_drop(format!("UPDATE {} SET v = v WHERE a = 1", f.t)).await.map_err(q)?;
                expect("affected rows without CLIENT_FOUND_ROWS", b.affected_rows(), 0)?;
            }
            Case::Transaction | Case::AutocommitOff => {
                let sql = format!("SELECT COUNT(*) FROM {} WHERE v IN ('tx', 'ac')", f.tx);
                expect("uncommitted rows", one::<u64>(b, &writer(&sql)).await, Ok(Some(0)))?;
                for sql in both("SELECT @@in_transaction * 10 + @@autocommit") {
                    expect(&sql, one::<u32>(b, &sql).await, Ok(Some(1)))?;
                }
            }
            Case::NextTransaction => {
                b.query_drop("START TRANSACTION").await.map_err(q)?;
                let r = fails(b, &format!("INSERT INTO {} VALUES ('nt')", f.tx)).await;
                b.query_drop("ROLLBACK").await.map_err(q)?;
                expect("INSERT in the next transaction", r, None)?;
            }
            Case::UserVariables => {
                for sql in both("SELECT CONCAT_WS(',', @iso_leak, @iso_leak2, @iso_leak3, @iso_leak4)") {
                    expect(&sql, one::<String>(b, &sql).await, Ok(Some(String::new())))?;
                }
            }
            Case::TemporaryTables => {
                for sql in both("SELECT * FROM iso_tmp").into_iter().chain(both("SELECT * FROM iso_tmp2")) {
                    expect(&sql, fails(b, &sql).await, Some(1146))?;
                }
            }
            Case::NamedLocks | Case::StoredCode => {
                let names: &[&str] =
                    if self == Case::NamedLocks { &["iso_lock", "iso_lock2"] } else { &["iso_proc_lock"] };
                for name in names {
                    let sql = format!("SELECT IS_FREE_LOCK('{name}_{n}')");
                    expect(&sql, one::<u32>(b, &sql).await, Ok(Some(1)))?;
                }
            }
            Case::TableLocks | Case::GlobalReadLock => {
                let sql = format!("INSERT INTO {} VALUES ('lt')", f.tx);
                expect(&sql, fails(b, &sql).await, None)?;
                let sql = format!("UPDATE {} SET v = v WHERE a = 1", f.t);
                expect(&sql, fails(b, &sql).await, None)?;
            }
            Case::Handlers => {
                let short = f.t.rsplit('.').next().unwrap_or_default();
                let sql = format!("HANDLER {short} READ FIRST");
                expect(&sql, fails(b, &sql).await, Some(1109))?;
            }
            Case::SqlPrepared => expect("EXECUTE iso_s", fails(b, "EXECUTE iso_s").await, Some(1243))?,
            Case::UntrackedState => {
                let tz = f.default_vars.split('|').next().unwrap_or_default().to_string();
                for sql in both("SELECT CONCAT_WS(',', @iso_pv, @iso_cv, @iso_trig, @iso_fv, @@time_zone)") {
                    expect(&sql, one::<String>(b, &sql).await, Ok(Some(tz.clone())))?;
                }
            }
            Case::Diagnostics => {
                let first = if first_reader { reader("SHOW WARNINGS") } else { "SHOW WARNINGS".into() };
                let w: Vec<mysql_async::Row> = b.query(&first).await.map_err(q)?;
                expect(&format!("{first} as the first statement"), w.len(), 0)?;
                for sql in both("SHOW ERRORS") {
                    let e: Vec<mysql_async::Row> = b.query(&sql).await.map_err(q)?;
                    expect(&sql, e.len(), 0)?;
                }
            }
            Case::FoundRows => {
                let sql = "SELECT FOUND_ROWS()";
                if i % 3 == 2 {
                    b.query_drop("BEGIN").await.map_err(q)?;
                    expect("FOUND_ROWS() right after BEGIN", one::<u64>(b, sql).await, Ok(Some(1)))?;
                    b.query_drop("COMMIT").await.map_err(q)?;
                } else {
                    let first = if first_reader { reader(sql) } else { sql.to_string() };
                    expect(&first, one::<u64>(b, &first).await, Ok(Some(1)))?;
                }
            }
            Case::RowCount => {
                let got = one::<i64>(b, "SELECT ROW_COUNT()").await;
                if !matches!(got, Ok(Some(-1 | 0))) {
                    return Err(format!("ROW_COUNT() as the first statement: {got:?}, want 0 or -1"));
                }
            }
            Case::IdleTimeout => {
                if i == 0 {
                    // Longer than the earlier session's wait_timeout: its connections must live.
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                }
                for sql in both("SELECT @@wait_timeout > 1") {
                    expect(&sql, one::<u32>(b, &sql).await, Ok(Some(1)))?;
                }
            }
            Case::Xa => {
                let sql = format!("INSERT INTO {} VALUES ('after-xa')", f.tx);
                expect(&sql, fails(b, &sql).await, None)?;
            }
            Case::User
            | Case::MultiStatements
            | Case::PreparedStatements
            | Case::LongData
            | Case::Cursors
            | Case::DiagnosticsByCommand => {
                unreachable!()
            }
        }
        Ok(())
    }

    /// Undoes what a case leaves on the servers themselves (not on the proxy's connections).
    /// A prepared XA transaction outlives its connection, as on a direct connection; it can be
    /// rolled back once no connection holds it.
    pub fn cleanup(self, f: &Fixture) -> R {
        let p = &cluster().primary;
        if self == Case::Xa {
            let _ = p.try_sql("XA ROLLBACK 'iso-xa'");
        }
        let sql =
            format!("SET SESSION innodb_lock_wait_timeout = 5; DELETE FROM {}; DELETE FROM {}", f.tx, f.ld);
        p.try_sql(&sql).map(drop).map_err(|e| format!("cleanup: rows still locked: {e}"))
    }
}

//! The objects the isolation cases use, and ending the session that set some state.

use mysql_async::prelude::*;

use super::{Cuttable, End, fresh, one};
use crate::support::cluster;
use crate::support::cluster::DATABASE;
use crate::support::raw::Raw;

pub const VARS: &str = "SELECT CONCAT(@@time_zone, '|', @@sql_mode, '|', @@sql_auto_is_null)";
pub const CHARSET: &str = "SELECT CONCAT(@@character_set_client, ' ', @@collation_connection)";

/// Objects the cases use, unique to this test process.
pub struct Fixture {
    pub t: String,
    pub tx: String,
    pub ai: String,
    pub ld: String,
    pub trg: String,
    pub schema_a: String,
    pub schema_b: String,
    pub suffix: u32,
    /// `@@time_zone|@@sql_mode|@@sql_auto_is_null` of a fresh direct session.
    pub default_vars: String,
    /// `@@character_set_client @@collation_connection` of a fresh direct session.
    pub default_charset: String,
}

impl Fixture {
    pub async fn create() -> Fixture {
        let n = std::process::id();
        let db = DATABASE;
        let f = Fixture {
            t: format!("{db}.iso_t_{n}"),
            tx: format!("{db}.iso_tx_{n}"),
            ai: format!("{db}.iso_ai_{n}"),
            ld: format!("{db}.iso_ld_{n}"),
            trg: format!("{db}.iso_trg_{n}"),
            schema_a: format!("iso_a_{n}"),
            schema_b: format!("iso_b_{n}"),
            suffix: n,
            default_vars: String::new(),
            default_charset: String::new(),
        };
        let mut direct = fresh(cluster().primary.port).await;
        let mut f = f;
        f.default_vars = one::<String>(&mut direct, VARS).await.ok().flatten().unwrap_or_default();
        f.default_charset = one::<String>(&mut direct, CHARSET).await.ok().flatten().unwrap_or_default();
        let p = &cluster().primary;
        p.sql(&format!(
            "CREATE TABLE {t} (a INT PRIMARY KEY, v VARCHAR(20), n INT DEFAULT 0); \
             INSERT INTO {t} (a, v) VALUES (1,'x'),(2,'x'),(3,'x'),(4,'x'),(5,'x'); \
             CREATE TABLE {tx} (v VARCHAR(20)); \
             CREATE TABLE {ai} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); \
             CREATE TABLE {ld} (id INT, b TEXT); \
             CREATE TABLE {trg} (a INT); \
             CREATE TRIGGER {db}.iso_trg_ai_{n} AFTER INSERT ON {trg} FOR EACH ROW SET @iso_trig = NEW.a; \
             CREATE PROCEDURE {db}.iso_pset_{n}() SET @iso_cv = 7; \
             CREATE PROCEDURE {db}.iso_plock_{n}() DO GET_LOCK('iso_proc_lock_{n}', 0); \
             CREATE DATABASE {a}; CREATE TABLE {a}.t (v VARCHAR(20)); INSERT INTO {a}.t VALUES ('in a'); \
             CREATE DATABASE {b}; CREATE TABLE {b}.t (v VARCHAR(20)); INSERT INTO {b}.t VALUES ('in b');",
            t = f.t,
            tx = f.tx,
            ai = f.ai,
            ld = f.ld,
            trg = f.trg,
            a = f.schema_a,
            b = f.schema_b,
        ));
        let function = format!(
            "CREATE FUNCTION {db}.iso_fset_{n}() RETURNS INT NO SQL \
             BEGIN SET @iso_fv = 1; SET @@session.time_zone = '+09:00'; RETURN 1; END"
        );
        direct.query_drop(function).await.expect("create function");
        let _ = direct.disconnect().await;
        cluster().sync_replicas();
        f
    }

    pub fn drop_all(&self) {
        let n = self.suffix;
        let db = DATABASE;
        let _ = cluster().primary.try_sql("XA ROLLBACK 'iso-xa'");
        cluster().primary.sql(&format!(
            "DROP TABLE {}, {}, {}, {}, {}; DROP PROCEDURE {db}.iso_pset_{n}; DROP PROCEDURE {db}.iso_plock_{n}; \
             DROP FUNCTION {db}.iso_fset_{n}; DROP DATABASE {}; DROP DATABASE {}",
            self.t, self.tx, self.ai, self.ld, self.trg, self.schema_a, self.schema_b
        ));
    }
}

/// What the state-setting session used, so the runner can end it.
pub enum Left {
    Async(mysql_async::Conn),
    Raw(Raw),
}

impl Left {
    pub async fn end(self, end: End, cut: Cuttable) {
        match (self, end) {
            (Left::Async(c), End::Quit) => c.disconnect().await.expect("quit"),
            (Left::Raw(r), End::Quit) => r.quit().await,
            (left, End::Cut) => {
                cut.cut();
                drop(left);
            }
        }
    }
}

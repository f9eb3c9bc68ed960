//! Seeded random interleaving of several sessions' state changes on a proxy whose servers take
//! two connections each: every session checks, on the writer and on readers, that it sees
//! exactly its own state and nothing of the others'. `RWPROXY_SEED` picks the seed.

use mysql_async::Conn;
use mysql_async::prelude::*;

use super::{Cuttable, app_conn, capped_proxy, one, reader, writer};
use crate::support::cluster;

/// What one session has set, as the proxy must make it appear.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    schema: usize,
    time_zone: String,
    ansi: bool,
    latin1: bool,
}

impl Model {
    fn new() -> Model {
        Model { schema: 0, time_zone: "SYSTEM".into(), ansi: false, latin1: false }
    }
}

struct Client {
    conn: Conn,
    relay: Option<Cuttable>,
    model: Model,
}

const PROBE: &str = "SELECT CONCAT_WS('|', @@time_zone, @@sql_mode LIKE '%ANSI_QUOTES%', DATABASE(), \
                     @@character_set_client, IFNULL(@rand_mine, 'none'))";

async fn connect(port: u16, schemas: &[String]) -> Client {
    let relay = Cuttable::to(port).await;
    let conn = app_conn(relay.port, Some(&schemas[0])).await;
    Client { conn, relay: Some(relay), model: Model::new() }
}

fn expected(m: &Model, schemas: &[String]) -> String {
    let cs = if m.latin1 { "latin1" } else { "utf8mb4" };
    format!("{}|{}|{}|{cs}|none", m.time_zone, i32::from(m.ansi), schemas[m.schema])
}

/// One random step for client `c`; `Err` describes what it saw that it should not have.
async fn step(
    rng: &mut fastrand::Rng,
    c: &mut Client,
    port: u16,
    schemas: &[String],
    tag: usize,
) -> Result<(), String> {
    let q = |e: mysql_async::Error| e.to_string();
    match rng.u8(0..9) {
        0 => {
            let tz = format!("+0{}:00", rng.u8(1..10));
            c.conn.query_drop(format!("SET time_zone = '{tz}'")).await.map_err(q)?;
            c.model.time_zone = tz;
        }
        1 => {
            c.model.ansi = !c.model.ansi;
            let mode = if c.model.ansi { "ANSI_QUOTES" } else { "" };
            c.conn.query_drop(format!("SET sql_mode = '{mode}'")).await.map_err(q)?;
        }
        2 => {
            c.model.schema = rng.usize(0..schemas.len());
            c.conn.query_drop(format!("USE {}", schemas[c.model.schema])).await.map_err(q)?;
        }
        3 => {
            c.model.latin1 = !c.model.latin1;
            let cs = if c.model.latin1 { "latin1" } else { "utf8mb4" };
            c.conn.query_drop(format!("SET NAMES {cs}")).await.map_err(q)?;
        }
        4 => {
            // A prepared statement reads the table of the schema it was prepared in.
            let v: Option<String> = c.conn.exec_first("SELECT v FROM t", ()).await.map_err(q)?;
            let want = format!("in {}", c.model.schema);
            if v.as_deref() != Some(want.as_str()) {
                return Err(format!("prepared SELECT read {v:?}, want {want}"));
            }
        }
        5 => {
            // Session-bound state, then the session ends (quits or vanishes) and reconnects.
            c.conn.query_drop(format!("SET @rand_mine = 'tag{tag}'")).await.map_err(q)?;
            c.conn.query_drop("CREATE TEMPORARY TABLE rand_tmp (a INT)").await.map_err(q)?;
            let v = one::<String>(&mut c.conn, "SELECT @rand_mine").await;
            if v != Ok(Some(format!("tag{tag}"))) {
                return Err(format!("own user variable: {v:?}"));
            }
            let old = std::mem::replace(c, connect(port, schemas).await);
            let relay = old.relay;
            if rng.bool() {
                let _ = old.conn.disconnect().await;
            } else if let Some(r) = relay {
                r.cut();
            }
        }
        6 => {
            c.conn.query_drop("BEGIN").await.map_err(q)?;
            c.conn.query_drop("SELECT 1 FROM t").await.map_err(q)?;
            c.conn.query_drop("ROLLBACK").await.map_err(q)?;
        }
        7 => {
            c.conn
                .query_drop(if rng.bool() { writer("SELECT 1/0") } else { reader("SELECT 1/0") })
                .await
                .map_err(q)?;
            let w: Vec<mysql_async::Row> = c.conn.query("SHOW WARNINGS").await.map_err(q)?;
            if w.len() > 1 {
                return Err(format!("{} warnings after one", w.len()));
            }
            c.conn.query_drop("SELECT 1").await.map_err(q)?;
        }
        _ => {
            let sql = if rng.bool() { writer(PROBE) } else { reader(PROBE) };
            let got = one::<String>(&mut c.conn, &sql).await;
            let want = expected(&c.model, schemas);
            if got != Ok(Some(want.clone())) {
                return Err(format!("{sql}: got {got:?}, want {want}"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomly_interleaved_sessions_see_only_their_own_state() {
    let seed: u64 = std::env::var("RWPROXY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261201);
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = std::process::id();
    let schemas: Vec<String> = (0..2).map(|i| format!("iso_r{i}_{n}")).collect();
    for (i, s) in schemas.iter().enumerate() {
        cluster().primary.sql(&format!(
            "CREATE DATABASE {s}; CREATE TABLE {s}.t (v VARCHAR(9)); INSERT INTO {s}.t VALUES ('in {i}')"
        ));
    }
    cluster().sync_replicas();
    let proxy = capped_proxy(2).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(proxy.port(), &schemas).await);
    }
    for tag in 0..240 {
        let i = rng.usize(0..clients.len());
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            step(&mut rng, &mut clients[i], proxy.port(), &schemas, tag),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        if let Err(e) = r {
            panic!("seed {seed}, step {tag}, session {i}: {e}");
        }
    }
    for c in clients {
        let _ = c.conn.disconnect().await;
    }
    proxy.shutdown().await;
    for s in &schemas {
        cluster().primary.sql(&format!("DROP DATABASE {s}"));
    }
}

//! Isolation: nothing one session leaves on a pooled backend connection reaches another.
//!
//! Every proxy here caps each server at one or two backend connections, so later sessions
//! certainly reuse the connections an earlier session used. A session sets some state, then
//! quits or vanishes (its TCP connection cut, no COM_QUIT); twenty later sessions then check on
//! the writer and on a reader that none of it is visible and that their own first statement
//! works.

mod cases;
mod fixture;
mod items;
mod random;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE};
use crate::support::{Proxy, cluster, config_text, opts};

/// The shared cluster's config with every server capped at `per_server` backend connections,
/// routing without read-your-writes (so where a statement runs depends only on its text).
pub fn capped_config(per_server: u32, extra: &str) -> String {
    let base = config_text(cluster(), &format!("[routing]\nread_consistency = \"none\"\n{extra}"));
    base.lines()
        .map(|l| {
            if l.starts_with("address = ") {
                format!("{l}\nmax_connections = {per_server}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

pub async fn capped_proxy(per_server: u32) -> Proxy {
    Proxy::start(&capped_config(per_server, "")).await
}

/// A TCP relay in front of the proxy whose connections can be cut without a goodbye, as when a
/// client host dies: the proxy sees the connection reset, never a COM_QUIT.
pub struct Cuttable {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
}

impl Cuttable {
    pub async fn to(target: u16) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let (tx, mut rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await else { return };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = &mut rx => {
                    // RST instead of FIN: the proxy learns of it only as a broken connection.
                    // (A zero linger never blocks the thread, which is why it is deprecated.)
                    #[allow(deprecated)]
                    let _ = server.set_linger(Some(std::time::Duration::ZERO));
                }
            }
        });
        Cuttable { port, stop: Some(tx) }
    }

    pub fn cut(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// How the state-setting session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Quit,
    Cut,
}

pub async fn app_conn(port: u16, db: Option<&str>) -> Conn {
    Conn::new(Opts::from(opts(port, APP_USER, APP_PASSWORD, db))).await.expect("connect")
}

pub async fn fresh(port: u16) -> Conn {
    app_conn(port, Some(DATABASE)).await
}

/// A login that may fail (as it does when a leftover breaks the proxy's state sync).
pub async fn try_conn(port: u16, user: &str, password: &str, db: Option<&str>) -> Result<Conn, String> {
    Conn::new(Opts::from(opts(port, user, password, db))).await.map_err(|e| format!("login: {e}"))
}

pub fn writer(sql: &str) -> String {
    format!("/* rwproxy:writer */ {sql}")
}

pub fn reader(sql: &str) -> String {
    format!("/* rwproxy:reader */ {sql}")
}

/// The first column of the first row, or the error's code.
pub async fn one<T: FromValue>(c: &mut Conn, sql: &str) -> Result<Option<T>, u16> {
    match c.query_first::<mysql_async::Row, _>(sql).await {
        Ok(Some(row)) => Ok(row.get_opt::<Option<T>, _>(0).and_then(Result::ok).flatten()),
        Ok(None) => Ok(None),
        Err(e) => Err(code_of(&e)),
    }
}

/// The error code a statement fails with (`None` when it succeeds).
pub async fn fails(c: &mut Conn, sql: &str) -> Option<u16> {
    c.query_drop(sql).await.err().map(|e| code_of(&e))
}

pub fn code_of(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        _ => 0,
    }
}

/// `Err` with a message unless `got == want`.
pub fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

/// Cleanup counters by state kind from the admin API: (resets, closes).
pub async fn cleanups(proxy: &Proxy, kind: &str) -> (u64, u64) {
    let (_, v) = proxy.admin_get("/sessions").await;
    let c = &v["backend_cleanups"][kind];
    (c["reset"].as_u64().unwrap_or(0), c["close"].as_u64().unwrap_or(0))
}

/// One case: the earlier session sets the state and ends; twenty later sessions check.
async fn run_case(proxy: &Proxy, f: &cases::Fixture, case: cases::Case, end: End) -> Result<(), String> {
    let relay = Cuttable::to(proxy.port()).await;
    let left = case.set(f, relay.port).await.map_err(|e| format!("setting it: {e}"))?;
    left.end(end, relay).await;
    // The earlier session is over for the proxy too (it may still have been working through
    // the commands it had received) before anyone checks.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while proxy.admin_get("/sessions").await.1["connected"] != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    ended.await.map_err(|_| "the earlier session did not end".to_string())?;
    let mut result = Ok(());
    for i in 0..20 {
        let check = tokio::time::timeout(std::time::Duration::from_secs(20), case.check(f, proxy.port(), i));
        if let Err(e) = check.await.unwrap_or_else(|_| Err("timed out".into())) {
            result = Err(format!("later session {i}: {e}"));
            break;
        }
    }
    let cleaned = case.cleanup(f);
    result.and(cleaned)
}

/// How the proxy handled the state, read from its cleanup counters: `Err` when it did not use
/// the mechanism its state model names for the kind.
fn mechanism_used(kind: &str, before: (u64, u64), after: (u64, u64)) -> Result<&'static str, String> {
    use rwproxy::backend::{Mechanism, StateKind};
    let Some(k) = StateKind::ALL.iter().find(|k| k.name() == kind) else {
        return Err(format!("{kind} is not in the state model"));
    };
    let (resets, closes) = (after.0 - before.0, after.1 - before.1);
    let ok = match k.mechanism() {
        Mechanism::Reset => resets > 0,
        Mechanism::Close => closes > 0,
        Mechanism::Replay | Mechanism::Keyed => resets == 0 && closes == 0,
    };
    let name = k.mechanism().as_str();
    if ok {
        Ok(name)
    } else {
        Err(format!("expected {name}, saw {resets} resets and {closes} closes for {kind}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_of_an_earlier_session_reaches_a_later_one() {
    let proxy = capped_proxy(1).await;
    let f = cases::Fixture::create().await;
    let mut failures = Vec::new();
    let mut report = String::from("state kind            mechanism  quit  cut\n");
    for case in cases::Case::ALL {
        let mut mechanism = "?";
        let mut results = Vec::new();
        for end in [End::Quit, End::Cut] {
            let before = cleanups(&proxy, case.kind()).await;
            let r = run_case(&proxy, &f, case, end).await;
            let after = cleanups(&proxy, case.kind()).await;
            match r.and_then(|()| mechanism_used(case.kind(), before, after)) {
                Ok(m) => {
                    mechanism = m;
                    results.push("ok  ");
                }
                Err(e) => {
                    failures.push(format!("{} ({end:?}): {e}", case.kind()));
                    results.push("FAIL");
                }
            }
        }
        report += &format!("{:<21} {mechanism:<10} {}  {}\n", case.kind(), results[0], results[1]);
    }
    eprintln!("{report}\n{}", failures.join("\n"));
    f.drop_all();
    proxy.shutdown().await;
    assert!(failures.is_empty(), "{} leaks:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_kind_of_state_has_a_case() {
    let names: Vec<&str> = rwproxy::backend::StateKind::ALL.iter().map(|k| k.name()).collect();
    let cases: Vec<&str> = cases::Case::ALL.iter().map(|c| c.kind()).collect();
    for n in &names {
        assert!(cases.contains(n), "no isolation case for state kind {n}");
    }
    for c in &cases {
        assert!(names.contains(c), "case {c} names no state kind");
    }
}

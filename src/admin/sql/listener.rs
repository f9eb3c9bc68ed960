//! The SQL admin's listener: MySQL handshake with the admin credentials (native password,
//! refusals throttled like the data port's), then text queries only. Connections are capped
//! and must log in within the proxy's `connect_timeout`; an idle one is closed after an hour.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{Admin, Answer};
use crate::protocol::auth::{self, NATIVE_PLUGIN};
use crate::protocol::handshake::HandshakeV10;
use crate::protocol::reply::{err_packet, ok_packet};
use crate::protocol::resultset::encode_result_set;
use crate::protocol::{ClientCommand, PacketStream, caps, status};
use crate::shared::Context;
use crate::shared::login::{Proof, Verdict, authenticate, check_secret};

/// Admin connections at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 32;
/// An admin statement is small; larger packets are refused.
const MAX_PACKET: usize = 16 << 20;
/// An idle admin connection is closed after this.
const IDLE: Duration = Duration::from_secs(3600);

const CAPABILITIES: u32 = caps::LONG_PASSWORD
    | caps::FOUND_ROWS
    | caps::LONG_FLAG
    | caps::CONNECT_WITH_DB
    | caps::PROTOCOL_41
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_DATA
    | caps::CONNECT_ATTRS;

/// Serves the SQL admin until `shutdown` completes.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let admin = Admin::new(ctx.clone());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let ids = Arc::new(AtomicU32::new(1));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                    let (admin, ctx, id) = (admin.clone(), ctx.clone(), ids.fetch_add(1, Ordering::Relaxed));
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, peer, &ctx, &admin, id).await {
                            tracing::debug!(%peer, "SQL admin connection ended: {e}");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!("SQL admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => return,
        }
    }
}

/// The admin password check (constant time for clear passwords).
fn check(ctx: &Context, name: &str, salt: &[u8], proof: Proof<'_>) -> Verdict<String> {
    let cfg = ctx.config();
    let Some(sql) = cfg.admin.sql.as_ref().filter(|s| s.username == name) else { return Verdict::Wrong };
    match check_secret(&sql.secret, salt, proof) {
        Verdict::Valid(_) => Verdict::Valid(name.to_string()),
        Verdict::Wrong => Verdict::Wrong,
        Verdict::Unverifiable => Verdict::Unverifiable,
        Verdict::FullAuthOnly => Verdict::FullAuthOnly,
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    ctx: &Context,
    admin: &Admin,
    id: u32,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = stream.set_nodelay(true);
    let mut stream = PacketStream::new(crate::tls::ClientStream::Plain(stream), MAX_PACKET);
    let salt = auth::new_salt();
    let greeting = HandshakeV10 {
        server_version: format!("8.0.30 (rwproxy {} admin)", env!("CARGO_PKG_VERSION")).into_bytes(),
        connection_id: id,
        salt: salt.to_vec(),
        capabilities: if ctx.tls.load().is_some() { CAPABILITIES | caps::SSL } else { CAPABILITIES },
        collation: 33,
        status: status::AUTOCOMMIT,
        auth_plugin: NATIVE_PLUGIN.as_bytes().to_vec(),
        mariadb_caps: 0,
    };
    let login = authenticate(&mut stream, ctx, &greeting, peer, |n, s, p, _tls| check(ctx, n, s, p));
    let login = tokio::time::timeout(ctx.config().proxy.connect_timeout, login).await??;
    stream.write_packet(login.next_seq, &ok_packet(0, 0, status::AUTOCOMMIT, 0)).await?;
    stream.flush().await?;
    tracing::info!(%peer, user = %login.user, "SQL admin login");
    let multi = login.capabilities & caps::MULTI_STATEMENTS != 0;
    loop {
        let Some(packet) = tokio::time::timeout(IDLE, stream.read_packet(Some(0))).await?? else {
            return Ok(());
        };
        let out = match ClientCommand::parse(packet.payload())? {
            ClientCommand::Quit => return Ok(()),
            ClientCommand::Ping | ClientCommand::InitDb(_) | ClientCommand::ResetConnection => {
                one(Answer::Ok { affected: 0 }, status::AUTOCOMMIT)
            }
            ClientCommand::FieldList => {
                // The CLI's name completion: the columns of the table named (NUL-terminated).
                let body = packet.payload().get(1..).unwrap_or_default();
                let name =
                    String::from_utf8_lossy(body.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
                admin.field_list(&name)
            }
            ClientCommand::Query(sql) => {
                let sql = String::from_utf8_lossy(sql);
                tracing::debug!(%peer, "SQL admin: {}", sql.chars().take(200).collect::<String>());
                let mut answers = admin.execute(&sql, id).await;
                if !multi && answers.len() > 1 {
                    answers = vec![Answer::Err {
                        code: 1064,
                        message: "several statements need CLIENT_MULTI_STATEMENTS".into(),
                    }];
                }
                encode(answers)
            }
            _ => {
                let msg = "the rwproxy SQL admin takes text queries only";
                one(Answer::Err { code: 1047, message: msg.into() }, 0)
            }
        };
        stream.write_raw(&out).await?;
        stream.flush().await?;
    }
}

fn one(a: Answer, status: u16) -> Vec<u8> {
    let mut out = Vec::new();
    write_answer(&mut out, a, status);
    out
}

/// The answers of one query: each but the last flagged `SERVER_MORE_RESULTS_EXISTS`; an
/// error ends the reply (as a server stops at a failed statement).
fn encode(answers: Vec<Answer>) -> Vec<u8> {
    let mut out = Vec::new();
    let n = answers.len();
    for (i, a) in answers.into_iter().enumerate() {
        let failed = matches!(a, Answer::Err { .. });
        let more = if i + 1 < n && !failed { status::MORE_RESULTS_EXISTS } else { 0 };
        write_answer(&mut out, a, status::AUTOCOMMIT | more);
        if failed {
            break;
        }
    }
    out
}

fn write_answer(out: &mut Vec<u8>, a: Answer, status: u16) {
    match a {
        Answer::Ok { affected } => {
            crate::protocol::packet::encode(out, 1, &ok_packet(affected, 0, status, 0));
        }
        Answer::Err { code, message } => {
            let state = match code {
                1054 => "42S22",
                1062 => "23000",
                1064 | 1065 => "42000",
                1193 => "HY000",
                1146 => "42S02",
                1047 => "08S01",
                _ => "HY000",
            };
            crate::protocol::packet::encode(out, 1, &err_packet(code, state, &message));
        }
        Answer::Rows { table, columns, rows } => {
            let rows: Vec<Vec<Option<String>>> =
                rows.into_iter().map(|r| r.into_iter().map(|v| v.render()).collect()).collect();
            encode_result_set(out, &table, &columns, &rows, status);
        }
    }
}

//! `KILL` and `CONNECTION_ID()` in the proxy's terms. The id a client got in the greeting is
//! its proxy session id; `KILL [CONNECTION|QUERY] id` and COM_PROCESS_KILL act on that session
//! (same user only, as the server allows a user its own threads) and are never forwarded: a
//! backend thread with that number is somebody else's.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, SessionError};
use crate::protocol::reply::ok_packet;
use crate::protocol::wire::put_lenenc_bytes;
use crate::protocol::{caps, errcode, mariadb_caps, packet::encode, status};
use crate::routing::Dialect;
use crate::routing::lexer::{Lexer, Tok};

/// What a `KILL` statement asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Interrupt the session's running statement (`KILL QUERY`).
    Query(Option<u32>),
    /// Close the session (`KILL [CONNECTION]`); `None`: the caller's own (`CONNECTION_ID()`).
    Connection(Option<u32>),
    /// `KILL USER …`, `KILL QUERY ID …`: not something the proxy can map.
    Unsupported,
}

fn words(sql: &[u8], dialect: Dialect) -> Vec<(Tok, String)> {
    let mut lx = Lexer::new(sql, dialect);
    let mut out = Vec::new();
    while let Some(t) = lx.next_token(&mut |_| {}) {
        if t.kind != Tok::Punct(b';') {
            out.push((t.kind, String::from_utf8_lossy(lx.text(&t)).to_ascii_uppercase()));
        }
    }
    out
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] { id | CONNECTION_ID() }`.
pub fn parse_kill(sql: &[u8], dialect: Dialect) -> Kill {
    let w = words(sql, dialect);
    let mut i = 1;
    if w.get(i).is_some_and(|(_, t)| t == "HARD" || t == "SOFT") {
        i += 1;
    }
    let query = w.get(i).is_some_and(|(_, t)| t == "QUERY");
    if w.get(i).is_some_and(|(_, t)| t == "QUERY" || t == "CONNECTION") {
        i += 1;
    }
    let own = ["CONNECTION_ID", "(", ")"];
    let id = match &w[i.min(w.len())..] {
        [(Tok::Number, n)] => n.parse().ok().map(Some),
        rest if rest.len() == 3 && rest.iter().zip(own).all(|((_, t), o)| t == o) => Some(None),
        _ => None,
    };
    match (id, query) {
        (Some(id), true) => Kill::Query(id),
        (Some(id), false) => Kill::Connection(id),
        (None, _) => Kill::Unsupported,
    }
}

/// The column name when `sql` is just `SELECT CONNECTION_ID() [[AS] alias]`.
pub fn connection_id_query(sql: &[u8], dialect: Dialect) -> Option<String> {
    let mut lx = Lexer::new(sql, dialect);
    let mut toks = Vec::new();
    while let Some(t) = lx.next_token(&mut |_| {}) {
        toks.push(t);
    }
    while toks.last().is_some_and(|t| t.kind == Tok::Punct(b';')) {
        toks.pop();
    }
    let text = |i: usize| lx.text(&toks[i]);
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|_| text(i).eq_ignore_ascii_case(w.as_bytes()));
    if toks.len() < 4 || !is(0, "SELECT") || !is(1, "CONNECTION_ID") || !is(2, "(") || !is(3, ")") {
        return None;
    }
    let expr = String::from_utf8_lossy(&sql[toks[1].start..toks[3].end]).into_owned();
    let alias = match toks.len() {
        4 => return Some(expr),
        5 => 4,
        6 if is(4, "AS") => 5,
        _ => return None,
    };
    let t = toks[alias];
    let name = String::from_utf8_lossy(lx.text(&t)).into_owned();
    match t.kind {
        Tok::Word => Some(name),
        Tok::Ident | Tok::Str => Some(name[1..name.len().saturating_sub(1)].to_string()),
        _ => None,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Answers `SELECT CONNECTION_ID()` with the greeting's id, shaped like the server's
    /// reply (an unsigned LONG column, binary collation).
    pub(super) async fn answer_connection_id(&mut self, name: &str) -> Result<(), SessionError> {
        let deprecate_eof = self.login.capabilities & caps::DEPRECATE_EOF != 0;
        let st = self.status & status::SESSION;
        let mut def = Vec::new();
        for part in [&b"def"[..], b"", b"", b"", name.as_bytes(), b""] {
            put_lenenc_bytes(&mut def, part);
        }
        if self.login.mariadb_caps & mariadb_caps::EXTENDED_METADATA != 0 {
            def.push(0); // no extended type information for an integer
        }
        def.extend_from_slice(&[0x0c, 63, 0, 10, 0, 0, 0, 0x03, 0xa1, 0x00, 0, 0, 0]);
        let eof = [&[0xfe, 0, 0][..], &st.to_le_bytes()].concat();
        let mut row = Vec::new();
        put_lenenc_bytes(&mut row, self.id.to_string().as_bytes());
        let mut out = Vec::new();
        let mut seq = encode(&mut out, 1, &[1]);
        seq = encode(&mut out, seq, &def);
        if !deprecate_eof {
            seq = encode(&mut out, seq, &eof);
        }
        seq = encode(&mut out, seq, &row);
        let end = if deprecate_eof {
            let mut ok = ok_packet(0, 0, st, 0);
            ok[0] = 0xfe;
            ok
        } else {
            eof
        };
        encode(&mut out, seq, &end);
        self.client.write_raw(&out).await?;
        Ok(())
    }

    /// Carries out a `KILL` (or COM_PROCESS_KILL) from this session; `seq` for the reply.
    pub(super) async fn kill(&mut self, what: Kill, seq: u8) -> Result<(), SessionError> {
        let (target, query) = match what {
            Kill::Query(id) => (id.unwrap_or(self.id), true),
            Kill::Connection(id) => (id.unwrap_or(self.id), false),
            Kill::Unsupported => {
                let msg = "rwproxy: only KILL [CONNECTION|QUERY] <connection id> works through the proxy";
                return self.send_err(seq, errcode::NOT_SUPPORTED, msg).await;
            }
        };
        if target == self.id && !query {
            self.send_err(seq, errcode::CONNECTION_KILLED, "Connection was killed").await?;
            return Err(SessionError::Killed);
        }
        let Some(handle) = self.ctx.sessions.get(target) else {
            return self
                .send_err(seq, errcode::UNKNOWN_THREAD, &format!("Unknown thread id: {target}"))
                .await;
        };
        if handle.user() != self.login.user.username {
            return self
                .send_err(seq, errcode::NOT_OWNER, &format!("You are not owner of thread {target}"))
                .await;
        }
        if !query {
            handle.kill();
        }
        let running = handle
            .running()
            .and_then(|(addr, thread)| Some((self.ctx.sessions.addresses.get(addr)?, thread)));
        if let Some((addr, thread)) = running
            && let Err(why) = self.kill_backend_query(addr, thread).await
        {
            let (code, state) = errcode::PROXY_BACKEND;
            return self
                .send_err(seq, (code, state), &format!("rwproxy: KILL QUERY on the backend failed: {why}"))
                .await;
        }
        let ok = ok_packet(0, 0, self.status & status::SESSION, 0);
        self.client.write_packet(seq, &ok).await?;
        Ok(())
    }

    /// `KILL QUERY` of a backend thread, over a connection of its own as this session's user.
    async fn kill_backend_query(&self, addr: Arc<str>, thread: u32) -> Result<(), String> {
        let connector = self.ctx.pools().connector().clone();
        crate::shared::watched::kill_query(&connector, &self.pool_key, &addr, thread).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_forms() {
        let d = Dialect::default();
        assert_eq!(parse_kill(b"KILL 12", d), Kill::Connection(Some(12)));
        assert_eq!(parse_kill(b"kill connection 12;", d), Kill::Connection(Some(12)));
        assert_eq!(parse_kill(b"KILL HARD QUERY 7", d), Kill::Query(Some(7)));
        assert_eq!(parse_kill(b"KILL CONNECTION_ID()", d), Kill::Connection(None));
        assert_eq!(parse_kill(b"KILL QUERY CONNECTION_ID()", d), Kill::Query(None));
        assert_eq!(parse_kill(b"KILL USER app", d), Kill::Unsupported);
        assert_eq!(parse_kill(b"KILL QUERY ID 5", d), Kill::Unsupported);
        assert_eq!(parse_kill(b"KILL 1 + 1", d), Kill::Unsupported);
    }

    #[test]
    fn connection_id_forms() {
        let d = Dialect::default();
        assert_eq!(connection_id_query(b"SELECT CONNECTION_ID()", d).as_deref(), Some("CONNECTION_ID()"));
        assert_eq!(connection_id_query(b"select connection_id( );", d).as_deref(), Some("connection_id( )"));
        assert_eq!(connection_id_query(b"SELECT CONNECTION_ID() AS id", d).as_deref(), Some("id"));
        assert_eq!(connection_id_query(b"SELECT CONNECTION_ID() `my id`", d).as_deref(), Some("my id"));
        assert_eq!(connection_id_query(b"SELECT CONNECTION_ID() + 1", d), None);
        assert_eq!(connection_id_query(b"SELECT 1, CONNECTION_ID()", d), None);
    }
}

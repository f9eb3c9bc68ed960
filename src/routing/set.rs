//! Parses `SET` statements into session-state changes the proxy can track and replay on
//! another backend connection, or says the statement cannot be tracked (→ pin).

use super::dialect::Dialect;
use super::lexer::{Lexer, Tok, Token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetItem {
    /// A session variable set to a literal (`'STRICT_TRANS_TABLES'`, `0`, `ON`, `DEFAULT`).
    /// `name` is lowercase without `@@session.`; `value` is the literal as written.
    Session { name: String, value: String },
    /// `SET NAMES cs [COLLATE coll]` / `SET NAMES DEFAULT`.
    Names { charset: String, collation: Option<String> },
    /// `SET CHARACTER SET cs` / `SET CHARSET cs`.
    CharacterSet(String),
    /// `@var = …`: user variables live only on one connection.
    UserVar,
    /// `SET GLOBAL …`, `@@global.…`: server state, nothing to track.
    Global,
    /// `SET TRANSACTION …` without SESSION: applies to the next transaction only.
    NextTransaction,
}

/// `None`: the statement changes session state in a way that cannot be replayed.
pub fn parse_set(sql: &[u8], dialect: Dialect) -> Option<Vec<SetItem>> {
    let mut p = Parser { lx: Lexer::new(sql, dialect), peeked: None };
    let first = p.next()?;
    if !(first.kind == Tok::Word && p.is(&first, "SET")) {
        return None;
    }
    let mut items = Vec::new();
    loop {
        p.item(&mut items)?;
        match p.next() {
            Some(t) if t.kind == Tok::Punct(b',') => continue,
            Some(t) if t.kind == Tok::Punct(b';') => return p.next().is_none().then_some(items),
            None => return Some(items),
            Some(_) => return None,
        }
    }
}

struct Parser<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token>,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<Token> {
        self.peeked.take().or_else(|| self.lx.next_token(&mut |_| {}))
    }

    fn peek(&mut self) -> Option<Token> {
        if self.peeked.is_none() {
            self.peeked = self.lx.next_token(&mut |_| {});
        }
        self.peeked
    }

    fn is(&self, t: &Token, w: &str) -> bool {
        t.kind == Tok::Word && self.lx.text(t).eq_ignore_ascii_case(w.as_bytes())
    }

    fn text(&self, t: &Token) -> String {
        String::from_utf8_lossy(self.lx.text(t)).into_owned()
    }

    fn item(&mut self, items: &mut Vec<SetItem>) -> Option<()> {
        let mut t = self.next()?;
        let mut global = false;
        let mut explicit_session = false;
        if self.is(&t, "SESSION") || self.is(&t, "LOCAL") {
            explicit_session = true;
            t = self.next()?;
        } else if self.is(&t, "GLOBAL") || self.is(&t, "PERSIST") || self.is(&t, "PERSIST_ONLY") {
            global = true;
            t = self.next()?;
        }
        if self.is(&t, "NAMES") {
            return self.names(items);
        }
        if self.is(&t, "CHARSET")
            || (self.is(&t, "CHARACTER") && self.peek().is_some_and(|n| self.is(&n, "SET")))
        {
            if self.is(&t, "CHARACTER") {
                self.next();
            }
            let cs = self.literal()?;
            items.push(SetItem::CharacterSet(cs));
            return Some(());
        }
        if self.is(&t, "TRANSACTION") {
            return self.transaction(items, global, explicit_session);
        }
        let name = match t.kind {
            Tok::UserVar => None,
            Tok::SysVar => {
                let raw = self.text(&t).to_ascii_lowercase();
                let raw = raw.trim_start_matches("@@");
                global |= raw.starts_with("global.");
                let name = raw.rsplit('.').next().unwrap_or(raw);
                Some(name.trim_matches('`').to_string())
            }
            Tok::Word | Tok::Ident => Some(self.text(&t).trim_matches('`').to_ascii_lowercase()),
            _ => return None,
        };
        let name = name.map(|n| canonical_name(&n).to_string());
        let eq = self.next()?;
        if !matches!(eq.kind, Tok::Punct(b'=') | Tok::Assign) {
            return None;
        }
        let value = self.value();
        match (name, global) {
            (None, _) => items.push(SetItem::UserVar),
            (Some(_), true) => items.push(SetItem::Global),
            (Some(name), false) => items.push(SetItem::Session { name, value: value? }),
        }
        Some(())
    }

    /// A single literal (optionally negative), up to the next `,` or the end; `None` for
    /// expressions, which depend on state the proxy cannot see.
    fn value(&mut self) -> Option<String> {
        let first = self.peek()?;
        let start = first.start;
        let mut end = first.end;
        let mut count = 0;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            match t.kind {
                Tok::Punct(b',' | b';') if depth <= 0 => break,
                Tok::Punct(b'(') => depth += 1,
                Tok::Punct(b')') => depth -= 1,
                _ => {}
            }
            self.next();
            end = t.end;
            count += 1;
        }
        let sql_text = self.lx_slice(start, end);
        let single = count == 1 && matches!(first.kind, Tok::Str | Tok::Number | Tok::Word);
        let negative = count == 2 && first.kind == Tok::Punct(b'-');
        (single || negative).then(|| String::from_utf8_lossy(sql_text).into_owned())
    }

    fn lx_slice(&self, start: usize, end: usize) -> &'a [u8] {
        let t = Token { kind: Tok::Word, start, end };
        self.lx.text(&t)
    }

    fn literal(&mut self) -> Option<String> {
        let t = self.next()?;
        match t.kind {
            Tok::Word | Tok::Str | Tok::Ident => Some(self.text(&t)),
            _ => None,
        }
    }

    fn names(&mut self, items: &mut Vec<SetItem>) -> Option<()> {
        let charset = self.literal()?;
        let collation = match self.peek() {
            Some(t) if self.is(&t, "COLLATE") => {
                self.next();
                Some(self.literal()?)
            }
            _ => None,
        };
        items.push(SetItem::Names { charset, collation });
        Some(())
    }

    /// `TRANSACTION ISOLATION LEVEL … [, READ ONLY|WRITE]` or `TRANSACTION READ ONLY|WRITE`.
    fn transaction(&mut self, items: &mut Vec<SetItem>, global: bool, session: bool) -> Option<()> {
        let mut out = Vec::new();
        loop {
            let t = self.next()?;
            if self.is(&t, "ISOLATION") {
                let level = self.next().filter(|l| self.is(l, "LEVEL"))?;
                let _ = level;
                let a = self.next()?;
                let level = if self.is(&a, "SERIALIZABLE") {
                    "SERIALIZABLE".to_string()
                } else {
                    let b = self.next()?;
                    format!("{}-{}", self.text(&a), self.text(&b)).to_ascii_uppercase()
                };
                if !["READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"]
                    .contains(&level.as_str())
                {
                    return None;
                }
                out.push(SetItem::Session {
                    name: "transaction_isolation".into(),
                    value: format!("'{level}'"),
                });
            } else if self.is(&t, "READ") {
                let mode = self.next()?;
                let ro = if self.is(&mode, "ONLY") {
                    "1"
                } else if self.is(&mode, "WRITE") {
                    "0"
                } else {
                    return None;
                };
                out.push(SetItem::Session { name: "transaction_read_only".into(), value: ro.into() });
            } else {
                return None;
            }
            match self.peek() {
                Some(t) if t.kind == Tok::Punct(b',') && self.comma_continues_transaction() => {
                    self.next();
                }
                _ => break,
            }
        }
        if global {
            items.push(SetItem::Global);
        } else if session {
            items.extend(out);
        } else {
            items.push(SetItem::NextTransaction);
        }
        Some(())
    }

    /// After `SET TRANSACTION ISOLATION LEVEL X`, a comma followed by `READ` continues the
    /// characteristics list; anything else is the next SET item.
    fn comma_continues_transaction(&mut self) -> bool {
        let saved = (self.lx_pos(), self.peeked);
        self.peeked = None;
        let after = self.lx.next_token(&mut |_| {});
        let cont = after.is_some_and(|t| self.is(&t, "READ") || self.is(&t, "ISOLATION"));
        self.restore(saved);
        cont
    }

    fn lx_pos(&self) -> Lexer<'a> {
        self.lx.clone()
    }

    fn restore(&mut self, saved: (Lexer<'a>, Option<Token>)) {
        self.lx = saved.0;
        self.peeked = saved.1;
    }
}

/// The spelling a server understands: MariaDB keeps `tx_*`, MySQL 8 only has `transaction_*`.
pub fn replay_name(canonical: &str, mariadb: bool) -> &str {
    match (canonical, mariadb) {
        ("transaction_isolation", true) => "tx_isolation",
        ("transaction_read_only", true) => "tx_read_only",
        (name, _) => name,
    }
}

/// Aliases that name the same session variable (older and newer spellings).
pub fn canonical_name(name: &str) -> &str {
    match name {
        "tx_isolation" => "transaction_isolation",
        "tx_read_only" => "transaction_read_only",
        other => other,
    }
}

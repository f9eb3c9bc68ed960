//! `classify`: SQL text → `Statement` (kind, routing/pinning flags, comment hints, digest) in
//! one pass over the lexer's tokens. No AST; anything unrecognised is `Kind::Other` (writer).

use super::dialect::Dialect;
use super::digest::DigestBuilder;
use super::lexer::{Lexer, Tok, Token};
pub use super::statement::{Consistency, Flags, Hint, HintTarget, Kind, Statement, Tx};

/// Reads `sql` as a server of `dialect` would (version-conditional comments included).
pub fn classify(sql: &[u8], dialect: Dialect) -> Statement {
    let mut pass = Pass::new(sql.len());
    let mut lexer = Lexer::new(sql, dialect);
    let mut hint = Hint::default();
    // Validated once; token boundaries are ASCII bytes, so slices stay valid UTF-8.
    let utf8 = std::str::from_utf8(sql).ok();
    let (mut start, mut end) = (None, 0);
    while let Some(tok) = lexer.next_token(&mut |c| read_hint(c, &mut hint)) {
        start.get_or_insert(tok.start);
        if tok.kind != Tok::Punct(b';') {
            end = tok.end;
        }
        let text = lexer.text(&tok);
        match utf8.and_then(|s| s.get(tok.start..tok.end)) {
            Some(s) => pass.digest.push(tok.kind, s),
            None => pass.digest.push(tok.kind, &String::from_utf8_lossy(text)),
        }
        pass.token(tok, text);
    }
    pass.end_statement();
    let statements = pass.statements;
    let kind = if statements == 0 { Kind::Empty } else { pass.first_kind.unwrap_or(Kind::Other) };
    let mut flags = pass.flags;
    let kind = match kind {
        Kind::Read if flags.has(Flags::FOR_UPDATE | Flags::FOR_SHARE) => Kind::LockingRead,
        k => k,
    };
    if statements > 1 {
        flags.set(Flags::MULTI);
        if pass.has_state {
            flags.set(Flags::STATE_IN_MULTI);
        }
    }
    let start = start.unwrap_or(0).min(end);
    Statement { kind, flags, hint, digest: pass.digest.finish(), statements, span: (start, end) }
}

struct Pass<'a> {
    digest: DigestBuilder,
    flags: Flags,
    statements: u32,
    has_state: bool,
    first_kind: Option<Kind>,
    /// Kind of the statement being read, once its leading words are known.
    kind: Option<Kind>,
    words: u32,
    first: &'a [u8],
    depth: i32,
    prev: [(Option<Tok>, &'a [u8]); 3],
    restart: bool,
    /// Not a `HANDLER` statement, or its OPEN / READ / CLOSE word was read.
    handler_done: bool,
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

impl<'a> Pass<'a> {
    fn new(len: usize) -> Self {
        Pass {
            digest: DigestBuilder::with_capacity(len),
            flags: Flags::default(),
            statements: 0,
            has_state: false,
            first_kind: None,
            kind: None,
            words: 0,
            first: &[],
            depth: 0,
            prev: [(None, &[]); 3],
            restart: false,
            handler_done: false,
        }
    }

    fn prev_word(&self, i: usize, w: &str) -> bool {
        self.prev[i].0 == Some(Tok::Word) && eq(self.prev[i].1, w)
    }

    fn token(&mut self, tok: Token, text: &'a [u8]) {
        match tok.kind {
            Tok::Punct(b';') if self.depth <= 0 => {
                self.end_statement();
                return;
            }
            Tok::Punct(b'(') if self.words == 0 => {
                // `(SELECT …) UNION (…)`: the first word inside decides the kind.
                self.depth += 1;
                return;
            }
            Tok::Punct(b'(') => {
                self.depth += 1;
                if self.prev[0].0 == Some(Tok::Word) {
                    self.function(self.prev[0].1);
                }
            }
            Tok::Punct(b')') => self.depth -= 1,
            Tok::Word => self.word(text),
            Tok::UserVar => self.flags.set(Flags::USER_VAR_READ),
            Tok::Assign if self.prev[0].0 == Some(Tok::UserVar) => self.flags.set(Flags::USER_VAR_ASSIGN),
            Tok::SysVar => self.sys_var(text),
            _ => {}
        }
        if std::mem::take(&mut self.restart) {
            self.words = 0;
            self.kind = None;
            self.prev = [(None, &[]); 3];
            return;
        }
        self.words += 1;
        self.prev = [(Some(tok.kind), text), self.prev[0], self.prev[1]];
    }

    fn word(&mut self, w: &'a [u8]) {
        if self.words == 0 {
            self.handler_done = !eq(w, "HANDLER");
            self.first = w;
            self.kind = Some(leading_kind(w));
            self.leading_flags(w);
        } else if self.words == 1 {
            self.second_word(w);
        }
        if self.kind == Some(Kind::Read)
            && self.depth == 0
            && self.words > 0
            && eq(self.first, "WITH")
            && ["UPDATE", "DELETE", "INSERT", "REPLACE"].iter().any(|k| eq(w, k))
        {
            self.kind = Some(Kind::Write);
        }
        if !self.handler_done && self.words >= 2 && self.depth == 0 {
            if eq(w, "OPEN") {
                self.flags.set(Flags::HANDLER_OPEN);
            } else if eq(w, "CLOSE") {
                self.flags.set(Flags::HANDLER_CLOSE);
            }
            self.handler_done = ["OPEN", "CLOSE", "READ"].iter().any(|k| eq(w, k));
        }
        if self.kind == Some(Kind::Transaction(Tx::Begin)) && eq(w, "ONLY") && self.prev_word(0, "READ") {
            self.kind = Some(Kind::Transaction(Tx::BeginReadOnly));
        }
        if (eq(w, "UPDATE") || eq(w, "SHARE")) && self.prev_word(0, "FOR") {
            self.flags.set(if eq(w, "UPDATE") { Flags::FOR_UPDATE } else { Flags::FOR_SHARE });
        } else if eq(w, "MODE")
            && self.prev_word(0, "SHARE")
            && self.prev_word(1, "IN")
            && self.prev_word(2, "LOCK")
        {
            self.flags.set(Flags::FOR_SHARE);
        } else if eq(w, "LOCK") && self.prev_word(0, "READ") && eq(self.first, "FLUSH") {
            self.flags.set(Flags::GLOBAL_LOCK);
        } else if eq(w, "INTO") && self.kind == Some(Kind::Read) {
            self.flags.set(Flags::INTO);
        } else if eq(w, "SQL_CALC_FOUND_ROWS") {
            self.flags.set(Flags::CALC_FOUND_ROWS);
        } else if eq(w, "FOR")
            && self.prev_word(0, "VALUE")
            && (self.prev_word(1, "NEXT") || self.prev_word(1, "PREVIOUS"))
        {
            self.flags.set(Flags::SEQUENCE);
        } else if eq(w, "FOR") && eq(self.first, "SET") && self.depth == 0 && self.kind == Some(Kind::Other) {
            // SET STATEMENT … FOR <statement>: the statement after FOR decides the kind.
            self.restart = true;
        }
    }

    fn leading_flags(&mut self, w: &[u8]) {
        let f = &mut self.flags;
        match () {
            _ if eq(w, "INSERT") || eq(w, "REPLACE") => f.set(Flags::INSERT),
            _ if eq(w, "CALL") => f.set(Flags::CALL),
            _ if eq(w, "UNLOCK") => f.set(Flags::UNLOCK_TABLES),
            _ if eq(w, "LOCK") => f.set(Flags::LOCK_TABLES),
            _ if eq(w, "PREPARE") => f.set(Flags::PREPARE_SQL),
            _ if eq(w, "EXECUTE") => f.set(Flags::EXECUTE_SQL),
            _ if eq(w, "DEALLOCATE") => f.set(Flags::DEALLOCATE_SQL),
            _ if eq(w, "GET") => f.set(Flags::SESSION_INFO),
            _ if eq(w, "KILL") => f.set(Flags::KILL),
            _ => {}
        }
    }

    fn second_word(&mut self, w: &[u8]) {
        let first = self.first;
        if eq(first, "CREATE") && eq(w, "TEMPORARY") {
            self.flags.set(Flags::CREATE_TEMP);
        } else if eq(first, "DROP") && eq(w, "TEMPORARY") {
            self.flags.set(Flags::DROP_TEMP);
        } else if eq(first, "DROP") && eq(w, "PREPARE") {
            self.flags.set(Flags::DEALLOCATE_SQL);
            self.kind = Some(Kind::Other);
        } else if eq(first, "START") {
            self.kind = Some(if eq(w, "TRANSACTION") { Kind::Transaction(Tx::Begin) } else { Kind::Ddl });
        } else if eq(first, "ROLLBACK") && eq(w, "TO") {
            self.kind = Some(Kind::Transaction(Tx::RollbackToSavepoint));
        } else if eq(first, "RELEASE") && eq(w, "SAVEPOINT") {
            self.kind = Some(Kind::Transaction(Tx::ReleaseSavepoint));
        } else if eq(first, "SET") && eq(w, "STATEMENT") {
            self.kind = Some(Kind::Other);
        } else if eq(first, "SET") && eq(w, "GLOBAL") {
            self.kind = Some(Kind::Ddl);
        } else if eq(first, "ANALYZE") && !eq(w, "TABLE") {
            self.kind = Some(Kind::Write); // ANALYZE <statement> executes it
        } else if eq(first, "SHOW") {
            self.show(w);
        } else if eq(first, "BEGIN") && eq(w, "NOT") {
            self.kind = Some(Kind::Write); // BEGIN NOT ATOMIC compound statement
        } else if eq(first, "XA") {
            if eq(w, "START") || eq(w, "BEGIN") {
                self.flags.set(Flags::XA_START);
            } else if eq(w, "COMMIT") || eq(w, "ROLLBACK") {
                self.flags.set(Flags::XA_FINISH);
            }
        }
    }

    fn show(&mut self, w: &[u8]) {
        // GLOBAL: server settings and counters are the primary's, as on a direct connection
        // (a SET GLOBAL by the session ran there).
        const PRIMARY: [&str; 8] =
            ["MASTER", "BINARY", "BINLOG", "SLAVE", "REPLICA", "PROCESSLIST", "ENGINE", "GLOBAL"];
        if eq(w, "WARNINGS") || eq(w, "ERRORS") || eq(w, "COUNT") || eq(w, "PROFILE") || eq(w, "PROFILES") {
            self.flags.set(Flags::SESSION_INFO);
        } else if PRIMARY.iter().any(|k| eq(w, k)) {
            self.flags.set(Flags::PRIMARY_ONLY);
        }
    }

    fn function(&mut self, name: &[u8]) {
        const TABLE: [(&str, u64); 15] = [
            ("CONNECTION_ID", Flags::CONNECTION_ID),
            ("GET_LOCK", Flags::GET_LOCK),
            ("RELEASE_LOCK", Flags::RELEASE_LOCK),
            ("RELEASE_ALL_LOCKS", Flags::RELEASE_ALL_LOCKS),
            ("IS_USED_LOCK", Flags::LOCK_QUERY),
            ("IS_FREE_LOCK", Flags::LOCK_QUERY),
            ("LAST_INSERT_ID", Flags::LAST_INSERT_ID),
            ("FOUND_ROWS", Flags::FOUND_ROWS),
            ("ROW_COUNT", Flags::SESSION_INFO | Flags::ROW_COUNT),
            ("NEXTVAL", Flags::SEQUENCE),
            ("SETVAL", Flags::SEQUENCE),
            ("LASTVAL", Flags::SEQUENCE),
            ("MASTER_POS_WAIT", Flags::SIDE_EFFECT),
            ("MASTER_GTID_WAIT", Flags::SIDE_EFFECT),
            ("LOAD_FILE", Flags::SIDE_EFFECT),
        ];
        if let Some((_, f)) = TABLE.iter().find(|(n, _)| eq(name, n)) {
            self.flags.set(*f);
        }
    }

    fn sys_var(&mut self, text: &[u8]) {
        if text.get(..9).is_some_and(|p| p.eq_ignore_ascii_case(b"@@global.")) {
            self.flags.set(Flags::PRIMARY_ONLY);
        }
        let name = text.rsplit(|&c| c == b'.').next().unwrap_or(text);
        let name = name.strip_prefix(b"@@").unwrap_or(name);
        if ["warning_count", "error_count"].iter().any(|n| eq(name, n)) {
            self.flags.set(Flags::SESSION_INFO);
        } else if ["identity", "last_insert_id"].iter().any(|n| eq(name, n)) {
            self.flags.set(Flags::LAST_INSERT_ID);
        }
    }

    fn end_statement(&mut self) {
        if self.words == 0 {
            return;
        }
        let kind = self.kind.unwrap_or(Kind::Other);
        self.statements += 1;
        match self.first_kind {
            None => self.first_kind = Some(kind),
            Some(first) => {
                if !matches!(kind, Kind::Read | Kind::Show) || !matches!(first, Kind::Read | Kind::Show) {
                    self.flags.set(Flags::NOT_ALL_READS);
                }
                if matches!(first, Kind::Read | Kind::Show) && !matches!(kind, Kind::Read | Kind::Show) {
                    self.first_kind = Some(kind);
                }
            }
        }
        self.has_state |= matches!(kind, Kind::SessionSet | Kind::Use | Kind::Transaction(_));
        self.words = 0;
        self.kind = None;
        self.depth = 0;
        self.prev = [(None, &[]); 3];
        self.handler_done = false;
    }
}

fn leading_kind(w: &[u8]) -> Kind {
    const READ: [&str; 4] = ["SELECT", "WITH", "VALUES", "TABLE"];
    const SHOW: [&str; 5] = ["SHOW", "DESCRIBE", "DESC", "EXPLAIN", "HELP"];
    const WRITE: [&str; 9] =
        ["INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "CALL", "DO", "HANDLER", "ANALYZE"];
    const DDL: [&str; 17] = [
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "RENAME",
        "GRANT",
        "REVOKE",
        "OPTIMIZE",
        "REPAIR",
        "CHECK",
        "CHECKSUM",
        "FLUSH",
        "RESET",
        "PURGE",
        "INSTALL",
        "UNINSTALL",
        "KILL",
    ];
    let any = |list: &[&str]| list.iter().any(|k| eq(w, k));
    if any(&READ) {
        Kind::Read
    } else if any(&SHOW) {
        Kind::Show
    } else if any(&WRITE) {
        Kind::Write
    } else if any(&DDL) || any(&["SHUTDOWN", "CHANGE", "STOP", "BINLOG", "CACHE", "BACKUP", "START"]) {
        Kind::Ddl
    } else if eq(w, "SET") {
        Kind::SessionSet
    } else if eq(w, "USE") {
        Kind::Use
    } else {
        tx_kind(w).map_or(Kind::Other, Kind::Transaction)
    }
}

fn tx_kind(w: &[u8]) -> Option<Tx> {
    Some(match () {
        _ if eq(w, "BEGIN") => Tx::Begin,
        _ if eq(w, "COMMIT") => Tx::Commit,
        _ if eq(w, "ROLLBACK") => Tx::Rollback,
        _ if eq(w, "SAVEPOINT") => Tx::Savepoint,
        _ if eq(w, "XA") => Tx::Xa,
        _ => return None,
    })
}

fn read_hint(comment: &[u8], hint: &mut Hint) {
    let mentions = |n: &[u8]| comment.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    if !mentions(b"rwproxy") && !mentions(b"hostgroup") {
        return;
    }
    let text = String::from_utf8_lossy(comment);
    for part in text.split(|c: char| c.is_whitespace() || c == ',') {
        let lower = part.to_ascii_lowercase();
        match lower.as_str() {
            "rwproxy:writer" | "rwproxy:primary" => hint.target = Some(HintTarget::Writer),
            "rwproxy:reader" | "rwproxy:replica" => hint.target = Some(HintTarget::Reader),
            "rwproxy:consistency=none" => hint.consistency = Some(Consistency::None),
            "rwproxy:consistency=session" => hint.consistency = Some(Consistency::Session),
            "rwproxy:consistency=global" => hint.consistency = Some(Consistency::Global),
            "rwproxy:consistency=universal" => hint.consistency = Some(Consistency::Universal),
            item if item.starts_with("rwproxy:min_gtid=") => hint.min_gtid = true,
            item if item.starts_with("rwproxy:timeout_ms=") => {
                hint.timeout_ms = item["rwproxy:timeout_ms=".len()..].parse().ok().filter(|&n| n > 0);
            }
            item => {
                let item = item.strip_prefix("rwproxy:").unwrap_or(item);
                if let Some(n) = item.strip_prefix("hostgroup=").and_then(|n| n.parse().ok()) {
                    hint.hostgroup = Some(n);
                }
            }
        }
    }
}

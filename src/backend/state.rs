//! Session state as the proxy tracks it: what a client wants, and what a backend connection
//! has applied. Comparing the two gives the statements that bring a connection in line.

/// Replayable session state (everything but the schema, tracked separately).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SessionVars {
    /// `SET NAMES cs [COLLATE coll]`.
    pub names: Option<(String, Option<String>)>,
    /// `SET CHARACTER SET cs`.
    pub charset: Option<String>,
    /// Session variables with literal values, canonical lowercase names, in first-set order.
    pub vars: Vec<(String, String)>,
    /// The value `LAST_INSERT_ID()` returns.
    pub last_insert_id: u64,
    /// The handshake collation the character-set state starts from (before any `SET NAMES`).
    pub collation: u8,
}

/// Variables that `SET NAMES` / `SET CHARACTER SET` change together.
pub const CHARSET_VARS: [&str; 4] =
    ["character_set_client", "character_set_connection", "character_set_results", "collation_connection"];

/// Variables that change how a statement is parsed (besides the schema): a prepared statement
/// is bound to their values at prepare time.
const PARSE_VARS: [&str; 5] = [
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];

impl SessionVars {
    pub fn with_collation(collation: u8) -> Self {
        SessionVars { collation, ..SessionVars::default() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.vars.push((name.to_string(), value.to_string())),
        }
    }

    /// Follows `autocommit` as the server's status flags report it (however it was changed):
    /// off is carried as `autocommit = 0` and replayed like any variable; on is the default.
    pub fn follow_autocommit(&mut self, off: bool) {
        match (self.vars.iter().position(|(n, _)| n == "autocommit"), off) {
            (None, true) => self.vars.push(("autocommit".into(), "0".into())),
            (Some(i), false) => {
                self.vars.remove(i);
            }
            _ => {}
        }
    }

    /// The session's transactions are read-only (`SET SESSION TRANSACTION READ ONLY`).
    pub fn read_only(&self) -> bool {
        self.get("transaction_read_only")
            .is_some_and(|v| ["1", "on", "true"].iter().any(|t| v.trim_matches('\'').eq_ignore_ascii_case(t)))
    }

    pub fn set_names(&mut self, charset: String, collation: Option<String>) {
        self.vars.retain(|(n, _)| !CHARSET_VARS.contains(&n.as_str()));
        self.charset = None;
        self.names = Some((charset, collation));
    }

    pub fn set_charset(&mut self, charset: String) {
        self.vars.retain(|(n, _)| !CHARSET_VARS.contains(&n.as_str()));
        self.names = None;
        self.charset = Some(charset);
    }

    /// Same replayable state (ignoring `last_insert_id`, which is synced only when read).
    pub fn same_settings(&self, other: &SessionVars) -> bool {
        self.names == other.names
            && self.charset == other.charset
            && self.vars == other.vars
            && self.collation == other.collation
    }

    /// Only what binds a prepared statement: character-set state and `sql_mode`.
    pub fn parse_part(&self) -> SessionVars {
        SessionVars {
            names: self.names.clone(),
            charset: self.charset.clone(),
            vars: self.vars.iter().filter(|(n, _)| PARSE_VARS.contains(&n.as_str())).cloned().collect(),
            last_insert_id: 0,
            collation: self.collation,
        }
    }

    /// This state with its parse-relevant part replaced by `parse`'s.
    pub fn with_parse(&self, parse: &SessionVars) -> SessionVars {
        let mut out = self.clone();
        out.vars.retain(|(n, _)| !PARSE_VARS.contains(&n.as_str()));
        out.vars.extend(parse.vars.iter().cloned());
        out.names = parse.names.clone();
        out.charset = parse.charset.clone();
        out.collation = parse.collation;
        out
    }
}

/// Which sessions (by id; 0: none) the connection's "previous statement" state belongs to:
/// what `ROW_COUNT()` (the last statement), `FOUND_ROWS()` (the last `SELECT`) and the
/// diagnostics area (the last statement with warnings or an error) would show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeOwners {
    pub statement: u32,
    pub select: u32,
    pub diagnostics: u32,
}

/// A statement prepared on one backend connection.
#[derive(Debug, Clone)]
pub struct BackendStmt {
    pub id: u32,
    /// The PREPARE_OK reply payloads (metadata), for lazy re-prepares' bookkeeping.
    pub reply: Vec<Vec<u8>>,
    /// Parameter types this backend statement last received.
    pub types: Option<Vec<u8>>,
    /// When it was last used (the cache's clock), for least-recently-used eviction.
    pub used: u64,
}

/// Statements prepared on a connection, keyed by SQL text and the parse state they were
/// prepared under (`ParseState::key`); at most `max` and `PREPARED_CACHE_MAX_BYTES` (SQL text
/// plus metadata), the least recently used closed first.
#[derive(Debug)]
pub struct PreparedCache {
    map: crate::FastMap<Vec<u8>, Vec<(u64, BackendStmt)>>,
    len: usize,
    max: usize,
    bytes: usize,
    clock: u64,
}

/// The per-connection bound until the configured one is applied.
pub const PREPARED_CACHE_MAX: usize = 20;
/// What one connection's statement cache may hold in bytes (a statement larger than this is
/// still prepared, alone).
pub const PREPARED_CACHE_MAX_BYTES: usize = 1 << 20;

impl Default for PreparedCache {
    fn default() -> Self {
        PreparedCache { map: crate::FastMap::default(), len: 0, max: PREPARED_CACHE_MAX, bytes: 0, clock: 0 }
    }
}

fn entry_bytes(sql: &[u8], stmt: &BackendStmt) -> usize {
    sql.len() + stmt.reply.iter().map(Vec::len).sum::<usize>()
}

impl PreparedCache {
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    pub fn get(&self, sql: &[u8], parse: u64) -> Option<&BackendStmt> {
        self.map.get(sql)?.iter().find(|(k, _)| *k == parse).map(|(_, s)| s)
    }

    /// Like `get`, and counts as a use.
    pub fn get_mut(&mut self, sql: &[u8], parse: u64) -> Option<&mut BackendStmt> {
        self.clock += 1;
        let clock = self.clock;
        let s = self.map.get_mut(sql)?.iter_mut().find(|(k, _)| *k == parse).map(|(_, s)| s)?;
        s.used = clock;
        Some(s)
    }

    /// Room for one more: evicts least recently used statements while full; their ids, to
    /// close on the backend.
    pub fn make_room(&mut self) -> Vec<u32> {
        let mut evicted = Vec::new();
        while self.len >= self.max {
            match self.evict_lru() {
                Some(id) => evicted.push(id),
                None => break,
            }
        }
        evicted
    }

    /// Inserts; returns the ids of statements evicted to make room, to close on the backend.
    pub fn insert(&mut self, sql: Vec<u8>, parse: u64, mut stmt: BackendStmt) -> Vec<u32> {
        let mut evicted = Vec::new();
        let size = entry_bytes(&sql, &stmt);
        while self.len >= self.max || (self.len > 0 && self.bytes + size > PREPARED_CACHE_MAX_BYTES) {
            match self.evict_lru() {
                Some(id) => evicted.push(id),
                None => break,
            }
        }
        self.clock += 1;
        stmt.used = self.clock;
        self.map.entry(sql).or_default().push((parse, stmt));
        self.len += 1;
        self.bytes += size;
        evicted
    }

    fn evict_lru(&mut self) -> Option<u32> {
        let (sql, parse) = self
            .map
            .iter()
            .flat_map(|(sql, list)| list.iter().map(move |(k, s)| (s.used, sql, *k)))
            .min_by_key(|(used, _, _)| *used)
            .map(|(_, sql, k)| (sql.clone(), k))?;
        self.remove(&sql, parse).map(|s| s.id)
    }

    pub fn remove(&mut self, sql: &[u8], parse: u64) -> Option<BackendStmt> {
        let list = self.map.get_mut(sql)?;
        let i = list.iter().position(|(k, _)| *k == parse)?;
        let (_, s) = list.remove(i);
        if list.is_empty() {
            self.map.remove(sql);
        }
        self.len -= 1;
        self.bytes -= entry_bytes(sql, &s);
        Some(s)
    }

    /// Forgets every statement; their ids, to close on the backend.
    pub fn drain_ids(&mut self) -> Vec<u32> {
        let ids = self.map.values().flatten().map(|(_, s)| s.id).collect();
        self.clear();
        ids
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.len = 0;
        self.bytes = 0;
    }

    /// Bytes held (SQL text and metadata).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(id: u32) -> BackendStmt {
        BackendStmt { id, reply: Vec::new(), types: None, used: 0 }
    }

    #[test]
    fn the_least_recently_used_statement_goes_first() {
        let mut c = PreparedCache::default();
        c.set_max(2);
        assert!(c.insert(b"a".to_vec(), 1, stmt(1)).is_empty());
        assert!(c.insert(b"b".to_vec(), 1, stmt(2)).is_empty());
        c.get_mut(b"a", 1);
        assert_eq!(c.insert(b"c".to_vec(), 1, stmt(3)), vec![2], "b was used least recently");
        assert!(c.get(b"a", 1).is_some() && c.get(b"b", 1).is_none());
        assert_eq!(
            c.insert(b"a".to_vec(), 2, stmt(4)),
            vec![1],
            "same SQL, other parse state: another entry"
        );
        let mut left = c.drain_ids();
        left.sort();
        assert_eq!((left, c.len()), (vec![3, 4], 0));
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_too() {
        let mut c = PreparedCache::default();
        c.set_max(1000);
        let big = vec![b'x'; PREPARED_CACHE_MAX_BYTES / 3];
        for (i, tail) in [b'a', b'b', b'c', b'd'].into_iter().enumerate() {
            let mut sql = big.clone();
            sql.push(tail);
            let evicted = c.insert(sql, 1, stmt(i as u32 + 1));
            assert_eq!(evicted, if i < 2 { vec![] } else { vec![i as u32 - 1] }, "statement {i}");
        }
        assert!(c.bytes() <= PREPARED_CACHE_MAX_BYTES, "{}", c.bytes());
        let huge = vec![b'y'; PREPARED_CACHE_MAX_BYTES * 2];
        assert_eq!(c.insert(huge, 1, stmt(9)).len(), 2, "a huge one is kept alone");
        assert_eq!(c.len(), 1);
    }
}

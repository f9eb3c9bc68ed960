//! Session state as the proxy tracks it: what a client wants, and what a backend connection
//! has applied. Comparing the two gives the statements that bring a connection in line.

use std::collections::HashMap;

/// Replayable session state (everything but the schema, tracked separately).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionVars {
    /// `SET NAMES cs [COLLATE coll]`.
    pub names: Option<(String, Option<String>)>,
    /// `SET CHARACTER SET cs`.
    pub charset: Option<String>,
    /// Session variables with literal values, canonical lowercase names, in first-set order.
    pub vars: Vec<(String, String)>,
    /// The value `LAST_INSERT_ID()` returns.
    pub last_insert_id: u64,
}

/// Variables that `SET NAMES` / `SET CHARACTER SET` change together.
pub const CHARSET_VARS: [&str; 4] =
    ["character_set_client", "character_set_connection", "character_set_results", "collation_connection"];

impl SessionVars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.vars.push((name.to_string(), value.to_string())),
        }
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
        self.names == other.names && self.charset == other.charset && self.vars == other.vars
    }
}

/// A statement prepared on one backend connection.
#[derive(Debug, Clone)]
pub struct BackendStmt {
    pub id: u32,
    /// The PREPARE_OK reply payloads (metadata), replayed to clients that prepare the same SQL.
    pub reply: Vec<Vec<u8>>,
    /// Parameter types this backend statement last received.
    pub types: Option<Vec<u8>>,
}

/// Statements prepared on a connection, keyed by SQL text; bounded.
#[derive(Debug, Default)]
pub struct PreparedCache {
    map: HashMap<Vec<u8>, BackendStmt>,
}

pub const PREPARED_CACHE_MAX: usize = 256;

impl PreparedCache {
    pub fn get(&self, sql: &[u8]) -> Option<&BackendStmt> {
        self.map.get(sql)
    }
    pub fn get_mut(&mut self, sql: &[u8]) -> Option<&mut BackendStmt> {
        self.map.get_mut(sql)
    }
    /// Inserts; returns the id of an evicted statement to close on the backend, if any.
    pub fn insert(&mut self, sql: Vec<u8>, stmt: BackendStmt) -> Option<u32> {
        let evicted = if self.map.len() >= PREPARED_CACHE_MAX {
            let victim = self.map.keys().next().cloned();
            victim.and_then(|k| self.map.remove(&k)).map(|s| s.id)
        } else {
            None
        };
        self.map.insert(sql, stmt);
        evicted
    }
    pub fn remove(&mut self, sql: &[u8]) -> Option<BackendStmt> {
        self.map.remove(sql)
    }
    pub fn clear(&mut self) {
        self.map.clear();
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

//! Schemas a backend confirmed to a user: a login naming one of them skips the backend check
//! (answering `1049` at connect for a schema that does not exist still asks a backend, as
//! does a name not seen within `SCHEMA_TTL`). A backend that later reports the schema
//! unknown or forbidden (`1049`, `1044`) makes the proxy forget it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a confirmation is trusted: a schema dropped outside the proxy may still let
/// logins through for this long (their first statement then gets the server's 1049).
pub const SCHEMA_TTL: Duration = Duration::from_secs(10);
/// Confirmations kept (user × schema); older ones go first when full.
const MAX_ENTRIES: usize = 4096;

/// (user, schema).
type Key = (Box<str>, Box<str>);

#[derive(Default)]
pub struct KnownSchemas {
    confirmed: Mutex<HashMap<Key, Instant>>,
}

impl KnownSchemas {
    pub fn known(&self, user: &str, schema: &str) -> bool {
        let map = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        // Keyed by owned strings; a login is rare enough for the lookup's small allocation.
        map.get(&(user.into(), schema.into())).is_some_and(|at| at.elapsed() < SCHEMA_TTL)
    }

    pub fn learn(&self, user: &str, schema: &str) {
        let mut map = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, at| at.elapsed() < SCHEMA_TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert((user.into(), schema.into()), Instant::now());
    }

    pub fn forget(&self, user: &str, schema: &str) {
        let mut map = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(user.into(), schema.into()));
    }

    /// After a `DROP DATABASE` through this proxy: nothing confirmed before is trusted.
    pub fn forget_all(&self) {
        self.confirmed.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// `DROP DATABASE …` / `DROP SCHEMA …`.
pub fn drops_schema(sql: &[u8], dialect: crate::routing::Dialect) -> bool {
    crate::routing::lexer::starts_with_words(sql, dialect, &[&["DROP"], &["DATABASE", "SCHEMA"]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_are_per_user_and_can_be_forgotten() {
        let k = KnownSchemas::default();
        assert!(!k.known("app", "shop"));
        k.learn("app", "shop");
        assert!(k.known("app", "shop"));
        assert!(!k.known("other", "shop"), "another user's privileges may differ");
        k.forget("app", "shop");
        assert!(!k.known("app", "shop"));
        for i in 0..MAX_ENTRIES + 10 {
            k.learn("app", &format!("s{i}"));
        }
        assert!(k.confirmed.lock().unwrap().len() <= MAX_ENTRIES, "bounded");
        k.forget_all();
        assert!(!k.known("app", "s1"));
        let d = crate::routing::Dialect::default();
        assert!(drops_schema(b"drop /* x */ SCHEMA IF EXISTS a", d));
        assert!(!drops_schema(b"DROP TABLE a", d) && !drops_schema(b"SELECT 'DROP DATABASE a'", d));
    }
}

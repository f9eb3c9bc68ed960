//! Pure, synchronous routing: which hostgroup a command goes to, and why.
//!
//! Never mutates a router, never reads the clock: everything it needs comes in as values, so
//! every decision is reproducible and testable from a table.

/// What the router knows of the session, passed by value each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    pub default_hostgroup: u32,
}

/// Why a route was chosen; shown by the admin API and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No rule or classification applied: the user's `default_hostgroup`.
    DefaultHostgroup,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DefaultHostgroup => "user's default_hostgroup",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub hostgroup: u32,
    pub reason: Reason,
}

/// Decides where a statement runs. Read/write splitting plugs in here: the SQL text is
/// accepted already so callers do not change when classification arrives.
pub fn route(_sql: &[u8], facts: &SessionFacts) -> Route {
    Route { hostgroup: facts.default_hostgroup, reason: Reason::DefaultHostgroup }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_goes_to_the_default_hostgroup_for_now() {
        let facts = SessionFacts { default_hostgroup: 3 };
        for sql in ["SELECT 1", "INSERT INTO t VALUES (1)", "", "garbage \u{0}"] {
            assert_eq!(
                route(sql.as_bytes(), &facts),
                Route { hostgroup: 3, reason: Reason::DefaultHostgroup },
                "{sql}"
            );
        }
    }
}

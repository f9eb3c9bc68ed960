//! The state model: every kind of state a backend connection can carry, and the one mechanism
//! that keeps it from reaching another client. Pin reasons, the reset-or-close decision, the
//! metrics labels and the table in `docs/architecture.md` are all derived from this list.

/// How a kind of state is kept from leaking into another session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// The proxy knows the session's value and sets it on whatever connection runs the
    /// session's next statement.
    Replay,
    /// Part of the pool key: a connection only ever serves sessions that agree on it.
    Keyed,
    /// A connection left with it is reset (`COM_RESET_CONNECTION`) before anyone reuses it.
    Reset,
    /// A connection left with it is closed: no reset can clear it.
    Close,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Replay => "replay",
            Mechanism::Keyed => "keyed",
            Mechanism::Reset => "reset",
            Mechanism::Close => "close",
        }
    }
}

/// Whether the session keeps its connection while the state exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    No,
    /// Until the state ends (transaction over, lock released, …) or the session does.
    Held,
    /// For the session's next statement, if that statement reads the state (warnings after a
    /// statement that had some); any other statement releases it first.
    NextStatement,
}

/// One row of the model.
#[derive(Debug)]
pub struct KindInfo {
    pub name: &'static str,
    pub mechanism: Mechanism,
    pub pin: Pin,
    /// What the state is and how the proxy handles it (the docs table).
    pub how: &'static str,
}

macro_rules! state_kinds {
    ($($kind:ident = $name:literal, $mechanism:ident, $pin:ident, $how:literal;)*) => {
        /// A kind of state a MySQL/MariaDB connection carries.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StateKind { $($kind),* }

        impl StateKind {
            pub const ALL: &'static [StateKind] = &[$(StateKind::$kind),*];

            pub const fn info(self) -> &'static KindInfo {
                match self {
                    $(StateKind::$kind => &KindInfo {
                        name: $name,
                        mechanism: Mechanism::$mechanism,
                        pin: Pin::$pin,
                        how: $how,
                    }),*
                }
            }
        }
    };
}

state_kinds! {
    Schema = "schema", Replay, No,
        "`COM_INIT_DB` before a statement when the connection's schema differs";
    SessionVariables = "session_variables", Replay, No,
        "text `SET` of literal values: one combined `SET` before the statement; variables the session does not have go back with `= DEFAULT`";
    CharacterSet = "character_set", Replay, No,
        "handshake collation, `SET NAMES`, `SET CHARACTER SET`: `SET NAMES …` before the statement";
    MultiStatements = "multi_statements", Replay, No,
        "`CLIENT_MULTI_STATEMENTS` and `COM_SET_OPTION`: `COM_SET_OPTION` before the statement";
    LastInsertId = "last_insert_id", Replay, No,
        "`LAST_INSERT_ID()`, `@@identity`, `SET last_insert_id`: `SET last_insert_id = N` before a statement that reads it";
    PreparedStatements = "prepared_statements", Replay, No,
        "binary-protocol statements: a client's prepare is a real one; executes prepare lazily on the connection that runs them, under the schema, `sql_mode` and character set they were prepared with; at most `pool.max_prepared_statements_per_connection` per connection, least recently used closed first";
    FoundRows = "found_rows", Replay, NextStatement,
        "`FOUND_ROWS()`: kept for the next statement after `SQL_CALC_FOUND_ROWS`; read on a connection whose last `SELECT` was another session's, a `SELECT` from a derived table runs first and gives a fresh session's value (a reset does not clear it)";
    RowCount = "row_count", Replay, No,
        "`ROW_COUNT()`: read on a connection whose last statement was another session's, the same `SELECT` runs first (-1)";
    User = "user", Keyed, No,
        "the authenticated user: connections are pooled per user";
    ClientFlags = "client_flags", Keyed, No,
        "`CLIENT_FOUND_ROWS`, `DEPRECATE_EOF`, `LOCAL_FILES`, `MULTI_RESULTS`, `PS_MULTI_RESULTS`, `IGNORE_SPACE`, `NO_SCHEMA`: pooled per flag set";
    Transaction = "transaction", Reset, Held,
        "open transaction (`SERVER_STATUS_IN_TRANS`): pinned until the server reports it ended; a reset rolls it back";
    AutocommitOff = "autocommit_off", Replay, No,
        "`autocommit = 0`, however set, as the status flags report it: `SET autocommit = 0` before the statement; it pins nothing itself (an idle session holds no connection), the transaction its next statement opens does, and that starts on the writer unless the session's transactions are read-only";
    NextTransaction = "next_transaction", Reset, Held,
        "`SET TRANSACTION …` for the next transaction: pinned until a transaction ends";
    UserVariables = "user_variables", Reset, Held,
        "`@var` assigned by `SET`, `:=` or `SELECT … INTO`";
    TemporaryTables = "temporary_tables", Reset, Held,
        "`CREATE TEMPORARY TABLE` until dropped";
    NamedLocks = "named_locks", Reset, Held,
        "`GET_LOCK()` until released";
    TableLocks = "lock_tables", Reset, Held,
        "`LOCK TABLES` until `UNLOCK TABLES`";
    GlobalReadLock = "global_read_lock", Reset, Held,
        "`FLUSH TABLES … WITH READ LOCK` until `UNLOCK TABLES`";
    Handlers = "handlers", Reset, Held,
        "`HANDLER … OPEN` until `HANDLER … CLOSE`";
    SqlPrepared = "prepared_sql", Reset, Held,
        "text-protocol `PREPARE` until `DEALLOCATE PREPARE`";
    UntrackedState = "untracked_state", Reset, Held,
        "session state the proxy cannot replay: `SET` of expressions or session-only variables (`rand_seed1`, `insert_id`, `timestamp` …), `SET` by prepared statements, and whatever stored code or triggers changed, which the server reports (`SESSION_TRACK_STATE_CHANGE`); on a reader it only marks the connection for a reset";
    LongData = "long_data", Reset, Held,
        "`COM_STMT_SEND_LONG_DATA` not yet consumed by an execute";
    Cursors = "cursor", Reset, Held,
        "an open cursor (`COM_STMT_EXECUTE` with a cursor type) until fetched to the end, reset or closed";
    Diagnostics = "diagnostics", Replay, NextStatement,
        "warnings and errors, which outlive statements that use no table: a statement that reads them (`SHOW WARNINGS`, `@@warning_count`, `GET DIAGNOSTICS` …) on a connection holding another session's is preceded by that `SELECT` from a derived table, which empties them";
    IdleTimeout = "idle_timeout", Reset, No,
        "`wait_timeout` / `interactive_timeout`: replayed for the session's statements, and the proxy closes the idle client itself when its `wait_timeout` passes; a connection that carried one is reset when given back, so the server never closes it in the pool";
    StoredCode = "stored_code", Reset, No,
        "`CALL` and unrecognised statements: whatever the server does not report (named locks taken by a procedure …)";
    Xa = "xa", Close, Held,
        "XA transaction from `XA START` until `XA COMMIT`/`ROLLBACK`: a reset keeps a prepared XA transaction (and the connection then refuses writes with 1031), so the connection is closed, which leaves a prepared XA transaction to be recovered as a disconnect would";
}

impl StateKind {
    pub const COUNT: usize = Self::ALL.len();

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn mechanism(self) -> Mechanism {
        self.info().mechanism
    }

    pub fn pin(self) -> Pin {
        self.info().pin
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// A bit (by `index`) per kind that pins only for the next statement.
    pub const NEXT_STATEMENT_PINS: u64 = {
        let mut mask = 0;
        let mut i = 0;
        while i < Self::ALL.len() {
            if matches!(Self::ALL[i].info().pin, Pin::NextStatement) {
                mask |= 1 << i;
            }
            i += 1;
        }
        mask
    };

    /// Kinds a session can be pinned by (the pin metrics' labels).
    pub fn pinning() -> impl Iterator<Item = StateKind> {
        Self::ALL.iter().copied().filter(|k| k.pin() != Pin::No)
    }
}

/// A set of state kinds: what a connection was left with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u64);

impl KindSet {
    pub fn add(&mut self, k: StateKind) {
        self.0 |= 1 << k.index();
    }

    pub fn has(self, k: StateKind) -> bool {
        self.0 & 1 << k.index() != 0
    }

    pub fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = StateKind> {
        StateKind::ALL.iter().copied().filter(move |k| self.has(*k))
    }

    /// The strongest cleanup any kind in the set needs: `Close`, `Reset`, or none.
    pub fn cleanup(self) -> Option<Mechanism> {
        if self.is_empty() {
            return None;
        }
        let m = |want| self.iter().any(|k| k.mechanism() == want);
        if m(Mechanism::Close) {
            Some(Mechanism::Close)
        } else if m(Mechanism::Reset) {
            Some(Mechanism::Reset)
        } else {
            None
        }
    }
}

impl FromIterator<StateKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = StateKind>>(iter: I) -> Self {
        let mut s = KindSet::default();
        iter.into_iter().for_each(|k| s.add(k));
        s
    }
}

/// The model as a Markdown table (kept verbatim in `docs/architecture.md`; a test compares).
pub fn markdown_table() -> String {
    let mut out = String::from("| state | mechanism | pins the session | how |\n|---|---|---|---|\n");
    for k in StateKind::ALL {
        let pin = match k.pin() {
            Pin::No => "no",
            Pin::Held => "while it exists",
            Pin::NextStatement => "for the next statement",
        };
        out += &format!("| `{}` | {} | {pin} | {} |\n", k.name(), k.mechanism().as_str(), k.info().how);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fit_the_set() {
        const { assert!(StateKind::COUNT <= 64, "KindSet holds 64 kinds") };
        for (i, a) in StateKind::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            assert!(StateKind::ALL[i + 1..].iter().all(|b| b.name() != a.name()), "{}", a.name());
        }
    }

    #[test]
    fn the_strongest_cleanup_wins() {
        let s: KindSet = [StateKind::UserVariables, StateKind::Schema].into_iter().collect();
        assert_eq!(s.cleanup(), Some(Mechanism::Reset));
        let s = s.union([StateKind::Xa].into_iter().collect());
        assert_eq!(s.cleanup(), Some(Mechanism::Close));
        assert_eq!(KindSet::default().cleanup(), None);
        assert_eq!([StateKind::SessionVariables].into_iter().collect::<KindSet>().cleanup(), None);
    }

    #[test]
    fn the_architecture_doc_carries_the_model() {
        let doc = include_str!("../../docs/architecture.md");
        let table = markdown_table();
        assert!(doc.contains(&table), "docs/architecture.md must contain the state model table:\n{table}");
    }
}

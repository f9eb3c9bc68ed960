//! Why a session keeps its backend connection between statements, and when each reason ends.

use crate::protocol::{ReplyEnd, status};
use crate::routing::{Flags, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinReason {
    Transaction,
    AutocommitOff,
    UserVariables,
    TemporaryTables,
    NamedLocks,
    LockTables,
    GlobalReadLock,
    FoundRows,
    Warnings,
    Cursor,
    LongData,
    UnparseableSet,
    PreparedSql,
    NextTransaction,
}

impl PinReason {
    pub const ALL: [PinReason; 14] = [
        PinReason::Transaction,
        PinReason::AutocommitOff,
        PinReason::UserVariables,
        PinReason::TemporaryTables,
        PinReason::NamedLocks,
        PinReason::LockTables,
        PinReason::GlobalReadLock,
        PinReason::FoundRows,
        PinReason::Warnings,
        PinReason::Cursor,
        PinReason::LongData,
        PinReason::UnparseableSet,
        PinReason::PreparedSql,
        PinReason::NextTransaction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PinReason::Transaction => "transaction",
            PinReason::AutocommitOff => "autocommit_off",
            PinReason::UserVariables => "user_variables",
            PinReason::TemporaryTables => "temporary_tables",
            PinReason::NamedLocks => "named_locks",
            PinReason::LockTables => "lock_tables",
            PinReason::GlobalReadLock => "global_read_lock",
            PinReason::FoundRows => "found_rows",
            PinReason::Warnings => "warnings",
            PinReason::Cursor => "cursor",
            PinReason::LongData => "long_data",
            PinReason::UnparseableSet => "unparseable_set",
            PinReason::PreparedSql => "prepared_sql",
            PinReason::NextTransaction => "next_transaction",
        }
    }

    /// State this reason leaves on the connection that only a reset can clear.
    pub fn needs_reset(self) -> bool {
        matches!(
            self,
            PinReason::UserVariables
                | PinReason::TemporaryTables
                | PinReason::NamedLocks
                | PinReason::LockTables
                | PinReason::GlobalReadLock
                | PinReason::UnparseableSet
                | PinReason::PreparedSql
                | PinReason::NextTransaction
                | PinReason::Transaction
                | PinReason::AutocommitOff
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    in_trans: bool,
    autocommit_off: bool,
    user_vars: bool,
    temp_tables: u32,
    named_locks: u32,
    lock_tables: bool,
    global_lock: bool,
    found_rows: bool,
    warnings: bool,
    /// Client statement ids with an open cursor / pending long data.
    pub cursors: Vec<u32>,
    pub long_data: Vec<u32>,
    unparseable_set: bool,
    prepared_sql: u32,
    next_tx: bool,
}

impl Pins {
    pub fn has(&self, r: PinReason) -> bool {
        match r {
            PinReason::Transaction => self.in_trans,
            PinReason::AutocommitOff => self.autocommit_off,
            PinReason::UserVariables => self.user_vars,
            PinReason::TemporaryTables => self.temp_tables > 0,
            PinReason::NamedLocks => self.named_locks > 0,
            PinReason::LockTables => self.lock_tables,
            PinReason::GlobalReadLock => self.global_lock,
            PinReason::FoundRows => self.found_rows,
            PinReason::Warnings => self.warnings,
            PinReason::Cursor => !self.cursors.is_empty(),
            PinReason::LongData => !self.long_data.is_empty(),
            PinReason::UnparseableSet => self.unparseable_set,
            PinReason::PreparedSql => self.prepared_sql > 0,
            PinReason::NextTransaction => self.next_tx,
        }
    }

    pub fn reasons(&self) -> impl Iterator<Item = PinReason> + '_ {
        PinReason::ALL.into_iter().filter(|r| self.has(*r))
    }

    pub fn any(&self) -> bool {
        self.reasons().next().is_some()
    }

    /// Updates the pins from a statement and its reply. Transaction state always follows the
    /// server's status flags; other reasons change only when the statement succeeded.
    pub fn after_statement(&mut self, stmt: &Statement, end: &ReplyEnd) {
        if let Some(st) = end.status {
            let was_in_trans = self.in_trans;
            self.in_trans = st & status::IN_TRANS != 0;
            self.autocommit_off = st & status::AUTOCOMMIT == 0;
            if was_in_trans && !self.in_trans {
                self.next_tx = false;
            }
        }
        self.warnings = end.warnings > 0;
        if end.error.is_some() {
            return;
        }
        let f = stmt.flags;
        self.found_rows = f.has(Flags::CALC_FOUND_ROWS);
        if f.has(Flags::USER_VAR_ASSIGN) || (f.has(Flags::INTO) && f.has(Flags::USER_VAR_READ)) {
            self.user_vars = true;
        }
        if f.has(Flags::CREATE_TEMP) {
            self.temp_tables += 1;
        }
        if f.has(Flags::DROP_TEMP) {
            self.temp_tables = self.temp_tables.saturating_sub(1);
        }
        if f.has(Flags::GET_LOCK) {
            self.named_locks += 1;
        }
        if f.has(Flags::RELEASE_LOCK) {
            self.named_locks = self.named_locks.saturating_sub(1);
        }
        if f.has(Flags::RELEASE_ALL_LOCKS) {
            self.named_locks = 0;
        }
        if f.has(Flags::LOCK_TABLES) {
            self.lock_tables = true;
        }
        if f.has(Flags::UNLOCK_TABLES) {
            self.lock_tables = false;
            self.global_lock = false;
        }
        if f.has(Flags::GLOBAL_LOCK) {
            self.global_lock = true;
        }
        if f.has(Flags::PREPARE_SQL) {
            self.prepared_sql += 1;
        }
        if f.has(Flags::DEALLOCATE_SQL) {
            self.prepared_sql = self.prepared_sql.saturating_sub(1);
        }
        if f.has(Flags::STATE_IN_MULTI) {
            self.unparseable_set = true;
        }
    }

    pub fn set_user_vars(&mut self) {
        self.user_vars = true;
    }
    pub fn set_unparseable(&mut self) {
        self.unparseable_set = true;
    }
    pub fn set_next_transaction(&mut self) {
        self.next_tx = true;
    }

    /// Whether the held connection carries state only a reset clears.
    pub fn leaves_dirty_state(&self) -> bool {
        self.reasons().any(PinReason::needs_reset)
    }

    pub fn clear(&mut self) {
        *self = Pins::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Dialect, classify};

    fn ok(status: u16) -> ReplyEnd {
        ReplyEnd { status: Some(status), ..ReplyEnd::default() }
    }

    fn run(p: &mut Pins, sql: &str, end: ReplyEnd) {
        p.after_statement(&classify(sql.as_bytes(), Dialect::default()), &end);
    }

    #[test]
    fn each_reason_ends_when_its_cause_ends() {
        let auto = status::AUTOCOMMIT;
        let cases: [(&str, &str, PinReason); 6] = [
            ("CREATE TEMPORARY TABLE t (a INT)", "DROP TEMPORARY TABLE t", PinReason::TemporaryTables),
            ("SELECT GET_LOCK('x', 1)", "SELECT RELEASE_LOCK('x')", PinReason::NamedLocks),
            ("SELECT GET_LOCK('x', 1)", "SELECT RELEASE_ALL_LOCKS()", PinReason::NamedLocks),
            ("LOCK TABLES t READ", "UNLOCK TABLES", PinReason::LockTables),
            ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES", PinReason::GlobalReadLock),
            ("PREPARE s FROM 'SELECT 1'", "DEALLOCATE PREPARE s", PinReason::PreparedSql),
        ];
        for (start, end, reason) in cases {
            let mut p = Pins::default();
            run(&mut p, start, ok(auto));
            assert_eq!(p.reasons().collect::<Vec<_>>(), vec![reason], "{start}");
            run(&mut p, end, ok(auto));
            assert!(!p.any(), "{end} should end {reason:?}");
        }
    }

    #[test]
    fn transaction_and_autocommit_follow_status_flags() {
        let mut p = Pins::default();
        run(&mut p, "BEGIN", ok(status::AUTOCOMMIT | status::IN_TRANS));
        assert!(p.has(PinReason::Transaction));
        run(&mut p, "COMMIT", ok(status::AUTOCOMMIT));
        assert!(!p.any());
        run(&mut p, "SET autocommit=0", ok(0));
        assert_eq!(p.reasons().collect::<Vec<_>>(), vec![PinReason::AutocommitOff]);
        run(&mut p, "SET autocommit=1", ok(status::AUTOCOMMIT));
        assert!(!p.any());
    }

    #[test]
    fn one_statement_pins_and_failures() {
        let mut p = Pins::default();
        run(&mut p, "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", ok(2));
        assert!(p.has(PinReason::FoundRows));
        run(&mut p, "SELECT FOUND_ROWS()", ok(2));
        assert!(!p.any());
        run(&mut p, "SELECT 1/0", ReplyEnd { warnings: 1, ..ok(2) });
        assert!(p.has(PinReason::Warnings));
        run(&mut p, "SHOW WARNINGS", ok(2));
        assert!(!p.any());
        let failed = ReplyEnd { error: Some(1050), ..ReplyEnd::default() };
        run(&mut p, "CREATE TEMPORARY TABLE t (a INT)", failed);
        assert!(!p.any(), "a failed statement creates nothing");
        run(&mut p, "SET @x = 1", ok(2));
        run(&mut p, "SELECT 1 INTO @y", ok(2));
        assert!(p.has(PinReason::UserVariables));
        assert!(p.leaves_dirty_state());
    }
}

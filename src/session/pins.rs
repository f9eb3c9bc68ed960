//! Why a session keeps its backend connection between statements, and when each reason ends.
//! The reasons are the state model's pinning kinds (`backend::kinds`).

use crate::backend::{KindSet, Mechanism, Pin, StateKind};
use crate::protocol::{ReplyEnd, status};
use crate::routing::{Flags, Statement};

pub type PinReason = StateKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// Per pinning kind: how many of it the session holds (temporary tables, locks …) or 1.
    counts: [u32; StateKind::COUNT],
    /// A bit per kind whose count is not 0 (every statement asks whether any pin holds).
    active: u64,
    /// Client statement ids with an open cursor / pending long data.
    pub cursors: Vec<u32>,
    pub long_data: Vec<u32>,
}

impl Default for Pins {
    fn default() -> Self {
        Pins { counts: [0; StateKind::COUNT], active: 0, cursors: Vec::new(), long_data: Vec::new() }
    }
}

impl Pins {
    pub fn has(&self, r: PinReason) -> bool {
        match r {
            StateKind::Cursors => !self.cursors.is_empty(),
            StateKind::LongData => !self.long_data.is_empty(),
            _ => self.counts[r.index()] > 0,
        }
    }

    pub fn reasons(&self) -> impl Iterator<Item = PinReason> + '_ {
        StateKind::pinning().filter(|r| self.has(*r))
    }

    /// An open cursor or pending long data: backend statements the session relies on.
    pub fn holds_statement_state(&self) -> bool {
        !self.cursors.is_empty() || !self.long_data.is_empty()
    }

    /// On every statement's path: no iteration over the model.
    pub fn any(&self) -> bool {
        self.active != 0 || !self.cursors.is_empty() || !self.long_data.is_empty()
    }

    fn put(&mut self, r: PinReason, n: u32) {
        self.counts[r.index()] = n;
        if n > 0 {
            self.active |= 1 << r.index();
        } else {
            self.active &= !(1 << r.index());
        }
    }

    pub fn set(&mut self, r: PinReason) {
        self.put(r, self.counts[r.index()].max(1));
    }

    fn add(&mut self, r: PinReason) {
        self.put(r, self.counts[r.index()] + 1);
    }

    fn sub(&mut self, r: PinReason) {
        self.put(r, self.counts[r.index()].saturating_sub(1));
    }

    pub fn unset(&mut self, r: PinReason) {
        if self.active & 1 << r.index() != 0 {
            self.put(r, 0);
        }
    }

    /// Updates the pins from a statement and its reply. Transaction state always follows the
    /// server's status flags; other reasons change only when the statement succeeded.
    pub fn after_statement(&mut self, stmt: &Statement, end: &ReplyEnd) {
        use StateKind as K;
        if let Some(st) = end.status {
            let was_in_trans = self.has(K::Transaction);
            self.flag(K::Transaction, st & status::IN_TRANS != 0);
            if was_in_trans && !self.has(K::Transaction) {
                self.unset(K::NextTransaction);
            }
        }
        self.flag(K::Diagnostics, end.warnings > 0 || end.error.is_some());
        if end.error.is_some() {
            return;
        }
        let f = stmt.flags;
        self.flag(K::FoundRows, f.has(Flags::CALC_FOUND_ROWS));
        if f.has(Flags::USER_VAR_ASSIGN) || (f.has(Flags::INTO) && f.has(Flags::USER_VAR_READ)) {
            self.set(K::UserVariables);
        }
        const COUNTED: [(u64, u64, StateKind); 4] = [
            (Flags::CREATE_TEMP, Flags::DROP_TEMP, StateKind::TemporaryTables),
            (Flags::GET_LOCK, Flags::RELEASE_LOCK, StateKind::NamedLocks),
            (Flags::PREPARE_SQL, Flags::DEALLOCATE_SQL, StateKind::SqlPrepared),
            (Flags::HANDLER_OPEN, Flags::HANDLER_CLOSE, StateKind::Handlers),
        ];
        for (open, close, kind) in COUNTED {
            if f.has(open) {
                self.add(kind);
            }
            if f.has(close) {
                self.sub(kind);
            }
        }
        if f.has(Flags::RELEASE_ALL_LOCKS) {
            self.unset(K::NamedLocks);
        }
        if f.has(Flags::LOCK_TABLES) {
            self.set(K::TableLocks);
        }
        if f.has(Flags::UNLOCK_TABLES) {
            self.unset(K::TableLocks);
            self.unset(K::GlobalReadLock);
        }
        if f.has(Flags::GLOBAL_LOCK) {
            self.set(K::GlobalReadLock);
        }
        if f.has(Flags::STATE_IN_MULTI) {
            self.set(K::UntrackedState);
        }
        if f.has(Flags::XA_START) {
            self.set(K::Xa);
        }
        if f.has(Flags::XA_FINISH) {
            self.unset(K::Xa);
        }
    }

    fn flag(&mut self, r: PinReason, on: bool) {
        if on { self.set(r) } else { self.unset(r) }
    }

    /// Whether any of `kinds` is held (a cheap test for the one-statement pins).
    fn holds_any_of(&self, kinds: u64) -> bool {
        self.active & kinds != 0
    }

    /// Drops the pins that last only for a statement that reads them (warnings, found rows),
    /// unless `keep` (the next statement reads the previous one's outcome). True when no pin
    /// is left.
    pub fn release_soft(&mut self, keep: bool) -> bool {
        if !keep && self.holds_any_of(StateKind::NEXT_STATEMENT_PINS) {
            for r in StateKind::pinning().filter(|r| r.pin() == Pin::NextStatement) {
                self.unset(r);
            }
        }
        !self.any()
    }

    /// State the held connection carries that a reset (or closing it) must clear.
    pub fn residue(&self) -> KindSet {
        if !self.any() {
            return KindSet::default();
        }
        self.reasons().filter(|r| matches!(r.mechanism(), Mechanism::Reset | Mechanism::Close)).collect()
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
        let cases: [(&str, &str, PinReason); 9] = [
            ("HANDLER t OPEN", "HANDLER t CLOSE", PinReason::Handlers),
            ("XA START 'x'", "XA COMMIT 'x'", PinReason::Xa),
            ("XA BEGIN 'x'", "XA ROLLBACK 'x'", PinReason::Xa),
            ("CREATE TEMPORARY TABLE t (a INT)", "DROP TEMPORARY TABLE t", PinReason::TemporaryTables),
            ("SELECT GET_LOCK('x', 1)", "SELECT RELEASE_LOCK('x')", PinReason::NamedLocks),
            ("SELECT GET_LOCK('x', 1)", "SELECT RELEASE_ALL_LOCKS()", PinReason::NamedLocks),
            ("LOCK TABLES t READ", "UNLOCK TABLES", PinReason::TableLocks),
            ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES", PinReason::GlobalReadLock),
            ("PREPARE s FROM 'SELECT 1'", "DEALLOCATE PREPARE s", PinReason::SqlPrepared),
        ];
        for (start, end, reason) in cases {
            let mut p = Pins::default();
            run(&mut p, start, ok(auto));
            assert_eq!(p.reasons().collect::<Vec<_>>(), vec![reason], "{start}");
            assert!(p.residue().has(reason), "{start} leaves state to clean up");
            run(&mut p, end, ok(auto));
            assert!(!p.any(), "{end} should end {reason:?}");
        }
    }

    #[test]
    fn transactions_follow_status_flags() {
        let mut p = Pins::default();
        run(&mut p, "BEGIN", ok(status::AUTOCOMMIT | status::IN_TRANS));
        assert!(p.has(PinReason::Transaction));
        run(&mut p, "COMMIT", ok(status::AUTOCOMMIT));
        assert!(!p.any());
        run(&mut p, "SET autocommit=0", ok(0));
        assert!(!p.any(), "autocommit off pins nothing by itself");
        run(&mut p, "SELECT * FROM t", ok(status::IN_TRANS));
        assert_eq!(p.reasons().collect::<Vec<_>>(), vec![PinReason::Transaction]);
        run(&mut p, "COMMIT", ok(0));
        assert!(!p.any(), "the transaction it opened ends with COMMIT");
    }

    #[test]
    fn one_statement_pins_and_failures() {
        let mut p = Pins::default();
        run(&mut p, "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", ok(2));
        assert!(p.has(PinReason::FoundRows));
        run(&mut p, "SELECT FOUND_ROWS()", ok(2));
        assert!(!p.any());
        run(&mut p, "SELECT 1/0", ReplyEnd { warnings: 1, ..ok(2) });
        assert!(p.has(PinReason::Diagnostics));
        run(&mut p, "SHOW WARNINGS", ok(2));
        assert!(!p.any());
        let failed = ReplyEnd { error: Some(1050), ..ReplyEnd::default() };
        run(&mut p, "CREATE TEMPORARY TABLE t (a INT)", failed);
        assert_eq!(
            p.reasons().collect::<Vec<_>>(),
            vec![PinReason::Diagnostics],
            "only the error's diagnostics"
        );
        assert!(p.release_soft(false), "a statement that does not read them releases them");
        run(&mut p, "SELECT 1/0", ReplyEnd { warnings: 1, ..ok(2) });
        assert!(!p.release_soft(true), "SHOW WARNINGS keeps them");
        run(&mut p, "SET @x = 1", ok(2));
        run(&mut p, "SELECT 1 INTO @y", ok(2));
        assert!(p.has(PinReason::UserVariables));
        assert!(p.residue().has(PinReason::UserVariables));
    }
}

//! What the classifier says about a statement: its kind, flags, hints and digest.

use super::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    Begin,
    BeginReadOnly,
    Commit,
    Rollback,
    Savepoint,
    RollbackToSavepoint,
    ReleaseSavepoint,
    Xa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SELECT / WITH … SELECT / VALUES / TABLE without locking or side effects in the text.
    Read,
    /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    LockingRead,
    Write,
    Ddl,
    Transaction(Tx),
    /// `SET …` (session, global or user variables; the SET parser refines it).
    SessionSet,
    Use,
    /// SHOW / DESCRIBE / EXPLAIN / HELP.
    Show,
    Other,
    Empty,
}

/// Facts found anywhere in the statement that matter for routing and pinning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u64);

impl Flags {
    pub const FOR_UPDATE: u64 = 1;
    pub const FOR_SHARE: u64 = 1 << 1;
    /// SELECT … INTO (@var, OUTFILE, DUMPFILE).
    pub const INTO: u64 = 1 << 2;
    pub const USER_VAR_ASSIGN: u64 = 1 << 3;
    pub const USER_VAR_READ: u64 = 1 << 4;
    pub const GET_LOCK: u64 = 1 << 5;
    pub const RELEASE_LOCK: u64 = 1 << 6;
    pub const RELEASE_ALL_LOCKS: u64 = 1 << 7;
    /// IS_USED_LOCK / IS_FREE_LOCK: lock state lives on the primary.
    pub const LOCK_QUERY: u64 = 1 << 8;
    pub const LAST_INSERT_ID: u64 = 1 << 9;
    pub const CALC_FOUND_ROWS: u64 = 1 << 10;
    pub const FOUND_ROWS: u64 = 1 << 11;
    /// NEXTVAL/SETVAL/LASTVAL, NEXT/PREVIOUS VALUE FOR.
    pub const SEQUENCE: u64 = 1 << 12;
    pub const CREATE_TEMP: u64 = 1 << 13;
    pub const DROP_TEMP: u64 = 1 << 14;
    pub const LOCK_TABLES: u64 = 1 << 15;
    pub const UNLOCK_TABLES: u64 = 1 << 16;
    /// More than one statement in the text.
    pub const MULTI: u64 = 1 << 17;
    /// Reads the previous statement's outcome: warnings, errors, ROW_COUNT(), GET DIAGNOSTICS.
    pub const SESSION_INFO: u64 = 1 << 18;
    pub const PREPARE_SQL: u64 = 1 << 19;
    pub const DEALLOCATE_SQL: u64 = 1 << 20;
    /// A function or form that must run on the primary (GTID waits, …).
    pub const SIDE_EFFECT: u64 = 1 << 21;
    pub const CALL: u64 = 1 << 22;
    pub const INSERT: u64 = 1 << 23;
    /// A multi-statement with something other than plain reads.
    pub const NOT_ALL_READS: u64 = 1 << 24;
    /// A multi-statement that changes session state (SET, USE …).
    pub const STATE_IN_MULTI: u64 = 1 << 25;
    /// FLUSH TABLES WITH READ LOCK.
    pub const GLOBAL_LOCK: u64 = 1 << 26;
    pub const EXECUTE_SQL: u64 = 1 << 27;
    /// SHOW of primary-only facts (binlogs, replication, processlist).
    pub const PRIMARY_ONLY: u64 = 1 << 28;
    /// `XA START` / `XA BEGIN`.
    pub const XA_START: u64 = 1 << 29;
    /// `XA COMMIT` / `XA ROLLBACK`: the XA transaction is over.
    pub const XA_FINISH: u64 = 1 << 30;
    /// `HANDLER t OPEN` / `HANDLER t CLOSE`.
    pub const HANDLER_OPEN: u64 = 1 << 31;
    pub const HANDLER_CLOSE: u64 = 1 << 32;
    /// `ROW_COUNT()`: reads the previous statement's affected rows.
    pub const ROW_COUNT: u64 = 1 << 33;
    /// `CONNECTION_ID()`: the proxy answers the session's own id where it can.
    pub const CONNECTION_ID: u64 = 1 << 34;
    /// `KILL …`: acts on proxy sessions, never forwarded.
    pub const KILL: u64 = 1 << 35;

    pub fn has(self, f: u64) -> bool {
        self.0 & f != 0
    }
    pub fn set(&mut self, f: u64) {
        self.0 |= f;
    }
    pub fn bits(self) -> u64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintTarget {
    Writer,
    Reader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    None,
    Session,
    Global,
    Universal,
}

/// Routing hints read from comments: `/* rwproxy:writer */`, `/* rwproxy:reader */`,
/// `/* hostgroup=N */`, `/* rwproxy:consistency=none|session|global|universal */`,
/// `/* rwproxy:min_gtid=<position> */` (the session reads the position from the text),
/// `/* rwproxy:timeout_ms=N */`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hint {
    pub target: Option<HintTarget>,
    pub hostgroup: Option<u32>,
    pub consistency: Option<Consistency>,
    /// A `rwproxy:min_gtid=…` hint is present.
    pub min_gtid: bool,
    /// `rwproxy:timeout_ms=N`: cancel the statement on the backend after N ms.
    pub timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: Kind,
    pub flags: Flags,
    pub hint: Hint,
    pub digest: Digest,
    pub statements: u32,
    /// Byte range from the first token to the last one that is not `;`: the statement
    /// without surrounding whitespace and comments (what query-rule patterns see).
    pub span: (usize, usize),
}

impl Statement {
    /// Reads what the previous statement left: warnings, errors, `ROW_COUNT()`, `FOUND_ROWS()`.
    pub fn reads_outcome(&self) -> bool {
        self.flags.has(Flags::SESSION_INFO | Flags::FOUND_ROWS | Flags::ROW_COUNT)
    }

    /// A plain read a replica may serve: nothing in the text needs the primary.
    pub fn is_plain_read(&self) -> bool {
        const WRITER_ONLY: u64 = Flags::FOR_UPDATE
            | Flags::FOR_SHARE
            | Flags::INTO
            | Flags::USER_VAR_ASSIGN
            | Flags::GET_LOCK
            | Flags::RELEASE_LOCK
            | Flags::RELEASE_ALL_LOCKS
            | Flags::LOCK_QUERY
            | Flags::LAST_INSERT_ID
            | Flags::CALC_FOUND_ROWS
            | Flags::FOUND_ROWS
            | Flags::SEQUENCE
            | Flags::SESSION_INFO
            | Flags::SIDE_EFFECT
            | Flags::NOT_ALL_READS
            | Flags::STATE_IN_MULTI
            | Flags::PRIMARY_ONLY;
        matches!(self.kind, Kind::Read | Kind::Show) && self.flags.0 & WRITER_ONLY == 0
    }
}

//! Pure, synchronous routing: classify SQL, evaluate query rules, decide the hostgroup and why.
//!
//! Never mutates anything and never reads the clock: everything it needs comes in as values,
//! so every decision is reproducible and testable from a table.

mod classify;
pub mod dialect;
pub mod digest;
pub mod gtid;
pub mod lexer;
mod rules;
pub mod set;
mod statement;

pub use classify::{Consistency, Flags, Hint, HintTarget, Kind, Statement, Tx, classify};
pub use dialect::Dialect;
pub use digest::{Digest, hash64};

use crate::config::{Config, ReadConsistency};

/// What the router knows of the session, passed by value each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts<'a> {
    pub user: &'a str,
    pub schema: Option<&'a str>,
    pub default_hostgroup: u32,
    /// Hostgroup of the connection the session is pinned to (transaction, locks, …).
    pub pinned: Option<u32>,
    /// The session wrote recently enough that its reads must see the write.
    pub recent_write: bool,
    /// `autocommit` is off: the next statement that touches a table opens a transaction.
    pub autocommit_off: bool,
    /// The session's transactions are read-only (`SET SESSION TRANSACTION READ ONLY`).
    pub read_only: bool,
}

/// How the chosen hostgroup relates to the replication topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Writer,
    Reader,
    /// A hostgroup that is neither the writer nor the reader hostgroup.
    Other,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Writer => "writer",
            Target::Reader => "reader",
            Target::Other => "other",
        }
    }
}

/// Why a route was chosen; shown by `/route`, `rwproxy explain` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No `[replication]`: the user's `default_hostgroup`.
    DefaultHostgroup,
    /// The session holds a connection (transaction, lock, temporary table, …).
    Pinned,
    HintWriter,
    HintReader,
    HintHostgroup,
    Rule(u32),
    /// A rule sent something that is not a plain read to the reader hostgroup.
    RuleOverridden(u32),
    PlainRead,
    /// A read right after the session's own write (read-your-writes).
    ReadYourWrites,
    /// A read with `autocommit` off: it opens a transaction, which starts on the writer.
    AutocommitOff,
    ReadOnlyTransaction,
    LockingRead,
    /// A read whose text needs the primary (the flag's description).
    NeedsPrimary(&'static str),
    Write,
    Ddl,
    Transaction,
    SessionState,
    /// Not recognised: the writer, to be safe.
    Unsure,
}

impl Reason {
    pub fn describe(self) -> String {
        match self {
            Reason::DefaultHostgroup => "no [replication] section: the user's default_hostgroup".into(),
            Reason::Pinned => "the session is pinned to its connection".into(),
            Reason::HintWriter => "comment hint rwproxy:writer".into(),
            Reason::HintReader => "comment hint rwproxy:reader".into(),
            Reason::HintHostgroup => "comment hint hostgroup=N".into(),
            Reason::Rule(id) => format!("query rule {id}"),
            Reason::RuleOverridden(id) => {
                format!("query rule {id} chose the reader hostgroup for a statement that needs the writer")
            }
            Reason::PlainRead => "plain read".into(),
            Reason::ReadYourWrites => "read after this session's write: writer (read-your-writes)".into(),
            Reason::AutocommitOff => "autocommit is off: the read opens a transaction, on the writer".into(),
            Reason::ReadOnlyTransaction => "read-only transaction (START TRANSACTION READ ONLY, or autocommit off with SET SESSION TRANSACTION READ ONLY)".into(),
            Reason::LockingRead => "locking read (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE)".into(),
            Reason::NeedsPrimary(why) => format!("read that needs the primary: {why}"),
            Reason::Write => "write".into(),
            Reason::Ddl => "DDL or administrative statement".into(),
            Reason::Transaction => "transaction control".into(),
            Reason::SessionState => "session state change (run on the writer, then tracked)".into(),
            Reason::Unsure => "not recognised: writer to be safe".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub hostgroup: u32,
    pub target: Target,
    pub reason: Reason,
    /// A rule's `error_msg`: answer with this error instead of running the statement.
    pub error: Option<String>,
}

/// Decides where a statement runs: pin > comment hint > query rules > default split.
pub fn route(stmt: &Statement, sql: &[u8], facts: &SessionFacts<'_>, config: &Config) -> Route {
    let target = |hg: u32| match config.replication {
        Some(r) if r.writer_hostgroup == hg => Target::Writer,
        Some(r) if r.reader_hostgroup == hg => Target::Reader,
        _ => Target::Other,
    };
    let mk =
        |hostgroup: u32, reason: Reason| Route { hostgroup, target: target(hostgroup), reason, error: None };
    if let Some(hg) = facts.pinned {
        return mk(hg, Reason::Pinned);
    }
    let (writer, reader) = match config.replication {
        Some(r) => (r.writer_hostgroup, r.reader_hostgroup),
        None => (facts.default_hostgroup, facts.default_hostgroup),
    };
    // With autocommit off a read opens a transaction that would then hold the session on
    // whatever it ran on: never the reader hostgroup, whatever a hint says.
    let to_reader = |hg: u32, reason: Reason| {
        if hg == reader && hg != writer && opens_writer_transaction(facts, config) {
            mk(writer, Reason::AutocommitOff)
        } else {
            mk(hg, reason)
        }
    };
    if let Some(hg) = stmt.hint.hostgroup {
        return to_reader(hg, Reason::HintHostgroup);
    }
    match stmt.hint.target {
        Some(HintTarget::Writer) => return mk(writer, Reason::HintWriter),
        Some(HintTarget::Reader) => return to_reader(reader, Reason::HintReader),
        None => {}
    }
    match rules::evaluate(&config.query_rules, stmt, sql, facts) {
        rules::Outcome::Error(id, msg) => {
            return Route { error: Some(msg), ..mk(facts.default_hostgroup, Reason::Rule(id)) };
        }
        rules::Outcome::Hostgroup(id, hg) if hg == reader && hg != writer && !stmt.is_plain_read() => {
            return mk(writer, Reason::RuleOverridden(id));
        }
        rules::Outcome::Hostgroup(_, hg)
            if hg == reader && hg != writer && opens_writer_transaction(facts, config) =>
        {
            return mk(writer, Reason::AutocommitOff);
        }
        rules::Outcome::Hostgroup(_, hg)
            if hg == reader
                && hg != writer
                && facts.recent_write
                && config.routing.read_consistency == ReadConsistency::Session =>
        {
            return mk(writer, Reason::ReadYourWrites);
        }
        rules::Outcome::Hostgroup(id, hg) => return mk(hg, Reason::Rule(id)),
        rules::Outcome::NoMatch => {}
    }
    if config.replication.is_none() {
        return mk(facts.default_hostgroup, Reason::DefaultHostgroup);
    }
    let reason = default_reason(stmt, config.routing.read_only_transactions_to_reader);
    let consistent = facts.recent_write
        && config.routing.read_consistency == ReadConsistency::Session
        && stmt.hint.consistency != Some(Consistency::None);
    match reason {
        Reason::PlainRead | Reason::ReadOnlyTransaction if consistent => mk(writer, Reason::ReadYourWrites),
        Reason::PlainRead if opens_writer_transaction(facts, config) => mk(writer, Reason::AutocommitOff),
        Reason::PlainRead if facts.autocommit_off => mk(reader, Reason::ReadOnlyTransaction),
        Reason::PlainRead | Reason::ReadOnlyTransaction => mk(reader, reason),
        _ => mk(writer, reason),
    }
}

/// With `autocommit` off a read opens a transaction (the server then reports it and the
/// session keeps that connection): on the writer, unless the session's transactions are
/// read-only and those may run on a reader.
fn opens_writer_transaction(facts: &SessionFacts<'_>, config: &Config) -> bool {
    facts.autocommit_off && !(facts.read_only && config.routing.read_only_transactions_to_reader)
}

fn default_reason(stmt: &Statement, ro_tx_to_reader: bool) -> Reason {
    match stmt.kind {
        Kind::Read | Kind::Show if stmt.is_plain_read() => Reason::PlainRead,
        Kind::Read | Kind::Show => Reason::NeedsPrimary(primary_flag(stmt.flags)),
        Kind::LockingRead => Reason::LockingRead,
        Kind::Transaction(Tx::BeginReadOnly) if ro_tx_to_reader => Reason::ReadOnlyTransaction,
        Kind::Transaction(_) => Reason::Transaction,
        Kind::SessionSet | Kind::Use => Reason::SessionState,
        Kind::Write => Reason::Write,
        Kind::Ddl => Reason::Ddl,
        Kind::Other | Kind::Empty => Reason::Unsure,
    }
}

fn primary_flag(f: Flags) -> &'static str {
    const NAMES: [(u64, &str); 15] = [
        (Flags::FOR_UPDATE | Flags::FOR_SHARE, "locking read in a multi-statement"),
        (Flags::INTO, "SELECT … INTO"),
        (Flags::USER_VAR_ASSIGN, "assigns a user variable"),
        (Flags::GET_LOCK, "GET_LOCK()"),
        (Flags::RELEASE_LOCK, "RELEASE_LOCK()"),
        (Flags::RELEASE_ALL_LOCKS, "RELEASE_ALL_LOCKS()"),
        (Flags::LOCK_QUERY, "IS_USED_LOCK()/IS_FREE_LOCK()"),
        (Flags::LAST_INSERT_ID, "LAST_INSERT_ID()"),
        (Flags::CALC_FOUND_ROWS, "SQL_CALC_FOUND_ROWS"),
        (Flags::FOUND_ROWS, "FOUND_ROWS()"),
        (Flags::SEQUENCE, "sequence function"),
        (Flags::SESSION_INFO, "reads the previous statement's outcome"),
        (Flags::SIDE_EFFECT, "function with side effects or primary state"),
        (Flags::NOT_ALL_READS | Flags::STATE_IN_MULTI, "multi-statement with more than reads"),
        (Flags::PRIMARY_ONLY, "primary-only information"),
    ];
    NAMES.iter().find(|(bit, _)| f.has(*bit)).map_or("unknown", |(_, n)| n)
}

#[cfg(test)]
mod tests;

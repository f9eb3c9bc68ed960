//! OK/ERR packets and the header-only state machine that finds where a reply ends.
//!
//! The tracker sees each frame's length and its first bytes, never the whole row, so the
//! relay can forward result sets of any size with flat memory.

use super::wire::{Reader, put_lenenc_int};
use super::{MAX_PAYLOAD, ProtocolError, status};

/// How many leading payload bytes the tracker needs to classify a frame.
pub const HEAD_LEN: usize = 32;

pub fn ok_packet(affected: u64, last_insert_id: u64, status: u16, warnings: u16) -> Vec<u8> {
    let mut out = vec![0x00];
    put_lenenc_int(&mut out, affected);
    put_lenenc_int(&mut out, last_insert_id);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&warnings.to_le_bytes());
    out
}

pub fn err_packet(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + message.len());
    out.push(0xff);
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    let state = sqlstate.as_bytes();
    out.extend((0..5).map(|i| state.get(i).copied().unwrap_or(b'0')));
    out.extend_from_slice(message.as_bytes());
    out
}

/// ERR sent before the client's handshake response: no SQLSTATE marker (the client has not
/// negotiated `CLIENT_PROTOCOL_41` yet).
pub fn err_packet_pre_handshake(code: u16, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + message.len());
    out.push(0xff);
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}

/// An ERR payload's code and message, for logs and error mapping.
pub fn parse_err(payload: &[u8]) -> Option<(u16, String)> {
    let mut r = Reader::new(payload);
    (r.u8("header").ok()? == 0xff).then_some(())?;
    let code = r.u16("code").ok()?;
    let mut msg = r.remaining();
    if msg.first() == Some(&b'#') && msg.len() >= 6 {
        msg = &msg[6..];
    }
    Some((code, String::from_utf8_lossy(msg).into_owned()))
}

/// Status flags of an OK packet (header 0x00 or 0xFE).
pub fn ok_status(payload: &[u8]) -> Option<u16> {
    ok_info(payload).map(|i| i.status)
}

/// The fixed fields of an OK packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

pub fn ok_info(payload: &[u8]) -> Option<OkInfo> {
    let mut r = Reader::new(payload);
    r.u8("header").ok()?;
    let affected_rows = r.lenenc_int("affected rows").ok()?;
    let last_insert_id = r.lenenc_int("last insert id").ok()?;
    let status = r.u16("status").ok()?;
    let warnings = r.u16("warnings").unwrap_or(0);
    Some(OkInfo { affected_rows, last_insert_id, status, warnings })
}

/// Which reply shape follows a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// COM_QUERY and COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request or result sets.
    ResultSets,
    /// COM_STMT_PREPARE: PREPARE_OK with parameter and column definitions, or ERR.
    Prepare,
    /// COM_STMT_FETCH: rows until a terminator, or ERR.
    Rows,
    /// COM_FIELD_LIST: column definitions until a terminator, or ERR.
    FieldList,
    /// One packet: OK, ERR, EOF or a plain string (COM_STATISTICS).
    Single,
}

/// How a finished reply ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyEnd {
    /// Status flags of the last OK/EOF, if the reply carried any.
    pub status: Option<u16>,
    /// The code of an ERR that ended the reply.
    pub error: Option<u16>,
    /// Warning count of the last OK/EOF.
    pub warnings: u16,
    /// `last_insert_id` of the last OK packet (0 when none was generated).
    pub last_insert_id: u64,
    /// Affected rows of the reply's OK packets, summed over its results.
    pub affected: u64,
    /// Rows relayed (all result sets of the reply).
    pub rows: u64,
    /// Session state changed. From the reply alone: an EOF terminator carried
    /// `SERVER_SESSION_STATE_CHANGED` (with the proxy's `session_track_state_change`); the
    /// relay adds what OK packets' tracking data said.
    pub state_changed: bool,
    /// An EOF terminator carried `SERVER_SESSION_STATE_CHANGED`: something changed that an EOF
    /// cannot say (a new `last_gtid` among others), so the proxy must ask.
    pub eof_state_changed: bool,
}

impl ReplyEnd {
    fn from_terminator(head: &[u8], ok_format: bool) -> Self {
        if ok_format {
            let info = ok_info(head);
            let i = info.unwrap_or_default();
            ReplyEnd {
                status: info.map(|i| i.status),
                warnings: i.warnings,
                last_insert_id: i.last_insert_id,
                affected: i.affected_rows,
                ..ReplyEnd::default()
            }
        } else {
            let warnings = head.get(1..3).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            ReplyEnd { status: eof_status(head), warnings, ..ReplyEnd::default() }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward the frame; more frames follow.
    More,
    /// Forward the frame; the server now waits for the client's file contents.
    LocalInfile,
    /// Forward the frame; the reply is complete.
    Done(ReplyEnd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    Counted(u64),
    Finished,
}

/// Tracks one reply frame by frame.
#[derive(Debug, Clone)]
pub struct ReplyTracker {
    kind: ReplyKind,
    deprecate_eof: bool,
    binary: bool,
    state: State,
    continuing: bool,
    /// An insert id seen in an earlier result of a multi-result reply.
    last_insert_id: u64,
    /// Affected rows of earlier results of a multi-result reply.
    affected: u64,
    /// The last frame fed was an OK packet (not PREPARE_OK, not an EOF).
    last_ok: bool,
    rows: u64,
    /// Some EOF terminator of this reply flagged a session-state change.
    state_changed: bool,
}

impl ReplyTracker {
    /// `binary` is true for COM_STMT_EXECUTE (a cursor may end the reply after metadata).
    pub fn new(kind: ReplyKind, deprecate_eof: bool, binary: bool) -> Self {
        let state = match kind {
            ReplyKind::Rows => State::Rows,
            ReplyKind::FieldList => State::Columns(u64::MAX),
            _ => State::Start,
        };
        ReplyTracker {
            kind,
            deprecate_eof,
            binary,
            state,
            continuing: false,
            last_insert_id: 0,
            affected: 0,
            last_ok: false,
            rows: 0,
            state_changed: false,
        }
    }

    /// Whether the frame just fed was an OK packet (which may carry session-state data).
    pub fn frame_was_ok(&self) -> bool {
        self.last_ok
    }

    /// Feeds one frame: its payload length and up to `HEAD_LEN` leading payload bytes.
    pub fn on_frame(&mut self, len: usize, head: &[u8]) -> Result<Step, ProtocolError> {
        let first = head.first().copied();
        let (was, was_continuing) = (self.state, self.continuing);
        let step = self.classify_frame(len, head);
        let terminator_ok = first == Some(0xfe) && self.deprecate_eof && len < MAX_PAYLOAD;
        self.last_ok = step.is_ok()
            && !was_continuing
            && match (was, self.kind) {
                (State::Start, ReplyKind::Prepare) => false,
                (State::Start, _) => {
                    first == Some(0x00) || (first == Some(0xfe) && len < 9 && self.deprecate_eof)
                }
                (State::Rows, _) | (State::Columns(_), ReplyKind::FieldList) => terminator_ok,
                _ => false,
            };
        step
    }

    fn classify_frame(&mut self, len: usize, head: &[u8]) -> Result<Step, ProtocolError> {
        if self.continuing {
            self.continuing = len == MAX_PAYLOAD;
            return Ok(Step::More);
        }
        self.continuing = len == MAX_PAYLOAD;
        let first = head.first().copied();
        if first == Some(0xff) && !self.in_counted() {
            self.state = State::Finished;
            let code = head.get(1..3).map(|b| u16::from_le_bytes([b[0], b[1]]));
            return Ok(Step::Done(ReplyEnd { error: code, rows: self.rows, ..ReplyEnd::default() }));
        }
        match self.state {
            State::Start => self.on_start(len, head),
            State::Columns(n) => {
                if self.kind == ReplyKind::FieldList && self.is_terminator(len, first) {
                    return Ok(self.finish(ReplyEnd::from_terminator(head, self.deprecate_eof)));
                }
                self.state = match n - 1 {
                    0 if self.deprecate_eof => State::Rows,
                    0 => State::ColumnsEof,
                    left => State::Columns(left),
                };
                Ok(Step::More)
            }
            State::ColumnsEof => {
                let end = ReplyEnd::from_terminator(head, false);
                if self.binary && end.status.is_some_and(|s| s & status::CURSOR_EXISTS != 0) {
                    return Ok(self.finish(end));
                }
                self.state = State::Rows;
                Ok(Step::More)
            }
            State::Rows => {
                if self.is_terminator(len, first) {
                    let eof = !self.deprecate_eof;
                    return Ok(self.end_of_result(ReplyEnd::from_terminator(head, self.deprecate_eof), eof));
                }
                self.rows += 1;
                Ok(Step::More)
            }
            State::Counted(n) => {
                self.state = State::Counted(n - 1);
                if n == 1 { Ok(self.finish(ReplyEnd::default())) } else { Ok(Step::More) }
            }
            State::Finished => Err(ProtocolError::Unexpected("frame after the end of a reply")),
        }
    }

    fn in_counted(&self) -> bool {
        matches!(self.state, State::Counted(_))
    }

    fn on_start(&mut self, len: usize, head: &[u8]) -> Result<Step, ProtocolError> {
        let first = head.first().copied().ok_or(ProtocolError::Truncated("reply header"))?;
        match (self.kind, first) {
            (ReplyKind::Single, _) => {
                let end = if first == 0x00 || (first == 0xfe && len < 9) {
                    ReplyEnd::from_terminator(head, first == 0x00 || self.deprecate_eof)
                } else {
                    ReplyEnd::default()
                };
                Ok(self.finish(end))
            }
            (ReplyKind::Prepare, 0x00) => {
                let mut r = Reader::new(head);
                r.take(5, "prepare ok")?;
                let cols = u64::from(r.u16("column count")?);
                let params = u64::from(r.u16("parameter count")?);
                let eofs = u64::from(!self.deprecate_eof);
                let n = params + cols + if params > 0 { eofs } else { 0 } + if cols > 0 { eofs } else { 0 };
                if n == 0 {
                    return Ok(self.finish(ReplyEnd::default()));
                }
                self.state = State::Counted(n);
                Ok(Step::More)
            }
            (ReplyKind::Prepare, _) => Err(ProtocolError::Unexpected("prepare reply header")),
            (_, 0x00) => Ok(self.end_of_result(ReplyEnd::from_terminator(head, true), false)),
            (_, 0xfb) => Ok(Step::LocalInfile),
            (_, 0xfe) if len < 9 => {
                let eof = !self.deprecate_eof;
                Ok(self.end_of_result(ReplyEnd::from_terminator(head, self.deprecate_eof), eof))
            }
            _ => {
                let n = Reader::new(head).lenenc_int("column count")?;
                if n == 0 {
                    return Err(ProtocolError::Malformed("column count"));
                }
                self.state = State::Columns(n);
                Ok(Step::More)
            }
        }
    }

    fn is_terminator(&self, len: usize, first: Option<u8>) -> bool {
        first == Some(0xfe) && if self.deprecate_eof { len < MAX_PAYLOAD } else { len < 9 }
    }

    /// `eof`: the terminator is an EOF packet (its status flags are all it says).
    fn end_of_result(&mut self, end: ReplyEnd, eof: bool) -> Step {
        if eof && end.status.is_some_and(|s| s & status::SESSION_STATE_CHANGED != 0) {
            self.state_changed = true;
        }
        if end.status.is_some_and(|s| s & status::MORE_RESULTS_EXISTS != 0) {
            self.state = State::Start;
            self.last_insert_id = self.last_insert_id.max(end.last_insert_id);
            self.affected = self.affected.saturating_add(end.affected);
            return Step::More;
        }
        let last_insert_id = if end.last_insert_id != 0 { end.last_insert_id } else { self.last_insert_id };
        let affected = self.affected.saturating_add(end.affected);
        self.finish(ReplyEnd { last_insert_id, affected, ..end })
    }

    fn finish(&mut self, end: ReplyEnd) -> Step {
        self.state = State::Finished;
        Step::Done(ReplyEnd {
            rows: self.rows,
            state_changed: self.state_changed || end.state_changed,
            eof_state_changed: self.state_changed || end.state_changed,
            ..end
        })
    }
}

fn eof_status(head: &[u8]) -> Option<u16> {
    let b = head.get(3..5)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;

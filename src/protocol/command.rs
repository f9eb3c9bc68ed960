//! Client commands, typed at the edge and borrowing the packet payload.

use super::reply::ReplyKind;
use super::{ProtocolError, com};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand<'a> {
    Quit,
    InitDb(&'a [u8]),
    Query(&'a [u8]),
    FieldList,
    Statistics,
    Ping,
    ChangeUser(&'a [u8]),
    StmtPrepare(&'a [u8]),
    StmtExecute {
        stmt_id: u32,
    },
    StmtSendLongData {
        stmt_id: u32,
    },
    StmtClose {
        stmt_id: u32,
    },
    StmtReset {
        stmt_id: u32,
    },
    StmtFetch {
        stmt_id: u32,
    },
    /// MariaDB's COM_STMT_BULK_EXECUTE: one statement run for many rows of parameters.
    StmtBulkExecute {
        stmt_id: u32,
    },
    SetOption(u16),
    ResetConnection,
    /// COM_PROCESS_KILL: close the session with this (proxy) id.
    ProcessKill(u32),
    /// Anything else: answered with ERR 1047 by the proxy.
    Unsupported(u8),
}

impl<'a> ClientCommand<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, ProtocolError> {
        let (&code, body) = payload.split_first().ok_or(ProtocolError::Truncated("command byte"))?;
        let stmt_id = || -> Result<u32, ProtocolError> {
            let b = body.get(..4).ok_or(ProtocolError::Truncated("statement id"))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        Ok(match code {
            com::QUIT => ClientCommand::Quit,
            com::INIT_DB => ClientCommand::InitDb(body),
            com::QUERY => ClientCommand::Query(body),
            com::FIELD_LIST => ClientCommand::FieldList,
            com::STATISTICS => ClientCommand::Statistics,
            com::PING => ClientCommand::Ping,
            com::CHANGE_USER => ClientCommand::ChangeUser(body),
            com::STMT_PREPARE => ClientCommand::StmtPrepare(body),
            com::STMT_EXECUTE => ClientCommand::StmtExecute { stmt_id: stmt_id()? },
            com::STMT_SEND_LONG_DATA => ClientCommand::StmtSendLongData { stmt_id: stmt_id()? },
            com::STMT_CLOSE => ClientCommand::StmtClose { stmt_id: stmt_id()? },
            com::STMT_RESET => ClientCommand::StmtReset { stmt_id: stmt_id()? },
            com::STMT_FETCH => ClientCommand::StmtFetch { stmt_id: stmt_id()? },
            com::STMT_BULK_EXECUTE => ClientCommand::StmtBulkExecute { stmt_id: stmt_id()? },
            com::SET_OPTION => {
                let b = body.get(..2).ok_or(ProtocolError::Truncated("set option"))?;
                ClientCommand::SetOption(u16::from_le_bytes([b[0], b[1]]))
            }
            com::RESET_CONNECTION => ClientCommand::ResetConnection,
            com::PROCESS_KILL => ClientCommand::ProcessKill(stmt_id()?),
            other => ClientCommand::Unsupported(other),
        })
    }

    /// The reply the backend sends, or `None` for commands without one.
    pub fn reply_kind(&self) -> Option<ReplyKind> {
        use ClientCommand::*;
        match self {
            Query(_) | StmtExecute { .. } | StmtBulkExecute { .. } => Some(ReplyKind::ResultSets),
            StmtPrepare(_) => Some(ReplyKind::Prepare),
            StmtFetch { .. } => Some(ReplyKind::Rows),
            FieldList => Some(ReplyKind::FieldList),
            InitDb(_)
            | Statistics
            | Ping
            | SetOption(_)
            | ResetConnection
            | StmtReset { .. }
            | ProcessKill(_) => Some(ReplyKind::Single),
            StmtClose { .. } | StmtSendLongData { .. } | Quit | ChangeUser(_) | Unsupported(_) => None,
        }
    }

    /// Binary-protocol rows follow (a cursor may end the reply early).
    pub fn is_binary(&self) -> bool {
        use ClientCommand::*;
        matches!(self, StmtExecute { .. } | StmtFetch { .. } | StmtBulkExecute { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_from_bytes() {
        assert_eq!(ClientCommand::parse(b"\x03SELECT 1").unwrap(), ClientCommand::Query(b"SELECT 1"));
        assert_eq!(ClientCommand::parse(b"\x0e").unwrap(), ClientCommand::Ping);
        assert_eq!(ClientCommand::parse(b"\x02shop").unwrap(), ClientCommand::InitDb(b"shop"));
        assert_eq!(
            ClientCommand::parse(b"\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00").unwrap(),
            ClientCommand::StmtExecute { stmt_id: 7 }
        );
        assert_eq!(ClientCommand::parse(b"\x1b\x01\x00").unwrap(), ClientCommand::SetOption(1));
        assert_eq!(ClientCommand::parse(b"\x1f").unwrap(), ClientCommand::ResetConnection);
        assert_eq!(ClientCommand::parse(b"\x0b").unwrap(), ClientCommand::Unsupported(0x0b));
    }

    #[test]
    fn short_commands_are_errors() {
        assert!(ClientCommand::parse(b"").is_err());
        assert!(ClientCommand::parse(b"\x17\x01\x00").is_err());
        assert!(ClientCommand::parse(b"\x1b\x01").is_err());
    }

    #[test]
    fn reply_shapes() {
        assert_eq!(ClientCommand::StmtClose { stmt_id: 1 }.reply_kind(), None);
        assert_eq!(ClientCommand::Statistics.reply_kind(), Some(ReplyKind::Single));
        assert!(ClientCommand::StmtFetch { stmt_id: 1 }.is_binary());
        let bulk = ClientCommand::parse(b"\xfa\x07\x00\x00\x00\x80\x00").unwrap();
        assert_eq!(bulk, ClientCommand::StmtBulkExecute { stmt_id: 7 });
        assert!(bulk.is_binary());
        assert_eq!(bulk.reply_kind(), Some(ReplyKind::ResultSets));
    }
}

//! MariaDB's COM_STMT_BULK_EXECUTE: one prepared statement run for many rows of parameters in
//! one command (the MariaDB connectors' `batch`). Routed, synced and tracked like
//! COM_STMT_EXECUTE; the payload goes out with the backend statement's id and its rows
//! untouched, and the reply (an OK, or an ERR) is relayed as it comes.

use tokio::io::{AsyncRead, AsyncWrite};

use super::forward::Frames;
use super::{Session, SessionError};
use crate::protocol::packet::encode;
use crate::protocol::{Packet, ReplyKind, errcode, mariadb_caps};
use crate::routing::Flags;

/// Bulk flag: parameter types follow the flags (2 bytes per parameter).
const SEND_TYPES_TO_SERVER: u16 = 128;
/// Offset of the types in the payload: command byte, statement id, flags.
const TYPES_AT: usize = 7;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn stmt_bulk_execute(
        &mut self,
        client_id: u32,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        if self.login.mariadb_caps & mariadb_caps::STMT_BULK_OPERATIONS == 0 {
            // The server refuses it from a client that did not ask for bulk operations; the
            // proxy's backend connections always do, so it is refused here.
            let msg = "This command is not supported in the prepared statement protocol yet";
            return self.send_err(1, errcode::UNSUPPORTED_PS, msg).await;
        }
        let Some(cs) = self.stmts.get(&client_id) else {
            return self.unknown_stmt(client_id, "mysqld_stmt_bulk_execute").await;
        };
        let (stmt, sql, key, params) = (cs.stmt.clone(), cs.sql.clone(), cs.parse.key(), cs.params);
        let Some(flags) = packet.payload().get(5..7).map(|f| u16::from_le_bytes([f[0], f[1]])) else {
            return self
                .send_err(1, (1210, "HY000"), "Incorrect arguments to mysqld_stmt_bulk_execute")
                .await;
        };
        let Some(backend_id) = self.stmt_backend(client_id, packet).await? else {
            self.finish_statement();
            return Ok(());
        };
        let mut payload = packet.payload().to_vec();
        payload[1..5].copy_from_slice(&backend_id.to_le_bytes());
        self.bulk_types(client_id, (&sql, key), &mut payload, flags, usize::from(params));
        let mut raw = Vec::with_capacity(payload.len() + 8);
        encode(&mut raw, 0, &payload);
        let route = self.route(&stmt, &sql);
        let need_id = stmt.flags.has(Flags::LAST_INSERT_ID);
        self.stmt_reads = stmt.flags.bits();
        self.stmt_may_write = super::commands::may_write(&stmt);
        let started = std::time::Instant::now();
        let end = self
            .forward_bytes(&route, need_id, Frames::Raw(&raw), packet.last_seq, ReplyKind::ResultSets, true)
            .await?;
        self.record_statement(&route, &stmt, started.elapsed(), end.as_ref());
        if let Some(end) = end {
            self.note_insert_id(&end);
            self.after_reply(&stmt, &end, true);
            if self.note_write(&stmt) && end.error.is_none() {
                self.capture_gtid(&end).await;
            }
        }
        self.finish_statement();
        Ok(())
    }

    /// Types sent with the rows are remembered for the statement (client side and backend
    /// side, as an execute's are); a bulk without them gets the client's last types when the
    /// backend statement never saw them.
    fn bulk_types(
        &mut self,
        client_id: u32,
        (sql, key): (&[u8], u64),
        payload: &mut Vec<u8>,
        flags: u16,
        params: usize,
    ) {
        let bstmt =
            self.backend.as_mut().and_then(|b| b.conn().prepared.get_mut(sql, key).map(|s| &mut s.types));
        let Some(backend_types) = bstmt else { return };
        if flags & SEND_TYPES_TO_SERVER != 0 {
            let types = payload.get(TYPES_AT..TYPES_AT + 2 * params).map(<[u8]>::to_vec);
            *backend_types = types.clone();
            if let Some(cs) = self.stmts.get_mut(&client_id) {
                cs.types = types;
            }
        } else if let Some(types) = self.stmts.get(&client_id).and_then(|c| c.types.clone())
            && backend_types.as_ref() != Some(&types)
        {
            payload[5..7].copy_from_slice(&(flags | SEND_TYPES_TO_SERVER).to_le_bytes());
            payload.splice(TYPES_AT..TYPES_AT, types.iter().copied());
            *backend_types = Some(types);
        }
    }
}

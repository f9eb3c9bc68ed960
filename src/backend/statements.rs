//! Backend prepared statements on one connection: prepared once per (SQL, parse state),
//! bounded by an LRU cache, closed on the server when evicted or released.

use bytes::Bytes;

use super::{BackendConn, BackendError, BackendStmt};
use crate::protocol::reply::{HEAD_LEN, parse_err};
use crate::protocol::{MAX_PAYLOAD, ProtocolError, ReplyKind, ReplyTracker, Step, caps, com};

/// ER_MAX_PREPARED_STMT_COUNT_REACHED: the server-wide `max_prepared_stmt_count`.
const MAX_PREPARED_STMT_COUNT: u16 = 1461;

/// COM_STMT_CLOSE packets for `ids`, ready to write.
fn close_packets(ids: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 9);
    for id in ids {
        crate::protocol::packet::encode(&mut out, 0, &[&[com::STMT_CLOSE][..], &id.to_le_bytes()].concat());
    }
    out
}

impl BackendConn {
    /// The backend id of `sql` prepared on this connection under parse state `parse` (a key
    /// of the schema, `sql_mode` and character set it was prepared with), preparing it now if
    /// needed: the caller has brought the connection to that state. The least recently used
    /// statement is closed (in the same write) when the cache is full. When the server's
    /// `max_prepared_stmt_count` is reached (1461), every cached statement is closed and the
    /// prepare tried once more, unless `keep_cached` (the session has a cursor or long data on
    /// one). ERR from the server comes back as its payload for the client.
    pub async fn prepare_cached(
        &mut self,
        sql: &[u8],
        parse: u64,
        keep_cached: bool,
    ) -> Result<Result<u32, Bytes>, BackendError> {
        if let Some(s) = self.prepared.get_mut(sql, parse) {
            return Ok(Ok(s.id));
        }
        let room = self.prepared.make_room();
        let mut reply = self.prepare_now(sql, room).await?;
        if let Err(err) = &reply
            && parse_err(err).is_some_and(|(code, _)| code == MAX_PREPARED_STMT_COUNT)
            && !keep_cached
            && !self.prepared.is_empty()
        {
            let all = self.prepared.drain_ids();
            reply = self.prepare_now(sql, all).await?;
        }
        let reply = match reply {
            Ok(r) => r,
            Err(err) => return Ok(Err(err)),
        };
        let id = reply[0].get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let id = id.ok_or_else(|| self.perr(ProtocolError::Truncated("statement id")))?;
        let evicted =
            self.prepared.insert(sql.to_vec(), parse, BackendStmt { id, reply, types: None, used: 0 });
        if !evicted.is_empty() {
            self.stream.write_raw(&close_packets(&evicted)).await.map_err(|e| self.perr(e))?;
        }
        Ok(Ok(id))
    }

    /// Sends COM_STMT_CLOSE for `close` (no replies) and COM_STMT_PREPARE in one write; the
    /// PREPARE_OK reply packets, or the ERR payload.
    async fn prepare_now(
        &mut self,
        sql: &[u8],
        close: Vec<u32>,
    ) -> Result<Result<Vec<Vec<u8>>, Bytes>, BackendError> {
        let mut out = close_packets(&close);
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(com::STMT_PREPARE);
        payload.extend_from_slice(sql);
        crate::protocol::packet::encode(&mut out, 0, &payload);
        self.stream.write_raw(&out).await.map_err(|e| self.perr(e))?;
        let deprecate_eof = self.capabilities & caps::DEPRECATE_EOF != 0;
        let mut tracker = ReplyTracker::new(ReplyKind::Prepare, deprecate_eof, false);
        let mut reply = Vec::new();
        loop {
            let p = self.stream.read_packet(None).await.map_err(|e| self.perr(e))?;
            let p =
                p.ok_or_else(|| self.perr(ProtocolError::Truncated("prepare reply (connection closed)")))?;
            let payload = p.payload();
            let step =
                tracker.on_frame(payload.len().min(MAX_PAYLOAD - 1), &payload[..payload.len().min(HEAD_LEN)]);
            let step = step.map_err(|e| self.perr(e))?;
            reply.push(payload.to_vec());
            if let Step::Done(end) = step {
                if end.error.is_some() {
                    return Ok(Err(Bytes::from(reply.swap_remove(0))));
                }
                return Ok(Ok(reply));
            }
        }
    }

    /// Closes a statement on the backend (COM_STMT_CLOSE has no reply) and forgets it.
    pub async fn close_statement(&mut self, sql: &[u8], parse: u64) -> Result<(), BackendError> {
        let Some(old) = self.prepared.remove(sql, parse) else { return Ok(()) };
        self.stream.write_raw(&close_packets(&[old.id])).await.map_err(|e| self.perr(e))
    }
}

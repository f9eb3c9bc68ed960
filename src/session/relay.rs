//! Streams a backend reply to the client frame by frame, never decoding rows.
//!
//! Bytes are forwarded in the chunks they arrive in (one write per backend read); only frame
//! headers and the first bytes of each frame go through the `ReplyTracker`.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::packet::{encode, frame_header};
use crate::protocol::reply::{self, HEAD_LEN};
use crate::protocol::session_track;
use crate::protocol::{PacketStream, ProtocolError, ReplyEnd, ReplyTracker, Step};

/// Who broke a relay, and whether the client already saw part of the reply.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("backend: {source}")]
    Backend { source: ProtocolError, client_saw_bytes: bool },
    #[error("client: {0}")]
    Client(ProtocolError),
    /// The reply was a single ERR with one of the held codes; nothing reached the client.
    #[error("held ERR {0}")]
    Held(u16),
}

/// What the relay may hold back so that a failed read can still be retried elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retryable<'a> {
    /// A reply that is just one ERR with one of these codes is not forwarded: `Held(code)`.
    pub errors: &'a [u16],
    /// The first bytes of the reply (up to this many) are forwarded only once the reply is
    /// complete or this much has arrived, so a backend dying mid-reply is still invisible.
    pub bytes: usize,
}

/// Session tracking on the backend connection: OK packets are rewritten for the client and
/// the `last_gtid` they report is kept.
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    /// The backend connection sends session-state data in OK packets.
    pub backend_tracks: bool,
    /// The client negotiated `CLIENT_SESSION_TRACK` itself.
    pub client_tracks: bool,
    /// The backend writes OK `info` length-encoded even without tracking (MariaDB).
    pub lenenc_info: bool,
    /// Tracking entries the client asked for itself: it keeps them.
    pub keep: session_track::Keep,
    /// The last `last_gtid` seen in this reply.
    pub last_gtid: Option<String>,
    /// An OK packet of this reply reported a session-state change.
    pub state_changed: bool,
    /// The current schema an OK packet of this reply reported.
    pub schema: Option<String>,
    /// Bytes written to the client for this reply.
    pub sent_bytes: u64,
    /// The statement may have committed a write: when its reply ends without telling the
    /// write's position (an EOF terminator, or a connection that does not track GTIDs), the
    /// reply's last bytes are kept in `held` instead of sent, so the proxy learns the
    /// position before the client can act on the reply (its next read, on any connection,
    /// then sees the write).
    pub hold_unlearned_end: bool,
    /// The backend connection reports each commit's GTID in its OK packets.
    pub gtid_tracked: bool,
    /// The reply's tail, not yet sent (see `hold_unlearned_end`).
    pub held: Vec<u8>,
}

impl Tracking {
    /// Whether the reply ending with `step` must wait for the proxy to ask for the position.
    fn holds_end(&self, step: Option<&Step>) -> bool {
        let Some(Step::Done(end)) = step else { return false };
        self.hold_unlearned_end
            && end.error.is_none()
            && end.status.is_none_or(|s| s & crate::protocol::status::IN_TRANS == 0)
            && (end.eof_state_changed || !self.gtid_tracked)
    }
}

/// OK packets larger than this are forwarded untouched (they are never this large).
const MAX_OK_REWRITE: usize = 4096;

/// Relays one reply. On `LocalInfile` it pumps the client's file packets to the backend
/// and goes on with the reply.
pub async fn relay_reply<B, C>(
    backend: &mut PacketStream<B>,
    client: &mut PacketStream<C>,
    mut tracker: ReplyTracker,
    retry: Retryable<'_>,
    track: &mut Tracking,
) -> Result<ReplyEnd, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame_left = 0usize; // bytes of the current frame still to pass over
    let mut pending: Option<Step> = None; // step of the last classified frame
    let mut sent = false;
    let mut pos = 0; // bytes at the front of the buffer already classified, not yet written
    loop {
        let buf = backend.buffered();
        let mut rewrite: Option<(usize, Vec<u8>)> = None;
        loop {
            if frame_left > 0 {
                let n = frame_left.min(buf.len() - pos);
                pos += n;
                frame_left -= n;
                if frame_left > 0 {
                    break;
                }
            }
            if matches!(pending, Some(Step::Done(_) | Step::LocalInfile)) {
                break;
            }
            let Some((len, _seq)) = frame_header(&buf[pos..]) else { break };
            let head_end = pos + 4 + len.min(HEAD_LEN);
            if buf.len() < head_end {
                break;
            }
            if !sent && pos == 0 && !retry.errors.is_empty() && len >= 3 && buf[4] == 0xff {
                if buf.len() < 4 + len {
                    break;
                }
                let code = u16::from_le_bytes([buf[5], buf[6]]);
                if retry.errors.contains(&code) {
                    backend.consume(4 + len);
                    return Err(RelayError::Held(code));
                }
            }
            let may_be_ok = matches!(buf[pos + 4..].first(), Some(0x00 | 0xfe)) && len <= MAX_OK_REWRITE;
            if track.backend_tracks && may_be_ok && buf.len() < pos + 4 + len {
                break; // an OK packet may need rewriting: wait for all of it
            }
            let step = tracker
                .on_frame(len, &buf[pos + 4..head_end])
                .map_err(|source| RelayError::Backend { source, client_saw_bytes: sent })?;
            pending = Some(step);
            frame_left = 4 + len;
            let ok_to_read = track.backend_tracks && tracker.frame_was_ok();
            let rw = (ok_to_read && may_be_ok).then(|| {
                let payload = &buf[pos + 4..pos + 4 + len];
                session_track::rewrite_ok(payload, track.client_tracks, track.lenenc_info, track.keep)
            });
            if ok_to_read && !matches!(rw, Some(Some(_))) {
                // Too large or unreadable: its state-change flag alone must count as a change.
                let flags = reply::ok_status(&buf[pos + 4..head_end]).unwrap_or(0);
                track.state_changed |= flags & crate::protocol::status::SESSION_STATE_CHANGED != 0;
            }
            if let Some(Some(rw)) = rw {
                if rw.last_gtid.is_some() {
                    track.last_gtid = rw.last_gtid;
                }
                track.state_changed |= rw.state_changed;
                if rw.schema.is_some() {
                    track.schema = rw.schema;
                }
                if let Some(payload) = rw.payload {
                    let mut frame = Vec::with_capacity(payload.len() + 4);
                    encode(&mut frame, buf[pos + 3], &payload);
                    rewrite = Some((len, frame));
                    break;
                }
            }
        }
        let rewrote = rewrite.is_some();
        if let Some((len, frame)) = rewrite {
            // Everything before the OK packet, then the rewritten packet instead of the original.
            if track.holds_end(pending.as_ref()) {
                track.held.extend_from_slice(&buf[..pos]);
                track.held.extend_from_slice(&frame);
            } else {
                if pos > 0 {
                    client.write_raw(&buf[..pos]).await.map_err(RelayError::Client)?;
                }
                client.write_raw(&frame).await.map_err(RelayError::Client)?;
                track.sent_bytes += (pos + frame.len()) as u64;
            }
            backend.consume(pos + 4 + len);
            pos = 0;
            frame_left = 0;
            sent = true;
        }
        let buf = backend.buffered();
        let complete = frame_left == 0 && matches!(pending, Some(Step::Done(_) | Step::LocalInfile));
        let holding = !sent && !complete && pos < retry.bytes;
        if pos > 0 && complete && track.holds_end(pending.as_ref()) {
            track.held.extend_from_slice(&buf[..pos]);
            backend.consume(pos);
            pos = 0;
        } else if pos > 0 && !holding {
            client.write_raw(&buf[..pos]).await.map_err(RelayError::Client)?;
            track.sent_bytes += pos as u64;
            backend.consume(pos);
            pos = 0;
            sent = true;
        }
        if complete {
            match pending {
                Some(Step::Done(end)) => return Ok(end),
                Some(Step::LocalInfile) => {
                    pump_infile(client, backend).await?;
                    pending = None;
                    continue;
                }
                _ => {}
            }
        }
        if rewrote && !backend.buffered().is_empty() {
            continue; // the next frames may be here already: never wait for bytes that came
        }
        match backend.fill().await {
            Ok(0) => {
                let source = ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into());
                return Err(RelayError::Backend { source, client_saw_bytes: sent });
            }
            Ok(_) => {}
            Err(source) => return Err(RelayError::Backend { source, client_saw_bytes: sent }),
        }
    }
}

/// Forwards `LOAD DATA LOCAL INFILE` contents: client packets until an empty one.
async fn pump_infile<B, C>(
    client: &mut PacketStream<C>,
    backend: &mut PacketStream<B>,
) -> Result<(), RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let packet = client
            .read_packet(None)
            .await
            .map_err(RelayError::Client)?
            .ok_or(RelayError::Client(ProtocolError::Truncated("LOCAL INFILE data (client closed)")))?;
        backend
            .write_raw(packet.raw())
            .await
            .map_err(|source| RelayError::Backend { source, client_saw_bytes: true })?;
        if packet.payload().is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;

//! Packet framing: 3-byte length + sequence id, continuation frames, and a buffered stream.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ProtocolError;

/// A frame carrying this many payload bytes is continued by the next frame.
pub const MAX_PAYLOAD: usize = 0xff_ffff;
/// What a backend connection's buffer reads at once: result sets stream through it.
const READ_CHUNK: usize = 64 * 1024;
/// What a client connection's buffer starts with and reads at once: client packets are
/// small, and thousands of idle sessions each keep one (larger packets grow it as they
/// arrive; it shrinks back once it is empty).
pub const CLIENT_READ_CHUNK: usize = 2 * 1024;

/// Parses a frame header: `(payload length, sequence id)`, or `None` if fewer than 4 bytes.
pub fn frame_header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < 4 {
        return None;
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    Some((len, buf[3]))
}

/// Appends `payload` as one or more frames starting at `seq`; returns the next sequence id.
pub fn encode(out: &mut Vec<u8>, mut seq: u8, payload: &[u8]) -> u8 {
    let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
    if payload.is_empty() {
        out.extend_from_slice(&[0, 0, 0, seq]);
        return seq.wrapping_add(1);
    }
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u32;
        out.extend_from_slice(&len.to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(chunk);
        seq = seq.wrapping_add(1);
        if chunk.len() == MAX_PAYLOAD && chunks.peek().is_none() {
            out.extend_from_slice(&[0, 0, 0, seq]);
            seq = seq.wrapping_add(1);
        }
    }
    seq
}

/// One logical packet: the frames as received (to forward unchanged) and the joined payload.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u8,
    pub last_seq: u8,
    raw: Bytes,
    payload: Bytes,
}

impl Packet {
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The frames exactly as they arrived, headers included.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// The most the read buffer grows by at once while a large packet arrives.
const MAX_RESERVE: usize = 1 << 20;

/// A byte stream with a read buffer, speaking MySQL frames. Generic so TLS or compression
/// can wrap the socket later without touching the callers.
#[derive(Debug)]
pub struct PacketStream<S> {
    stream: S,
    rbuf: BytesMut,
    /// Bytes reserved per read when the buffer runs low.
    chunk: usize,
    max_payload: usize,
    /// A write that cannot complete within this fails (a peer that stopped reading).
    write_timeout: Option<std::time::Duration>,
    /// Sequence ids out of order are corrected instead of refused (see `renumber`).
    renumber: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    pub fn new(stream: S, max_payload: usize) -> Self {
        Self::with_read_chunk(stream, max_payload, READ_CHUNK)
    }

    /// Like `new`, reading `chunk` bytes at a time (see `CLIENT_READ_CHUNK`).
    pub fn with_read_chunk(stream: S, max_payload: usize, chunk: usize) -> Self {
        let rbuf = BytesMut::with_capacity(chunk);
        PacketStream { stream, rbuf, chunk, max_payload, write_timeout: None, renumber: false }
    }

    /// Bounds every later write: one the peer does not take within `limit` fails.
    pub fn set_write_timeout(&mut self, limit: std::time::Duration) {
        self.write_timeout = Some(limit);
    }

    /// From now on, frames whose sequence id is not the expected one are renumbered in place
    /// instead of refused: under the compressed protocol the outer frames carry the order,
    /// and clients number the packets inside loosely (libmariadb gives a 16 MiB packet's
    /// continuation frame id 0); what is relayed to a backend is numbered right.
    pub fn renumber(&mut self) {
        self.renumber = true;
    }

    /// Changes the largest payload accepted from now on (raised once a client logged in).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Buffered bytes not yet consumed.
    pub fn buffered(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Reads more bytes into the buffer; `Ok(0)` means the peer closed.
    pub async fn fill(&mut self) -> Result<usize, ProtocolError> {
        if self.rbuf.capacity() - self.rbuf.len() < self.chunk / 4 {
            self.rbuf.reserve(self.chunk);
            if self.rbuf.is_empty() && self.rbuf.capacity() > 8 * self.chunk {
                // `reserve` took back the allocation a large packet grew: give it up.
                self.rbuf = BytesMut::with_capacity(self.chunk);
            }
        }
        Ok(self.stream.read_buf(&mut self.rbuf).await?)
    }

    /// Reads one logical packet. `expected_seq` checks the first frame's sequence id.
    /// `Ok(None)` is a clean close between packets.
    pub async fn read_packet(&mut self, expected_seq: Option<u8>) -> Result<Option<Packet>, ProtocolError> {
        let mut frames = 0usize; // bytes of complete frames at the front of rbuf
        let mut payload_len = 0usize;
        let mut next_seq = expected_seq;
        loop {
            match frame_header(&self.rbuf[frames..]) {
                Some((len, seq)) => {
                    let seq = match next_seq {
                        Some(exp) if exp != seq && self.renumber => {
                            self.rbuf[frames + 3] = exp;
                            exp
                        }
                        Some(exp) if exp != seq => {
                            return Err(ProtocolError::Sequence { got: seq, expected: exp });
                        }
                        _ => seq,
                    };
                    payload_len += len;
                    if payload_len > self.max_payload {
                        return Err(ProtocolError::TooLarge { size: payload_len, max: self.max_payload });
                    }
                    if self.rbuf.len() - frames < 4 + len {
                        // Grow with what arrives, never by what a header claims: a peer that
                        // announces a large packet and sends nothing costs nothing.
                        let missing = 4 + len - (self.rbuf.len() - frames);
                        self.rbuf.reserve(missing.min(MAX_RESERVE));
                        self.fill_or_eof().await?;
                        payload_len -= len;
                        continue;
                    }
                    frames += 4 + len;
                    next_seq = Some(seq.wrapping_add(1));
                    if len < MAX_PAYLOAD {
                        return Ok(Some(self.take_packet(frames, payload_len)));
                    }
                }
                None => {
                    if self.rbuf.is_empty() {
                        if self.rbuf.capacity() > 8 * self.chunk {
                            // Grown by a large packet: give it back before waiting.
                            self.rbuf = BytesMut::with_capacity(self.chunk);
                        }
                        if self.fill().await? == 0 {
                            return Ok(None);
                        }
                    } else {
                        self.fill_or_eof().await?;
                    }
                }
            }
        }
    }

    async fn fill_or_eof(&mut self) -> Result<(), ProtocolError> {
        if self.fill().await? == 0 {
            return Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    fn take_packet(&mut self, frames: usize, payload_len: usize) -> Packet {
        let raw = self.rbuf.split_to(frames).freeze();
        if frames > 8 * self.chunk && self.rbuf.is_empty() {
            // What is left of the buffer a large packet grew stays with that packet.
            self.rbuf = BytesMut::with_capacity(self.chunk);
        }
        let seq = raw[3];
        let payload = if payload_len + 4 == raw.len() {
            raw.slice(4..)
        } else {
            let mut joined = BytesMut::with_capacity(payload_len);
            let mut rest = &raw[..];
            while let Some((len, _)) = frame_header(rest) {
                joined.extend_from_slice(&rest[4..4 + len]);
                rest = &rest[4 + len..];
            }
            joined.freeze()
        };
        let mut last_seq = seq;
        let mut rest = &raw[..];
        while let Some((len, s)) = frame_header(rest) {
            last_seq = s;
            rest = &rest[4 + len..];
        }
        Packet { seq, last_seq, raw, payload }
    }

    /// Writes `payload` framed from `seq`; returns the next sequence id.
    pub async fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Result<u8, ProtocolError> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        let next = encode(&mut out, seq, payload);
        self.write_raw(&out).await?;
        Ok(next)
    }

    /// Writes already framed bytes unchanged.
    /// Flushes too: a TLS stream's `write_all` may return with the last records still in its
    /// buffer when the socket was full, and nothing else would send them (a no-op on TCP).
    pub async fn write_raw(&mut self, raw: &[u8]) -> Result<(), ProtocolError> {
        let limit = self.write_timeout;
        let stream = &mut self.stream;
        let write = async move {
            stream.write_all(raw).await?;
            stream.flush().await
        };
        let Some(limit) = limit else {
            write.await?;
            return Ok(());
        };
        let mut write = std::pin::pin!(write);
        // Almost every write completes at once: only one that has to wait gets a timer.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
        let done = match first {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => match tokio::time::timeout(limit, write).await {
                Ok(r) => r,
                Err(_) => {
                    let why = format!("the peer took nothing for {} ms", limit.as_millis());
                    return Err(ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
                }
            },
        };
        done?;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), ProtocolError> {
        self.stream.flush().await?;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        // The peer may already be gone; nothing useful to do with the error.
        let _closed = self.stream.shutdown().await;
    }

    /// Drops `n` consumed bytes from the front of the read buffer.
    pub fn consume(&mut self, n: usize) {
        self.rbuf.advance(n);
    }

    /// The inner stream; buffered unread bytes are dropped.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The inner stream, for relaying bytes straight from another stream's buffer.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(bytes: Vec<u8>, max: usize) -> PacketStream<tokio::io::DuplexStream> {
        let (a, mut b) = tokio::io::duplex(bytes.len().max(1) + 16);
        tokio::spawn(async move {
            b.write_all(&bytes).await.unwrap();
        });
        PacketStream::new(a, max)
    }

    #[test]
    fn encode_splits_at_max_payload_and_ends_with_short_frame() {
        let payload = vec![7u8; MAX_PAYLOAD];
        let mut out = Vec::new();
        let next = encode(&mut out, 0, &payload);
        assert_eq!(next, 2);
        assert_eq!(&out[..4], &[0xff, 0xff, 0xff, 0]);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 1]);
        let mut out = Vec::new();
        encode(&mut out, 3, b"\x0eab");
        assert_eq!(out, b"\x03\x00\x00\x03\x0eab");
    }

    #[tokio::test]
    async fn reads_a_com_ping_frame() {
        let mut s = stream_of(vec![0x01, 0, 0, 0, 0x0e], 1024);
        let p = s.read_packet(Some(0)).await.unwrap().unwrap();
        assert_eq!(p.payload(), &[0x0e]);
        assert_eq!(p.raw(), &[0x01, 0, 0, 0, 0x0e]);
        assert!(s.read_packet(Some(0)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn joins_continuation_frames() {
        let payload: Vec<u8> = (0..MAX_PAYLOAD + 10).map(|i| i as u8).collect();
        let mut raw = Vec::new();
        encode(&mut raw, 0, &payload);
        let mut s = stream_of(raw.clone(), 64 << 20);
        let p = s.read_packet(Some(0)).await.unwrap().unwrap();
        assert_eq!(p.payload(), &payload[..]);
        assert_eq!(p.raw(), &raw[..]);
        assert_eq!(p.last_seq, 1);
    }

    #[tokio::test]
    async fn rejects_wrong_sequence_and_oversize() {
        let mut s = stream_of(vec![1, 0, 0, 5, 0x0e], 1024);
        assert!(matches!(s.read_packet(Some(0)).await, Err(ProtocolError::Sequence { got: 5, expected: 0 })));
        let mut s = stream_of(vec![0xff, 0xff, 0x00, 0, 0x03], 100);
        assert!(matches!(s.read_packet(Some(0)).await, Err(ProtocolError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn eof_mid_packet_is_an_error() {
        let mut s = stream_of(vec![10, 0, 0, 0, 0x03, b'S'], 1024);
        assert!(s.read_packet(Some(0)).await.is_err());
    }

    /// A client's buffer starts small, grows for a large packet and shrinks back before it
    /// waits for the next one: an idle session keeps `CLIENT_READ_CHUNK`, not its largest
    /// statement.
    #[tokio::test]
    async fn a_client_buffer_shrinks_back_after_a_large_packet() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 0, &vec![b'x'; 300_000]);
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut s = PacketStream::with_read_chunk(a, 1 << 20, CLIENT_READ_CHUNK);
        assert!(s.rbuf.capacity() <= CLIENT_READ_CHUNK);
        let writer = tokio::spawn(async move {
            b.write_all(&bytes).await.unwrap();
            b
        });
        let big = s.read_packet(Some(0)).await.unwrap().unwrap();
        assert_eq!(big.payload().len(), 300_000);
        drop(big);
        let mut b = writer.await.unwrap();
        b.write_all(&[1, 0, 0, 0, 0x0e]).await.unwrap();
        assert!(s.read_packet(Some(0)).await.unwrap().is_some());
        assert!(s.rbuf.capacity() <= 8 * CLIENT_READ_CHUNK, "shrunk: {}", s.rbuf.capacity());
    }
}

//! The compressed protocol (`CLIENT_COMPRESS`, zlib) as a stream under the packet layer: each
//! frame is a 7-byte header (compressed length, its own sequence id, uncompressed length, 0
//! when the payload is sent as is) and a zlib stream holding any run of MySQL packet bytes —
//! packets may start and end anywhere in a frame. Reads yield the plain packet bytes; writes
//! are collected and sent as frames on flush (the packet writer flushes after every write) or
//! when `CHUNK` bytes are waiting, so a relayed result stays raw and memory stays bounded.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HEADER: usize = 7;
/// Plain bytes per frame written: well under the 16 MiB a frame can describe.
const CHUNK: usize = 64 << 10;
/// Shorter payloads are sent uncompressed (the servers' `MIN_COMPRESS_LENGTH`).
const MIN_COMPRESS: usize = 50;
/// Bytes asked of the inner stream per read (a frame that needs more grows the buffer).
const READ: usize = 2 << 10;
/// A buffer larger than this is given back once it is empty, so an idle compressed session
/// holds no more than a plain one does.
const KEEP: usize = 8 << 10;
/// The largest frame length the 3-byte header can hold.
const MAX_FRAME: usize = (1 << 24) - 1;

pub struct Compressed<S> {
    inner: S,
    /// Frame bytes read from `inner`, not yet a whole frame.
    wire_in: BytesMut,
    /// Decompressed bytes not yet handed to the reader.
    plain_in: BytesMut,
    /// Written bytes not yet framed.
    plain_out: Vec<u8>,
    /// Framed bytes not yet written to `inner`.
    wire_out: BytesMut,
    /// The next frame's sequence id: one past the last frame read or written (each command
    /// from the client starts again at 0).
    seq: u8,
}

impl<S> Compressed<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            wire_in: BytesMut::new(),
            plain_in: BytesMut::new(),
            plain_out: Vec::new(),
            wire_out: BytesMut::new(),
            seq: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner stream; bytes written but not flushed are dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Takes one whole frame off `wire_in` into `plain_in`; `false` when none is complete.
    fn take_frame(&mut self) -> io::Result<bool> {
        let Some(h) = self.wire_in.get(..HEADER) else { return Ok(false) };
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        let plain_len = usize::from(h[4]) | usize::from(h[5]) << 8 | usize::from(h[6]) << 16;
        let seq = h[3];
        if self.wire_in.len() < HEADER + len {
            // Grow with what arrives, never by what a header claims.
            self.wire_in.reserve((HEADER + len - self.wire_in.len()).min(1 << 20));
            return Ok(false);
        }
        self.wire_in.advance(HEADER);
        let body = self.wire_in.split_to(len);
        if plain_len == 0 {
            self.plain_in.extend_from_slice(&body);
        } else {
            inflate_exact(&body, plain_len, &mut self.plain_in)?;
        }
        self.seq = seq.wrapping_add(1);
        Ok(true)
    }

    /// Frames what was written (in `CHUNK`s) into `wire_out`.
    fn frame_output(&mut self) -> io::Result<()> {
        for chunk in self.plain_out.chunks(CHUNK) {
            let start = self.wire_out.len();
            self.wire_out.extend_from_slice(&[0; HEADER]);
            let plain_len = if chunk.len() < MIN_COMPRESS {
                self.wire_out.extend_from_slice(chunk);
                0
            } else {
                // One-shot, as the servers' `my_compress` is: no compressor state (hundreds of
                // KiB) stays with an idle session.
                let mut out = Vec::with_capacity(chunk.len() + 64);
                let status = Compress::new(Compression::fast(), true).compress_vec(
                    chunk,
                    &mut out,
                    FlushCompress::Finish,
                )?;
                if status == Status::StreamEnd && out.len() < chunk.len() {
                    self.wire_out.extend_from_slice(&out);
                    chunk.len()
                } else {
                    self.wire_out.extend_from_slice(chunk);
                    0
                }
            };
            let len = self.wire_out.len() - start - HEADER;
            debug_assert!(len <= MAX_FRAME);
            let h = &mut self.wire_out[start..start + HEADER];
            h[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
            h[3] = self.seq;
            h[4..].copy_from_slice(&(plain_len as u32).to_le_bytes()[..3]);
            self.seq = self.seq.wrapping_add(1);
        }
        if self.plain_out.capacity() > KEEP {
            self.plain_out = Vec::new();
        } else {
            self.plain_out.clear();
        }
        Ok(())
    }
}

/// Inflates one frame's zlib stream (one-shot, no state kept) into `out`; it must give exactly
/// `plain_len` bytes and use the whole body (a frame that claims less than it holds is refused
/// before it can grow the buffer further).
fn inflate_exact(body: &[u8], plain_len: usize, out: &mut BytesMut) -> io::Result<()> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("compressed frame: {why}"));
    let start = out.len();
    // Straight into the read buffer, sized by the header (at most 16 MiB): no second copy.
    out.resize(start + plain_len, 0);
    let mut z = Decompress::new(true);
    let status = z.decompress(body, &mut out[start..], FlushDecompress::Finish);
    let whole = matches!(status, Ok(Status::StreamEnd))
        && z.total_out() == plain_len as u64
        && z.total_in() == body.len() as u64;
    if !whole {
        out.truncate(start);
        return Err(bad("its zlib data does not give the length its header does"));
    }
    Ok(())
}

impl<S: AsyncRead + Unpin> AsyncRead for Compressed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.plain_in.is_empty() {
            if this.take_frame()? {
                continue;
            }
            if this.wire_in.is_empty() && this.wire_in.capacity() > KEEP {
                // A large frame grew it: an idle session gives that back.
                this.wire_in = BytesMut::new();
            }
            this.wire_in.reserve(READ);
            let n = ready!(poll_read_into(Pin::new(&mut this.inner), cx, &mut this.wire_in))?;
            if n == 0 {
                if this.wire_in.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let n = this.plain_in.len().min(buf.remaining());
        buf.put_slice(&this.plain_in[..n]);
        this.plain_in.advance(n);
        if this.plain_in.is_empty() && this.plain_in.capacity() > KEEP {
            this.plain_in = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads from `io` into the spare capacity of `buf`.
fn poll_read_into<S: AsyncRead>(
    io: Pin<&mut S>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let spare = buf.spare_capacity_mut();
    let mut rb = ReadBuf::uninit(spare);
    ready!(io.poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Poll::Ready(Ok(n))
}

impl<S: AsyncWrite + Unpin> Compressed<S> {
    /// Writes `wire_out` to the inner stream.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wire_out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wire_out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wire_out.advance(n);
        }
        if self.wire_out.capacity() > KEEP {
            self.wire_out = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Compressed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.plain_out.len() >= CHUNK {
            this.frame_output()?;
        }
        ready!(this.poll_send(cx))?;
        let n = buf.len().min(CHUNK - this.plain_out.len());
        this.plain_out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.plain_out.is_empty() {
            this.frame_output()?;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;

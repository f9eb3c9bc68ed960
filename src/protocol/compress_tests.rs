use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Frames `plain` as a client would: one frame, compressed when `compress`.
fn frame(seq: u8, plain: &[u8], compress: bool) -> Vec<u8> {
    let (body, plain_len) = if compress {
        let mut z = Compress::new(Compression::default(), true);
        let mut out = Vec::with_capacity(plain.len() + 64);
        z.compress_vec(plain, &mut out, FlushCompress::Finish).unwrap();
        (out, plain.len())
    } else {
        (plain.to_vec(), 0)
    };
    let mut f = (body.len() as u32).to_le_bytes()[..3].to_vec();
    f.push(seq);
    f.extend_from_slice(&(plain_len as u32).to_le_bytes()[..3]);
    f.extend_from_slice(&body);
    f
}

/// Reads frames off `wire` the way a client does, checking their sequence ids from `seq`.
fn unframe(mut wire: &[u8], mut seq: u8) -> Vec<u8> {
    let mut plain = Vec::new();
    while !wire.is_empty() {
        let len = u32::from_le_bytes([wire[0], wire[1], wire[2], 0]) as usize;
        let plain_len = u32::from_le_bytes([wire[4], wire[5], wire[6], 0]) as usize;
        assert_eq!(wire[3], seq, "frame sequence ids count up");
        seq = seq.wrapping_add(1);
        let body = &wire[7..7 + len];
        if plain_len == 0 {
            plain.extend_from_slice(body);
        } else {
            let mut z = Decompress::new(true);
            let mut out = Vec::with_capacity(plain_len);
            z.decompress_vec(body, &mut out, FlushDecompress::Finish).unwrap();
            assert_eq!(out.len(), plain_len);
            plain.extend_from_slice(&out);
        }
        wire = &wire[7 + len..];
    }
    plain
}

#[tokio::test]
async fn reads_compressed_and_stored_frames_split_anywhere() {
    let command = b"\x21\x00\x00\x00\x03SELECT 'a fairly long statement, long enough to compress', 1, 2, 3";
    let mut wire = frame(0, command, true);
    wire.extend(frame(0, b"\x01\x00\x00\x00\x0e", false));
    let (mut peer, proxy_side) = tokio::io::duplex(64);
    let mut c = Compressed::new(proxy_side);
    let writer = tokio::spawn(async move {
        // Byte by byte: frames and their headers arrive in pieces.
        for b in wire {
            peer.write_all(&[b]).await.unwrap();
        }
        peer
    });
    let mut got = vec![0u8; command.len() + 5];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..command.len()], command);
    assert_eq!(&got[command.len()..], b"\x01\x00\x00\x00\x0e");
    drop(writer.await.unwrap());
    assert_eq!(c.read(&mut got).await.unwrap(), 0, "a clean end after whole frames");
}

#[tokio::test]
async fn writes_frames_with_sequence_ids_after_the_frame_read() {
    let (mut peer, proxy_side) = tokio::io::duplex(1 << 20);
    let mut c = Compressed::new(proxy_side);
    peer.write_all(&frame(0, b"\x01\x00\x00\x00\x0e", false)).await.unwrap();
    let mut cmd = [0u8; 5];
    c.read_exact(&mut cmd).await.unwrap();
    // A short reply goes stored, a long one compressed and in several frames.
    let short = b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00".to_vec();
    let long: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    c.write_all(&short).await.unwrap();
    c.flush().await.unwrap();
    c.write_all(&long).await.unwrap();
    c.flush().await.unwrap();
    drop(c);
    let mut wire = Vec::new();
    peer.read_to_end(&mut wire).await.unwrap();
    assert_eq!(&wire[..7], &[short.len() as u8, 0, 0, 1, 0, 0, 0], "stored, sequence id 1");
    assert!(wire.len() < short.len() + long.len() / 4, "the long reply was compressed");
    let mut want = short.clone();
    want.extend_from_slice(&long);
    assert_eq!(unframe(&wire, 1), want);
}

#[tokio::test]
async fn frames_that_lie_about_their_length_are_refused() {
    for (declared, why) in [(10usize, "more than declared"), (100_000, "less than declared")] {
        let mut f = frame(0, &[b'x'; 1000], true);
        f[4..7].copy_from_slice(&(declared as u32).to_le_bytes()[..3]);
        let (mut peer, proxy_side) = tokio::io::duplex(1 << 16);
        peer.write_all(&f).await.unwrap();
        let mut c = Compressed::new(proxy_side);
        let e = c.read(&mut [0u8; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{why}");
    }
    let (mut peer, proxy_side) = tokio::io::duplex(1 << 16);
    peer.write_all(&frame(0, &[1, 2, 3], false)[..5]).await.unwrap();
    drop(peer);
    let e = Compressed::new(proxy_side).read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "a frame cut short");
}

/// After a large frame, an idle session keeps no large buffer: the frame and the inflated bytes
/// are given back before it waits for the next command.
#[tokio::test]
async fn buffers_a_large_frame_grew_are_given_back() {
    let plain: Vec<u8> = (0..2_000_000u32).map(|i| (i % 13) as u8).collect();
    let (mut peer, proxy_side) = tokio::io::duplex(1 << 16);
    let mut c = Compressed::new(proxy_side);
    let wire = frame(0, &plain, true);
    let writer = tokio::spawn(async move {
        peer.write_all(&wire).await.unwrap();
        peer
    });
    let mut got = vec![0u8; plain.len()];
    c.read_exact(&mut got).await.unwrap();
    assert!(got == plain);
    let _peer = writer.await.unwrap();
    // The next read waits (nothing sent): by then both buffers are small again.
    let waited = tokio::time::timeout(std::time::Duration::from_millis(20), c.read(&mut [0u8; 16])).await;
    assert!(waited.is_err(), "nothing to read");
    for (name, cap) in [("wire_in", c.wire_in.capacity()), ("plain_in", c.plain_in.capacity())] {
        assert!(cap <= KEEP, "{name} kept {cap}");
    }
    // The same for the writing side after a large reply.
    c.write_all(&plain[..300_000]).await.unwrap();
    c.flush().await.unwrap();
    assert!(c.plain_out.capacity() <= KEEP && c.wire_out.capacity() <= KEEP, "write buffers kept");
}

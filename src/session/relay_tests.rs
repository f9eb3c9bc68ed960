use super::*;
use crate::protocol::packet::encode;
use crate::protocol::{ReplyKind, reply::ok_packet, status};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

/// A text-protocol reply relayed without tracking, as most tests need it.
async fn relay_plain<B, C>(
    backend: &mut PacketStream<B>,
    client: &mut PacketStream<C>,
    retry: Retryable<'_>,
) -> Result<crate::protocol::ReplyEnd, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let tracker = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    relay_reply(backend, client, tracker, retry, &mut Tracking::default()).await
}

fn frames(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        encode(&mut out, i as u8 + 1, p);
    }
    out
}

#[tokio::test]
async fn relays_exact_bytes_and_stops_at_the_end_of_the_reply() {
    let reply = frames(&[
        b"\x01",
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00",
        b"\xfe\x00\x00\x02\x00",
        b"\x011",
        b"\xfe\x00\x00\x02\x00",
    ]);
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, mut c_far) = duplex(1 << 16);
    let mut bytes = reply.clone();
    bytes.extend_from_slice(b"\x01\x00\x00\x00\x0e"); // the next, unrelated packet stays buffered
    b_far.write_all(&bytes).await.unwrap();
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let end = relay_plain(&mut backend, &mut client, Retryable::default()).await.unwrap();
    assert_eq!(end.status, Some(2));
    drop(client);
    let mut got = Vec::new();
    c_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, reply);
    assert_eq!(&backend.buffered()[..], b"\x01\x00\x00\x00\x0e");
}

#[tokio::test]
async fn local_infile_pumps_client_data() {
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, mut c_far) = duplex(1 << 16);
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    b_far.write_all(&frames(&[b"\xfbdata.csv"])).await.unwrap();
    let mut infile = Vec::new();
    encode(&mut infile, 2, b"1,2\n");
    encode(&mut infile, 3, b"");
    c_far.write_all(&infile).await.unwrap();
    let task = tokio::spawn(async move {
        let mut got = vec![0u8; infile.len()];
        b_far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, infile);
        let mut ok = Vec::new();
        encode(&mut ok, 4, &ok_packet(1, 0, 2, 0));
        b_far.write_all(&ok).await.unwrap();
        b_far
    });
    let end = relay_plain(&mut backend, &mut client, Retryable::default()).await.unwrap();
    assert_eq!(end.status, Some(2));
    task.await.unwrap();
}

#[tokio::test]
async fn retryable_reads_hold_back_partial_replies() {
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, mut c_far) = duplex(1 << 16);
    b_far
        .write_all(&frames(&[
            b"\x01",
            b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00",
        ]))
        .await
        .unwrap();
    drop(b_far); // dies after the metadata
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let retry = Retryable { errors: &[1146], bytes: 64 * 1024 };
    let err = relay_plain(&mut backend, &mut client, retry).await.unwrap_err();
    assert!(matches!(err, RelayError::Backend { client_saw_bytes: false, .. }), "{err:?}");
    drop(client);
    let mut got = Vec::new();
    c_far.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty(), "nothing reached the client");
}

#[tokio::test]
async fn ok_packets_lose_tracking_data_the_client_did_not_ask_for() {
    use crate::protocol::wire::put_lenenc_bytes;
    let mut var = Vec::new();
    put_lenenc_bytes(&mut var, b"last_gtid");
    put_lenenc_bytes(&mut var, b"0-1-9");
    let mut state = vec![0];
    put_lenenc_bytes(&mut state, &var);
    let mut ok = vec![0x00, 1, 0, 0x02, 0x40, 0, 0, 0];
    put_lenenc_bytes(&mut ok, &state);
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, mut c_far) = duplex(1 << 16);
    b_far.write_all(&frames(&[&ok])).await.unwrap();
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let mut track =
        Tracking { backend_tracks: true, client_tracks: false, lenenc_info: true, ..Tracking::default() };
    let tracker = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let end =
        relay_reply(&mut backend, &mut client, tracker, Retryable::default(), &mut track).await.unwrap();
    assert_eq!(end.status, Some(0x4002));
    assert_eq!(track.last_gtid.as_deref(), Some("0-1-9"));
    drop(client);
    let mut got = Vec::new();
    c_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, frames(&[b"\x00\x01\x00\x02\x00\x00\x00"]), "plain OK, same sequence id");
}

/// A multi-statement's OKs (each rewritten: the backend tracks state, the client does not)
/// arriving in one read: the reply completes without waiting for more bytes.
#[tokio::test]
async fn rewritten_oks_followed_by_buffered_frames_complete() {
    use crate::protocol::wire::put_lenenc_bytes;
    let ok = |more: bool| {
        let mut var = Vec::new();
        put_lenenc_bytes(&mut var, b"last_gtid");
        put_lenenc_bytes(&mut var, b"0-1-9");
        let mut state = vec![0];
        put_lenenc_bytes(&mut state, &var);
        let flags: u16 = 0x4002 | if more { 0x0008 } else { 0 };
        let mut p = vec![0x00, 1, 0];
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        put_lenenc_bytes(&mut p, &state);
        p
    };
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, _c_far) = duplex(1 << 16);
    b_far.write_all(&frames(&[&ok(true), &ok(true), &ok(false)])).await.unwrap();
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let mut track =
        Tracking { backend_tracks: true, client_tracks: false, lenenc_info: true, ..Tracking::default() };
    let tracker = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let relay = relay_reply(&mut backend, &mut client, tracker, Retryable::default(), &mut track);
    // The backend stays open and silent: a relay that waited for it would never return.
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), relay).await;
    let end = end.expect("the reply completed from the buffered frames").unwrap();
    assert_eq!(end.status, Some(0x4002));
    drop(b_far);
}

#[tokio::test]
async fn backend_closing_mid_reply_is_a_backend_error() {
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, _c_far) = duplex(1 << 16);
    b_far.write_all(&frames(&[b"\x01"])).await.unwrap();
    drop(b_far);
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let err = relay_plain(&mut backend, &mut client, Retryable::default()).await.unwrap_err();
    assert!(matches!(err, RelayError::Backend { client_saw_bytes: true, .. }), "{err:?}");
}

/// A zero-length frame where a reply should start (a broken backend) is an error for this
/// statement, never a panic of the session's task.
#[tokio::test]
async fn an_empty_first_frame_is_a_backend_error() {
    let (b_near, mut b_far) = duplex(1 << 16);
    let (c_near, _c_far) = duplex(1 << 16);
    b_far.write_all(b"\x00\x00\x00\x01").await.unwrap();
    drop(b_far);
    let mut backend = PacketStream::new(b_near, 1 << 20);
    let mut client = PacketStream::new(c_near, 1 << 20);
    let errors = [1927u16];
    let retry = Retryable { errors: &errors, bytes: 1 << 16 };
    let r = relay_plain(&mut backend, &mut client, retry).await;
    assert!(matches!(r, Err(RelayError::Backend { .. })), "{r:?}");
}

/// A write's result set ending in an EOF that says "state changed" (a new GTID the EOF cannot
/// carry): everything but the tail reaches the client; the tail waits in `held` until the
/// proxy asked for the position. The same reply inside a transaction is sent whole.
#[tokio::test]
async fn a_writes_unlearned_end_is_held_back() {
    let changed = (status::AUTOCOMMIT | status::SESSION_STATE_CHANGED).to_le_bytes();
    let in_tx = (status::IN_TRANS | status::SESSION_STATE_CHANGED).to_le_bytes();
    for (flags, held) in [(changed, true), (in_tx, false)] {
        let eof = [0xfe, 0, 0, flags[0], flags[1]];
        let reply = frames(&[
            b"\x01",
            b"\x03def\x00\x00\x00\x02id\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00",
            &eof,
            b"\x011",
            &eof,
        ]);
        let (b_near, mut b_far) = duplex(1 << 16);
        let (c_near, mut c_far) = duplex(1 << 16);
        b_far.write_all(&reply).await.unwrap();
        let mut backend = PacketStream::new(b_near, 1 << 20);
        let mut client = PacketStream::new(c_near, 1 << 20);
        let tracker = ReplyTracker::new(ReplyKind::ResultSets, false, false);
        let mut track = Tracking {
            backend_tracks: true,
            gtid_tracked: true,
            hold_unlearned_end: true,
            ..Tracking::default()
        };
        let end =
            relay_reply(&mut backend, &mut client, tracker, Retryable::default(), &mut track).await.unwrap();
        assert!(end.eof_state_changed);
        drop(client);
        let mut got = Vec::new();
        c_far.read_to_end(&mut got).await.unwrap();
        if held {
            assert!(!track.held.is_empty() && track.held.ends_with(&eof), "the terminator is held");
            assert_eq!([got, track.held].concat(), reply, "nothing lost, nothing reordered");
        } else {
            assert!(track.held.is_empty());
            assert_eq!(got, reply);
        }
    }
}

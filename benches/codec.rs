//! Packet codec and reply state machine: the per-packet work on the relay's hot path.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rwproxy::protocol::handshake::HandshakeV10;
use rwproxy::protocol::packet::{encode, frame_header};
use rwproxy::protocol::reply::HEAD_LEN;
use rwproxy::protocol::{ReplyKind, ReplyTracker};

fn coldef(name: &str) -> Vec<u8> {
    let mut v = b"\x03def\x06sbtest\x07sbtest1\x07sbtest1".to_vec();
    v.push(name.len() as u8);
    v.extend_from_slice(name.as_bytes());
    v.push(name.len() as u8);
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(b"\x0c\x2d\x00\xb4\x00\x00\x00\xfe\x00\x00\x00\x00\x00");
    v
}

/// A framed text result set: `rows` rows of (int, 120-char string), EOF terminators.
fn result_set(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = encode(&mut out, 1, &[2]);
    seq = encode(&mut out, seq, &coldef("id"));
    seq = encode(&mut out, seq, &coldef("c"));
    seq = encode(&mut out, seq, b"\xfe\x00\x00\x02\x00");
    for i in 0..rows {
        let id = i.to_string();
        let mut row = vec![id.len() as u8];
        row.extend_from_slice(id.as_bytes());
        row.push(120);
        row.extend(std::iter::repeat_n(b'x', 120));
        seq = encode(&mut out, seq, &row);
    }
    encode(&mut out, seq, b"\xfe\x00\x00\x02\x00");
    out
}

/// What the relay does per buffer: walk frame headers, feed the tracker.
fn track(buf: &[u8]) -> usize {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let mut pos = 0;
    let mut frames = 0;
    while let Some((len, _)) = frame_header(&buf[pos..]) {
        let head = &buf[pos + 4..pos + 4 + len.min(HEAD_LEN)];
        let _ = black_box(t.on_frame(len, head));
        pos += 4 + len;
        frames += 1;
    }
    frames
}

fn benches(c: &mut Criterion) {
    let point = result_set(1);
    let mut g = c.benchmark_group("reply_tracker");
    g.throughput(Throughput::Bytes(point.len() as u64));
    g.bench_function("point_select_reply", |b| b.iter(|| track(black_box(&point))));
    let big = result_set(1000);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("1000_row_reply", |b| b.iter(|| track(black_box(&big))));
    g.finish();

    let mut g = c.benchmark_group("codec");
    let query = b"\x03SELECT c FROM sbtest1 WHERE id=4711".to_vec();
    g.bench_function("encode_query_packet", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            encode(&mut out, 0, black_box(&query));
        })
    });
    let greeting = HandshakeV10 {
        server_version: b"5.5.5-10.11.19-MariaDB-0+deb12u1".to_vec(),
        connection_id: 42,
        salt: b"ABCDEFGHIJKLMNOPQRST".to_vec(),
        capabilities: 0xf7fe | 0x81ff << 16,
        collation: 45,
        status: 2,
        auth_plugin: b"mysql_native_password".to_vec(),
        mariadb_caps: 0x1d,
    }
    .encode();
    g.bench_function("decode_greeting", |b| b.iter(|| HandshakeV10::decode(black_box(&greeting))));
    g.finish();
}

criterion_group!(codec, benches);
criterion_main!(codec);

//! The reply tracker and the OK-packet rewrite on any backend reply: the input is cut into
//! frames by their 4-byte headers (as a server sends them; lengths clamped to the input),
//! fed for each reply kind and EOF mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::protocol::session_track::{Keep, rewrite_ok};
use rwproxy::protocol::{ReplyKind, ReplyTracker, Step};

fuzz_target!(|data: &[u8]| {
    let mut frames = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 && frames.len() < 256 {
        let len = (usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16).min(rest.len() - 4);
        frames.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    for kind in [ReplyKind::ResultSets, ReplyKind::Prepare, ReplyKind::Rows, ReplyKind::FieldList] {
        for (deprecate_eof, binary) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut t = ReplyTracker::new(kind, deprecate_eof, binary);
            for f in &frames {
                match t.on_frame(f.len(), &f[..f.len().min(rwproxy::protocol::reply::HEAD_LEN)]) {
                    Ok(Step::More) => {}
                    Ok(_) | Err(_) => break,
                }
            }
        }
    }
    for f in &frames {
        for (tracks, lenenc) in [(false, false), (true, true)] {
            let _ = rewrite_ok(f, tracks, lenenc, Keep::default());
        }
    }
});

use super::*;

fn coldef(name: &str) -> Vec<u8> {
    let mut v = b"\x03def\x04test\x01t\x01t".to_vec();
    v.push(name.len() as u8);
    v.extend_from_slice(name.as_bytes());
    v.push(name.len() as u8);
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(b"\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00");
    v
}

const EOF_AUTOCOMMIT: &[u8] = b"\xfe\x00\x00\x02\x00";
const EOF_MORE: &[u8] = b"\xfe\x00\x00\x0a\x00";

/// Feeds payloads; returns the step of each.
/// Feeds payloads; returns the step of each (row counts zeroed; `rows_are_counted_across_result_sets`
/// checks them).
fn run(t: &mut ReplyTracker, frames: &[Vec<u8>]) -> Vec<Step> {
    frames.iter().map(|f| zero_rows(t.on_frame(f.len(), &f[..f.len().min(HEAD_LEN)]).unwrap())).collect()
}

fn zero_rows(s: Step) -> Step {
    match s {
        Step::Done(end) => Step::Done(ReplyEnd { rows: 0, ..end }),
        s => s,
    }
}

#[test]
fn rows_are_counted_across_result_sets() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames = [
        vec![1],
        coldef("a"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x011".to_vec(),
        b"\x012".to_vec(),
        EOF_MORE.to_vec(),
        vec![1],
        coldef("b"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x013".to_vec(),
        EOF_AUTOCOMMIT.to_vec(),
    ];
    let last = frames.iter().map(|f| t.on_frame(f.len(), f).unwrap()).last().unwrap();
    assert!(matches!(last, Step::Done(e) if e.rows == 3), "{last:?}");
}

fn done(status: u16) -> Step {
    Step::Done(ReplyEnd { status: Some(status), ..ReplyEnd::default() })
}

#[test]
fn ok_reply_reports_status() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    // OK: 1 affected row, insert id 5, status IN_TRANS|AUTOCOMMIT, 0 warnings.
    let steps = run(&mut t, &[b"\x00\x01\x05\x03\x00\x02\x00".to_vec()]);
    assert_eq!(
        steps,
        vec![Step::Done(ReplyEnd {
            status: Some(3),
            warnings: 2,
            last_insert_id: 5,
            affected: 1,
            ..ReplyEnd::default()
        })]
    );
}

#[test]
fn err_reply_reports_code() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let err = err_packet(1146, "42S02", "Table 'test.x' doesn't exist");
    assert_eq!(
        run(&mut t, std::slice::from_ref(&err)),
        vec![Step::Done(ReplyEnd { error: Some(1146), ..ReplyEnd::default() })]
    );
    assert_eq!(parse_err(&err), Some((1146, "Table 'test.x' doesn't exist".into())));
}

#[test]
fn text_result_set_with_eof() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames = vec![
        vec![2],
        coldef("a"),
        coldef("b"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x011\x012".to_vec(),
        b"\xfb\x013".to_vec(), // NULL, "3"
        EOF_AUTOCOMMIT.to_vec(),
    ];
    let steps = run(&mut t, &frames);
    assert!(steps[..6].iter().all(|s| *s == Step::More));
    assert_eq!(steps[6], done(2));
}

#[test]
fn deprecate_eof_result_set_ends_with_ok_fe() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, true, false);
    let frames = vec![vec![1], coldef("a"), b"\x011".to_vec(), b"\xfe\x00\x00\x02\x00\x00\x00".to_vec()];
    let steps = run(&mut t, &frames);
    assert_eq!(steps[3], done(2));
}

#[test]
fn multi_results_continue_until_no_more_flag() {
    // SELECT 1; SELECT 2 with MULTI_RESULTS.
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames = vec![
        vec![1],
        coldef("1"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x011".to_vec(),
        EOF_MORE.to_vec(),
        vec![1],
        coldef("2"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x012".to_vec(),
        EOF_AUTOCOMMIT.to_vec(),
    ];
    let steps = run(&mut t, &frames);
    assert!(steps[..9].iter().all(|s| *s == Step::More));
    assert_eq!(steps[9], done(2));
}

#[test]
fn call_procedure_ends_with_ok_after_results() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, true, false);
    let frames = vec![
        vec![1],
        coldef("x"),
        b"\x011".to_vec(),
        b"\xfe\x00\x00\x0a\x00\x00\x00".to_vec(),
        b"\x00\x00\x00\x02\x00\x00\x00".to_vec(),
    ];
    let steps = run(&mut t, &frames);
    assert_eq!(steps[3], Step::More);
    assert_eq!(steps[4], done(2));
}

#[test]
fn error_mid_result_set_ends_reply() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames = vec![
        vec![1],
        coldef("a"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\x011".to_vec(),
        err_packet(1317, "70100", "interrupted"),
    ];
    let steps = run(&mut t, &frames);
    assert_eq!(steps[4], Step::Done(ReplyEnd { error: Some(1317), ..ReplyEnd::default() }));
}

#[test]
fn row_starting_with_fe_is_not_eof() {
    // A row whose payload is at least 9 bytes and begins with 0xFE is data, not EOF.
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames = vec![vec![1], coldef("a"), EOF_AUTOCOMMIT.to_vec(), vec![0xfe; 12], EOF_AUTOCOMMIT.to_vec()];
    let steps = run(&mut t, &frames);
    assert_eq!(steps[3], Step::More);
    assert_eq!(steps[4], done(2));
}

#[test]
fn continuation_frames_are_not_interpreted() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    run(&mut t, &[vec![1], coldef("blob"), EOF_AUTOCOMMIT.to_vec()]);
    // A 16 MiB row: first frame full, the next frame starts with 0xFE but is a continuation.
    assert_eq!(t.on_frame(MAX_PAYLOAD, &[0xfe, 0, 0, 0, 1]).unwrap(), Step::More);
    assert_eq!(t.on_frame(5, &[0xfe, 0, 0, 2, 0]).unwrap(), Step::More);
    assert_eq!(zero_rows(t.on_frame(5, EOF_AUTOCOMMIT).unwrap()), done(2));
}

#[test]
fn local_infile_request_then_ok() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    assert_eq!(run(&mut t, &[b"\xfb/tmp/x.csv".to_vec()]), vec![Step::LocalInfile]);
    let loaded = Step::Done(ReplyEnd { status: Some(2), affected: 3, ..ReplyEnd::default() });
    assert_eq!(run(&mut t, &[b"\x00\x03\x00\x02\x00\x00\x00".to_vec()]), vec![loaded], "3 rows loaded");
}

#[test]
fn prepare_counts_params_and_columns() {
    // stmt id 1, 2 columns, 1 param, with EOFs.
    let mut t = ReplyTracker::new(ReplyKind::Prepare, false, false);
    let ok = b"\x00\x01\x00\x00\x00\x02\x00\x01\x00\x00\x00\x00".to_vec();
    let frames =
        vec![ok, coldef("?"), EOF_AUTOCOMMIT.to_vec(), coldef("a"), coldef("b"), EOF_AUTOCOMMIT.to_vec()];
    let steps = run(&mut t, &frames);
    assert!(steps[..5].iter().all(|s| *s == Step::More));
    assert!(matches!(steps[5], Step::Done(_)));
    // No params, no columns: done at once.
    let mut t = ReplyTracker::new(ReplyKind::Prepare, true, false);
    assert!(matches!(
        run(&mut t, &[b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec()])[0],
        Step::Done(_)
    ));
}

#[test]
fn binary_cursor_ends_after_metadata() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, true);
    let frames = vec![vec![1], coldef("a"), b"\xfe\x00\x00\x42\x00".to_vec()];
    assert_eq!(run(&mut t, &frames)[2], done(0x42));
}

#[test]
fn fetch_rows_and_field_list() {
    let mut t = ReplyTracker::new(ReplyKind::Rows, false, true);
    let steps = run(&mut t, &[b"\x00\x00\x01".to_vec(), b"\xfe\x00\x00\xc2\x00".to_vec()]);
    assert_eq!(steps[1], done(0xc2));
    let mut t = ReplyTracker::new(ReplyKind::FieldList, false, false);
    let steps = run(&mut t, &[coldef("a"), coldef("b"), EOF_AUTOCOMMIT.to_vec()]);
    assert_eq!(steps[2], done(2));
}

#[test]
fn single_packet_replies() {
    let mut t = ReplyTracker::new(ReplyKind::Single, false, false);
    assert!(matches!(run(&mut t, &[b"Uptime: 5  Threads: 1".to_vec()])[0], Step::Done(_)));
    let mut t = ReplyTracker::new(ReplyKind::Single, false, false);
    assert_eq!(run(&mut t, &[EOF_AUTOCOMMIT.to_vec()])[0], done(2));
}

#[test]
fn multi_result_keeps_the_insert_id_and_reports_warnings() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    // INSERT (id 7, more results) ; SELECT with one warning in its EOF.
    let frames = vec![
        b"\x00\x01\x07\x0a\x00\x00\x00".to_vec(),
        vec![1],
        coldef("a"),
        EOF_AUTOCOMMIT.to_vec(),
        b"\xfe\x01\x00\x02\x00".to_vec(),
    ];
    let steps = run(&mut t, &frames);
    assert_eq!(
        steps[4],
        Step::Done(ReplyEnd {
            status: Some(2),
            warnings: 1,
            last_insert_id: 7,
            affected: 1,
            ..ReplyEnd::default()
        })
    );
}

#[test]
fn frame_after_end_is_an_error() {
    let mut t = ReplyTracker::new(ReplyKind::Single, false, false);
    run(&mut t, &[EOF_AUTOCOMMIT.to_vec()]);
    assert!(t.on_frame(5, EOF_AUTOCOMMIT).is_err());
}

#[test]
fn garbage_never_panics() {
    for kind in
        [ReplyKind::ResultSets, ReplyKind::Prepare, ReplyKind::Rows, ReplyKind::FieldList, ReplyKind::Single]
    {
        for seed in 0u32..2000 {
            let mut t = ReplyTracker::new(kind, seed % 2 == 0, seed % 3 == 0);
            let mut x = seed.wrapping_mul(2654435761);
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let head: Vec<u8> = x.to_le_bytes().iter().cycle().take((x % 33) as usize).copied().collect();
                let _ = t.on_frame(head.len(), &head);
            }
        }
    }
}

#[test]
fn ok_frames_are_flagged() {
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, true, false);
    t.on_frame(7, b"\x00\x01\x00\x02\x00\x00\x00").unwrap();
    assert!(t.frame_was_ok());
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, true, false);
    for f in [vec![1], coldef("a"), b"\x011".to_vec()] {
        t.on_frame(f.len(), &f).unwrap();
        assert!(!t.frame_was_ok());
    }
    t.on_frame(7, b"\xfe\x00\x00\x02\x00\x00\x00").unwrap();
    assert!(t.frame_was_ok(), "deprecate-EOF terminator is an OK");
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    for f in [vec![1], coldef("a"), EOF_AUTOCOMMIT.to_vec(), b"\x011".to_vec(), EOF_AUTOCOMMIT.to_vec()] {
        t.on_frame(f.len(), &f).unwrap();
        assert!(!t.frame_was_ok(), "EOF packets are not OK packets");
    }
    let mut t = ReplyTracker::new(ReplyKind::Prepare, true, false);
    t.on_frame(12, b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
    assert!(!t.frame_was_ok(), "PREPARE_OK is not an OK packet");
}

#[test]
fn state_changes_are_seen_in_eof_terminators_only() {
    // EOF after rows, with SERVER_SESSION_STATE_CHANGED: a stored function changed state.
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let frames =
        [vec![1], coldef("a"), EOF_AUTOCOMMIT.to_vec(), b"\x011".to_vec(), b"\xfe\x00\x00\x02\x40".to_vec()];
    let last = frames.iter().map(|f| t.on_frame(f.len(), f).unwrap()).last().unwrap();
    assert!(matches!(last, Step::Done(e) if e.state_changed), "{last:?}");
    // An OK packet's flag may only report a GTID: the relay reads its tracking data instead.
    let mut t = ReplyTracker::new(ReplyKind::ResultSets, false, false);
    let ok = b"\x00\x01\x00\x02\x40\x00\x00".to_vec();
    assert!(matches!(t.on_frame(ok.len(), &ok).unwrap(), Step::Done(e) if !e.state_changed));
}

//! Session-state tracking in OK packets. Backend connections always ask for
//! `CLIENT_SESSION_TRACK` so the proxy learns each write's GTID (`last_gtid`) from the OK
//! packet itself; replies are rewritten to what the client negotiated: the tracking data it
//! did not ask for is removed.

use super::status;
use super::wire::{Reader, put_lenenc_bytes, put_lenenc_int};

/// `SESSION_TRACK_SYSTEM_VARIABLES`.
const TRACK_SYSTEM_VARIABLES: u8 = 0;
/// `SESSION_TRACK_SCHEMA`.
const TRACK_SCHEMA: u8 = 1;
/// `SESSION_TRACK_STATE_CHANGE`.
const TRACK_STATE_CHANGE: u8 = 2;
/// `SESSION_TRACK_GTIDS` (MySQL, `session_track_gtids`): an encoding specification (0: the
/// GTID set as text) and the set, length-encoded.
const TRACK_GTIDS: u8 = 3;
/// The variable the proxy adds to a connection's tracked variables.
pub const GTID_VARIABLE: &[u8] = b"last_gtid";

/// What an OK packet received with session tracking on reported, and how it must look for
/// the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The packet for the client, when it must differ from what the backend sent.
    pub payload: Option<Vec<u8>>,
    /// The value of `last_gtid` if the packet reported it.
    pub last_gtid: Option<String>,
    /// The packet carried a `SESSION_TRACK_STATE_CHANGE` entry: session state changed.
    pub state_changed: bool,
    /// The current schema the packet reported (empty: none, e.g. after `DROP DATABASE`).
    pub schema: Option<String>,
}

/// The tracking entries a client asked for itself, which stay in its OK packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// The client turned `session_track_state_change` on.
    pub state_change: bool,
    /// The client's `session_track_system_variables` names `last_gtid` (or `*`), or it set
    /// MySQL's `session_track_gtids` itself.
    pub last_gtid: bool,
}

/// Reads an OK payload (header `0x00` or `0xFE`) received with session tracking on and rewrites
/// it for a client that negotiated `client_tracks`. The entries the proxy asked for itself go
/// unless the client asked for them too (`keep`): `last_gtid`, the state-change entry. Without tracking, MariaDB still sends `info`
/// length-encoded while MySQL sends it to the end of the packet: `lenenc_info` keeps the
/// backend's own habit. `None` when the packet has nothing after its fixed part or cannot be
/// parsed (it is then forwarded as it is).
pub fn rewrite_ok(payload: &[u8], client_tracks: bool, lenenc_info: bool, keep: Keep) -> Option<Rewritten> {
    let mut r = Reader::new(payload);
    let header = r.u8("header").ok()?;
    let affected = r.lenenc_int("affected rows").ok()?;
    let insert_id = r.lenenc_int("last insert id").ok()?;
    let status_flags = r.u16("status").ok()?;
    let warnings = r.u16("warnings").ok()?;
    if r.is_empty() {
        return None; // nothing after the fixed part: identical in both formats
    }
    let info = r.lenenc_bytes("info").ok()?;
    let changed = status_flags & status::SESSION_STATE_CHANGED != 0;
    let state = if changed { r.lenenc_bytes("session state").ok()? } else { &[] };
    let split = split_state(state, keep)?;
    let needs_rewrite = if client_tracks { split.removed } else { changed || !lenenc_info };
    let mut out = Rewritten {
        payload: None,
        last_gtid: split.last_gtid,
        state_changed: split.state_changed,
        schema: split.schema,
    };
    if !needs_rewrite {
        return Some(out);
    }
    let mut p = Vec::with_capacity(payload.len());
    p.push(header);
    put_lenenc_int(&mut p, affected);
    put_lenenc_int(&mut p, insert_id);
    let keep_state = client_tracks && !split.kept.is_empty();
    let flags = if keep_state { status_flags } else { status_flags & !status::SESSION_STATE_CHANGED };
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&warnings.to_le_bytes());
    if client_tracks {
        if keep_state || !info.is_empty() {
            put_lenenc_bytes(&mut p, info);
        }
        if keep_state {
            put_lenenc_bytes(&mut p, &split.kept);
        }
    } else if lenenc_info {
        if !info.is_empty() {
            put_lenenc_bytes(&mut p, info);
        }
    } else {
        p.extend_from_slice(info); // string<EOF> without tracking (MySQL)
    }
    out.payload = Some(p);
    Some(out)
}

/// Session-state entries split into those the client keeps and what the proxy learns.
struct Split {
    kept: Vec<u8>,
    last_gtid: Option<String>,
    state_changed: bool,
    schema: Option<String>,
    /// Some entry was taken out.
    removed: bool,
}

fn split_state(state: &[u8], keep: Keep) -> Option<Split> {
    let mut r = Reader::new(state);
    let mut s = Split {
        kept: Vec::with_capacity(state.len()),
        last_gtid: None,
        state_changed: false,
        schema: None,
        removed: false,
    };
    while !r.is_empty() {
        let kind = r.u8("state type").ok()?;
        let data = r.lenenc_bytes("state data").ok()?;
        if kind == TRACK_SYSTEM_VARIABLES {
            let mut v = Reader::new(data);
            let name = v.lenenc_bytes("variable name").ok()?;
            if name.eq_ignore_ascii_case(GTID_VARIABLE) {
                let value = v.lenenc_bytes("variable value").ok()?;
                s.last_gtid = Some(String::from_utf8_lossy(value).into_owned());
                if !keep.last_gtid {
                    s.removed = true;
                    continue;
                }
            }
        }
        if kind == TRACK_GTIDS {
            let mut v = Reader::new(data);
            if v.lenenc_int("gtid encoding").ok()? == 0 {
                let set = v.lenenc_bytes("gtids").ok()?;
                s.last_gtid = Some(String::from_utf8_lossy(set).into_owned());
            }
            if !keep.last_gtid {
                s.removed = true;
                continue;
            }
        }
        if kind == TRACK_SCHEMA {
            let name = Reader::new(data).lenenc_bytes("schema").ok()?;
            s.schema = Some(String::from_utf8_lossy(name).into_owned());
        }
        if kind == TRACK_STATE_CHANGE {
            s.state_changed = true;
            if !keep.state_change {
                s.removed = true;
                continue;
            }
        }
        s.kept.push(kind);
        put_lenenc_bytes(&mut s.kept, data);
    }
    Some(s)
}

/// An OK for a statement the proxy answered itself (no rows, no warnings) reporting
/// `variables` as tracked system variables, laid out as MariaDB does: with entries, the
/// `SESSION_STATE_CHANGED` flag, an empty length-encoded info and the state block; without,
/// the bare seven bytes.
pub fn ok_with_variables(status_flags: u16, variables: &[(&str, String)]) -> Vec<u8> {
    let flags =
        if variables.is_empty() { status_flags } else { status_flags | status::SESSION_STATE_CHANGED };
    let mut p = vec![0x00, 0, 0];
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    if variables.is_empty() {
        return p;
    }
    let mut state = Vec::with_capacity(64);
    for (name, value) in variables {
        let mut entry = Vec::with_capacity(name.len() + value.len() + 2);
        put_lenenc_bytes(&mut entry, name.as_bytes());
        put_lenenc_bytes(&mut entry, value.as_bytes());
        state.push(TRACK_SYSTEM_VARIABLES);
        put_lenenc_bytes(&mut state, &entry);
    }
    put_lenenc_bytes(&mut p, b"");
    put_lenenc_bytes(&mut p, &state);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OK after an INSERT with info and tracked `autocommit` + `last_gtid`.
    fn tracked_ok() -> Vec<u8> {
        let mut state = Vec::new();
        let mut var = Vec::new();
        put_lenenc_bytes(&mut var, b"autocommit");
        put_lenenc_bytes(&mut var, b"ON");
        state.push(0);
        put_lenenc_bytes(&mut state, &var);
        let mut g = Vec::new();
        put_lenenc_bytes(&mut g, b"last_gtid");
        put_lenenc_bytes(&mut g, b"0-1-42");
        state.push(0);
        put_lenenc_bytes(&mut state, &g);
        let mut p = vec![0x00, 3, 7];
        p.extend_from_slice(&(status::AUTOCOMMIT | status::SESSION_STATE_CHANGED).to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        put_lenenc_bytes(&mut p, b"Records: 3  Duplicates: 0  Warnings: 0");
        put_lenenc_bytes(&mut p, &state);
        p
    }

    /// A MySQL OK after an autocommit INSERT with `session_track_gtids = OWN_GTID` and
    /// `session_track_state_change = ON`, laid out as the protocol documentation gives it:
    /// type 3, entry length, encoding specification 0, the GTID text length-encoded; then the
    /// state-change entry (type 2, "1").
    #[rustfmt::skip]
    const MYSQL_OWN_GTID_OK: &[u8] = &[
        0x00, 0x01, 0x00, 0x02, 0x40, 0x00, 0x00, // header, 1 row, id 0, AUTOCOMMIT|STATE_CHANGED, 0 warnings
        0x00,                                     // info ""
        0x2e,                                     // session state info: 46 bytes
        0x03, 0x28, 0x00, 0x26,                   // SESSION_TRACK_GTIDS, 40 bytes, encoding 0, 38-byte text
        b'3', b'e', b'1', b'1', b'f', b'a', b'4', b'7', b'-', b'7', b'1', b'c', b'a', b'-', b'1', b'1', b'e', b'1', b'-',
        b'9', b'e', b'3', b'3', b'-', b'c', b'8', b'0', b'a', b'a', b'9', b'4', b'2', b'9', b'5', b'6', b'2', b':', b'7',
        0x02, 0x02, 0x01, b'1',                   // SESSION_TRACK_STATE_CHANGE "1"
    ];

    #[test]
    fn mysql_own_gtid_entries_are_read_and_removed() {
        let r = rewrite_ok(MYSQL_OWN_GTID_OK, false, false, Keep::default()).unwrap();
        assert_eq!(r.last_gtid.as_deref(), Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:7"));
        assert!(r.state_changed);
        assert_eq!(
            r.payload.as_deref(),
            Some(&[0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00][..]),
            "what MySQL sends untracked"
        );
        let tracking = rewrite_ok(MYSQL_OWN_GTID_OK, true, false, Keep::default()).unwrap();
        let p = tracking.payload.unwrap();
        assert!(!p.windows(4).any(|w| w == b"3e11"), "the proxy's own GTID entry is gone");
        let asked = Keep { last_gtid: true, ..Keep::default() };
        let kept = rewrite_ok(MYSQL_OWN_GTID_OK, true, false, asked).unwrap().payload.unwrap();
        assert!(kept.windows(4).any(|w| w == b"3e11"), "a client that set session_track_gtids keeps it");
        let pos = crate::routing::gtid::GtidPos::parse(r.last_gtid.as_deref().unwrap()).unwrap();
        assert!(pos.is_mysql());
    }

    #[test]
    fn untracking_client_gets_the_plain_ok() {
        let r = rewrite_ok(&tracked_ok(), false, false, Keep::default()).unwrap();
        assert_eq!(r.last_gtid.as_deref(), Some("0-1-42"));
        let mut want = vec![0x00, 3, 7, 0x02, 0x00, 0, 0];
        want.extend_from_slice(b"Records: 3  Duplicates: 0  Warnings: 0");
        assert_eq!(r.payload, Some(want));
        let r = rewrite_ok(&tracked_ok(), false, true, Keep::default()).unwrap();
        let mut want = vec![0x00, 3, 7, 0x02, 0x00, 0, 0, 38];
        want.extend_from_slice(b"Records: 3  Duplicates: 0  Warnings: 0");
        assert_eq!(r.payload, Some(want), "MariaDB's own format for a client without tracking");
    }

    #[test]
    fn tracking_client_keeps_its_own_entries_only() {
        let r = rewrite_ok(&tracked_ok(), true, true, Keep::default()).unwrap();
        assert_eq!(r.last_gtid.as_deref(), Some("0-1-42"));
        let p = r.payload.unwrap();
        let again = rewrite_ok(&p, true, true, Keep::default()).unwrap();
        assert_eq!(again.payload, None, "no last_gtid left: nothing to change");
        assert!(p.windows(10).any(|w| w == b"autocommit"));
        assert!(!p.windows(9).any(|w| w == b"last_gtid"));
        let asked = Keep { last_gtid: true, ..Keep::default() };
        let kept = rewrite_ok(&tracked_ok(), true, true, asked).unwrap();
        assert_eq!(kept.last_gtid.as_deref(), Some("0-1-42"), "still learned by the proxy");
        assert_eq!(kept.payload, None, "a client that tracks last_gtid itself gets the OK as it came");
    }

    #[test]
    fn plain_oks_are_left_alone_and_garbage_is_not_touched() {
        let untouched =
            |p: &[u8], tracks, lenenc| rewrite_ok(p, tracks, lenenc, Keep::default()).and_then(|r| r.payload);
        assert_eq!(untouched(&[0x00, 0, 0, 2, 0, 0, 0], false, true), None);
        assert_eq!(untouched(&[0x00, 0, 0, 2], false, true), None);
        assert_eq!(untouched(&[0x00, 0, 0, 2, 0x40, 0, 0, 9, 1], false, true), None);
        // Info only (UPDATE): MariaDB keeps the lenenc prefix for every client; MySQL drops it.
        let mut p = vec![0x00, 1, 0, 2, 0, 0, 0];
        put_lenenc_bytes(&mut p, b"Rows matched: 1  Changed: 1  Warnings: 0");
        assert_eq!(untouched(&p, false, true), None, "MariaDB: as the server sends it anyway");
        let r = untouched(&p, false, false).unwrap();
        assert_eq!(&r[7..], b"Rows matched: 1  Changed: 1  Warnings: 0");
        assert_eq!(untouched(&p, true, false), None, "a tracking client reads it as it is");
    }

    #[test]
    fn state_change_entries_are_reported_and_removed_unless_the_client_asked() {
        // OK after `SET @x = 1` with the proxy's session_track_state_change.
        let p = [0x00, 0, 0, 0x02, 0x40, 0, 0, 0, 3, 2, 1, b'1'];
        let r = rewrite_ok(&p, true, true, Keep::default()).unwrap();
        assert!(r.state_changed);
        assert_eq!(r.payload.as_deref(), Some(&[0x00, 0, 0, 0x02, 0x00, 0, 0][..]), "as without the tracker");
        let r = rewrite_ok(&p, true, true, Keep { state_change: true, last_gtid: false }).unwrap();
        assert!(r.state_changed);
        assert_eq!(r.payload, None, "the client turned the tracker on itself");
        let r = rewrite_ok(&p, false, true, Keep::default()).unwrap();
        assert_eq!(r.payload.as_deref(), Some(&[0x00, 0, 0, 0x02, 0x00, 0, 0][..]));
        assert!(
            !rewrite_ok(&tracked_ok(), true, true, Keep::default()).unwrap().state_changed,
            "a GTID is not a state change"
        );
        // OK after DROP DATABASE of the current schema (MariaDB 10.11): the schema is now none.
        let dropped = [0x00, 0, 0, 0x02, 0x41, 0, 0, 0, 3, 1, 1, 0];
        assert_eq!(rewrite_ok(&dropped, false, true, Keep::default()).unwrap().schema.as_deref(), Some(""));
    }
}

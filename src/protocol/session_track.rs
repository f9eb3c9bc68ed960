//! Session-state tracking in OK packets. Backend connections always ask for
//! `CLIENT_SESSION_TRACK` so the proxy learns each write's GTID (`last_gtid`) from the OK
//! packet itself; replies are rewritten to what the client negotiated: the tracking data it
//! did not ask for is removed.

use super::status;
use super::wire::{Reader, put_lenenc_bytes, put_lenenc_int};

/// `SESSION_TRACK_SYSTEM_VARIABLES`.
const TRACK_SYSTEM_VARIABLES: u8 = 0;
/// The variable the proxy adds to a connection's tracked variables.
pub const GTID_VARIABLE: &[u8] = b"last_gtid";

/// An OK packet as the backend sent it (with `CLIENT_SESSION_TRACK`), rewritten for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub payload: Vec<u8>,
    /// The value of `last_gtid` if the packet reported it.
    pub last_gtid: Option<String>,
}

/// Rewrites an OK payload (header `0x00` or `0xFE`) received with session tracking on, for a
/// client that negotiated `client_tracks`. The `last_gtid` entry is always removed (the client
/// never asked for it). Without tracking, MariaDB still sends `info` length-encoded while MySQL
/// sends it to the end of the packet: `lenenc_info` keeps the backend's own habit. `None` when
/// the packet needs no change or cannot be parsed (then it is forwarded as it is).
pub fn rewrite_ok(payload: &[u8], client_tracks: bool, lenenc_info: bool) -> Option<Rewritten> {
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
    let (kept, last_gtid) = split_state(state)?;
    if (client_tracks || lenenc_info) && last_gtid.is_none() && !changed {
        return None; // only info, already in the client's format
    }
    if client_tracks && last_gtid.is_none() {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len());
    out.push(header);
    put_lenenc_int(&mut out, affected);
    put_lenenc_int(&mut out, insert_id);
    let keep_state = client_tracks && !kept.is_empty();
    let flags = if keep_state { status_flags } else { status_flags & !status::SESSION_STATE_CHANGED };
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&warnings.to_le_bytes());
    if client_tracks {
        if keep_state || !info.is_empty() {
            put_lenenc_bytes(&mut out, info);
        }
        if keep_state {
            put_lenenc_bytes(&mut out, &kept);
        }
    } else if lenenc_info {
        if !info.is_empty() {
            put_lenenc_bytes(&mut out, info);
        }
    } else {
        out.extend_from_slice(info); // string<EOF> without tracking (MySQL)
    }
    Some(Rewritten { payload: out, last_gtid })
}

/// Splits session-state entries into those to keep and the `last_gtid` value.
fn split_state(state: &[u8]) -> Option<(Vec<u8>, Option<String>)> {
    let mut r = Reader::new(state);
    let mut kept = Vec::with_capacity(state.len());
    let mut gtid = None;
    while !r.is_empty() {
        let kind = r.u8("state type").ok()?;
        let data = r.lenenc_bytes("state data").ok()?;
        if kind == TRACK_SYSTEM_VARIABLES {
            let mut v = Reader::new(data);
            let name = v.lenenc_bytes("variable name").ok()?;
            if name.eq_ignore_ascii_case(GTID_VARIABLE) {
                let value = v.lenenc_bytes("variable value").ok()?;
                gtid = Some(String::from_utf8_lossy(value).into_owned());
                continue;
            }
        }
        kept.push(kind);
        put_lenenc_bytes(&mut kept, data);
    }
    Some((kept, gtid))
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

    #[test]
    fn untracking_client_gets_the_plain_ok() {
        let r = rewrite_ok(&tracked_ok(), false, false).unwrap();
        assert_eq!(r.last_gtid.as_deref(), Some("0-1-42"));
        let mut want = vec![0x00, 3, 7, 0x02, 0x00, 0, 0];
        want.extend_from_slice(b"Records: 3  Duplicates: 0  Warnings: 0");
        assert_eq!(r.payload, want);
        let r = rewrite_ok(&tracked_ok(), false, true).unwrap();
        let mut want = vec![0x00, 3, 7, 0x02, 0x00, 0, 0, 38];
        want.extend_from_slice(b"Records: 3  Duplicates: 0  Warnings: 0");
        assert_eq!(r.payload, want, "MariaDB's own format for a client without tracking");
    }

    #[test]
    fn tracking_client_keeps_its_own_entries_only() {
        let r = rewrite_ok(&tracked_ok(), true, true).unwrap();
        assert_eq!(r.last_gtid.as_deref(), Some("0-1-42"));
        let again = rewrite_ok(&r.payload, true, true);
        assert_eq!(again, None, "no last_gtid left: nothing to change");
        assert!(r.payload.windows(10).any(|w| w == b"autocommit"));
        assert!(!r.payload.windows(9).any(|w| w == b"last_gtid"));
    }

    #[test]
    fn plain_oks_are_left_alone_and_garbage_is_not_touched() {
        assert_eq!(rewrite_ok(&[0x00, 0, 0, 2, 0, 0, 0], false, true), None);
        assert_eq!(rewrite_ok(&[0x00, 0, 0, 2], false, true), None);
        assert_eq!(rewrite_ok(&[0x00, 0, 0, 2, 0x40, 0, 0, 9, 1], false, true), None);
        // Info only (UPDATE): MariaDB keeps the lenenc prefix for every client; MySQL drops it.
        let mut p = vec![0x00, 1, 0, 2, 0, 0, 0];
        put_lenenc_bytes(&mut p, b"Rows matched: 1  Changed: 1  Warnings: 0");
        assert_eq!(rewrite_ok(&p, false, true), None, "MariaDB: as the server sends it anyway");
        let r = rewrite_ok(&p, false, false).unwrap();
        assert_eq!(&r.payload[7..], b"Rows matched: 1  Changed: 1  Warnings: 0");
        assert_eq!(rewrite_ok(&p, true, false), None, "a tracking client reads it as it is");
    }
}

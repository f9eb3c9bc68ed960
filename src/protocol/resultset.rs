//! Text-protocol result sets the proxy composes itself (the SQL admin's answers): column
//! definitions, EOF-terminated (the admin listener never offers `CLIENT_DEPRECATE_EOF`), rows
//! of text or NULL.

use super::packet::encode;
use super::wire::put_lenenc_bytes;

/// `utf8mb3_general_ci`, what ProxySQL's admin announces.
const UTF8_GENERAL_CI: u16 = 33;

/// A column's wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `MYSQL_TYPE_LONGLONG`.
    Integer,
    /// `MYSQL_TYPE_VAR_STRING`.
    Text,
}

/// One column of a composed result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
}

fn column_definition(table: &str, c: &Column) -> Vec<u8> {
    let mut p = Vec::with_capacity(48 + c.name.len() * 2);
    for part in [&b"def"[..], b"", table.as_bytes(), table.as_bytes(), c.name.as_bytes(), c.name.as_bytes()] {
        put_lenenc_bytes(&mut p, part);
    }
    p.push(0x0c);
    let (length, kind, flags): (u32, u8, u16) = match c.kind {
        ColumnType::Integer => (20, 0x08, 0x20 /* NUM */),
        ColumnType::Text => (1024, 0xfd, 0),
    };
    p.extend_from_slice(&UTF8_GENERAL_CI.to_le_bytes());
    p.extend_from_slice(&length.to_le_bytes());
    p.push(kind);
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    p
}

/// The reply to `COM_FIELD_LIST`: each column's definition (with the "default values" field
/// that reply carries, NULL here), then EOF.
pub fn encode_field_list(out: &mut Vec<u8>, table: &str, columns: &[Column], status: u16) {
    let mut seq = 1;
    for c in columns {
        let mut def = column_definition(table, c);
        def.push(0xfb);
        seq = encode(out, seq, &def);
    }
    encode(out, seq, &eof(status));
}

fn eof(status: u16) -> [u8; 5] {
    let s = status.to_le_bytes();
    [0xfe, 0, 0, s[0], s[1]]
}

/// Appends a whole result set, frames numbered from 1 (the reply to a `COM_QUERY`); `status`
/// goes on both EOFs (`SERVER_MORE_RESULTS_EXISTS` when another result follows).
pub fn encode_result_set(
    out: &mut Vec<u8>,
    table: &str,
    columns: &[Column],
    rows: &[Vec<Option<String>>],
    status: u16,
) {
    let mut head = Vec::with_capacity(9);
    super::wire::put_lenenc_int(&mut head, columns.len() as u64);
    let mut seq = encode(out, 1, &head);
    for c in columns {
        seq = encode(out, seq, &column_definition(table, c));
    }
    seq = encode(out, seq, &eof(status));
    let mut row = Vec::new();
    for r in rows {
        row.clear();
        for v in r {
            match v {
                Some(v) => put_lenenc_bytes(&mut row, v.as_bytes()),
                None => row.push(0xfb),
            }
        }
        seq = encode(out, seq, &row);
    }
    encode(out, seq, &eof(status));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ReplyEnd, ReplyKind, ReplyTracker, Step};

    /// The proxy's own reply tracker (what relays backend results) reads a composed result
    /// set to its end, NULLs and all.
    #[test]
    fn a_composed_result_set_parses_as_one_reply() {
        let cols = [
            Column { name: "hostgroup_id".into(), kind: ColumnType::Integer },
            Column { name: "hostname".into(), kind: ColumnType::Text },
        ];
        let rows = vec![vec![Some("10".into()), None], vec![Some("20".into()), Some("db2".into())]];
        let mut out = Vec::new();
        encode_result_set(&mut out, "mysql_servers", &cols, &rows, 2);
        let mut tracker = ReplyTracker::new(ReplyKind::ResultSets, false, false);
        let mut at = 0;
        let mut end = None;
        while at < out.len() {
            let (len, _) = crate::protocol::packet::frame_header(&out[at..]).unwrap();
            let step = tracker.on_frame(len, &out[at + 4..at + 4 + len]).unwrap();
            at += 4 + len;
            if let Step::Done(e) = step {
                end = Some(e);
            }
        }
        assert_eq!(at, out.len());
        assert!(matches!(end, Some(ReplyEnd { status: Some(2), rows: 2, .. })), "{end:?}");
    }
}

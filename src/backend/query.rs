//! Text-protocol queries the proxy runs for itself (monitor probes, GTID capture): small
//! results, decoded into strings.

use bytes::Bytes;

use super::{BackendConn, BackendError};
use crate::protocol::wire::Reader;
use crate::protocol::{ProtocolError, com};

/// Column names and rows (`None` = SQL NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The value of `column` in the first row.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c.eq_ignore_ascii_case(column))?;
        self.rows.first()?.get(i)?.as_deref()
    }
}

impl BackendConn {
    /// Runs `sql` and decodes its (small) text result. ERR comes back as its payload.
    pub async fn query_rows(&mut self, sql: &str) -> Result<Result<Rows, Bytes>, BackendError> {
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.stream.write_packet(0, &payload).await.map_err(|e| self.perr(e))?;
        let first = self.read_any().await?;
        match first.first() {
            Some(0xff) => return Ok(Err(Bytes::from(first))),
            Some(0x00) => return Ok(Ok(Rows::default())),
            _ => {}
        }
        let n = Reader::new(&first).lenenc_int("column count").map_err(|e| self.perr(e))? as usize;
        let mut out = Rows::default();
        for _ in 0..n {
            let def = self.read_any().await?;
            let mut r = Reader::new(&def);
            for _ in 0..4 {
                r.lenenc_bytes("column definition").map_err(|e| self.perr(e))?;
            }
            let name = r.lenenc_bytes("column name").map_err(|e| self.perr(e))?;
            out.columns.push(String::from_utf8_lossy(name).into_owned());
        }
        let deprecate_eof = self.capabilities & crate::protocol::caps::DEPRECATE_EOF != 0;
        if !deprecate_eof {
            self.read_any().await?; // EOF after the column definitions
        }
        loop {
            let row = self.read_any().await?;
            match row.first() {
                Some(0xfe) if row.len() < 9 || deprecate_eof => return Ok(Ok(out)),
                Some(0xff) => return Ok(Err(Bytes::from(row))),
                _ => {}
            }
            let mut r = Reader::new(&row);
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                if r.remaining().first() == Some(&0xfb) {
                    r.u8("null").map_err(|e| self.perr(e))?;
                    values.push(None);
                } else {
                    let v = r.lenenc_bytes("value").map_err(|e| self.perr(e))?;
                    values.push(Some(String::from_utf8_lossy(v).into_owned()));
                }
            }
            out.rows.push(values);
        }
    }

    async fn read_any(&mut self) -> Result<Vec<u8>, BackendError> {
        match self.stream.read_packet(None).await {
            Ok(Some(p)) => Ok(p.payload().to_vec()),
            Ok(None) => Err(self.perr(ProtocolError::Truncated("reply (connection closed)"))),
            Err(e) => Err(self.perr(e)),
        }
    }
}

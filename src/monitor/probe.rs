//! One health probe over a monitor connection: read_only, GTID position, replication state.

use super::health::{Probe, Replication};
use crate::backend::{BackendConn, Rows};
use crate::routing::gtid::GtidPos;

async fn rows(conn: &mut BackendConn, sql: &str) -> Result<Option<Rows>, String> {
    match conn.query_rows(sql).await {
        Ok(Ok(rows)) => Ok(Some(rows)),
        Ok(Err(_err)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn probe(conn: &mut BackendConn) -> Result<Probe, String> {
    // What the server has applied: MariaDB's @@gtid_current_pos, MySQL's @@gtid_executed.
    let base = match rows(conn, &format!("SELECT @@read_only, {}", applied_variable(conn))).await? {
        Some(r) => r,
        None => rows(conn, "SELECT @@read_only").await?.ok_or("SELECT @@read_only failed")?,
    };
    let first = base.rows.first().ok_or("empty reply to SELECT @@read_only")?;
    let read_only =
        first.first().and_then(|v| v.as_deref()).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
    let gtid = first.get(1).and_then(|v| v.as_deref()).and_then(GtidPos::parse);
    // MySQL 8.4 knows only SHOW REPLICA STATUS (8.0.22 added it); MariaDB, and MySQL before
    // 8.0.22, SHOW SLAVE STATUS (MariaDB 10.5.1+ takes both).
    let (first, second) = if conn.mariadb {
        ("SHOW SLAVE STATUS", "SHOW REPLICA STATUS")
    } else {
        ("SHOW REPLICA STATUS", "SHOW SLAVE STATUS")
    };
    let status = match rows(conn, first).await? {
        Some(r) => r,
        None => rows(conn, second).await?.unwrap_or_default(),
    };
    let replication = (!status.rows.is_empty()).then(|| {
        let get = |a: &str, b: &str| status.get(a).or_else(|| status.get(b)).map(str::to_string);
        // "Connecting": the primary is unreachable; the replica still has the freshest data
        // there is and keeps serving reads.
        let yes = |v: Option<String>| {
            v.is_some_and(|v| v.eq_ignore_ascii_case("Yes") || v.eq_ignore_ascii_case("Connecting"))
        };
        let error = [get("Last_SQL_Error", "Last_SQL_Error"), get("Last_IO_Error", "Last_IO_Error")]
            .into_iter()
            .flatten()
            .find(|e| !e.is_empty());
        Replication {
            io_running: yes(get("Slave_IO_Running", "Replica_IO_Running")),
            sql_running: yes(get("Slave_SQL_Running", "Replica_SQL_Running")),
            lag_seconds: get("Seconds_Behind_Master", "Seconds_Behind_Source").and_then(|v| v.parse().ok()),
            last_error: error,
        }
    });
    Ok(Probe { read_only, gtid, replication })
}

/// The variable that holds what a server has applied.
pub fn applied_variable(conn: &BackendConn) -> &'static str {
    if conn.mariadb { "@@gtid_current_pos" } else { "@@gtid_executed" }
}

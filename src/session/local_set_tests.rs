use super::*;
use crate::protocol::session_track::ok_with_variables;

fn local(sql: &str) -> Option<LocalSet> {
    let items = parse_set(sql.as_bytes(), Dialect::default())?;
    answer(&items, sql.as_bytes(), Dialect::default())
}

#[test]
fn what_connectors_send_at_connect_is_answered() {
    let names = |cs: &str| {
        ["character_set_client", "character_set_results", "character_set_connection"]
            .map(|n| (n, cs.to_string()))
            .to_vec()
    };
    type Tracked = Vec<(&'static str, String)>;
    let cases: [(&str, Tracked, Option<bool>); 9] = [
        ("SET NAMES utf8mb4", names("utf8mb4"), None),
        ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'", names("utf8mb4"), None),
        ("set names LATIN1", names("latin1"), None),
        ("SET autocommit=0", vec![("autocommit", "OFF".into())], Some(false)),
        ("SET @@session.autocommit = ON", vec![("autocommit", "ON".into())], Some(true)),
        ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", vec![], None),
        ("SET SQL_AUTO_IS_NULL = 0", vec![], None),
        (
            "SET autocommit=1, time_zone='+01:00', NAMES latin1",
            [vec![("time_zone", "+01:00".to_string())], names("latin1"), vec![("autocommit", "ON".into())]]
                .concat(),
            Some(true),
        ),
        ("SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", vec![], None),
    ];
    for (sql, tracked, autocommit) in cases {
        let got = local(sql).unwrap_or_else(|| panic!("{sql} is answered"));
        assert_eq!((got.tracked, got.autocommit), (tracked, autocommit), "{sql}");
    }
}

#[test]
fn anything_the_proxy_cannot_prove_valid_goes_to_the_server() {
    for sql in [
        "SET NAMES utf8",
        "SET NAMES utf8mb3",
        "SET NAMES bogus",
        "SET NAMES utf8mb4 COLLATE latin1_bin",
        "SET NAMES DEFAULT",
        "SET CHARACTER SET utf8mb4",
        "SET autocommit = 2",
        "SET autocommit = DEFAULT",
        "SET time_zone = 'Europe/Paris'",
        "SET time_zone = '+14:00'",
        "SET time_zone = '-13:00'",
        "SET time_zone = '+1:00'",
        "SET sql_mode = 'ORACLE'",
        "SET sql_mode = 'NO_ZERO_DATE'",
        "SET tx_isolation = 'READ-COMMITTED'",
        "SET transaction_isolation = 'READ-COMMITTED'",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET @a = 1",
        "SET wait_timeout = 10",
        "SET autocommit = 0, @a = 1",
        "SET GLOBAL autocommit = 0",
        "SET sql_safe_updates = @x",
        "SET sql_mode = 'STRICT_TRANS_TABLES, NO_ENGINE_SUBSTITUTION'",
        "SET SESSION TRANSACTION READ ONLY, autocommit = 0",
    ] {
        assert_eq!(local(sql), None, "{sql}");
    }
}

#[test]
fn sql_mode_is_answered_for_mariadb_only() {
    // MySQL 8 warns about strict modes without NO_ZERO_DATE & co. (3135).
    let sql = b"SET sql_mode = 'STRICT_TRANS_TABLES'";
    let mysql = Dialect::from_server_version(b"8.0.36");
    assert!(answer(&parse_set(sql, mysql).unwrap(), sql, mysql).is_none());
    let names = b"SET NAMES utf8mb4";
    assert!(answer(&parse_set(names, mysql).unwrap(), names, mysql).is_some());
}

#[test]
fn sql_mode_says_whether_backslashes_escape() {
    let nbe = |sql: &str| local(sql).and_then(|l| l.no_backslash_escapes);
    assert_eq!(nbe("SET sql_mode = 'ANSI_QUOTES,no_backslash_escapes'"), Some(true));
    assert_eq!(nbe("SET sql_mode = 'TRADITIONAL'"), Some(false));
    assert_eq!(nbe("SET sql_mode = ''"), Some(false));
    assert_eq!(nbe("SET NAMES utf8mb4"), None, "no sql_mode, no change");
}

#[test]
fn time_zone_offsets_at_the_edges() {
    for (tz, ok) in
        [("+13:00", true), ("+13:01", false), ("-12:59", true), ("+00:00", true), ("+05:60", false)]
    {
        assert_eq!(local(&format!("SET time_zone = '{tz}'")).is_some(), ok, "{tz}");
    }
    let system = local("SET time_zone = 'system'").unwrap();
    assert_eq!(system.tracked, vec![("time_zone", "SYSTEM".to_string())]);
}

/// The OK packets MariaDB 10.11 sent a client with `CLIENT_SESSION_TRACK` (captured from one
/// server; the order of tracked variables is the server's hash order, which differs between
/// instances) are what the proxy synthesises.
#[test]
fn synthesised_oks_are_the_servers_bytes() {
    let names = local("SET NAMES utf8mb4").unwrap();
    assert_eq!(
        ok_with_variables(status::AUTOCOMMIT, &names.tracked),
        b"\x00\x00\x00\x02@\x00\x00\x00b\x00\x1d\x14character_set_client\x07utf8mb4\x00\x1e\x15character_set_results\x07utf8mb4\x00!\x18character_set_connection\x07utf8mb4"
    );
    let off = local("SET autocommit=0").unwrap();
    assert_eq!(
        ok_with_variables(0, &off.tracked),
        b"\x00\x00\x00\x00@\x00\x00\x00\x11\x00\x0f\nautocommit\x03OFF"
    );
    let multi = local("SET autocommit=1, time_zone='+01:00', NAMES latin1").unwrap();
    assert_eq!(
        ok_with_variables(status::AUTOCOMMIT, &multi.tracked),
        b"\x00\x00\x00\x02@\x00\x00\x00\x82\x00\x11\ttime_zone\x06+01:00\x00\x1c\x14character_set_client\x06latin1\x00\x1d\x15character_set_results\x06latin1\x00 \x18character_set_connection\x06latin1\x00\x0e\nautocommit\x02ON"
    );
    assert_eq!(ok_with_variables(status::AUTOCOMMIT, &[]), b"\x00\x00\x00\x02\x00\x00\x00");
}

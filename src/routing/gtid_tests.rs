use super::*;

#[test]
fn mariadb_positions_parse_and_cover() {
    let replica = GtidPos::parse("0-1-100,1-2-7").unwrap();
    assert!(replica.covers(&GtidPos::parse("0-1-100").unwrap()));
    assert!(replica.covers(&GtidPos::parse("0-3-99,1-2-7").unwrap()));
    assert!(!replica.covers(&GtidPos::parse("0-1-101").unwrap()));
    assert!(!replica.covers(&GtidPos::parse("2-1-1").unwrap()), "unknown domain is not covered");
    assert!(replica.covers(&GtidPos::default()));
    assert_eq!(GtidPos::parse(""), Some(GtidPos::default()));
    assert_eq!(GtidPos::parse("0-1"), None);
    assert_eq!(GtidPos::parse("0-1-100,0-2-50").unwrap().to_wait_arg(), "0-0-100");
    let mut p = GtidPos::default();
    p.merge(&replica);
    p.advance(0, 90);
    assert_eq!(p, replica);
    assert_eq!(replica.stream_seq(1), Some(7));
}

/// The forms of the MySQL manual ("GTID Format and Storage", "GTID Sets"): a single GTID, a
/// range, several ranges of one source, several sources, `@@gtid_executed`'s newlines, and
/// MySQL 8.3+ tags.
#[test]
fn mysql_gtid_sets_parse_as_the_manual_writes_them() {
    let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let b = "2174b383-5441-11e8-b90a-c80aa9429562";
    let one = GtidPos::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:23").unwrap();
    assert_eq!(one.to_mysql_set(), format!("{a}:23"), "case-insensitive, stored lowercase");
    let ranges = GtidPos::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-3:11:47-49").unwrap();
    assert_eq!(ranges.to_mysql_set(), format!("{a}:1-3:11:47-49"));
    let executed = GtidPos::parse(&format!("{a}:1-5,\n{b}:1-3")).unwrap();
    assert_eq!(executed.to_mysql_set(), format!("{a}:1-5,{b}:1-3"));
    let tagged = GtidPos::parse(&format!("{a}:1-5:billing:1-3")).unwrap();
    assert!(tagged.covers(&GtidPos::parse(&format!("{a}:billing:2")).unwrap()));
    assert!(!tagged.covers(&GtidPos::parse(&format!("{a}:billing:4")).unwrap()));
    assert!(tagged.covers(&GtidPos::parse(&format!("{a}:4")).unwrap()), "untagged GTIDs of the uuid");
    for bad in ["3E11FA47-71CA-11E1-9E33:1-5", &format!("{a}:5-3"), &format!("{a}:0"), &format!("{a}:x-y")] {
        assert_eq!(GtidPos::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn mysql_sets_compare_as_sets() {
    let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let p = |s: &str| GtidPos::parse(s).unwrap();
    let replica = p(&format!("{a}:1-3:5-9"));
    assert!(replica.covers(&p(&format!("{a}:2-3"))));
    assert!(replica.covers(&p(&format!("{a}:6:8"))));
    assert!(!replica.covers(&p(&format!("{a}:4"))), "a gap is not applied");
    assert!(!replica.covers(&p(&format!("{a}:3-5"))));
    assert!(!replica.covers(&p("2174b383-5441-11e8-b90a-c80aa9429562:1")), "unknown source");
    let mut own = p(&format!("{a}:1-3"));
    own.merge(&p(&format!("{a}:4")));
    own.merge(&p(&format!("{a}:9")));
    assert_eq!(own.to_mysql_set(), format!("{a}:1-4:9"), "adjacent intervals join");
    assert_eq!(own.stream_seq(source_key(a)), Some(9));
    assert_eq!(
        own.wait_statement(false, 0.05),
        format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{a}:1-4:9', 0.050)")
    );
    assert_eq!(p("0-1-5").wait_statement(true, 0.05), "SELECT MASTER_GTID_WAIT('0-0-5', 0.050)");
}

#[test]
fn a_set_stays_small_and_only_gets_stricter() {
    let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let mut own = GtidPos::default();
    for n in 0..200u64 {
        own.merge(&GtidPos::parse(&format!("{a}:{}", n * 2 + 1)).unwrap());
    }
    assert_eq!(own.sets[0].1.len(), MAX_INTERVALS);
    assert!(own.covers(&GtidPos::parse(&format!("{a}:399")).unwrap()), "every write is still required");
    assert!(own.covers(&GtidPos::parse(&format!("{a}:1")).unwrap()));
}

#[test]
fn min_gtid_hints() {
    let sql = b"SELECT /* rwproxy:min_gtid=0-1-100,1-2-5 */ 1";
    assert_eq!(hinted(sql), GtidPos::parse("0-1-100,1-2-5"));
    assert_eq!(hinted(b"SELECT /*rwproxy:MIN_GTID=0-1-7*/ 1"), GtidPos::parse("0-1-7"));
    let mysql = b"SELECT /* rwproxy:min_gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9 */ 1";
    assert!(hinted(mysql).is_some_and(|p| p.is_mysql()));
    assert_eq!(hinted(b"SELECT /* rwproxy:min_gtid=garbage */ 1"), None);
    assert_eq!(hinted(b"SELECT 1"), None);
}

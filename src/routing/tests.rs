//! Table-driven routing tests: (SQL, expected target, expected reason) for a fresh autocommit
//! session with the standard replication config (writer 0, reader 1).

use super::*;
use crate::config::Config;

mod table;

pub(super) fn config(extra: &str) -> Config {
    let text = format!(
        "[[servers]]\nhostgroup = 0\naddress = \"p:3306\"\n[[servers]]\nhostgroup = 1\naddress = \"r:3306\"\n\
         [[servers]]\nhostgroup = 2\naddress = \"a:3306\"\n\
         [[users]]\nusername = \"app\"\npassword = \"x\"\ndefault_hostgroup = 0\n\
         [replication]\nwriter_hostgroup = 0\nreader_hostgroup = 1\n{extra}"
    );
    Config::parse(&text, "test", &|_| None).unwrap()
}

pub(super) fn facts() -> SessionFacts<'static> {
    SessionFacts {
        user: "app",
        schema: Some("shop"),
        default_hostgroup: 0,
        pinned: None,
        recent_write: false,
        autocommit_off: false,
        read_only: false,
    }
}

pub(super) fn route_of(sql: &str, cfg: &Config) -> Route {
    route(&classify(sql.as_bytes(), Dialect::default()), sql.as_bytes(), &facts(), cfg)
}

const SEED_RULES: &str = r#"
[[query_rules]]
rule_id = 1
match_pattern = "^SELECT.*FOR UPDATE$"
destination_hostgroup = 0
apply = true
[[query_rules]]
rule_id = 2
match_pattern = "^SELECT"
destination_hostgroup = 1
apply = true
"#;

#[test]
fn proxysql_seed_rules_keep_locking_reads_on_the_writer() {
    let cfg = config(SEED_RULES);
    let cases = [
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE", 0, Reason::Rule(1)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE   ", 0, Reason::Rule(1)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE\n", 0, Reason::Rule(1)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE /* trailing */", 0, Reason::Rule(1)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE -- trailing\n", 0, Reason::Rule(1)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE;", 0, Reason::Rule(1)),
        ("  /* c */ select * from t where id = 1 for update", 0, Reason::Rule(1)),
        ("SELECT *\nFROM t\nWHERE id = 1\nFOR UPDATE", 0, Reason::RuleOverridden(2)),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE SKIP LOCKED", 0, Reason::RuleOverridden(2)),
        ("SELECT * FROM t WHERE id = 1 LOCK IN SHARE MODE", 0, Reason::RuleOverridden(2)),
        ("SELECT * FROM t WHERE id = 1 LOCK IN SHARE MODE  \n", 0, Reason::RuleOverridden(2)),
        ("SELECT * FROM t WHERE id = 1 FOR SHARE -- x", 0, Reason::RuleOverridden(2)),
        ("SELECT GET_LOCK('a', 1)", 0, Reason::RuleOverridden(2)),
        ("SELECT * FROM t", 1, Reason::Rule(2)),
        ("SELECT * FROM t -- FOR UPDATE", 1, Reason::Rule(2)),
        ("UPDATE t SET a = 1", 0, Reason::Write),
    ];
    for (sql, hg, reason) in cases {
        let r = route_of(sql, &cfg);
        assert_eq!((r.hostgroup, r.reason), (hg, reason), "{sql:?}");
    }
}

#[test]
fn rule_filters_flags_negation_and_errors() {
    let cfg = config(
        r#"
[[query_rules]]
rule_id = 10
username = "reporting"
match_pattern = "."
destination_hostgroup = 2
apply = true
[[query_rules]]
rule_id = 20
schemaname = "shop"
match_digest = "^SELECT \\* FROM orders WHERE id = \\?"
flagOUT = 7
[[query_rules]]
rule_id = 30
flagIN = 7
match_pattern = "archive"
negate_match_pattern = true
destination_hostgroup = 2
apply = true
[[query_rules]]
rule_id = 40
match_pattern = "^DROP DATABASE"
error_msg = "not through the proxy"
[[query_rules]]
rule_id = 50
active = false
match_pattern = "."
destination_hostgroup = 2
"#,
    );
    let r = route_of("SELECT * FROM orders WHERE id = 17", &cfg);
    assert_eq!((r.hostgroup, r.reason), (2, Reason::Rule(30)), "digest match, flag chain");
    let r = route_of("SELECT * FROM orders WHERE id = 17 /* archive */ -- x", &cfg);
    assert_eq!(
        r.hostgroup, 2,
        "comments are not part of match_pattern text? they are trimmed only at the ends"
    );
    let r = route_of("SELECT * FROM orders WHERE id = 17 AND archive = 1", &cfg);
    assert_eq!((r.hostgroup, r.reason), (1, Reason::PlainRead), "negated pattern did not match");
    let r = route_of("DROP DATABASE shop", &cfg);
    assert_eq!(r.error.as_deref(), Some("not through the proxy"));
    let other = SessionFacts { user: "reporting", ..facts() };
    let r = route(&classify(b"UPDATE t SET a=1", Dialect::default()), b"UPDATE t SET a=1", &other, &cfg);
    assert_eq!((r.hostgroup, r.reason), (2, Reason::Rule(10)), "username rule; not the reader hostgroup");
    assert_eq!(cfg.query_rules.len(), 4, "inactive rules are dropped at load");
}

/// ProxySQL's `negate_match_pattern` negates `match_digest` too: such a rule matches the
/// statements whose digest does *not* match.
#[test]
fn negation_applies_to_match_digest_as_in_proxysql() {
    let cfg = config(
        r#"
[[query_rules]]
rule_id = 1
match_digest = "^SELECT"
negate_match_pattern = true
destination_hostgroup = 0
apply = true
"#,
    );
    let r = route_of("SELECT * FROM t", &cfg);
    assert_eq!((r.hostgroup, r.reason), (1, Reason::PlainRead));
    let r = route_of("SHOW TABLES", &cfg);
    assert_eq!(r.reason, Reason::Rule(1));
}

#[test]
fn hints_override_rules_and_pins_override_hints() {
    let cfg = config(SEED_RULES);
    let r = route_of("/* rwproxy:writer */ SELECT 1", &cfg);
    assert_eq!((r.hostgroup, r.reason), (0, Reason::HintWriter));
    let r = route_of("SELECT /* rwproxy:reader */ * FROM t WHERE id = 1 FOR UPDATE", &cfg);
    assert_eq!((r.hostgroup, r.reason), (1, Reason::HintReader));
    let r = route_of("SELECT 1 /* hostgroup=2 */", &cfg);
    assert_eq!((r.hostgroup, r.target, r.reason), (2, Target::Other, Reason::HintHostgroup));
    let pinned = SessionFacts { pinned: Some(0), ..facts() };
    let r = route(&classify(b"/* rwproxy:reader */ SELECT 1", Dialect::default()), b"", &pinned, &cfg);
    assert_eq!((r.hostgroup, r.reason), (0, Reason::Pinned));
}

#[test]
fn without_replication_everything_goes_to_the_default_hostgroup() {
    let text = "[[servers]]\nhostgroup = 5\naddress = \"p:3306\"\n[[users]]\nusername = \"app\"\npassword = \"x\"\ndefault_hostgroup = 5\n";
    let cfg = Config::parse(text, "t", &|_| None).unwrap();
    let f = SessionFacts { default_hostgroup: 5, ..facts() };
    for sql in ["SELECT 1", "UPDATE t SET a = 1", "BEGIN"] {
        let r = route(&classify(sql.as_bytes(), Dialect::default()), sql.as_bytes(), &f, &cfg);
        assert_eq!((r.hostgroup, r.reason), (5, Reason::DefaultHostgroup), "{sql}");
    }
}

#[test]
fn digest_texts_are_capped_and_their_hashes_are_not() {
    let long = |tail: &str| format!("SELECT {} FROM t{tail}", vec!["col_name"; 1000].join(", "));
    let a = classify(long("").as_bytes(), Dialect::default()).digest;
    let b = classify(long(" WHERE x = 1").as_bytes(), Dialect::default()).digest;
    assert_eq!(a.text.len(), crate::routing::digest::MAX_DIGEST_TEXT);
    assert_eq!(a.text, b.text, "the same first 2048 bytes");
    assert_ne!(a.hash, b.hash, "the statements still count apart");
}

#[test]
fn digests_fold_literals_whitespace_comments_and_lists() {
    let d = |sql: &str| classify(sql.as_bytes(), Dialect::default()).digest;
    assert_eq!(
        d("SELECT * FROM t WHERE id = 5 AND name = 'x'").text,
        "SELECT * FROM t WHERE id = ? AND name = ?"
    );
    assert_eq!(d("SELECT a, b FROM t").text, "SELECT a,b FROM t");
    assert_eq!(d("select  *\n from t /* c */ where id=-5").text, "select * from t where id = ?");
    assert_eq!(
        d("SELECT a FROM t WHERE id IN (1, 2, 3, 4, 5, 6)").text,
        "SELECT a FROM t WHERE id IN(?,?,?,...)"
    );
    assert_eq!(d("INSERT INTO t VALUES (1, 'a'), (2, 'b')").text, "INSERT INTO t VALUES(?,?),(?,?)");
    assert_eq!(d("SELECT f(1) FROM t").text, "SELECT f(?) FROM t");
    assert_eq!(d("SELECT `a`.`b` FROM `t`").text, "SELECT `a`.`b` FROM `t`");
    let (a, b) = (d("SELECT * FROM t WHERE id = 1"), d("SELECT * FROM t WHERE id = 99"));
    assert_eq!(a, b);
    assert_ne!(a.hash, d("SELECT * FROM u WHERE id = 1").hash);
    let big: String = (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    assert_eq!(
        d(&format!("SELECT * FROM t WHERE id IN ({big})")).text,
        "SELECT * FROM t WHERE id IN(?,?,?,...)"
    );
}

#[test]
fn version_comments_are_read_for_the_backend_version() {
    let maria = Dialect { mariadb: true, version: 101119 };
    let dump = b"/*M!999999\\- enable the sandbox mode */\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;";
    let stmt = classify(dump, maria);
    assert_eq!(stmt.kind, Kind::SessionSet, "the sandbox line is a comment on 10.11");
    assert!(stmt.flags.has(Flags::USER_VAR_READ));
    assert_eq!(&dump[stmt.span.0..stmt.span.1], b"SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT");
    assert_eq!(stmt.digest.text, "SET @OLD_CHARACTER_SET_CLIENT = @@CHARACTER_SET_CLIENT;");
    assert_eq!(set::parse_set(dump, maria), Some(vec![set::SetItem::UserVar]));
    // A comment for a newer server hides its contents from routing and the digest.
    let newer = classify(b"/*!110500 DELETE FROM t */ SELECT 1", maria);
    assert_eq!((newer.kind, newer.digest.text.as_str()), (Kind::Read, "SELECT ?"));
    let older = classify(b"/*!100100 DELETE FROM t */", maria);
    assert_eq!(older.kind, Kind::Write);
    let mysql = Dialect { mariadb: false, version: 80036 };
    assert_eq!(classify(b"/*M!100100 DELETE FROM t */ SELECT 1", mysql).kind, Kind::Read);
    assert_eq!(
        set::parse_set(b"/*!40101 SET NAMES utf8mb4 */", maria),
        Some(vec![set::SetItem::Names { charset: "utf8mb4".into(), collation: None }])
    );
}

#[test]
fn hints_are_read_from_comments() {
    let h = classify(b"SELECT /* rwproxy:consistency=global */ 1 /* hostgroup=7 */", Dialect::default()).hint;
    assert_eq!(h.consistency, Some(Consistency::Global));
    assert_eq!(h.hostgroup, Some(7));
    assert_eq!(
        classify(b"SELECT 1 -- rwproxy:writer\n", Dialect::default()).hint.target,
        Some(HintTarget::Writer)
    );
    assert_eq!(
        classify(b"SELECT '/* rwproxy:writer */'", Dialect::default()).hint,
        Hint::default(),
        "not in a literal"
    );
    assert_eq!(
        classify(b"SELECT 1 /* writer */", Dialect::default()).hint,
        Hint::default(),
        "needs the prefix"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const READS: [&str; 5] =
        ["SELECT 1", "SELECT a FROM t WHERE b = 'x'", "SHOW TABLES", "(SELECT 2)", "SELECT @@version"];
    const WRITES: [&str; 6] = [
        "UPDATE t SET a = 1",
        "INSERT INTO t VALUES (1)",
        "DELETE FROM t",
        "CREATE TABLE x (a INT)",
        "SELECT 1 FOR UPDATE",
        "CALL p()",
    ];

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[ -~]{0,20}".prop_map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))),
            "[ -~]{0,20}".prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\"\""))),
        ]
    }

    fn comment() -> impl Strategy<Value = String> {
        // No `*` at all: removing "*/" once can leave a new "*/" behind ("**//").
        let body = "[ -~]{0,30}".prop_map(|s| s.replace(['*', '!'], ""));
        prop_oneof![
            body.clone().prop_map(|s| format!("/*{s}*/")),
            "[ -~]{0,30}".prop_map(|s| format!("-- {s}\n")),
            "[ -~]{0,30}".prop_map(|s| format!("#{s}\n")),
        ]
    }

    proptest! {
        #[test]
        fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = classify(&bytes, Dialect::default());
        }

        #[test]
        fn classify_never_panics_on_sql_like_text(s in "[ -~\n]{0,200}") {
            let _ = classify(s.as_bytes(), Dialect::default());
        }

        #[test]
        fn a_write_anywhere_in_a_multi_statement_goes_to_the_writer(
            reads in proptest::collection::vec(0..READS.len(), 0..5),
            write in 0..WRITES.len(),
            at in 0usize..6,
        ) {
            let mut parts: Vec<&str> = reads.iter().map(|&i| READS[i]).collect();
            parts.insert(at.min(parts.len()), WRITES[write]);
            let sql = parts.join("; ");
            let r = route_of(&sql, &config(""));
            prop_assert_eq!(r.target, Target::Writer, "{}", sql);
        }

        #[test]
        fn comments_and_literals_never_change_the_kind(
            lits in proptest::collection::vec(literal(), 2),
            comments in proptest::collection::vec(comment(), 3),
            which in 0usize..6,
        ) {
            let templates = [
                "SELECT a FROM t WHERE b = {L0} AND c = {L1}",
                "UPDATE t SET a = {L0} WHERE b = {L1}",
                "INSERT INTO t VALUES ({L0}, {L1})",
                "SELECT * FROM t WHERE a = {L0} FOR UPDATE",
                "DELETE FROM t WHERE a IN ({L0}, {L1})",
                "SET sql_mode = {L0}",
            ];
            let base = templates[which].replace("{L0}", "1").replace("{L1}", "2");
            let words: Vec<&str> = templates[which].split(' ').collect();
            let mut noisy = comments[0].clone();
            for (i, w) in words.iter().enumerate() {
                noisy.push_str(&w.replace("{L0}", &lits[0]).replace("{L1}", &lits[1]));
                noisy.push(' ');
                if i == words.len() / 2 {
                    noisy.push_str(&comments[1]);
                    noisy.push(' ');
                }
            }
            noisy.push_str(&comments[2]);
            let (a, b) = (classify(base.as_bytes(), Dialect::default()), classify(noisy.as_bytes(), Dialect::default()));
            prop_assert_eq!(a.kind, b.kind, "{} vs {}", base, noisy);
            prop_assert_eq!(a.flags, b.flags, "{} vs {}", base, noisy);
            prop_assert_eq!(a.digest.text, b.digest.text, "{} vs {}", base, noisy);
        }
    }
}

#[test]
fn autocommit_off_reads_open_their_transaction_on_the_writer() {
    let plain = config("");
    let ro_kept_on_writer = config("[routing]\nread_only_transactions_to_reader = false\n");
    let with_rules = config(SEED_RULES);
    // (SQL, read-only session, config, expected hostgroup, reason)
    let cases: [(&str, bool, &Config, u32, Reason); 10] = [
        ("SELECT * FROM t", false, &plain, 0, Reason::AutocommitOff),
        ("SELECT * FROM t", true, &plain, 1, Reason::ReadOnlyTransaction),
        ("SELECT * FROM t", true, &ro_kept_on_writer, 0, Reason::AutocommitOff),
        ("SELECT * FROM t", false, &with_rules, 0, Reason::AutocommitOff),
        ("SELECT * FROM t", true, &with_rules, 1, Reason::Rule(2)),
        ("/* hostgroup=1 */ SELECT * FROM t", false, &plain, 0, Reason::AutocommitOff),
        ("/* hostgroup=2 */ SELECT * FROM t", false, &plain, 2, Reason::HintHostgroup),
        ("UPDATE t SET a = 1", false, &plain, 0, Reason::Write),
        ("SET NAMES utf8mb4", false, &plain, 0, Reason::SessionState),
        ("/* rwproxy:reader */ SELECT * FROM t", false, &plain, 0, Reason::AutocommitOff),
    ];
    for (sql, read_only, cfg, hg, reason) in cases {
        let facts = SessionFacts { autocommit_off: true, read_only, ..facts() };
        let r = route(&classify(sql.as_bytes(), Dialect::default()), sql.as_bytes(), &facts, cfg);
        assert_eq!((r.hostgroup, r.reason), (hg, reason), "{sql:?} read_only={read_only}");
    }
    let r = route_of("SELECT * FROM t", &plain);
    assert_eq!((r.hostgroup, r.reason), (1, Reason::PlainRead), "autocommit on: the reader");
}

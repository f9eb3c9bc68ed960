//! `mariadb-dump` output restored through the proxy with the `mariadb` client equals the same
//! dump restored directly (Django clones its test databases this way), and a consistent
//! `mysqldump --single-transaction` through the proxy equals one taken directly.

use std::io::Write as _;
use std::process::{Command, Stdio};

use mysql_async::prelude::*;

use crate::support::cluster::{APP_PASSWORD, APP_USER, binary};
use crate::support::{Proxy, cluster, connect};

/// A schema with tables (awkward values included), a view, a trigger, routines and an event.
const SCHEMA: [&str; 9] = [
    "CREATE TABLE t1 (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), price DECIMAL(10,2), \
     created DATETIME(6), data BLOB, note TEXT NULL) DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100))",
    "CREATE TABLE t2 (id INT PRIMARY KEY, t1_id INT, FOREIGN KEY (t1_id) REFERENCES t1 (id))",
    "CREATE VIEW v1 AS SELECT id, name FROM t1 WHERE price > 1",
    "CREATE TRIGGER t1_ai AFTER INSERT ON t1 FOR EACH ROW BEGIN \
     INSERT INTO audit (msg) VALUES (CONCAT('new ', NEW.name)); END",
    "INSERT INTO t1 (name, price, created, data, note) VALUES \
     ('O''Brien', 3.50, '2026-12-01 10:00:00.123456', x'00ff0a27', NULL), \
     ('naïve ☃ \\\\ \"q\"', 0.99, '1999-01-01 00:00:00', NULL, 'line1\\nline2')",
    "INSERT INTO t2 VALUES (1, 1), (2, 2)",
    "CREATE PROCEDURE p1(IN x INT) BEGIN SELECT COUNT(*) FROM t1 WHERE id > x; END",
    "CREATE FUNCTION f1(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
];

fn dump(port: u16, db: &str, extra: &[&str]) -> String {
    let out = Command::new(binary(&["mariadb-dump", "mysqldump"]))
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "--protocol=TCP", "--skip-dump-date"])
        .args(["--routines", "--events", "--triggers"])
        .args(extra)
        .args([&format!("-u{APP_USER}"), &format!("-p{APP_PASSWORD}"), db])
        .output()
        .expect("run mariadb-dump");
    assert!(out.status.success(), "dump of {db} via {port}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().filter(|l| !l.starts_with("-- Host:")).collect::<Vec<_>>().join("\n")
}

fn restore(port: u16, db: &str, dump: &str) {
    let mut child = Command::new(binary(&["mariadb", "mysql"]))
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "--protocol=TCP"])
        .args([&format!("-u{APP_USER}"), &format!("-p{APP_PASSWORD}"), db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mariadb");
    child.stdin.take().expect("stdin").write_all(dump.as_bytes()).expect("feed the dump");
    let out = child.wait_with_output().expect("mariadb finished");
    assert!(
        out.status.success(),
        "restore into {db} via port {port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restored_through_the_proxy_equals_one_restored_directly() {
    let n = std::process::id();
    let (src, via, direct) = (format!("dump_src_{n}"), format!("dump_via_{n}"), format!("dump_direct_{n}"));
    let primary = cluster().primary.port;
    let mut c = connect(primary).await;
    for db in [&src, &via, &direct] {
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    }
    c.query_drop(format!("USE {src}")).await.unwrap();
    for sql in SCHEMA {
        c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    c.query_drop("CREATE EVENT e1 ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0")
        .await
        .unwrap();
    cluster().sync_replicas();

    let proxy = Proxy::default().await;
    let source = dump(primary, &src, &[]);
    assert!(source.starts_with("/*M!999999\\- enable the sandbox mode */"), "the dump has the sandbox line");
    for (db, port) in [(&via, proxy.port()), (&direct, primary)] {
        restore(port, db, &source);
    }
    let (a, b) = (dump(primary, &via, &[]), dump(primary, &direct, &[]));
    assert!(a.contains("CREATE DEFINER=") && a.contains("TRIGGER") && a.contains("EVENT"), "{a}");
    assert_eq!(a.replace(&via, "DB"), b.replace(&direct, "DB"), "restored through the proxy vs directly");

    let consistent = ["--single-transaction"];
    assert_eq!(
        dump(proxy.port(), &src, &consistent),
        dump(primary, &src, &consistent),
        "--single-transaction"
    );
    proxy.shutdown().await;
    for db in [&src, &via, &direct] {
        c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
    }
}

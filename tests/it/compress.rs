//! The compressed protocol between clients and the proxy (`CLIENT_COMPRESS`, zlib), with the
//! `mariadb --compress` CLI, mysqlclient's `compress=True` and Node's two drivers: every result
//! the same as straight from the primary (itself compressed), large results, statements over
//! 16 MiB, prepared statements, over TLS too; `proxy.compression = false` is honoured.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE, certificates};
use crate::support::{Proxy, cli, cluster, config_text, run_bounded, tls_section};

const ROWS_SQL: &str = "SELECT seq, REPEAT('y', 90), seq * 7 FROM seq_1_to_50000";

/// The CLI with `extra` flags, a statement on stdin; (ok, stdout, stderr).
fn cli_stdin(port: u16, extra: &[&str], stdin: PathBuf) -> (bool, String, String) {
    let mut cmd = Command::new(crate::support::cluster::binary(&["mariadb", "mysql"]));
    cmd.args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "--protocol=TCP"])
        .args([&format!("-u{APP_USER}"), &format!("-p{APP_PASSWORD}"), "--max-allowed-packet=64M"])
        .args(extra)
        .arg(DATABASE)
        .stdin(Stdio::from(std::fs::File::open(stdin).unwrap()));
    let out = run_bounded(&mut cmd, Duration::from_secs(120), "mariadb --compress");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn app_cli(port: u16, extra: &[&str], sql: &str) -> String {
    let (user, pw) = (format!("-u{APP_USER}"), format!("-p{APP_PASSWORD}"));
    let mut args = vec![user.as_str(), pw.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-e", sql, DATABASE]);
    let (ok, out, err) = cli(port, &args);
    assert!(ok, "mariadb {extra:?} -e {sql}: {err}");
    out
}

fn logins(metrics: &str, tls: &str, compressed: &str) -> u64 {
    let series = format!("rwproxy_client_logins_total{{tls=\"{tls}\",compressed=\"{compressed}\"}} ");
    let line = metrics.lines().find(|l| l.starts_with(&series));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("{series} in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_mysqlclient_get_the_primarys_results_compressed() {
    let dir = std::env::temp_dir().join(format!("rwproxy-compress-{}", std::process::id()));
    let (ca, cert, key) = certificates(&dir, "z");
    let proxy = Proxy::start(&config_text(cluster(), &tls_section(&cert, &key))).await;
    let (port, direct) = (proxy.port(), cluster().primary.port);
    let plain = ["--compress", "--skip-ssl"];
    let status = app_cli(port, &plain, "status");
    assert!(status.contains("Protocol:\t\tCompressed"), "the CLI negotiated compression: {status}");
    let rows = app_cli(port, &plain, ROWS_SQL);
    assert_eq!(rows.lines().count(), 50_001);
    assert_eq!(rows, app_cli(direct, &["--compress"], ROWS_SQL), "50,000 rows as from the primary");
    // Over TLS as well.
    let ca_flag = format!("--ssl-ca={}", ca.display());
    let secure = app_cli(port, &["--compress", "--ssl", &ca_flag, "--ssl-verify-server-cert"], ROWS_SQL);
    assert_eq!(secure, rows, "compressed over TLS");
    // A statement over 16 MiB: two packets inside the compressed frames.
    let file = dir.join("huge.sql");
    std::fs::write(&file, format!("SELECT LENGTH('{}'), 'end';\n", "h".repeat(17 << 20))).unwrap();
    let (ok, out, err) = cli_stdin(port, &plain, file.clone());
    assert!(ok && out.contains("17825792\tend"), "a 17 MiB statement compressed: {out}{err}");

    // mysqlclient: compress=True, a large result, a 17 MiB parameter, a transaction.
    let script = format!(
        r#"
import MySQLdb, hashlib
def run(port):
    c = MySQLdb.connect(host="127.0.0.1", port=port, user="{APP_USER}", password="{APP_PASSWORD}", database="{DATABASE}", compress=True)
    cur = c.cursor()
    cur.execute("{ROWS_SQL}")
    rows = hashlib.sha256(repr(cur.fetchall()).encode()).hexdigest()
    cur.execute("SELECT LENGTH(%s), MD5(%s)", ("m" * (17 << 20), "n" * 70000))
    big = cur.fetchone()
    cur.execute("SELECT @@in_transaction"); before = cur.fetchone()
    c.begin(); cur.execute("SELECT 1 FROM DUAL"); cur.execute("SELECT @@in_transaction"); inside = cur.fetchone(); c.rollback()
    return (rows, big, before, inside)
p, d = run({port}), run({direct})
print("same" if p == d else f"differ: {{p}} vs {{d}}", p[1][0], p[3][0])
"#
    );
    let out =
        run_bounded(Command::new("python3").args(["-c", &script]), Duration::from_secs(120), "mysqlclient");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "same 17825792 1", "mysqlclient through the proxy as directly");

    let metrics = proxy.metrics_text().await;
    assert!(logins(&metrics, "no", "yes") >= 4, "compressed plain logins counted: {metrics}");
    assert!(logins(&metrics, "yes", "yes") >= 1, "compressed TLS logins counted");
    proxy.shutdown().await;

    // Off: the greeting does not offer it, and the CLI falls back to the plain protocol.
    let off =
        Proxy::start(&config_text(cluster(), "").replace("[proxy]\n", "[proxy]\ncompression = false\n"))
            .await;
    let status = app_cli(off.port(), &["--compress"], "status");
    assert!(!status.contains("Compressed"), "compression = false: {status}");
    assert_eq!(app_cli(off.port(), &["--compress"], ROWS_SQL), rows);
    off.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_drivers_get_the_primarys_results_compressed() {
    let proxy = Proxy::default().await;
    let node = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    let run = |port: u16| {
        let args = ["compress.mjs", &port.to_string(), APP_USER, APP_PASSWORD, DATABASE];
        let out = run_bounded(
            Command::new("node").args(args).current_dir(&node),
            Duration::from_secs(120),
            "node compress.mjs",
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let (through, direct) = (run(proxy.port()), run(cluster().primary.port));
    assert_eq!(through, direct, "both drivers, compressed, as straight from the primary");
    assert_eq!(through["mariadb"]["rows"], 30_000);
    assert_eq!(through["mariadb"]["huge"], 17 << 20);
    let metrics = proxy.metrics_text().await;
    assert!(logins(&metrics, "no", "yes") >= 2, "both drivers negotiated compression: {metrics}");
    proxy.shutdown().await;
}

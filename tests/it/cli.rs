//! The `mariadb` command-line tools see the same results through the proxy as directly.

use crate::support::cluster::{APP_PASSWORD, APP_USER, DATABASE, binary};
use crate::support::{Proxy, cli, cluster, table};

fn login() -> Vec<String> {
    vec![format!("-u{APP_USER}"), format!("-p{APP_PASSWORD}"), DATABASE.to_string()]
}

/// Runs the CLI with `args` against the proxy and the primary; asserts equal output.
fn same_output(proxy_port: u16, args: &[&str]) -> String {
    let mut full: Vec<String> = login();
    full.extend(args.iter().map(|s| s.to_string()));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let (ok_p, out_p, err_p) = cli(proxy_port, &full);
    let (ok_d, out_d, err_d) = cli(cluster().primary.port, &full);
    assert_eq!((ok_p, &out_p), (ok_d, &out_d), "proxy stderr: {err_p}\ndirect stderr: {err_d}");
    out_p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_type_info_matches() {
    let proxy = Proxy::default().await;
    let t = table("cli_meta");
    cluster().primary.sql(&format!(
        "CREATE TABLE {t} (vb VARBINARY(16), d DECIMAL(10,3), dt DATETIME(6), s VARCHAR(20) CHARSET utf8mb4); \
         INSERT INTO {t} VALUES (x'00ff', -12.5, '2026-01-02 03:04:05.000006', 'żółw')"
    ));
    cluster().sync_replicas();
    let out = same_output(proxy.port(), &["--column-type-info", "-t", "-e", &format!("SELECT * FROM {t}")]);
    assert!(out.contains("Decimals:   3") && out.contains("Decimals:   6"), "{out}");
    same_output(proxy.port(), &["--column-type-info", "-t", "-e", "SELECT 1/0; SHOW WARNINGS"]);
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_procedure_with_two_result_sets() {
    let proxy = Proxy::default().await;
    let p = format!("{DATABASE}.two_sets_{}", std::process::id());
    cluster().primary.sql(&format!(
        "DELIMITER //\nCREATE PROCEDURE {p}() BEGIN SELECT 1 AS a; SELECT 'b' AS b, 2 AS c; END//"
    ));
    let out = same_output(proxy.port(), &["-e", &format!("CALL {p}(); SELECT 'after'")]);
    assert_eq!(out, "a\n1\nb\tc\nb\t2\nafter\nafter\n");
    cluster().primary.sql(&format!("DROP PROCEDURE {p}"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_infile() {
    let proxy = Proxy::default().await;
    let t = table("infile");
    cluster().primary.sql(&format!("CREATE TABLE {t} (a INT, b VARCHAR(10))"));
    let file = std::env::temp_dir().join(format!("rwproxy-infile-{}.csv", std::process::id()));
    let rows: String = (0..5000).map(|i| format!("{i},v{i}\n")).collect();
    std::fs::write(&file, rows).unwrap();
    let load = format!("LOAD DATA LOCAL INFILE '{}' INTO TABLE {t} FIELDS TERMINATED BY ','", file.display());
    // Plain, then over the compressed protocol (the file's packets inside compressed frames).
    for extra in [None, Some("--compress")] {
        let mut args = login();
        args.extend(["--local-infile=1".into(), "-e".into(), load.clone()]);
        args.extend(extra.map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = cli(proxy.port(), &args);
        assert!(ok, "{extra:?}: {err}");
    }
    let count = cluster().primary.sql(&format!("SELECT COUNT(*), SUM(a) FROM {t}"));
    assert_eq!(count, "10000\t24995000");
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    let _ = std::fs::remove_file(file);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ping_status_and_dump() {
    let proxy = Proxy::default().await;
    let admin = |port: u16, what: &str| {
        std::process::Command::new(binary(&["mariadb-admin", "mysqladmin"]))
            .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "--protocol=TCP"])
            .args([&format!("-u{APP_USER}"), &format!("-p{APP_PASSWORD}"), what])
            .output()
            .unwrap()
    };
    let ping = admin(proxy.port(), "ping");
    assert!(String::from_utf8_lossy(&ping.stdout).contains("mysqld is alive"), "{ping:?}");
    let status = admin(proxy.port(), "status");
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("Uptime:"), "{status:?}");

    let t = table("dump");
    cluster().primary.sql(&format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20), d DATETIME(3)); \
         INSERT INTO {t} SELECT seq, CONCAT('row', seq), '2026-01-01 00:00:00.5' FROM {DATABASE}.seq_1_to_2000"
    ));
    cluster().sync_replicas();
    let dump = |port: u16| {
        let out = std::process::Command::new(binary(&["mariadb-dump", "mysqldump"]))
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{port}"),
                "--protocol=TCP",
                "--skip-dump-date",
            ])
            .args([&format!("-u{APP_USER}"), &format!("-p{APP_PASSWORD}"), DATABASE])
            .arg(t.split('.').nth(1).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let via_proxy = dump(proxy.port());
    assert!(via_proxy.contains("INSERT INTO"), "{via_proxy}");
    let normalise = |s: &str| s.lines().filter(|l| !l.starts_with("-- Host:")).collect::<Vec<_>>().join("\n");
    assert_eq!(normalise(&via_proxy), normalise(&dump(cluster().primary.port)));
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
}

#[test]
fn check_config_exits_0_for_valid_and_1_naming_the_key() {
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = std::process::Command::new(bin)
        .args(["check-config", "config/local.toml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));
    let bad = std::env::temp_dir().join(format!("rwproxy-bad-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(format!("{root}/config/local.toml"))
        .unwrap()
        .replace("127.0.0.1:3308", "db-replica");
    std::fs::write(&bad, text).unwrap();
    let out = std::process::Command::new(bin).arg("check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("servers[1].address: expected host:port, got \"db-replica\""), "{err}");
    let _ = std::fs::remove_file(bad);
    let none = std::process::Command::new(bin).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--config"));
}

/// A port in use: one line naming the address and its key, no backtrace even when asked for
/// one; `check-config -c FILE` works; logs are plain text on a pipe or JSON lines.
#[test]
fn user_errors_are_one_clear_line_and_logs_fit_a_pipe() {
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    let root = env!("CARGO_MANIFEST_DIR");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let cfg = std::env::temp_dir().join(format!("rwproxy-busy-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(format!("{root}/config/local.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:6033\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&cfg, text).unwrap();
    for format in ["text", "json"] {
        let out = std::process::Command::new(bin)
            .args(["--log-format", format, "--config"])
            .arg(&cfg)
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("rwproxy:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains(&format!("cannot listen on 127.0.0.1:{port} (proxy.listen)")), "{err}");
        assert!(!err.contains("backtrace") && !err.contains("Stack"), "{err}");
        assert!(!err.contains('\x1b'), "no colour on a pipe: {err:?}");
        let logs: Vec<&str> = err.lines().filter(|l| !l.starts_with("rwproxy:")).collect();
        assert!(!logs.is_empty(), "{err}");
        if format == "json" {
            for l in logs {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                assert!(v["level"].is_string(), "{l}");
            }
        }
    }
    let check = std::process::Command::new(bin).args(["check-config", "-c"]).arg(&cfg).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    drop(busy);
    let _ = std::fs::remove_file(cfg);
}

/// `rwproxy admin … | true`: the reader is gone before the output is written; the command
/// ends quietly instead of panicking on EPIPE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_output_into_a_closed_pipe_ends_quietly() {
    let proxy = crate::support::Proxy::default().await;
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    for _ in 0..3 {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{bin} admin servers --admin {} | true", proxy.admin))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    }
    proxy.shutdown().await;
}
